//! Durability end to end with the real binary: the journal and snapshots survive `kill -9`
//! with every acknowledged write, revisions keep growing, REPLAY honours pattern, time range,
//! type mask, limit and read scopes, and retention shrinks the log without losing state.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clasp::Client;
use clasp_proto::{SignalType, TypeMask, Value};
use common::auth::{connect, temp_dir, AuthRelay};
use common::*;

fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

async fn client(relay: &Relay) -> Client {
    Client::builder(relay.url())
        .reconnect(false)
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connects")
}

/// SIGKILL, then wait until the process is gone.
fn kill9(relay: &mut Relay) {
    relay.child.kill().expect("kill -9");
    relay.child.wait().expect("reaped");
}

/// Starts a relay on `port` (the same one after a restart, so the URL stays valid).
fn start_on(port: u16, extra: &[&str]) -> Relay {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_clasp"))
        .args([
            "relay",
            "--host",
            "127.0.0.1",
            "--ws-port",
            &port.to_string(),
            "--log-level",
            "warn",
        ])
        .args(extra)
        .spawn()
        .expect("starts");
    let relay = Relay { child, port };
    let deadline = std::time::Instant::now() + STARTUP;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "relay on {port} did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    relay
}

async fn every_acknowledged_write_survives_kill_9(dir: PathBuf, extra: &[&str]) {
    let journal = dir.join("journal.redb");
    let mut args = vec!["--journal", arg(&journal), "--persist-interval", "1"];
    args.extend_from_slice(extra);
    let port = free_port();
    let mut relay = start_on(port, &args);
    let c = client(&relay).await;
    let mut expected = std::collections::BTreeMap::new();
    // Two phases around a snapshot, so recovery uses the snapshot and the journal tail.
    for phase in 0..2u64 {
        for i in 0..200u64 {
            let address = format!("/show/cue/{}", i % 37);
            let value = (phase * 1000 + i) as i64;
            let revision = c.set(&address, value).await.expect("acknowledged");
            expected.insert(address, (value, revision));
        }
        if phase == 0 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    }
    kill9(&mut relay);
    let relay = start_on(port, &args);
    let c = client(&relay).await;
    for (address, (value, revision)) in &expected {
        let p = c.get(address).await.expect("recovered");
        assert_eq!(
            (&p.value, p.revision),
            (&Value::Int(*value), *revision),
            "{address}"
        );
    }
    let (address, (_, revision)) = expected.iter().next().expect("written");
    assert_eq!(
        c.set(address, 1i64).await.expect("set"),
        revision + 1,
        "revisions keep growing"
    );
}

#[tokio::test]
async fn batch_journal_recovers_every_acknowledged_write_after_kill_9() {
    every_acknowledged_write_survives_kill_9(temp_dir("dur-batch"), &[]).await;
}

#[tokio::test]
async fn always_journal_recovers_every_acknowledged_write_after_kill_9() {
    every_acknowledged_write_survives_kill_9(temp_dir("dur-always"), &["--journal-sync", "always"])
        .await;
}

#[tokio::test]
async fn snapshots_alone_restore_values_and_revisions_after_a_clean_stop() {
    let dir = temp_dir("dur-persist");
    let state = dir.join("state.redb");
    let port = free_port();
    let mut relay = start_on(port, &["--persist", arg(&state)]);
    let c = client(&relay).await;
    c.set("/desk/fader/1", 0.25).await.expect("set");
    c.set("/desk/fader/1", 0.5).await.expect("set");
    c.set("/desk/name", "FOH").await.expect("set");
    c.close().await;
    relay
        .terminate(Duration::from_secs(10))
        .expect("exits on SIGTERM");
    let relay = start_on(port, &["--persist", arg(&state)]);
    let c = client(&relay).await;
    // A late joiner's snapshot holds the pre-restart values and revisions.
    let mut sub = c.subscribe("/desk/**").await.expect("subscribe");
    let mut seen = std::collections::BTreeMap::new();
    while let Some(u) = sub.next_within(Duration::from_secs(2)).await {
        seen.insert(u.address.to_string(), (u.value, u.revision));
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen["/desk/fader/1"], (Value::Float(0.5), Some(2)));
    assert_eq!(seen["/desk/name"], (Value::String("FOH".into()), Some(1)));
}

#[tokio::test]
async fn replay_honours_pattern_range_types_and_limit() {
    let dir = temp_dir("dur-replay");
    let journal = dir.join("journal.redb");
    let relay = Relay::start(&["--journal", arg(&journal)]);
    let c = client(&relay).await;
    for i in 1..=5i64 {
        c.set("/r/a", i).await.expect("set");
    }
    let middle = c.time();
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.emit("/r/ev", "bang").await.expect("emit");
    c.set("/other/x", 1i64).await.expect("set");
    c.ping().await.expect("ping");

    let all = c.replay("/r/**", None, None, None).await.expect("replay");
    let got: Vec<(String, Value)> = all
        .iter()
        .map(|u| (u.address.to_string(), u.value.clone()))
        .collect();
    let want: Vec<(String, Value)> = (1..=5)
        .map(|i| ("/r/a".to_string(), Value::Int(i)))
        .chain([("/r/ev".to_string(), Value::String("bang".into()))])
        .collect();
    assert_eq!(
        got, want,
        "in order, pattern applied, SETs and events as they were"
    );
    assert_eq!(
        all[4].revision,
        Some(5),
        "a replayed SET carries its revision"
    );

    let first_two = c.replay("/r/**", None, None, Some(2)).await.expect("limit");
    assert_eq!(
        first_two
            .iter()
            .map(|u| u.value.clone())
            .collect::<Vec<_>>(),
        [Value::Int(1), Value::Int(2)]
    );
    let later = c
        .replay("/**", Some(middle), None, None)
        .await
        .expect("from");
    assert_eq!(
        later
            .iter()
            .map(|u| u.address.to_string())
            .collect::<Vec<_>>(),
        ["/r/ev", "/other/x"]
    );
    let earlier = c.replay("/**", None, Some(middle), None).await.expect("to");
    assert_eq!(earlier.len(), 5, "up to the middle: the five SETs");
    let events = c
        .replay_types(
            "/**",
            None,
            None,
            None,
            TypeMask(SignalType::Event.mask_bit()),
        )
        .await
        .expect("types");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].signal, SignalType::Event);
    let none = c
        .replay("/nothing/**", None, None, None)
        .await
        .expect("empty");
    assert!(none.is_empty());
}

