//! The OSC bridge against real OSC peers: `oscsend`/`oscdump` (liblo-tools) and python-osc
//! (`tests/bridges/osc_peer.py`), with values checked exactly by the Rust client and the
//! official JS client. Embedded (`clasp relay --osc-port`) and standalone (`clasp osc
//! --target ws://...`), UDP and TCP (SLIP).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clasp::{Client, RelayConfig, Update};
use clasp_bridges::osc::{OscBridge, OscConfig};
use clasp_bridges::{BridgeStats, LinkSource};
use clasp_proto::Value;
use common::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

// ---- harness -------------------------------------------------------------------------

/// A UDP port that was free a moment ago.
fn udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    s.local_addr().expect("local addr").port()
}

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bridges/osc_peer.py")
}

/// `python3 tests/bridges/osc_peer.py <args>`.
fn peer(args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg(peer_script()).args(args);
    c
}

/// Runs a short peer command to completion; its stdout.
fn run_peer(args: &[&str]) -> String {
    let o = run_with_timeout(peer(args), Duration::from_secs(20), "osc_peer.py");
    assert!(
        o.status.is_some_and(|s| s.success()),
        "osc_peer.py {args:?} failed:\n{}\n{}",
        o.stdout,
        o.stderr
    );
    o.stdout
}

/// A running process whose stdout lines are collected; killed when dropped.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    what: String,
}

impl Proc {
    fn spawn(cmd: Command, what: &str) -> Proc {
        Self::spawn_reading(cmd, what, false)
    }

    /// Like [`Proc::spawn`], collecting stderr instead of stdout.
    fn spawn_stderr(cmd: Command, what: &str) -> Proc {
        Self::spawn_reading(cmd, what, true)
    }

    /// Starts `cmd` and forwards the lines of its stdout (or stderr) to a channel.
    fn spawn_reading(mut cmd: Command, what: &str, stderr: bool) -> Proc {
        let (out, err) = if stderr {
            (Stdio::null(), Stdio::piped())
        } else {
            (Stdio::piped(), Stdio::inherit())
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        let (tx, lines) = mpsc::channel();
        let reader: Box<dyn std::io::Read + Send> = if stderr {
            Box::new(child.stderr.take().expect("piped stderr"))
        } else {
            Box::new(child.stdout.take().expect("piped stdout"))
        };
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            what: what.to_string(),
        }
    }

    /// The next line within `within`.
    fn line(&self, within: Duration) -> Option<String> {
        self.lines.recv_timeout(within).ok()
    }

    /// The next line, as JSON; panics after [`WAIT`].
    fn json(&self) -> serde_json::Value {
        let line = self
            .line(WAIT)
            .unwrap_or_else(|| panic!("{}: no output within {WAIT:?}", self.what));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{}: {line:?}: {e}", self.what))
    }

