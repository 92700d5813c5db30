//! The sACN (E1.31) bridge against independent peers: the `sacn` PyPI library's sender,
//! receiver and packet class (`tests/bridges/artnet_sacn_peer.py`), values checked with the Rust
//! client. Unicast on free loopback ports; multicast in a network namespace the test
//! creates (loopback multicast needs a route the host should not be given).

mod common;
#[path = "common/dmx_ip.rs"]
mod dmx_ip;

use std::process::Command;
use std::time::{Duration, Instant};

use clasp::Client;
use clasp_proto::{SignalType, Value};
use common::Relay;
use dmx_ip::*;
use serde_json::json;

fn embedded(extra: &[&str]) -> (Relay, u16) {
    let port = udp_port();
    let p = port.to_string();
    let mut args = vec!["--sacn-port", p.as_str()];
    args.extend_from_slice(extra);
    (Relay::start(&args), port)
}

/// Raw data packets built by the sacn library's `DataPacket`.
fn raw(port: u16, specs: &[serde_json::Value]) {
    let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
    let mut args = vec!["sacn-raw".to_string(), port.to_string()];
    args.extend(specs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_peer(&args);
}

/// Sends packets of universe 16 until the bridge maps one under `ns`.
async fn wait_bridge(c: &Client, port: u16, ns: &str) {
    let probe = format!("{ns}/16/**");
    let mut sub = c.subscribe(&probe).await.expect("subscribes");
    let end = Instant::now() + Duration::from_secs(10);
    let mut seq = 0;
    while Instant::now() < end {
        seq += 1;
        raw(
            port,
            &[json!({"universe": 16, "levels": {"1": 1}, "sequence": seq, "cid": 99})],
        );
        if sub.next_within(Duration::from_millis(300)).await.is_some() {
            return;
        }
    }
    panic!("the sACN bridge on UDP {port} never mapped a packet to {probe}");
}

// ---- inbound -------------------------------------------------------------------------

#[test]
fn unicast_from_python_sacn_becomes_channel_params() {
    let (relay, port) = embedded(&[]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/sacn").await;
        let mut sub = c.subscribe("/sacn/1/**").await.expect("subscribes");
        let p = port.to_string();
        let _s = Peer::spawn(&[
            "sacn-send",
            &p,
            "1",
            r#"{"1": 255, "3": 77, "512": 2}"#,
            "2.5",
        ]);
        let first = collect(&mut sub, 512, WAIT).await;
        assert_eq!(
            first.len(),
            512,
            "one param per channel of the first packet"
        );
        let get = |n: u16| {
            first
                .iter()
                .find(|u| u.address.as_str() == format!("/sacn/1/{n}"))
                .map(|u| u.value.clone())
        };
        assert_eq!(get(1), Some(Value::Int(255)));
        assert_eq!(get(3), Some(Value::Int(77)));
        assert_eq!(get(512), Some(Value::Int(2)));
        assert_eq!(get(2), Some(Value::Int(0)));
        // The sender re-sends the same levels (keep-alive): nothing more is written.
        let more = collect(&mut sub, 1, Duration::from_millis(1500)).await;
        assert!(
            more.is_empty(),
            "unchanged levels were written again: {more:?}"
        );
    });
}

