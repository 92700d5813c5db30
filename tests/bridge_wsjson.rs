//! The JSON WebSocket bridge end to end (FEATURES WSB-1..4): the real `clasp` binary, plain
//! JSON clients and a JSON service written with python `websockets` (independent peers,
//! `tests/bridges/wsjson_*.py`), and the Rust CLASP client on the other side.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use clasp::Client;
use clasp_proto::{SignalType, Value};
use common::auth::AuthRelay;
use common::*;
use serde_json::{json, Value as Json};

/// How long any one expected message may take.
const WAIT: Duration = Duration::from_secs(5);

fn script(name: &str) -> String {
    format!("{}/tests/bridges/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A python process driven through stdin, its stdout lines read on a thread.
struct Py {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Py {
    fn spawn(args: &[&str]) -> Py {
        let mut child = Command::new("python3")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Py {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the python peer");
        stdin.flush().expect("flush");
    }

    async fn line(&mut self, within: Duration) -> Option<String> {
        tokio::time::timeout(within, self.lines.recv())
            .await
            .ok()
            .flatten()
    }

    /// The first line satisfying `want` within [`WAIT`]; the others are skipped.
    async fn expect_line(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.line(left).await {
                Some(l) if want(&l) => return l,
                Some(l) => seen.push(l),
                None => break,
            }
        }
        panic!("no {what} within {WAIT:?}; got {seen:?}");
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON WebSocket client.
struct JsonPeer(Py);

impl JsonPeer {
    /// Connects; panics unless the bridge accepted.
    async fn open(url: &str, headers: &[&str]) -> JsonPeer {
        let mut peer = Self::try_open(url, headers);
        let first = peer.0.line(Duration::from_secs(15)).await;
        assert_eq!(first.as_deref(), Some("OPEN"), "connect to {url}");
        peer
    }

    /// Starts connecting; the first line says how it went.
    fn try_open(url: &str, headers: &[&str]) -> JsonPeer {
        let path = script("wsjson_peer.py");
        let mut args = vec![path.as_str(), url];
        args.extend_from_slice(headers);
        JsonPeer(Py::spawn(&args))
    }

    fn send(&mut self, msg: Json) {
        self.0.send(&msg.to_string());
    }

    /// The next JSON message satisfying `want`, skipping others.
    async fn expect(&mut self, what: &str, want: impl Fn(&Json) -> bool) -> Json {
        let line = self
            .0
            .expect_line(what, |l| {
                serde_json::from_str::<Json>(l).is_ok_and(|j| want(&j))
            })
            .await;
        serde_json::from_str(&line).expect("json")
    }

    /// Sends `request` with `id` and returns its answer, with every message before it.
    async fn ask(&mut self, mut request: Json, id: &str) -> (Json, Vec<Json>) {
        request["id"] = json!(id);
        self.send(request);
        let deadline = Instant::now() + WAIT;
        let mut before = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(line) = self.0.line(left).await else {
                break;
            };
            let Ok(j) = serde_json::from_str::<Json>(&line) else {
                panic!("not JSON from the bridge: {line}");
            };
            if j["id"] == json!(id) {
                return (j, before);
            }
            before.push(j);
        }
        panic!("no answer to {id} within {WAIT:?}; got {before:?}");
    }
}

async fn clasp_client(url: &str) -> Client {
    Client::builder(url)
        .name("wsjson-test")
        .reconnect(false)
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("the Rust client connects")
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + STARTUP;
    while TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `clasp` subcommand running in the background; killed on drop.
struct Proc(Child);

impl Proc {
    fn start(args: &[&str]) -> Proc {
        Proc(
            Command::new(env!("CARGO_BIN_EXE_clasp"))
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("the clasp binary starts"),
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The whole request set against one bridge, with the CLASP client on the relay.
async fn protocol_round_trip(json_url: &str, relay_url: &str, events: bool) {
    let clasp = clasp_client(relay_url).await;
    let mut watch = clasp.subscribe("/lights/**").await.expect("subscribe");
    let mut fx = clasp.subscribe("/fx/**").await.expect("subscribe");
    let mut peer = JsonPeer::open(json_url, &[]).await;

    let (ack, _) = peer
        .ask(json!({"type": "subscribe", "pattern": "/lights/*"}), "sub")
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["request_type"], "subscribe", "{ack}");

    // CLASP → JSON: a param change arrives as `value` with its revision.
    let rev = clasp
        .set("/lights/brightness", 0.75)
        .await
        .expect("CLASP set");
    let v = peer
        .expect("value of /lights/brightness", |j| {
            j["type"] == "value" && j["address"] == "/lights/brightness"
        })
        .await;
    assert_eq!(v["value"], json!(0.75), "{v}");
    assert_eq!(v["revision"], json!(rev), "{v}");

    // JSON → CLASP: a set is acknowledged with the revision and seen by the subscriber.
    let (ack, _) = peer
        .ask(
            json!({"type": "set", "address": "/lights/color", "value": "red"}),
            "set",
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["request_type"], "set", "{ack}");
    assert_eq!(ack["revision"], json!(1), "{ack}");
    let deadline = Instant::now() + WAIT;
    loop {
        let u = watch
            .next_within(deadline.saturating_duration_since(Instant::now()))
            .await
            .expect("the CLASP subscriber sees the JSON set");
        if u.address.as_str() == "/lights/color" {
            assert_eq!(u.value, Value::String("red".into()));
            break;
        }
    }
    // Integers stay integers.
    peer.ask(
        json!({"type": "set", "address": "/lights/count", "value": 3}),
        "int",
    )
    .await;
    let got = clasp.get("/lights/count").await.expect("CLASP get");
    assert_eq!(got.value, Value::Int(3));

    // get and snapshot round-trip.
    let (v, _) = peer
        .ask(
            json!({"type": "get", "address": "/lights/brightness"}),
            "get",
        )
        .await;
    assert_eq!(v["type"], "value", "{v}");
    assert_eq!(v["value"], json!(0.75), "{v}");
    assert_eq!(v["revision"], json!(rev), "{v}");
    let (v, _) = peer
        .ask(json!({"type": "get", "address": "/nothing/here"}), "get0")
        .await;
    assert_eq!(v["value"], Json::Null, "{v}");
    let (s, _) = peer
        .ask(json!({"type": "snapshot", "prefix": "/lights"}), "snap")
        .await;
    assert_eq!(s["type"], "snapshot", "{s}");
    assert_eq!(
        s["state"],
        json!({"/lights/brightness": 0.75, "/lights/color": "red", "/lights/count": 3}),
        "{s}"
    );

    // emit → a CLASP event; a CLASP event → `event`.
    let (ack, _) = peer
        .ask(
            json!({"type": "emit", "address": "/fx/boom", "value": {"power": 2}}),
            "emit",
        )
        .await;
    assert_eq!(ack["request_type"], "emit", "{ack}");
    let e = fx.next_within(WAIT).await.expect("the CLASP event");
    assert_eq!(e.signal, SignalType::Event);
    assert_eq!(e.address.as_str(), "/fx/boom");
    assert_eq!(e.value, Value::Map(vec![("power".into(), Value::Int(2))]));
    // stream → a CLASP stream sample (no answer without an id).
    peer.send(json!({"type": "stream", "address": "/fx/level", "value": 0.25}));
    let e = fx.next_within(WAIT).await.expect("the CLASP stream sample");
    assert_eq!(e.signal, SignalType::Stream);
    assert_eq!(e.address.as_str(), "/fx/level");
    assert_eq!(e.value, Value::Float(0.25));
    if events {
        clasp.emit("/lights/flash", true).await.expect("CLASP emit");
        let e = peer
            .expect("event /lights/flash", |j| j["type"] == "event")
            .await;
        assert_eq!(e["address"], "/lights/flash", "{e}");
        assert_eq!(e["value"], json!(true), "{e}");
    }

    // unsubscribe stops delivery.
    let (ack, _) = peer
        .ask(
            json!({"type": "unsubscribe", "pattern": "/lights/*"}),
            "unsub",
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    clasp.set("/lights/brightness", 0.1).await.expect("set");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, before) = peer
        .ask(
            json!({"type": "get", "address": "/lights/brightness"}),
            "after",
        )
        .await;
    assert!(
        before.iter().all(|j| j["type"] != "value"),
        "updates after unsubscribe: {before:?}"
    );
    clasp.close().await;
}

#[tokio::test]
async fn embedded_on_a_relay_path() {
    let relay = Relay::start(&["--ws-json-path", "/json"]);
    let url = format!("ws://127.0.0.1:{}/json", relay.port);
    protocol_round_trip(&url, &relay.url(), true).await;
}

#[tokio::test]
async fn embedded_on_its_own_port() {
    let port = free_port();
    let relay = Relay::start(&["--ws-json-port", &port.to_string()]);
    wait_listening(port);
    let url = format!("ws://127.0.0.1:{port}/");
    protocol_round_trip(&url, &relay.url(), true).await;
}

#[tokio::test]
async fn standalone_with_an_access_token() {
    let relay = Relay::start(&[]);
    let port = free_port();
    let _bridge = Proc::start(&[
        "websocket",
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--target",
        &relay.url(),
        "--access-token",
        "s3cret",
        // An unknown address gets no answer from the relay: the bridge's get gives up here.
        "--timeout",
        "2",
    ]);
    wait_listening(port);
    let base = format!("ws://127.0.0.1:{port}/");
    for (url, headers) in [
        (base.clone(), vec![]),
        (format!("{base}?token=wrong"), vec![]),
    ] {
        let mut peer = JsonPeer::try_open(&url, &headers);
        assert_eq!(
            peer.0.line(Duration::from_secs(15)).await.as_deref(),
            Some("REFUSED 401"),
            "{url}"
        );
    }
    let peer = JsonPeer::open(&base, &["Authorization: Bearer s3cret"]).await;
    drop(peer);
    let url = format!("{base}?token=s3cret");
    protocol_round_trip(&url, &relay.url(), true).await;

    // The bridge's clients share one CLASP connection, yet get each other's events.
    let mut a = JsonPeer::open(&url, &[]).await;
    let mut b = JsonPeer::open(&url, &[]).await;
    a.ask(json!({"type": "subscribe", "pattern": "/fx/*"}), "sub")
        .await;
    b.ask(
        json!({"type": "emit", "address": "/fx/pop", "value": 1}),
        "e",
    )
    .await;
    let e = a
        .expect("event from a fellow client", |j| j["type"] == "event")
        .await;
    assert_eq!(e["address"], "/fx/pop", "{e}");
}

#[tokio::test]
async fn bad_frames_are_answered_and_the_connection_stays() {
    let relay = Relay::start(&["--ws-json-path", "/json"]);
    let url = format!("ws://127.0.0.1:{}/json", relay.port);
    let mut peer = JsonPeer::open(&url, &[]).await;
    for (frame, request_type) in [
        ("{}".to_string(), Json::Null),
        ("not json".to_string(), Json::Null),
        ("[1,2]".to_string(), Json::Null),
        (r#"{"type":"fly","id":4}"#.to_string(), json!("fly")),
        (
            r#"{"type":"set","value":1,"id":5}"#.to_string(),
            json!("set"),
        ),
        (
            r#"{"type":"set","address":"/a","id":6}"#.to_string(),
            json!("set"),
        ),
        (
            r#"{"type":"get","address":"no-slash"}"#.to_string(),
            json!("get"),
        ),
        (
            r#"{"type":"subscribe","pattern":"/a/**/b/**["}"#.to_string(),
            json!("subscribe"),
        ),
        (
            r#"{"type":"unsubscribe","pattern":"/never"}"#.to_string(),
            json!("unsubscribe"),
        ),
        ("!binary".to_string(), Json::Null),
    ] {
        peer.0.send(&frame);
        let e = peer.expect("error frame", |j| j["type"] == "error").await;
        assert_eq!(e["request_type"], request_type, "{frame} → {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
        let parsed: Json = serde_json::from_str(&frame).unwrap_or(Json::Null);
        if let Some(id) = parsed.get("id") {
            assert_eq!(&e["id"], id, "{e}");
        }
    }
    // Still serving.
    let (ack, _) = peer
        .ask(json!({"type": "set", "address": "/a", "value": 1}), "ok")
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // An oversized frame closes with 1009.
    peer.0.send("!big 100000");
    let closed = peer
        .0
        .expect_line("close", |l| l.starts_with("CLOSED"))
        .await;
    assert!(closed.starts_with("CLOSED 1009"), "{closed}");
}

#[tokio::test]
async fn a_slow_client_is_dropped() {
    let relay = Relay::start(&[]);
    let port = free_port();
    let _bridge = Proc::start(&[
        "websocket",
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--target",
        &relay.url(),
        "--queue",
        "4",
    ]);
    wait_listening(port);
    let mut peer = JsonPeer::open(&format!("ws://127.0.0.1:{port}/"), &[]).await;
    peer.ask(json!({"type": "subscribe", "pattern": "/big/*"}), "sub")
        .await;
    peer.0.send("!pause");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Far more than the socket buffers hold: the bridge's writer blocks and its queue fills.
    let clasp = clasp_client(&relay.url()).await;
    let blob = "x".repeat(32 * 1024);
    for i in 0..1000 {
        clasp
            .set(&format!("/big/{}", i % 64), blob.as_str())
            .await
            .expect("CLASP set");
    }
    peer.0.send("!resume");
    let deadline = Instant::now() + Duration::from_secs(30);
    let closed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match peer.0.line(left).await {
            Some(l) if l.starts_with("CLOSED") => break l,
            Some(_) => {}
            None => panic!("the slow client was not dropped"),
        }
    };
    assert!(closed.starts_with("CLOSED 1008"), "{closed}");
    clasp.close().await;
}

#[tokio::test]
async fn a_token_is_required_and_its_scopes_enforced() {
    let r = AuthRelay::start("wsjson", &["--ws-json-path", "/json"]);
    let base = format!("ws://127.0.0.1:{}/json", r.relay.port);
    for url in [
        base.clone(),
        format!("{base}?token=cpsk_00000000000000000000000000000000"),
    ] {
        let mut peer = JsonPeer::try_open(&url, &[]);
        assert_eq!(
            peer.0.line(Duration::from_secs(15)).await.as_deref(),
            Some("REFUSED 401"),
            "{url}"
        );
    }
    let token = r.guest(&["read:/pub/**", "write:/app/**"]);
    let bearer = format!("Authorization: Bearer {token}");
    let mut peer = JsonPeer::open(&base, &[&bearer]).await;

    let (ack, _) = peer
        .ask(
            json!({"type": "set", "address": "/app/x", "value": 1}),
            "w1",
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    for (request, kind) in [
        (
            json!({"type": "set", "address": "/pub/x", "value": 1}),
            "set",
        ),
        (json!({"type": "emit", "address": "/secret/e"}), "emit"),
        (json!({"type": "get", "address": "/secret/x"}), "get"),
    ] {
        let (e, _) = peer.ask(request, kind).await;
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["request_type"], kind, "{e}");
    }

    let admin = common::auth::connect(&r.relay.url(), &r.admin)
        .await
        .expect("admin connects");
    admin.set("/secret/x", 9).await.expect("admin set");
    admin.set("/pub/y", 2).await.expect("admin set");
    let (ack, _) = peer
        .ask(json!({"type": "subscribe", "pattern": "/**"}), "sub")
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    admin.set("/secret/x", 10).await.expect("admin set");
    admin.set("/pub/y", 3).await.expect("admin set");
    peer.expect("readable update", |j| {
        j["address"] == "/pub/y" && j["value"] == json!(3)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (snap, before) = peer.ask(json!({"type": "snapshot"}), "snap").await;
    assert!(
        before.iter().all(|j| j["address"] != "/secret/x"),
        "unreadable updates delivered: {before:?}"
    );
    assert_eq!(snap["state"], json!({"/pub/y": 3, "/app/x": 1}), "{snap}");

    // Query token works too.
    let mut peer2 = JsonPeer::open(&format!("{base}?token={token}"), &[]).await;

    // Revoking the token closes both connections with 1008.
    let (status, body) = r.post("/auth/revoke", json!({ "token": token }), None);
    assert_eq!(status, 200, "{body}");
    for p in [&mut peer, &mut peer2] {
        let closed = p.0.expect_line("close", |l| l.starts_with("CLOSED")).await;
        assert!(closed.starts_with("CLOSED 1008"), "{closed}");
    }
}

/// The service sends `{"topic":"temp","value":n}`; the CLASP side must see /ws/temp = n.
async fn feed(service: &mut Py, temp: &mut clasp::Subscription, n: i64) {
    service.send(&json!({"topic": "temp", "value": n}).to_string());
    let deadline = Instant::now() + WAIT;
    loop {
        let u = temp
            .next_within(deadline.saturating_duration_since(Instant::now()))
            .await
            .unwrap_or_else(|| panic!("/ws/temp never became {n}"));
        if u.address.as_str() == "/ws/temp" && u.value == Value::Int(n) {
            return;
        }
    }
}

#[tokio::test]
async fn client_mode_maps_both_ways_and_reconnects() {
    let relay = Relay::start(&[]);
    let port = free_port();
    let port_s = port.to_string();
    let service_path = script("wsjson_service.py");
    let start_service = || async {
        let mut s = Py::spawn(&[service_path.as_str(), &port_s]);
        s.expect_line("LISTENING", |l| l == "LISTENING").await;
        s
    };
    let mut service = start_service().await;
    let connect = format!("ws://127.0.0.1:{port}/feed");
    let _bridge = Proc::start(&[
        "websocket",
        "--mode",
        "client",
        "--connect",
        &connect,
        "--address-template",
        "/ws/{topic}",
        "--value-field",
        "/value",
        "--forward",
        "/out/**",
        "--target",
        &relay.url(),
    ]);
    service
        .expect_line("bridge connection", |l| l == "CONNECTED")
        .await;
    let clasp = clasp_client(&relay.url()).await;

    let mut temp = clasp.subscribe("/ws/**").await.expect("subscribe");
    feed(&mut service, &mut temp, 21).await;
    clasp.set("/out/lamp", 5).await.expect("CLASP set");
    let got = service
        .expect_line("forwarded change", |l| l.starts_with("RECV "))
        .await;
    let j: Json = serde_json::from_str(&got["RECV ".len()..]).expect("JSON");
    assert_eq!(j, json!({"address": "/out/lamp", "value": 5}));

    // The service restarts: the bridge reconnects by itself.
    drop(service);
    let mut service = start_service().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while service.line(Duration::from_millis(200)).await.as_deref() != Some("CONNECTED") {
        assert!(Instant::now() < deadline, "the bridge did not reconnect");
    }
    feed(&mut service, &mut temp, 22).await;
    clasp.set("/out/lamp", 6).await.expect("CLASP set");
    // At each connection the service first gets the current values (a resync), then changes.
    service
        .expect_line("forwarded change", |l| {
            l == r#"RECV {"address":"/out/lamp","value":6}"#
        })
        .await;
    clasp.close().await;
}

#[tokio::test]
async fn client_mode_address_field_namespace_and_unmappable_messages() {
    let relay = Relay::start(&[]);
    let port = free_port();
    let service_path = script("wsjson_service.py");
    let mut service = Py::spawn(&[service_path.as_str(), &port.to_string()]);
    service.expect_line("LISTENING", |l| l == "LISTENING").await;
    let connect = format!("ws://127.0.0.1:{port}/");
    let _bridge = Proc::start(&[
        "websocket",
        "--mode",
        "client",
        "--connect",
        &connect,
        "--address-field",
        "/topic",
        "--namespace",
        "/svc",
        "--forward",
        "/out/*",
        "--target",
        &relay.url(),
    ]);
    service
        .expect_line("bridge connection", |l| l == "CONNECTED")
        .await;
    let clasp = clasp_client(&relay.url()).await;
    let mut room = clasp.subscribe("/svc/**").await.expect("subscribe");
    // Messages that do not map are skipped; the connection stays.
    service.send("not json");
    service.send(r#"{"no": "topic"}"#);
    service.send(r#"{"topic": 5, "value": 1}"#);
    service.send(r#"{"topic": "room/t", "value": {"c": 21}}"#);
    let u = room.next_within(WAIT).await.expect("the mapped SET");
    assert_eq!(u.address.as_str(), "/svc/room/t");
    assert_eq!(u.value, Value::Map(vec![("c".into(), Value::Int(21))]));
    // Outbound: only under the namespace, which is stripped.
    clasp
        .set("/out/x", 1)
        .await
        .expect("set outside the namespace");
    clasp.set("/svc/out/a", 2).await.expect("set");
    let got = service
        .expect_line("forwarded change", |l| l.starts_with("RECV "))
        .await;
    assert_eq!(got, r#"RECV {"address":"/out/a","value":2}"#);
    clasp.close().await;
}