#[tokio::test]
async fn replay_only_returns_what_the_token_may_read() {
    let dir = temp_dir("dur-replay-auth");
    let journal = dir.join("journal.redb");
    let r = AuthRelay::start_in(dir.clone(), &["--journal", arg(&journal)]);
    let admin = connect(&r.relay.url(), &r.admin).await.expect("admin");
    admin.set("/pub/a", 1i64).await.expect("set");
    admin.set("/secret/b", 2i64).await.expect("set");
    let reader = connect(&r.relay.url(), &r.guest(&["read:/pub/**"]))
        .await
        .expect("guest");
    let got = reader
        .replay("/pub/**", None, None, None)
        .await
        .expect("allowed replay");
    assert_eq!(
        got.iter()
            .map(|u| u.address.to_string())
            .collect::<Vec<_>>(),
        ["/pub/a"]
    );
    match reader.replay("/**", None, None, None).await {
        Err(clasp::ClientError::Server { code: 301, .. }) => {}
        other => panic!("a replay wider than the read scope must get 301, got {other:?}"),
    }
}

#[tokio::test]
async fn retention_shrinks_the_journal_but_state_survives() {
    let dir = temp_dir("dur-retention");
    let journal = dir.join("journal.redb");
    let args = [
        "--journal",
        arg(&journal),
        "--journal-max-bytes",
        "2000",
        "--persist-interval",
        "1",
        "--journal-compact-every",
        "1",
    ];
    let port = free_port();
    let mut relay = start_on(port, &args);
    let c = client(&relay).await;
    for i in 0..300i64 {
        c.set(&format!("/ret/{}", i % 10), i).await.expect("set");
    }
    // A snapshot covers the writes within a second; retention runs every second after it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let kept = loop {
        let kept = c
            .replay("/**", None, None, None)
            .await
            .expect("replay")
            .len();
        if kept < 300 || std::time::Instant::now() > deadline {
            break kept;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        kept < 300,
        "retention dropped old entries (kept {kept} of 300)"
    );
    assert!(
        kept > 0,
        "it keeps the newest entries within the byte budget"
    );
    kill9(&mut relay);
    let relay = start_on(port, &args);
    let c = client(&relay).await;
    for k in 0..10i64 {
        let p = c.get(&format!("/ret/{k}")).await.expect("recovered");
        assert_eq!(p.value, Value::Int(290 + k), "newest value of /ret/{k}");
        assert_eq!(p.revision, 30, "revision of /ret/{k}");
    }
}

#[tokio::test]
async fn replay_without_a_journal_is_error_501() {
    let relay = Relay::start(&[]);
    let c = client(&relay).await;
    match c.replay("/**", None, None, None).await {
        Err(clasp::ClientError::Server { code: 501, .. }) => {}
        other => panic!("expected 501, got {other:?}"),
    }
}

#[test]
fn an_unreadable_journal_file_stops_the_relay_with_a_clear_error() {
    let dir = temp_dir("dur-bad");
    let bad = dir.join("not-a-db.redb");
    std::fs::write(
        &bad,
        b"this is not a redb file, but it is long enough to look like one......",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clasp"))
        .args([
            "relay",
            "--host",
            "127.0.0.1",
            "--ws-port",
            &free_port().to_string(),
            "--journal",
            arg(&bad),
        ])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must not start");
    assert!(err.contains("not-a-db.redb"), "names the file: {err}");
}

#[tokio::test]
async fn a_replay_larger_than_the_outbound_queue_arrives_whole() {
    let dir = temp_dir("dur-replay-big");
    let journal = dir.join("journal.redb");
    let relay = Relay::start(&["--journal", arg(&journal)]);
    let c = client(&relay).await;
    const N: i64 = 20_000; // about five times the 4096-frame outbound queue
    for i in 0..N {
        c.emit("/big/ev", i).await.expect("emit");
    }
    // Same namespace, so same shard and in order: its ACK means every event before it is in
    // the journal.
    c.set("/big/marker", 1i64)
        .await
        .expect("marker acknowledged");
    let got = c.replay("/big/ev", None, None, None).await.expect("replay");
    assert_eq!(
        got.len(),
        N as usize,
        "every entry, none shed, client not cut off"
    );
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, u)| u.value == Value::Int(i as i64)),
        "in order"
    );
    c.ping().await.expect("the session is still open");
}