#[test]
fn the_highest_priority_wins_and_falls_back_on_termination_and_timeout() {
    let (relay, port) = embedded(&[]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/sacn").await;
        let p = port.to_string();
        let _low = Peer::spawn(&["sacn-send", &p, "2", r#"{"1": 255}"#, "14", "50", "low"]);
        wait_value(&c, "/sacn/2/1", &Value::Int(255)).await;

        // A higher priority wins even with a lower level; its stream-terminated packets
        // hand the universe back at once.
        let mut high = Peer::spawn(&[
            "sacn-send",
            &p,
            "2",
            r#"{"1": 10}"#,
            "1.5",
            "150",
            "high",
            "1",
        ]);
        wait_value(&c, "/sacn/2/1", &Value::Int(10)).await;
        assert!(
            high.finish(Duration::from_secs(10)),
            "the high-priority sender failed"
        );
        let stopped = Instant::now();
        wait_value(&c, "/sacn/2/1", &Value::Int(255)).await;
        assert!(
            stopped.elapsed() < Duration::from_secs(2),
            "termination, not the 2.5 s timeout, returned the universe"
        );

        // A higher-priority source that just goes silent is dropped after 2.5 s.
        let silent = Peer::spawn(&[
            "sacn-send",
            &p,
            "2",
            r#"{"1": 20}"#,
            "2.5",
            "150",
            "silent",
            "0",
        ]);
        wait_value(&c, "/sacn/2/1", &Value::Int(20)).await;
        // Its last packet went out at most 1 s before it says it stopped (the library
        // re-sends unchanged data once a second).
        let end = Instant::now() + Duration::from_secs(10);
        while silent
            .json_within(Duration::from_millis(100))
            .map(|l| l["stopped"].is_null())
            .unwrap_or(true)
        {
            assert!(Instant::now() < end, "the silent sender never stopped");
        }
        let quiet = Instant::now();
        let end = quiet + Duration::from_secs(6);
        loop {
            let v = tokio::time::timeout(Duration::from_millis(300), c.get("/sacn/2/1")).await;
            if matches!(v, Ok(Ok(ref p)) if p.value == Value::Int(255)) {
                break;
            }
            assert!(Instant::now() < end, "the silent source never timed out");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            quiet.elapsed() >= Duration::from_millis(1000),
            "dropped before the data-loss timeout: {:?}",
            quiet.elapsed()
        );
    });
}

#[test]
fn late_sequence_numbers_preview_and_other_start_codes_are_dropped() {
    let (relay, port) = embedded(&[]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/sacn").await;
        let mut sub = c.subscribe("/sacn/3/**").await.expect("subscribes");
        raw(
            port,
            &[
                json!({"universe": 3, "levels": {"1": 10}, "sequence": 10}),
                json!({"universe": 3, "levels": {"1": 9}, "sequence": 9}),
                json!({"universe": 3, "levels": {"1": 8}, "sequence": 11, "preview": true}),
                json!({"universe": 3, "levels": {"1": 7}, "sequence": 12, "start_code": 221}),
                json!({"universe": 3, "levels": {"1": 10, "2": 11}, "sequence": 13}),
            ],
        );
        let got = collect(&mut sub, 600, Duration::from_secs(2)).await;
        let ch1: Vec<&Value> = got
            .iter()
            .filter(|u| u.address.as_str() == "/sacn/3/1")
            .map(|u| &u.value)
            .collect();
        assert_eq!(
            ch1,
            vec![&Value::Int(10)],
            "channel 1 took a dropped packet"
        );
        assert!(got
            .iter()
            .any(|u| u.address.as_str() == "/sacn/3/2" && u.value == Value::Int(11)));
    });
}

#[test]
fn bad_packets_are_counted_and_never_fatal() {
    let (relay, port) = embedded(&[]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/sacn").await;
        let before = bridge_counter(relay.port, "sacn:/sacn", "bad_input");
        raw(
            port,
            &[
                json!({"universe": 5, "levels": {"1": 1}, "truncate": 60}),
                json!({"universe": 5, "levels": {"1": 1}, "truncate": 300}),
                json!({"universe": 5, "levels": {"1": 1}, "patch": {"4": 88}}),
                json!({"universe": 5, "levels": {"1": 1}, "patch": {"113": 0, "114": 0}}),
                json!({"universe": 5, "levels": {"1": 1}, "patch": {"113": 250, "114": 0}}),
                json!({"universe": 5, "levels": {"1": 1}, "patch": {"108": 201}}),
            ],
        );
        let end = Instant::now() + WAIT;
        while bridge_counter(relay.port, "sacn:/sacn", "bad_input") < before + 6 {
            assert!(Instant::now() < end, "bad packets not counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        raw(
            port,
            &[json!({"universe": 5, "levels": {"4": 44}, "sequence": 1})],
        );
        wait_value(&c, "/sacn/5/4", &Value::Int(44)).await;
        assert_eq!(
            bridge_counter(relay.port, "sacn:/sacn", "bad_input"),
            before + 6
        );
    });
}