    /// Every line until the process exits (at most `within`).
    fn rest(&mut self, within: Duration) -> Vec<String> {
        let end = Instant::now() + within;
        let mut out = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => out.push(l),
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `oscdump -L <port>`: prints `<timetag> <path> <types> <values...>` per message.
fn oscdump(port: u16) -> Proc {
    let mut c = Command::new("oscdump");
    c.args(["-L", &port.to_string()]);
    let p = Proc::spawn(c, "oscdump");
    std::thread::sleep(Duration::from_millis(300));
    p
}

/// (path, types, values) of an oscdump line.
fn dumped(line: &str) -> (String, String, String) {
    let mut parts = line.splitn(4, ' ');
    let _time = parts.next();
    let path = parts.next().unwrap_or_default().to_string();
    let types = parts.next().unwrap_or_default().to_string();
    let values = parts.next().unwrap_or_default().to_string();
    (path, types, values)
}

/// `clasp osc ... --target <url>` (standalone).
fn standalone(url: &str, args: &[&str]) -> Proc {
    let mut c = Command::new(env!("CARGO_BIN_EXE_clasp"));
    c.args(["osc", "--bind", "127.0.0.1", "--target", url])
        .args(args);
    Proc::spawn(c, "clasp osc")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn client(url: &str) -> Client {
    Client::builder(url)
        .name("osc-test")
        .connect()
        .await
        .expect("the Rust client connects")
}

/// A minimal OSC message by hand (address, type tags, argument bytes), for raw cases.
fn osc_bytes(address: &str, tags: &str, args: &[u8]) -> Vec<u8> {
    let pad = |s: &str| {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    };
    [pad(address), pad(tags), args.to_vec()].concat()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends probe messages to the bridge on `port` until `ns`/_probe shows up: the bridge is
/// bound and mapped (it starts a moment after the relay's WebSocket port).
async fn wait_bridge(c: &Client, port: u16, ns: &str) {
    let probe = format!("{ns}/_probe");
    let mut sub = c.subscribe(&probe).await.expect("subscribes");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let _ = sock.send_to(&osc_bytes("/_probe", ",", &[]), ("127.0.0.1", port));
        if sub.next_within(Duration::from_millis(200)).await.is_some() {
            return;
        }
    }
    panic!("the OSC bridge on UDP {port} never mapped a probe to {probe}");
}

/// Collects updates until `n` arrived or `within` passed.
async fn collect(sub: &mut clasp::Subscription, n: usize, within: Duration) -> Vec<Update> {
    let end = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout_at(end, sub.next()).await {
            Ok(Some(u)) => got.push(u),
            _ => break,
        }
    }
    got
}

fn embedded(extra: &[&str]) -> (Relay, u16) {
    let port = udp_port();
    let p = port.to_string();
    let mut args = vec!["--osc-port", p.as_str()];
    args.extend_from_slice(extra);
    (Relay::start(&args), port)
}

// ---- inbound -------------------------------------------------------------------------

#[test]
fn every_type_tag_from_real_peers_maps_exactly() {
    let (relay, port) = embedded(&[]);
    let p = port.to_string();
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/osc").await;
        let mut sub = c.subscribe("/osc/t/**").await.expect("subscribes");

        // python-osc: every tag it can write, one message each, plus several arguments.
        let from_python = json!([
            ["/t/f", [["f", 0.1]]],
            ["/t/f_half", [["f", 0.5]]],
            ["/t/d", [["d", 0.1]]],
            ["/t/d_big", [["d", 1e300]]],
            ["/t/i", [["i", -5]]],
            ["/t/i_max", [["i", 2147483647]]],
            ["/t/h", [["h", 1_099_511_627_776_i64]]],
            ["/t/h_min", [["h", i64::MIN]]],
            ["/t/s", [["s", "héllo wörld"]]],
            ["/t/b", [["b", "00ff10"]]],
            ["/t/true", [["T"]]],
            ["/t/false", [["F"]]],
            ["/t/nil", [["N"]]],
            ["/t/r", [["r", 0xff00_8040_u32]]],
            ["/t/m", [["m", [0, 144, 60, 100]]]],
            ["/t/multi", [["i", 255], ["f", 2.5], ["s", "x"], ["T"]]],
            ["/t/none", []]
        ]);
        run_peer(&["send", &p, &from_python.to_string()]);
        // liblo: Infinitum and char, and several arguments.
        for args in [
            vec!["/t/inf", "I"],
            vec!["/t/c", "c", "a"],
            vec!["/t/liblo", "ifs", "7", "0.25", "hi"],
            vec!["/t/color", "iii", "255", "0", "128"],
        ] {
            let mut cmd = Command::new("oscsend");
            cmd.args(["127.0.0.1", &p]).args(&args);
            run_ok(cmd, Duration::from_secs(10), "oscsend");
        }
        // A timetag argument (neither python-osc nor oscsend writes one): µs since 1970.
        let us: u64 = 1_700_000_000_250_000;
        let secs = (us / 1_000_000 + 2_208_988_800) as u32;
        let frac = (((us % 1_000_000) << 32) / 1_000_000) as u32;
        let t = osc_bytes(
            "/t/t",
            ",t",
            &[secs.to_be_bytes(), frac.to_be_bytes()].concat(),
        );
        run_peer(&["raw", &p, &hex(&t)]);

        let want: Vec<(&str, Value)> = vec![
            ("/osc/t/f", Value::Float(0.1)),
            ("/osc/t/f_half", Value::Float(0.5)),
            ("/osc/t/d", Value::Float(0.1)),
            ("/osc/t/d_big", Value::Float(1e300)),
            ("/osc/t/i", Value::Int(-5)),
            ("/osc/t/i_max", Value::Int(2_147_483_647)),
            ("/osc/t/h", Value::Int(1 << 40)),
            ("/osc/t/h_min", Value::Int(i64::MIN)),
            ("/osc/t/s", Value::String("héllo wörld".into())),
            ("/osc/t/b", Value::Bytes(vec![0, 255, 16])),
            ("/osc/t/true", Value::Bool(true)),
            ("/osc/t/false", Value::Bool(false)),
            ("/osc/t/nil", Value::Null),
            (
                "/osc/t/r",
                Value::Array(vec![255.into(), 0.into(), 128.into(), 64.into()]),
            ),
            (
                "/osc/t/m",
                Value::Array(vec![0.into(), 144.into(), 60.into(), 100.into()]),
            ),
            (
                "/osc/t/multi",
                Value::Array(vec![255.into(), 2.5.into(), "x".into(), true.into()]),
            ),
            ("/osc/t/none", Value::Null),
            ("/osc/t/inf", Value::Float(f64::INFINITY)),
            ("/osc/t/c", Value::String("a".into())),
            (
                "/osc/t/liblo",
                Value::Array(vec![7.into(), 0.25.into(), "hi".into()]),
            ),
            (
                "/osc/t/color",
                Value::Array(vec![255.into(), 0.into(), 128.into()]),
            ),
            ("/osc/t/t", Value::Int(us as i64)),
        ];
        let got = collect(&mut sub, want.len(), WAIT).await;
        let got: HashMap<String, Value> = got
            .into_iter()
            .map(|u| (u.address.to_string(), u.value))
            .collect();
        for (address, value) in &want {
            assert_eq!(got.get(*address), Some(value), "{address} (all: {got:?})");
        }
        // Stored as params: a client that never subscribed reads the same values.
        let late = client(&relay.url()).await;
        for (address, value) in &want {
            let param = late.get(address).await.expect("the param exists");
            assert_eq!(&param.value, value, "GET {address}");
            assert!(param.writer.is_some(), "{address} has a writer");
        }
    });
}

