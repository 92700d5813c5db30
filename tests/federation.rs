//! Federation end to end: real relay processes (a hub and leaves) on loopback, the official
//! JS client and the Rust client on different sites (FEATURES FE-1..7, issue 9).

mod common;

use std::time::{Duration, Instant};

use clasp::Client;
use clasp_proto::Value;
use common::*;
use serde_json::Value as Json;

/// Everything a test waits for is bounded by this.
const WITHIN: Duration = Duration::from_secs(15);

fn hub(extra: &[&str]) -> Relay {
    let mut args = vec!["--name", "hub", "--federation-id", "hub"];
    args.extend_from_slice(extra);
    Relay::start(&args)
}

fn leaf(id: &str, namespace: &str, hubs: &[&Relay], extra: &[&str]) -> Relay {
    let urls: Vec<String> = hubs.iter().map(|h| h.url()).collect();
    let mut args: Vec<&str> = vec!["--federation-id", id, "--federation-namespace", namespace];
    for u in &urls {
        args.extend_from_slice(&["--federation-hub", u]);
    }
    args.extend_from_slice(extra);
    Relay::start(&args)
}

fn health(relay: &Relay) -> Json {
    ureq::get(&format!("http://127.0.0.1:{}/health", relay.port))
        .timeout(Duration::from_secs(2))
        .call()
        .ok()
        .and_then(|r| r.into_json().ok())
        .unwrap_or(Json::Null)
}