#[test]
fn standalone_universe_mode_streams_whole_frames() {
    let relay = Relay::start(&[]);
    let bridge = Standalone::start(
        "sacn",
        &relay.url(),
        &["--mode", "universe", "--namespace", "/e131"],
    );
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        let mut sub = c.subscribe("/e131/**").await.expect("subscribes");
        let end = Instant::now() + Duration::from_secs(10);
        let mut seq = 0;
        let update = loop {
            assert!(
                Instant::now() < end,
                "no universe stream from the standalone bridge"
            );
            seq += 1;
            raw(
                bridge.port,
                &[json!({"universe": 7, "levels": {"2": 20}, "sequence": seq})],
            );
            if let Some(u) = sub.next_within(Duration::from_millis(300)).await {
                break u;
            }
        };
        assert_eq!(update.address.as_str(), "/e131/7");
        assert_eq!(update.signal, SignalType::Stream);
        let mut want = vec![0u8; 512];
        want[1] = 20;
        assert_eq!(update.value, Value::Bytes(want));
    });
}

// ---- outbound ------------------------------------------------------------------------

#[test]
fn clasp_writes_go_out_with_priority_name_and_cid_kept_alive_then_terminated() {
    let out = udp_port();
    let listener = Peer::listening(&["sacn-listen", &out.to_string(), "12", "4"]);
    let dest = format!("127.0.0.1:{out}");
    let (mut relay, _port) = embedded(&["--sacn-dest", &dest]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        c.set("/sacn/4/5", 50).await.expect("set");
        c.set("/sacn/4/6", 300).await.expect("set"); // not a level: not sent
    });
    let mut first = None;
    let end = Instant::now() + WAIT;
    while first.is_none() {
        let line = listener.json();
        if line.get("priority").is_some() && levels(&line) == vec![(5, 50)] {
            first = Some(line);
        }
        assert!(Instant::now() < end, "the receiver never saw channel 5");
    }
    let first = first.expect("a data packet");
    assert_eq!(first["priority"], 100);
    assert_eq!(first["name"], "clasp-sacn");
    assert_eq!(first["cid"].as_str().map(str::len), Some(32));
    // Idle for longer than the receiver's 2.5 s data-loss timeout: keep-alive packets hold it.
    let idle = listener.all(Duration::from_secs(4));
    assert!(
        !idle.iter().any(|l| l["available"] == "timeout"),
        "the receiver timed the universe out while we were idle: {idle:?}"
    );
    // Shutdown sends stream-terminated packets: the receiver drops the universe at once.
    assert!(
        relay.terminate(Duration::from_secs(10)).is_some(),
        "relay did not stop"
    );
    let stopped = Instant::now();
    let end = stopped + Duration::from_secs(5);
    loop {
        let line = listener
            .json_within(end.saturating_duration_since(Instant::now()))
            .expect("the receiver saw the stream end");
        if line["available"] == "timeout" {
            break;
        }
    }
    assert!(
        stopped.elapsed() < Duration::from_millis(2000),
        "ended by the data-loss timeout, not by stream termination: {:?}",
        stopped.elapsed()
    );
}

#[test]
fn standalone_normalized_levels_map_both_ways() {
    let relay = Relay::start(&[]);
    let out = udp_port();
    let listener = Peer::listening(&["sacn-listen", &out.to_string(), "10", "9"]);
    let dest = format!("127.0.0.1:{out}");
    let bridge = Standalone::start(
        "sacn",
        &relay.url(),
        &[
            "--normalize",
            "--dest",
            &dest,
            "--priority",
            "120",
            "--source-name",
            "desk",
        ],
    );
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        let mut sub = c.subscribe("/sacn/8/1").await.expect("subscribes");
        let end = Instant::now() + Duration::from_secs(10);
        let mut seq = 0;
        let update = loop {
            assert!(Instant::now() < end, "no value from the standalone bridge");
            seq += 1;
            raw(
                bridge.port,
                &[json!({"universe": 8, "levels": {"1": 51}, "sequence": seq})],
            );
            if let Some(u) = sub.next_within(Duration::from_millis(300)).await {
                break u;
            }
        };
        assert_eq!(update.value, Value::Float(0.2));
        c.set("/sacn/9/3", 0.5).await.expect("set");
        c.set("/sacn/9/4", 1.0).await.expect("set");
    });
    let end = Instant::now() + WAIT;
    loop {
        let line = listener.json();
        if levels(&line) == vec![(3, 128), (4, 255)] {
            assert_eq!(
                (line["priority"].as_u64(), line["name"].as_str()),
                (Some(120), Some("desk"))
            );
            break;
        }
        assert!(
            Instant::now() < end,
            "the receiver never saw both channels (last {line})"
        );
    }
}