#[test]
fn bundles_run_together_at_their_timetag() {
    let (relay, port) = embedded(&[]);
    bundles_at_timetag(&relay.url(), port, 0.005);
}

#[test]
fn bundles_run_at_their_timetag_through_a_standalone_bridge() {
    let relay = Relay::start(&[]);
    let port = udp_port();
    let _bridge = standalone(&relay.url(), &["--listen", &port.to_string()]);
    // The timetag is converted to the relay's clock through the client's clock sync: an
    // estimate, a few ms off on a loaded machine.
    bundles_at_timetag(&relay.url(), port, 0.03);
}

/// A bundle 1 s ahead arrives whole, not more than `early` s before its timetag; an
/// "immediately" bundle with a nested one arrives at once, flattened.
fn bundles_at_timetag(url: &str, port: u16, early: f64) {
    let p = port.to_string();
    runtime().block_on(async {
        let c = client(url).await;
        wait_bridge(&c, port, "/osc").await;
        let mut sub = c.subscribe("/osc/sched/**").await.expect("subscribes");

        let messages = json!([["/sched/one", [["f", 0.25]]], ["/sched/two", [["i", 2]]]]);
        let out = run_peer(&["bundle", &p, "1.0", &messages.to_string()]);
        let at: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
        let at = at["at"].as_f64().expect("at");
        let now = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_secs_f64()
        };
        let mut got = Vec::new();
        for _ in 0..2 {
            let u = sub
                .next_within(Duration::from_secs(4))
                .await
                .expect("a bundle value");
            got.push((u.address.to_string(), u.value, now()));
        }
        assert_eq!(got[0].0, "/osc/sched/one");
        assert_eq!(got[0].1, Value::Float(0.25));
        assert_eq!(got[1].0, "/osc/sched/two");
        assert_eq!(got[1].1, Value::Int(2));
        // Not before the timetag (the relay's bundle timer is precise to a millisecond),
        // and together.
        assert!(
            got[0].2 >= at - early,
            "the bundle ran {:.3} s before its timetag",
            at - got[0].2
        );
        assert!(
            got[0].2 < at + 1.0,
            "the bundle ran {:.3} s late",
            got[0].2 - at
        );
        assert!(
            got[1].2 - got[0].2 < 0.2,
            "the values arrived {:.3} s apart",
            got[1].2 - got[0].2
        );

        // "Immediately" (timetag 1), nested bundles flattened: all four at once.
        let messages = json!([
            ["/sched/a", [["i", 1]]],
            ["/sched/b", [["i", 2]]],
            ["/sched/c", [["i", 3]]],
            ["/sched/d", [["i", 4]]]
        ]);
        let out = run_peer(&["bundle", &p, "-1", &messages.to_string(), "--nested"]);
        let at: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
        let sent = at["at"].as_f64().expect("at") + 1.0;
        let got = collect(&mut sub, 4, Duration::from_secs(3)).await;
        let arrived = now();
        let addresses: Vec<&str> = got.iter().map(|u| u.address.as_str()).collect();
        assert_eq!(
            addresses,
            [
                "/osc/sched/a",
                "/osc/sched/b",
                "/osc/sched/c",
                "/osc/sched/d"
            ]
        );
        assert!(
            arrived - sent < 0.5,
            "an immediate bundle took {:.3} s",
            arrived - sent
        );
    });
}