/// The relay's federation links as /health shows them.
fn links(relay: &Relay) -> Vec<Json> {
    health(relay)["federation"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until `relay` has `n` links in state `up`.
fn wait_up(relay: &Relay, n: usize) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let l = links(relay);
        if l.iter().filter(|l| l["state"] == "up").count() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "relay on {} did not get {n} federation links up: {l:#?}",
            relay.port
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn connect(relay: &Relay) -> Client {
    Client::builder(relay.url())
        .name("fed-test")
        .connect()
        .await
        .expect("connects")
}

/// Polls `GET address` on `client` until it equals `want`.
async fn eventually(client: &Client, address: &str, want: Value) -> u64 {
    let deadline = Instant::now() + WITHIN;
    loop {
        if let Ok(p) = client.get(address).await {
            if p.value == want {
                return p.revision;
            }
        }
        assert!(Instant::now() < deadline, "{address} never became {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn code_of<T: std::fmt::Debug>(r: Result<T, clasp::ClientError>) -> u16 {
    match r {
        Err(clasp::ClientError::Server { code, .. }) => code,
        other => panic!("expected an ERROR from the relay, got {other:?}"),
    }
}

#[test]
fn official_js_clients_on_two_sites_share_one_address_space() {
    require_js_client();
    let h = hub(&[]);
    let a = leaf("site-a", "/site-a/**", &[&h], &[]);
    let b = leaf("site-b", "/site-b/**", &[&h], &[]);
    wait_up(&a, 1);
    wait_up(&b, 1);
    let mut cmd = node();
    cmd.arg(conformance_dir().join("js/federation.mjs"))
        .arg(a.url())
        .arg(b.url());
    run_ok(cmd, Duration::from_secs(60), "node js/federation.mjs");
}

#[test]
fn rust_clients_read_write_and_subscribe_across_sites() {
    let h = hub(&[]);
    let a = leaf("site-a", "/site-a/**", &[&h], &[]);
    let b = leaf("site-b", "/site-b/**", &[&h], &[]);
    wait_up(&a, 1);
    wait_up(&b, 1);
    rt().block_on(async {
        let ca = connect(&a).await;
        let cb = connect(&b).await;
        let ch = connect(&h).await;
        let mut sub = cb.subscribe("/site-a/**").await.expect("subscribes");
        let rev = ca.set("/site-a/level", 0.5).await.expect("owner write");
        assert_eq!(rev, 1);
        let got = sub.next_within(WITHIN).await.expect("live update on B");
        assert_eq!(got.address.as_str(), "/site-a/level");
        assert_eq!(got.value, Value::Float(0.5));
        assert_eq!(
            got.revision,
            Some(1),
            "the owner's revision crosses the federation"
        );
        assert_eq!(
            eventually(&ch, "/site-a/level", Value::Float(0.5)).await,
            1,
            "the hub mirrors it"
        );

        // A write on B into A's namespace is acknowledged with A's revision, once A has it.
        let rev = cb
            .set("/site-a/level", 0.75)
            .await
            .expect("forwarded write");
        assert_eq!(rev, 2, "revision assigned by the owner");
        let owner = ca.get("/site-a/level").await.expect("owner reads");
        assert_eq!((owner.value, owner.revision), (Value::Float(0.75), 2));
        let mirrored = cb
            .get("/site-a/level")
            .await
            .expect("B reads its own write back");
        assert_eq!(
            (mirrored.value, mirrored.revision),
            (Value::Float(0.75), 2),
            "read-your-writes"
        );

        // Events cross sites; a hub client writing a site's namespace is forwarded too.
        let mut events = ca.subscribe("/site-b/**").await.expect("subscribes");
        cb.emit("/site-b/cue", 3).await.expect("emits");
        let e = events.next_within(WITHIN).await.expect("event from B on A");
        assert_eq!(
            (e.address.as_str(), e.value.clone()),
            ("/site-b/cue", Value::Int(3))
        );
        ch.set("/site-b/from-hub", "x")
            .await
            .expect("hub client writes B's namespace");
        eventually(&cb, "/site-b/from-hub", Value::from("x")).await;

        // Addresses nobody declared stay local to each relay.
        ca.set("/local/only", 1).await.expect("local write");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(cb.get("/local/only").await.is_err(), "not federated");
    });
}

#[test]
fn a_change_crosses_each_link_once_and_never_returns_to_its_origin() {
    let h = hub(&[]);
    let a = leaf("site-a", "/site-a/**", &[&h], &[]);
    let b = leaf("site-b", "/site-b/**", &[&h], &[]);
    wait_up(&a, 1);
    wait_up(&b, 1);
    let counts = |r: &Relay| -> (u64, u64) {
        links(r).iter().fold((0, 0), |(s, rc), l| {
            (
                s + l["sent"].as_u64().unwrap_or(0),
                rc + l["received"].as_u64().unwrap_or(0),
            )
        })
    };
    let (a0, b0, h0) = (counts(&a), counts(&b), counts(&h));
    rt().block_on(async {
        let ca = connect(&a).await;
        let cb = connect(&b).await;
        ca.set("/site-a/once", 1).await.expect("writes");
        ca.emit("/site-a/ping", 1).await.expect("emits");
        eventually(&cb, "/site-a/once", Value::Int(1)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let (a1, b1, h1) = (counts(&a), counts(&b), counts(&h));
    assert_eq!(a1.0 - a0.0, 2, "A sent the SET and the event once");
    assert_eq!(a1.1 - a0.1, 0, "nothing came back to A");
    assert_eq!(h1.1 - h0.1, 2, "the hub received each once");
    assert_eq!(h1.0 - h0.0, 2, "the hub sent each once (to B only)");
    assert_eq!(b1.1 - b0.1, 2, "B received each once");
}

#[test]
fn ownership_errors_come_back_with_their_codes_and_a_lost_owner_gives_502() {
    let h = hub(&[]);
    let a = leaf(
        "site-a",
        "/site-a/**",
        &[&h],
        &["--federation-timeout", "800"],
    );
    let b = leaf(
        "site-b",
        "/site-b/**",
        &[&h],
        &["--federation-timeout", "800"],
    );
    wait_up(&a, 1);
    wait_up(&b, 1);
    let pid = a.child.id().to_string();
    rt().block_on(async {
        let ca = connect(&a).await;
        let cb = connect(&b).await;
        // A lock held on A refuses B's write with A's code (401, LockHeld).
        ca.set_with(
            "/site-a/locked",
            1,
            clasp::SetOptions {
                lock: true,
                ..Default::default()
            },
        )
        .await
        .expect("locks");
        eventually(&cb, "/site-a/locked", Value::Int(1)).await;
        assert_eq!(code_of(cb.set("/site-a/locked", 2).await), 401);
        // An expected revision that is not the owner's: 400 from the owner.
        ca.set("/site-a/rev", 0).await.expect("owner write");
        let stale = clasp::SetOptions {
            revision: Some(99),
            ..Default::default()
        };
        assert_eq!(code_of(cb.set_with("/site-a/rev", 1, stale).await), 400);
        // A bundle cannot span routers.
        let bundle = cb
            .bundle(vec![clasp::BundleItem::Set("/site-a/b".into(), 1.into())])
            .await;
        assert_eq!(code_of(bundle), 400);

        // The owner stops answering (SIGSTOP): the forwarded write times out with 502.
        assert!(std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .expect("kill")
            .success());
        let started = Instant::now();
        assert_eq!(code_of(cb.set("/site-a/x", 1).await), 502);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "answered after the 800 ms timeout"
        );
        assert!(std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .expect("kill")
            .success());
    });
    drop(a);
    // The owner is gone: writes to its namespace are refused at once with 502.
    rt().block_on(async {
        let cb = connect(&b).await;
        let deadline = Instant::now() + WITHIN;
        loop {
            let r = cb.set("/site-a/y", 1).await;
            let code = code_of(r);
            assert_eq!(code, 502);
            if links(&h).iter().all(|l| l["peer"] != "site-a") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the hub never noticed site-a left"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(code_of(cb.set("/site-a/z", 1).await), 502);
    });
}

#[test]
fn an_overlapping_namespace_is_refused_with_a_clear_error() {
    let h = hub(&[]);
    let a = leaf("site-a", "/site-a/**", &[&h], &[]);
    wait_up(&a, 1);
    let c = leaf("site-c", "/site-a/lights/*", &[&h], &[]);
    let deadline = Instant::now() + WITHIN;
    loop {
        let l = links(&c);
        let err = l
            .first()
            .and_then(|l| l["last_error"].as_str())
            .unwrap_or("")
            .to_string();
        if err.contains("overlaps '/site-a/**' owned by 'site-a'") {
            break;
        }
        assert!(Instant::now() < deadline, "no refusal seen: {l:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The refused leaf is not part of the federation; the hub still serves site-a.
    assert!(links(&h)
        .iter()
        .all(|l| l["peer"] != "site-c" || l["state"] != "up"));
    wait_up(&a, 1);
}

#[test]
fn a_chain_of_relays_forwards_both_ways() {
    // top <- mid <- leaf: mid is a leaf of top and the hub of leaf.
    let top = Relay::start(&[
        "--federation-id",
        "top",
        "--federation-namespace",
        "/top/**",
    ]);
    let mid = leaf("mid", "/mid/**", &[&top], &[]);
    let low = leaf("low", "/low/**", &[&mid], &[]);
    wait_up(&low, 1);
    wait_up(&mid, 2);
    rt().block_on(async {
        let ct = connect(&top).await;
        let cl = connect(&low).await;
        cl.set("/low/v", 1).await.expect("owner write");
        eventually(&ct, "/low/v", Value::Int(1)).await;
        assert_eq!(ct.set("/low/v", 2).await.expect("forwarded two hops"), 2);
        assert_eq!(cl.get("/low/v").await.expect("reads").value, Value::Int(2));
        ct.set("/top/t", 5).await.expect("top's own");
        eventually(&cl, "/top/t", Value::Int(5)).await;
        assert_eq!(cl.set("/top/t", 6).await.expect("forwarded up two hops"), 2);
        eventually(&ct, "/top/t", Value::Int(6)).await;
    });
}

#[test]
fn a_shared_federation_token_is_required_from_leaves() {
    let dir = auth::temp_dir("fed-token");
    let good = dir.join("good");
    let bad = dir.join("bad");
    std::fs::write(&good, "s3cret-federation\n").expect("writes");
    std::fs::write(&bad, "wrong").expect("writes");
    let (g, b) = (
        good.to_string_lossy().to_string(),
        bad.to_string_lossy().to_string(),
    );
    let h = hub(&["--federation-token", &g]);
    let ok = leaf("site-a", "/site-a/**", &[&h], &["--federation-token", &g]);
    let refused = leaf("site-b", "/site-b/**", &[&h], &["--federation-token", &b]);
    wait_up(&ok, 1);
    let deadline = Instant::now() + WITHIN;
    loop {
        let l = links(&refused);
        let err = l
            .first()
            .and_then(|l| l["last_error"].as_str())
            .unwrap_or("")
            .to_string();
        if err.contains("wrong federation token") || err.contains("authentication failed") {
            break;
        }
        assert!(Instant::now() < deadline, "no refusal seen: {l:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(links(&h).iter().all(|l| l["peer"] != "site-b"));
}

#[test]
fn a_leaf_fails_over_to_its_second_hub() {
    let h1 = hub(&[]);
    let h2 = Relay::start(&["--federation-id", "hub-2"]);
    let a = leaf("site-a", "/site-a/**", &[&h1, &h2], &[]);
    let b = leaf("site-b", "/site-b/**", &[&h1, &h2], &[]);
    wait_up(&a, 1);
    wait_up(&b, 1);
    drop(h1);
    let deadline = Instant::now() + WITHIN;
    loop {
        let on_second = |r: &Relay| {
            links(r)
                .iter()
                .any(|l| l["state"] == "up" && l["url"].as_str() == Some(h2.url().as_str()))
        };
        if on_second(&a) && on_second(&b) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leaves did not move to the second hub: {:#?}",
            links(&a)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    rt().block_on(async {
        let ca = connect(&a).await;
        let cb = connect(&b).await;
        ca.set("/site-a/after-failover", true)
            .await
            .expect("writes");
        eventually(&cb, "/site-a/after-failover", Value::Bool(true)).await;
        assert_eq!(
            cb.set("/site-a/after-failover", false)
                .await
                .expect("forwarded"),
            2
        );
    });
}

#[test]
fn a_restarted_leaf_with_persistence_resyncs_both_ways() {
    let dir = auth::temp_dir("fed-persist");
    let state = dir.join("a.redb");
    let s = state.to_string_lossy().to_string();
    let h = hub(&[]);
    let b = leaf("site-b", "/site-b/**", &[&h], &[]);
    let persist = ["--journal", s.as_str()];
    let a = leaf("site-a", "/site-a/**", &[&h], &persist);
    wait_up(&a, 1);
    wait_up(&b, 1);
    rt().block_on(async {
        let ca = connect(&a).await;
        for i in 1..=3 {
            ca.set("/site-a/kept", i).await.expect("durable write");
        }
    });
    // SIGKILL: nothing is flushed on the way out.
    let mut a = a;
    let _ = a.child.kill();
    let _ = a.child.wait();
    rt().block_on(async {
        let cb = connect(&b).await;
        cb.set("/site-b/while-a-was-down", "news")
            .await
            .expect("B writes");
    });
    // Same id, same file, new port.
    let a = leaf("site-a", "/site-a/**", &[&h], &persist);
    wait_up(&a, 1);
    rt().block_on(async {
        let ca = connect(&a).await;
        let cb = connect(&b).await;
        eventually(&ca, "/site-b/while-a-was-down", Value::from("news")).await;
        let p = ca.get("/site-a/kept").await.expect("restored");
        assert_eq!((p.value, p.revision), (Value::Int(3), 3));
        assert_eq!(cb.get("/site-a/kept").await.expect("mirrored").revision, 3);
        assert_eq!(
            ca.set("/site-a/kept", 4)
                .await
                .expect("revisions keep growing"),
            4
        );
        eventually(&cb, "/site-a/kept", Value::Int(4)).await;
    });
}