// ---- multicast -----------------------------------------------------------------------

/// A network namespace with multicast routed over its loopback; deleted on drop (which
/// also ends what runs in it).
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("clasp-sacn-{}", std::process::id());
        let ip = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("runs ip");
            assert!(status.success(), "ip {args:?} failed (the test needs root)");
        };
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        let ns = Netns(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ip(&["-n", &ns.0, "link", "set", "lo", "multicast", "on"]);
        ip(&["-n", &ns.0, "route", "add", "239.0.0.0/8", "dev", "lo"]);
        ns
    }

    /// `ip netns exec <ns> <program> <args>`.
    fn exec(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]).args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A process in the namespace, killed on drop.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn clasp_in(ns: &Netns, url: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec!["--url", url, "--timeout", "1"];
    all.extend_from_slice(args);
    let o = common::run_with_timeout(
        ns.exec(env!("CARGO_BIN_EXE_clasp"), &all),
        Duration::from_secs(10),
        "clasp",
    );
    (o.status.is_some_and(|s| s.success()), o.stdout)
}

#[test]
fn multicast_groups_are_joined_and_sent_to_in_a_network_namespace() {
    let ns = Netns::create();
    let ws = common::free_port().to_string();
    let url = format!("ws://127.0.0.1:{ws}");
    let relay = ns
        .exec(
            env!("CARGO_BIN_EXE_clasp"),
            &[
                "relay",
                "--host",
                "0.0.0.0",
                "--ws-port",
                &ws,
                "--log-level",
                "warn",
            ],
        )
        .args(["--sacn-port", "5568", "--sacn-universes", "1-4"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("relay starts in the namespace");
    let _relay = Running(relay);
    let end = Instant::now() + Duration::from_secs(10);
    while !clasp_in(&ns, &url, &["ping"]).0 {
        assert!(
            Instant::now() < end,
            "the relay in the namespace never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bridges/artnet_sacn_peer.py");
    let script = script.to_str().expect("utf-8 path");

    // Inbound: python sends universe 1 to 239.255.0.1; the bridge joined that group.
    let sender = ns
        .exec(
            "python3",
            &[
                script,
                "sacn-send-mcast",
                "1",
                r#"{"1": 255, "2": 128}"#,
                "3",
            ],
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sender starts");
    let _sender = Running(sender);
    let end = Instant::now() + WAIT;
    loop {
        let (_, out) = clasp_in(&ns, &url, &["get", "/sacn/1/2"]);
        if out.starts_with("/sacn/1/2 = 128 ") {
            break;
        }
        assert!(
            Instant::now() < end,
            "multicast universe 1 never arrived (last {out:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Outbound: with no --sacn-dest a CLASP write goes to universe 2's group.
    let listener = ns
        .exec("python3", &[script, "sacn-listen-mcast", "8", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("receiver starts");
    let mut listener = Running(listener);
    let stdout = listener.0.stdout.take().expect("piped");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // It may hear universe 1 first: the host joined that group, and Linux delivers a
    // group's packets to every socket bound to the port.
    let end = Instant::now() + WAIT;
    while !lines
        .recv_timeout(end.saturating_duration_since(Instant::now()))
        .expect("receiver ready")
        .contains("ready")
    {}
    assert!(
        clasp_in(&ns, &url, &["set", "/sacn/2/7", "70"]).0,
        "clasp set"
    );
    let end = Instant::now() + WAIT;
    loop {
        let line = lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
            .expect("the multicast receiver saw our packet");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        if levels(&v) == vec![(7, 70)] {
            assert_eq!(v["name"], "clasp-sacn");
            break;
        }
    }
}