#[test]
fn a_scheduled_bundle_is_not_applied_early() {
    let (relay, port) = embedded(&[]);
    let p = port.to_string();
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/osc").await;
        let mut sub = c.subscribe("/osc/early/**").await.expect("subscribes");
        let messages = json!([["/early/x", [["T"]]], ["/early/y", [["F"]]]]);
        run_peer(&["bundle", &p, "1.0", &messages.to_string()]);
        // Half-way there, nothing yet.
        assert!(
            sub.next_within(Duration::from_millis(600)).await.is_none(),
            "a value arrived before the bundle's timetag"
        );
        let got = collect(&mut sub, 2, Duration::from_secs(3)).await;
        assert_eq!(got.len(), 2);
    });
}

// ---- outbound ------------------------------------------------------------------------

#[test]
fn js_set_reaches_an_oscdump_target_as_f() {
    require_js_client();
    let target = udp_port();
    let mut dump = oscdump(target);
    let send = format!("127.0.0.1:{target}");
    let (relay, port) = embedded(&["--osc-send", &send]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/osc").await;
    });
    let _ = dump.rest(Duration::from_millis(300)); // the probe
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bridges/osc_fader.mjs");
    let mut cmd = node();
    cmd.arg(script).arg(relay.url());
    run_ok(cmd, Duration::from_secs(30), "js osc_fader.mjs");
    let line = dump.line(WAIT).expect("oscdump received the fader");
    let (path, types, values) = dumped(&line);
    assert_eq!(
        (path.as_str(), types.as_str(), values.as_str()),
        ("/mixer/fader", "f", "0.750000")
    );
}

#[test]
fn every_value_type_goes_out_with_its_tag() {
    let target = udp_port();
    let mut dump = oscdump(target);
    let send = format!("127.0.0.1:{target}");
    let (relay, port) = embedded(&["--osc-send", &send]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/osc").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = dump.rest(Duration::from_millis(100));
        let values: Vec<(&str, Value)> = vec![
            ("/osc/o/bool", true.into()),
            ("/osc/o/false", false.into()),
            ("/osc/o/int", 7.into()),
            ("/osc/o/long", Value::Int(1 << 40)),
            ("/osc/o/float", 0.75.into()),
            ("/osc/o/string", "hi".into()),
            ("/osc/o/bytes", Value::Bytes(vec![1, 2, 3])),
            (
                "/osc/o/array",
                Value::Array(vec![
                    1.into(),
                    "a".into(),
                    false.into(),
                    Value::Array(vec![0.5.into()]),
                ]),
            ),
            ("/osc/o/map", Value::Map(vec![("k".into(), 1.into())])),
            ("/osc/o/null", Value::Null),
        ];
        for (address, value) in &values {
            c.set(address, value.clone()).await.expect("set");
        }
        c.emit("/osc/o/event", 5).await.expect("emit");
        // Outside the namespace: not sent.
        c.set("/other/x", 1).await.expect("set");
    });
    let lines = dump.rest(Duration::from_secs(2));
    let got: HashMap<String, (String, String)> = lines
        .iter()
        .map(|l| dumped(l))
        .filter(|(p, _, _)| p != "/_probe")
        .map(|(p, t, v)| (p, (t, v)))
        .collect();
    let want = [
        ("/o/bool", "T", None),
        ("/o/false", "F", None),
        ("/o/int", "i", Some("7")),
        ("/o/long", "h", Some("1099511627776")),
        ("/o/float", "f", Some("0.750000")),
        ("/o/string", "s", Some("\"hi\"")),
        ("/o/bytes", "b", None),
        ("/o/array", "isFf", None),
        ("/o/map", "s", Some("\"{\"k\":1}\"")),
        ("/o/null", "N", None),
        ("/o/event", "i", Some("5")),
    ];
    for (path, types, values) in want {
        let (t, v) = got
            .get(path)
            .unwrap_or_else(|| panic!("{path} not received: {lines:?}"));
        assert_eq!(t, types, "{path}");
        if let Some(values) = values {
            assert_eq!(v, values, "{path}");
        }
    }
    assert_eq!(got.len(), want.len(), "nothing else is sent: {lines:?}");
}

#[test]
fn replies_go_to_peers_but_never_back_to_the_sender() {
    let target = udp_port();
    let mut dump = oscdump(target);
    let send = format!("127.0.0.1:{target}");
    let (relay, port) = embedded(&["--osc-send", &send]);
    let p = port.to_string();
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/osc").await;
        let mut sub = c.subscribe("/osc/e/**").await.expect("subscribes");
        // B is heard from first, then A sends its value.
        let mut b = Proc::spawn(
            peer(&["peer", &p, "8", &json!([["/e/b", [["i", 2]]]]).to_string()]),
            "peer B",
        );
        assert!(b.json()["ready"].is_u64());
        assert!(sub.next_within(WAIT).await.is_some(), "B's value arrives");
        let mut a = Proc::spawn(
            peer(&["peer", &p, "6", &json!([["/e/a", [["i", 1]]]]).to_string()]),
            "peer A",
        );
        assert!(a.json()["ready"].is_u64());
        let u = sub.next_within(WAIT).await.expect("A's value arrives");
        assert_eq!(u.value, Value::Int(1));
        // A client's write goes to both peers (replies) and the target.
        c.set("/osc/e/from_client", 3).await.expect("set");
        let a_got = a.rest(Duration::from_secs(10));
        let b_got = b.rest(Duration::from_secs(10));
        let addresses = |lines: &[String]| -> Vec<(String, serde_json::Value)> {
            lines
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .map(|v| {
                    (
                        v["address"].as_str().unwrap_or("").to_string(),
                        v["args"].clone(),
                    )
                })
                .collect()
        };
        let a_got = addresses(&a_got);
        let b_got = addresses(&b_got);
        assert!(
            !a_got.iter().any(|(p, _)| p == "/e/a"),
            "A got its own value back: {a_got:?}"
        );
        assert!(
            a_got.contains(&("/e/from_client".into(), json!([3]))),
            "A gets the client's write: {a_got:?}"
        );
        assert!(
            b_got.contains(&("/e/a".into(), json!([1]))),
            "B gets A's value: {b_got:?}"
        );
        assert!(
            !b_got.iter().any(|(p, _)| p == "/e/b"),
            "B got its own value back: {b_got:?}"
        );
        assert!(b_got.contains(&("/e/from_client".into(), json!([3]))));
    });
    let dumped_paths: Vec<String> = dump
        .rest(Duration::from_millis(500))
        .iter()
        .map(|l| dumped(l).0)
        .filter(|p| p != "/_probe")
        .collect();
    for path in ["/e/a", "/e/b", "/e/from_client"] {
        assert!(
            dumped_paths.iter().any(|p| p == path),
            "the target gets {path}: {dumped_paths:?}"
        );
    }
}

#[test]
fn no_reply_sends_only_to_targets() {
    let relay = Relay::start(&[]);
    let port = udp_port();
    let p = port.to_string();
    let _bridge = standalone(&relay.url(), &["--listen", &p, "--no-reply"]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/osc").await;
        let mut a = Proc::spawn(
            peer(&["peer", &p, "2", &json!([["/nr/a", [["i", 1]]]]).to_string()]),
            "peer",
        );
        assert!(a.json()["ready"].is_u64());
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.set("/osc/nr/x", 1).await.expect("set");
        let got = a.rest(Duration::from_secs(3));
        assert!(got.is_empty(), "--no-reply: the peer got {got:?}");
    });
}

#[test]
fn the_current_state_is_not_replayed_to_targets_on_start() {
    let relay = Relay::start(&[]);
    let target = udp_port();
    let mut dump = oscdump(target);
    let port = udp_port();
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        c.set("/osc/pre/x", 1).await.expect("set");
        let _bridge = standalone(
            &relay.url(),
            &[
                "--listen",
                &port.to_string(),
                "--send",
                &format!("127.0.0.1:{target}"),
            ],
        );
        wait_bridge(&c, port, "/osc").await;
        c.set("/osc/pre/live", 2).await.expect("set");
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let paths: Vec<String> = dump
        .rest(Duration::from_millis(500))
        .iter()
        .map(|l| dumped(l).0)
        .filter(|p| p != "/_probe")
        .collect();
    assert_eq!(paths, ["/pre/live"], "only live changes go out");
}

// ---- instances, standalone, TCP ------------------------------------------------------

#[test]
fn two_namespaces_side_by_side_each_get_only_their_own() {
    let relay = Relay::start(&[]);
    let (stage_port, foh_port) = (udp_port(), udp_port());
    let (stage_target, foh_target) = (udp_port(), udp_port());
    let mut stage_dump = oscdump(stage_target);
    let mut foh_dump = oscdump(foh_target);
    let _stage = standalone(
        &relay.url(),
        &[
            "--listen",
            &stage_port.to_string(),
            "--namespace",
            "/osc/stage",
            "--send",
            &format!("127.0.0.1:{stage_target}"),
        ],
    );
    let _foh = standalone(
        &relay.url(),
        &[
            "--port",
            &foh_port.to_string(),
            "--namespace",
            "/osc/foh",
            "--send",
            &format!("localhost:{foh_target}"),
        ],
    );
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, stage_port, "/osc/stage").await;
        wait_bridge(&c, foh_port, "/osc/foh").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stage_dump.rest(Duration::from_millis(100));
        let _ = foh_dump.rest(Duration::from_millis(100));
        // Inbound through a standalone bridge reaches a client.
        let mut sub = c.subscribe("/osc/stage/in").await.expect("subscribes");
        let mut cmd = Command::new("oscsend");
        cmd.args(["127.0.0.1", &stage_port.to_string(), "/in", "f", "0.5"]);
        run_ok(cmd, Duration::from_secs(10), "oscsend");
        let u = sub.next_within(WAIT).await.expect("standalone inbound");
        assert_eq!(u.value, Value::Float(0.5));

        c.set("/osc/stage/light", 1).await.expect("set");
        c.set("/osc/foh/gain", 2).await.expect("set");
        c.set("/osc/stagehand/x", 3).await.expect("set");
    });
    let stage: Vec<String> = stage_dump
        .rest(Duration::from_secs(2))
        .iter()
        .map(|l| dumped(l).0)
        .filter(|p| p != "/_probe")
        .collect();
    let foh: Vec<String> = foh_dump
        .rest(Duration::from_millis(500))
        .iter()
        .map(|l| dumped(l).0)
        .filter(|p| p != "/_probe")
        .collect();
    assert_eq!(stage, ["/in", "/light"], "stage target");
    assert_eq!(foh, ["/gain"], "foh target");
}

#[test]
fn tcp_with_slip_framing_both_ways() {
    let relay = Relay::start(&[]);
    let port = free_port();
    let p = port.to_string();
    let _bridge = standalone(&relay.url(), &["--transport", "tcp", "--listen", &p]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        let mut sub = c.subscribe("/osc/tcp/**").await.expect("subscribes");
        // The bridge listens a moment after it starts.
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "the TCP bridge never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        let messages = json!([
            ["/tcp/a", [["f", 0.5]]],
            ["/tcp/esc", [["b", "c0db00"]]],
            ["/tcp/multi", [["i", 1], ["s", "two"]]]
        ]);
        let mut slip = Proc::spawn(peer(&["tcp", &p, "3", &messages.to_string()]), "SLIP peer");
        assert!(slip.json()["ready"].is_u64());
        let got = collect(&mut sub, 3, WAIT).await;
        let got: Vec<(String, Value)> = got
            .into_iter()
            .map(|u| (u.address.to_string(), u.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/osc/tcp/a".to_string(), Value::Float(0.5)),
                (
                    "/osc/tcp/esc".to_string(),
                    Value::Bytes(vec![0xc0, 0xdb, 0])
                ),
                (
                    "/osc/tcp/multi".to_string(),
                    Value::Array(vec![1.into(), "two".into()])
                ),
            ]
        );
        c.set("/osc/tcp/back", "to you").await.expect("set");
        let lines = slip.rest(Duration::from_secs(4));
        let received: Vec<serde_json::Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(
            received,
            vec![json!({"address": "/tcp/back", "types": "s", "args": ["to you"]})],
            "the TCP peer gets the client's write and not its own values"
        );
    });
}

#[test]
fn tcp_targets_are_connected_to_and_fed() {
    let relay = Relay::start(&[]);
    let messages = json!([["/tt/from_target", [["s", "hello"]]]]);
    let mut server = Proc::spawn(
        peer(&["tcp-server", "4", &messages.to_string()]),
        "SLIP server",
    );
    let target = server.json()["ready"].as_u64().expect("port");
    let port = free_port();
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        let mut sub = c.subscribe("/osc/tt/**").await.expect("subscribes");
        let _bridge = standalone(
            &relay.url(),
            &[
                "--transport",
                "tcp",
                "--listen",
                &port.to_string(),
                "--send",
                &format!("127.0.0.1:{target}"),
            ],
        );
        assert_eq!(server.json(), json!({"connected": true}));
        // What the target sends on the stream comes in like a peer's.
        let u = sub.next_within(WAIT).await.expect("the target's value");
        assert_eq!(u.value, Value::String("hello".into()));
        c.set("/osc/tt/x", 1.5).await.expect("set");
        let lines = server.rest(Duration::from_secs(5));
        let received: Vec<serde_json::Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(
            received,
            vec![json!({"address": "/tt/x", "types": "f", "args": [1.5]})],
            "the target gets the change, not its own value back"
        );
    });
}

#[test]
fn a_busy_port_is_retried_until_it_frees() {
    let blocker = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = blocker.local_addr().expect("addr").port();
    let relay = Relay::start(&["--osc-port", &port.to_string()]);
    // The bridge fails to bind and is restarted with backoff (1 s, 2 s, ...); the relay
    // keeps serving meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    drop(blocker);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/osc").await;
    });
}

#[test]
fn a_tcp_target_that_restarts_is_reconnected() {
    let relay = Relay::start(&[]);
    let first = Proc::spawn(peer(&["tcp-server", "1", "[]"]), "SLIP server");
    let target = first.json()["ready"].as_u64().expect("port").to_string();
    let port = free_port();
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        let _bridge = standalone(
            &relay.url(),
            &[
                "--transport",
                "tcp",
                "--listen",
                &port.to_string(),
                "--send",
                &format!("127.0.0.1:{target}"),
            ],
        );
        assert_eq!(first.json(), json!({"connected": true}));
        drop(first); // the target goes away
        let mut second = Proc::spawn(
            peer(&["tcp-server", "3", "[]", &target]),
            "SLIP server, again",
        );
        assert!(second.json()["ready"].is_u64());
        assert_eq!(
            second.json(),
            json!({"connected": true}),
            "the bridge reconnects"
        );
        c.set("/osc/again/x", 7).await.expect("set");
        let lines = second.rest(Duration::from_secs(5));
        assert!(
            lines.iter().any(|l| l.contains("/again/x")),
            "the restarted target gets changes: {lines:?}"
        );
    });
}

// ---- bad input -----------------------------------------------------------------------

#[test]
fn bad_input_is_logged_once_and_the_bridge_keeps_working() {
    let port = udp_port();
    let p = port.to_string();
    let ws = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clasp"));
    cmd.args(["relay", "--host", "127.0.0.1", "--ws-port", &ws.to_string()])
        .args(["--log-level", "warn", "--osc-port", &p]);
    let mut relay = Proc::spawn_stderr(cmd, "clasp relay");
    let url = format!("ws://127.0.0.1:{ws}");
    runtime().block_on(async {
        let end = Instant::now() + STARTUP;
        let c = loop {
            match Client::builder(&url).connect().await {
                Ok(c) => break c,
                Err(_) if Instant::now() < end => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("relay never listened: {e}"),
            }
        };
        wait_bridge(&c, port, "/osc").await;
        let mut sub = c.subscribe("/osc/ok").await.expect("subscribes");
        let unknown_tag = osc_bytes("/x", ",Q", &[0, 0, 0, 1]);
        let truncated = osc_bytes("/x", ",i", &[0, 0]);
        let pattern = osc_bytes("/a/*", ",i", &[0, 0, 0, 1]);
        let no_slash = osc_bytes("x", ",", &[]);
        run_peer(&[
            "raw",
            &p,
            &hex(b"not osc at all"),
            &hex(&unknown_tag),
            &hex(&truncated),
            &hex(&pattern),
            &hex(&no_slash),
            &hex(&osc_bytes("/ok", ",i", &[0, 0, 0, 42])),
        ]);
        // liblo's symbol type is not one the bridge takes.
        let mut cmd = Command::new("oscsend");
        cmd.args(["127.0.0.1", &p, "/sym", "S", "x"]);
        run_ok(cmd, Duration::from_secs(10), "oscsend");
        let u = sub
            .next_within(WAIT)
            .await
            .expect("a good packet after bad ones");
        assert_eq!(u.value, Value::Int(42));
    });
    std::thread::sleep(Duration::from_millis(300));
    let _ = relay.child.kill();
    let stderr = relay.rest(Duration::from_secs(3));
    let reports: Vec<&String> = stderr.iter().filter(|l| l.contains("bad input")).collect();
    // One line per peer per minute: the raw sender and oscsend are two peers.
    assert_eq!(reports.len(), 2, "bad input log lines: {stderr:#?}");
}

/// In process, to read the bridge's counters: every bad packet is counted, good ones too.
#[test]
fn bad_input_is_counted_exactly() {
    let port = udp_port();
    let ws = free_port();
    let (stats_tx, stats_rx) = mpsc::channel::<std::sync::Arc<BridgeStats>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let relay = std::thread::spawn(move || {
        let system = actix::System::new();
        system.block_on(async move {
            let relay = clasp::Relay::start(RelayConfig {
                host: "127.0.0.1".into(),
                port: ws,
                ..RelayConfig::default()
            })
            .expect("relay starts");
            let router = relay.router().clone();
            let bridge = OscBridge::new(OscConfig {
                port,
                bind: "127.0.0.1".into(),
                ..OscConfig::default()
            })
            .expect("valid settings");
            let handle = clasp_bridges::spawn(
                bridge,
                LinkSource::Local(router.clone()),
                router.actors.clone(),
            );
            stats_tx.send(handle.stats().clone()).expect("test waits");
            let _ = stop_rx.await;
            handle.stop();
        });
    });
    let stats = stats_rx.recv_timeout(STARTUP).expect("the bridge started");
    let p = port.to_string();
    let url = format!("ws://127.0.0.1:{ws}");
    runtime().block_on(async {
        let c = client(&url).await;
        wait_bridge(&c, port, "/osc").await;
        let received = stats.received.load(std::sync::atomic::Ordering::Relaxed);
        let mut sub = c.subscribe("/osc/ok").await.expect("subscribes");
        run_peer(&[
            "raw",
            &p,
            &hex(b"not osc at all"),
            &hex(&osc_bytes("/x", ",Q", &[0, 0, 0, 1])),
            &hex(&osc_bytes("/x", ",i", &[0, 0])),
            &hex(&osc_bytes("/a/*", ",i", &[0, 0, 0, 1])),
            &hex(&osc_bytes("/a//b", ",", &[])),
            &hex(&osc_bytes("/ok", ",i", &[0, 0, 0, 42])),
        ]);
        let u = sub.next_within(WAIT).await.expect("the good packet");
        assert_eq!(u.value, Value::Int(42));
        assert_eq!(
            stats.bad_input.load(std::sync::atomic::Ordering::Relaxed),
            5
        );
        assert_eq!(
            stats.received.load(std::sync::atomic::Ordering::Relaxed),
            received + 1
        );
        assert_eq!(stats.up.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(stats.restarts.load(std::sync::atomic::Ordering::Relaxed), 0);
    });
    let _ = stop_tx.send(());
    relay.join().expect("the relay thread ends");
}
