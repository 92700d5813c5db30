//! Discovery end to end (FEATURES DI-1..5, issue 9): the real `clasp` binary as a relay,
//! found by `clasp discover` and by the Rust client's `clasp://name`, checked against
//! independent peers: python-zeroconf for mDNS, the official Python client's codec for the
//! broadcast HELLO/WELCOME, python's urllib for the rendezvous HTTP API. mDNS also runs
//! across two network namespaces the test creates (a veth pair with multicast on).

mod common;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clasp::Client;
use clasp_actors::discovery::DiscoverOptions;
use common::{run_with_timeout, Relay};
use serde_json::Value as Json;

const CLASP: &str = env!("CARGO_BIN_EXE_clasp");

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("discovery")
        .join(name)
}

/// A UDP port that was free a moment ago.
fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    s.local_addr().expect("local addr").port()
}

/// A relay name no other test (or test run) uses.
fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix} {}-{n}", std::process::id())
}

/// Runs `clasp discover ARGS --json` (bounded) and returns the relays it printed.
fn discover(prefix: &[&str], args: &[&str]) -> Vec<Json> {
    let mut cmd = if prefix.is_empty() {
        Command::new(CLASP)
    } else {
        let mut c = Command::new(prefix[0]);
        c.args(&prefix[1..]).arg(CLASP);
        c
    };
    cmd.arg("discover").arg("--json").args(args);
    let out = run_with_timeout(cmd, Duration::from_secs(30), "clasp discover");
    assert!(out.status.is_some(), "clasp discover hung: {}", out.stderr);
    let list: Json = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} / {}", out.stdout, out.stderr));
    list.as_array().cloned().unwrap_or_default()
}

fn row<'a>(list: &'a [Json], name: &str, source: &str) -> Option<&'a Json> {
    list.iter()
        .find(|r| r["name"] == name && r["source"] == source)
}

/// Runs a python helper from tests/discovery with a timeout; its stdout as JSON.
fn python(args: &[&str], what: &str) -> Json {
    let mut cmd = Command::new("python3");
    cmd.args(args);
    let out = run_with_timeout(cmd, Duration::from_secs(30), what);
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {:?} / {}", out.stdout, out.stderr))
}

/// One HTTP request through python's urllib: (status, body).
fn http(method: &str, url: &str, body: &str) -> (u64, Json) {
    let script = script("http_request.py");
    let v = python(
        &[script.to_str().expect("utf-8"), method, url, body],
        &format!("{method} {url}"),
    );
    (v["status"].as_u64().unwrap_or(0), v["body"].clone())
}

fn http_origin(method: &str, url: &str, origin: &str) -> Json {
    let script = script("http_request.py");
    python(
        &[script.to_str().expect("utf-8"), method, url, "", origin],
        url,
    )
}

// ---------------------------------------------------------------- mDNS on loopback

#[test]
fn mdns_on_loopback_is_found_by_clasp_discover_and_python_zeroconf_with_its_txt() {
    let name = unique("Loop Relay");
    let relay = Relay::start(&["--name", &name, "--broadcast-port", "0"]);
    let quiet_name = unique("Quiet Relay");
    let _quiet = Relay::start(&["--name", &quiet_name, "--no-mdns", "--broadcast-port", "0"]);

    let list = discover(
        &[],
        &[
            "--timeout",
            "3",
            "--interface",
            "127.0.0.1",
            "--no-broadcast",
        ],
    );
    let found = row(&list, &name, "mdns").unwrap_or_else(|| panic!("{name} not in {list:?}"));
    assert_eq!(found["url"], format!("ws://127.0.0.1:{}", relay.port));
    assert!(
        list.iter().all(|r| r["name"] != quiet_name.as_str()),
        "--no-mdns relay was advertised: {list:?}"
    );

    let zc = script("zeroconf_browse.py");
    let peer = python(
        &[zc.to_str().expect("utf-8"), "127.0.0.1", &name, "10"],
        "python-zeroconf browse",
    );
    assert_eq!(peer["instance"], name.as_str(), "{peer}");
    assert_eq!(peer["port"], relay.port, "{peer}");
    assert_eq!(peer["addresses"][0], "127.0.0.1", "{peer}");
    let txt = &peer["txt"];
    assert_eq!(txt["name"], name.as_str(), "{peer}");
    assert_eq!(txt["ws"], relay.port.to_string(), "{peer}");
    assert_eq!(txt["version"], "2", "{peer}");
    assert_eq!(txt["auth"], "0", "{peer}");
    assert_eq!(txt["features"], "pestg", "{peer}");
}

#[test]
fn an_auth_relay_says_so_in_its_txt() {
    let dir = std::env::temp_dir().join(format!("clasp-disc-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("auth.redb");
    let name = unique("Auth Relay");
    let _relay = Relay::start(&[
        "--name",
        &name,
        "--broadcast-port",
        "0",
        "--auth",
        "--auth-db",
        db.to_str().expect("utf-8"),
    ]);
    let zc = script("zeroconf_browse.py");
    let peer = python(
        &[zc.to_str().expect("utf-8"), "127.0.0.1", &name, "10"],
        "python-zeroconf browse",
    );
    assert_eq!(peer["txt"]["auth"], "1", "{peer}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn garbage_on_the_mdns_port_does_not_stop_the_advert() {
    let name = unique("Sturdy Relay");
    let relay = Relay::start(&["--name", &name, "--broadcast-port", "0"]);
    // Malformed DNS packets to the mDNS group, sent out of the loopback interface (where
    // the relay's daemon listens) by python, which can pick the multicast interface.
    let sender = r#"
import socket, random
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
rnd = random.Random(9)
junk = [b"", b"\x00" * 12, b"\xff" * 12 + b"\x03abc", b"\x00\x00\x84\x00\x00\x01\x00\x05"]
junk += [bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 400))) for _ in range(60)]
for j in junk:
    s.sendto(j, ("224.0.0.251", 5353))
print(len(junk))
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", sender]);
    let out = run_with_timeout(cmd, Duration::from_secs(20), "mDNS garbage sender");
    assert_eq!(out.stdout.trim(), "64", "{}", out.stderr);
    let list = discover(
        &[],
        &[
            "--timeout",
            "3",
            "--interface",
            "127.0.0.1",
            "--no-broadcast",
        ],
    );
    let found = row(&list, &name, "mdns").unwrap_or_else(|| panic!("{name} not in {list:?}"));
    assert_eq!(found["url"], format!("ws://127.0.0.1:{}", relay.port));
}

#[test]
fn a_listener_sees_a_relay_come_and_go() {
    use clasp::discovery::{DiscoveryListener, ListenerEvent};
    let listener = DiscoveryListener::start(Some([127, 0, 0, 1].into())).expect("mDNS listener");
    let name = unique("Passing Relay");
    let mut relay = Relay::start(&["--name", &name, "--broadcast-port", "0"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        assert!(Instant::now() < deadline, "{name} never found");
        match listener.next(Duration::from_secs(1)) {
            Some(ListenerEvent::Found(f)) if f.name == name => break f,
            _ => {}
        }
    };
    assert_eq!(found.url, format!("ws://127.0.0.1:{}", relay.port));
    // SIGTERM: the relay says goodbye on its way out.
    assert!(
        relay.terminate(Duration::from_secs(10)).is_some(),
        "relay did not stop"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "{name} never reported lost");
        if let Some(ListenerEvent::Lost(n)) = listener.next(Duration::from_secs(1)) {
            if n == name {
                break;
            }
        }
    }
}

// ---------------------------------------------------------------- the Rust client

fn loopback_options() -> DiscoverOptions {
    DiscoverOptions {
        timeout: Duration::from_secs(3),
        mdns: true,
        mdns_interface: Some([127, 0, 0, 1].into()),
        broadcast_to: None,
        ..DiscoverOptions::default()
    }
}

async fn set_and_get(url: String, options: DiscoverOptions, address: &str) {
    let client = Client::builder(url.clone())
        .discovery(options)
        .reconnect(false)
        .timeout(Duration::from_secs(3))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    client.set(address, 42).await.expect("set");
    let got = client.get(address).await.expect("get");
    assert_eq!(got.value, clasp::proto::Value::Int(42));
}

#[tokio::test]
async fn the_rust_client_connects_to_clasp_name_found_by_mdns_and_does_set_get() {
    let name = unique("Named Relay");
    let _relay = Relay::start(&["--name", &name, "--broadcast-port", "0"]);
    let url = format!("clasp://{}", name.replace(' ', "%20"));
    set_and_get(url, loopback_options(), "/disc/mdns").await;
}

#[tokio::test]
async fn clasp_name_falls_back_to_broadcast_then_rendezvous() {
    // Broadcast only: mDNS is off on the relay, so the cascade must reach the second source.
    let bport = free_udp_port();
    let name = unique("Bcast Relay");
    let _relay = Relay::start(&[
        "--name",
        &name,
        "--no-mdns",
        "--broadcast-port",
        &bport.to_string(),
    ]);
    let options = DiscoverOptions {
        timeout: Duration::from_secs(1),
        broadcast_to: Some([127, 0, 0, 1].into()),
        broadcast_port: bport,
        ..loopback_options()
    };
    set_and_get(format!("clasp://{name}"), options, "/disc/bcast").await;

    // Rendezvous only: B serves the registry, A registers with it and is otherwise silent.
    let rport = common::free_port();
    let _b = Relay::start(&[
        "--name",
        &unique("Registry"),
        "--no-mdns",
        "--broadcast-port",
        "0",
        "--rendezvous-port",
        &rport.to_string(),
    ]);
    let a_name = unique("Far Relay");
    let _a = Relay::start(&[
        "--name",
        &a_name,
        "--no-mdns",
        "--broadcast-port",
        "0",
        "--rendezvous-url",
        &format!("http://127.0.0.1:{rport}"),
        "--rendezvous-refresh",
        "1",
    ]);
    let options = DiscoverOptions {
        timeout: Duration::from_secs(1),
        broadcast_to: None,
        rendezvous: vec![format!("http://127.0.0.1:{rport}")],
        ..loopback_options()
    };
    // The registration is made right after A starts; give it a bounded moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = http(
            "GET",
            &format!("http://127.0.0.1:{rport}/api/v1/discover"),
            "",
        );
        if status == 200
            && body
                .as_array()
                .is_some_and(|l| l.iter().any(|e| e["name"] == a_name.as_str()))
        {
            break;
        }
        assert!(Instant::now() < deadline, "A never registered: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    set_and_get(format!("clasp://{a_name}"), options, "/disc/rdv").await;
}

#[tokio::test]
async fn clasp_name_that_nobody_answers_is_a_clear_connect_error() {
    let options = DiscoverOptions {
        timeout: Duration::from_millis(500),
        ..loopback_options()
    };
    let Err(err) = Client::builder("clasp://No Such Relay Anywhere")
        .discovery(options)
        .reconnect(false)
        .connect()
        .await
    else {
        panic!("no relay has that name, yet the client connected");
    };
    assert!(err.to_string().contains("No Such Relay Anywhere"), "{err}");
}

// ---------------------------------------------------------------- broadcast

#[test]
fn a_python_hello_gets_a_welcome_and_garbage_gets_nothing() {
    let bport = free_udp_port();
    let name = unique("Hello Relay");
    let relay = Relay::start(&[
        "--name",
        &name,
        "--no-mdns",
        "--broadcast-port",
        &bport.to_string(),
    ]);
    let probe = script("broadcast_probe.py");
    let garbage = 30;
    let out = python(
        &[
            probe.to_str().expect("utf-8"),
            "127.0.0.1",
            &bport.to_string(),
            &garbage.to_string(),
        ],
        "broadcast probe",
    );
    assert_eq!(out["garbage_answers"], 0, "{out}");
    // The official Python client decodes the answer as a WELCOME from this relay...
    assert_eq!(out["welcome"]["type"], "WELCOME", "{out}");
    assert_eq!(out["welcome"]["name"], name.as_str(), "{out}");
    assert!(
        out["welcome"]["session"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{out}"
    );
    // ...and so does ours, with the port in the info frame after it.
    let reply = hex::decode(out["reply_hex"].as_str().expect("hex")).expect("hex");
    let decoded = clasp::proto::decode_frame(&reply).expect("a frame");
    assert!(matches!(decoded.message, clasp::proto::Message::Welcome(_)));
    let found =
        clasp_actors::discovery::broadcast::parse_answer(&reply, ([127, 0, 0, 1], bport).into())
            .expect("an answer");
    assert_eq!(found.url, format!("ws://127.0.0.1:{}", relay.port));

    // Every datagram was counted; the relay is still up and answering.
    let metrics = http(
        "GET",
        &format!("http://127.0.0.1:{}/metrics", relay.port),
        "",
    )
    .1;
    let text = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains(&format!(
            "clasp_discovery_broadcast_rejected_total {garbage}"
        )),
        "{text}"
    );
    assert!(
        text.contains("clasp_discovery_broadcast_answered_total 1"),
        "{text}"
    );
    // The people-facing output: one NAME<TAB>URL<TAB>SOURCE line per relay.
    let mut cmd = Command::new(CLASP);
    cmd.args([
        "discover",
        "--timeout",
        "2",
        "--no-mdns",
        "--broadcast-to",
        "127.0.0.1",
    ])
    .args(["--broadcast-port", &bport.to_string()]);
    let out = run_with_timeout(cmd, Duration::from_secs(30), "clasp discover");
    let line = format!("{name}\tws://127.0.0.1:{}\tbroadcast", relay.port);
    assert!(
        out.stdout.lines().any(|l| l == line),
        "{:?} / {}",
        out.stdout,
        out.stderr
    );
    assert!(out.status.is_some_and(|s| s.success()), "{}", out.stderr);
}

// ---------------------------------------------------------------- rendezvous

fn rendezvous_relay(extra: &[&str]) -> (Relay, String) {
    let rport = common::free_port();
    let mut args = vec!["--no-mdns", "--broadcast-port", "0"];
    let port = rport.to_string();
    args.extend(["--rendezvous-port", &port]);
    args.extend(extra);
    let relay = Relay::start(&args);
    let base = format!("http://127.0.0.1:{rport}/api/v1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while http("GET", &format!("{base}/health"), "").0 != 200 {
        assert!(Instant::now() < deadline, "rendezvous never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    (relay, base)
}

#[test]
fn rendezvous_register_discover_refresh_expire_unregister() {
    // A TTL long enough that a slow python start on a loaded machine does not expire an
    // entry between two steps, short enough to watch it expire.
    let (_relay, base) = rendezvous_relay(&["--rendezvous-ttl", "6"]);
    assert_eq!(
        http("GET", &format!("{base}/health"), ""),
        (200, Json::from("OK"))
    );
    let body = r#"{"name":"desk","features":["param","event"],"endpoints":{"ws":"ws://10.0.0.5:7330"},"tags":["stage"],"metadata":{"room":"A"}}"#;
    let (status, reg) = http("POST", &format!("{base}/register"), body);
    assert_eq!(status, 201, "{reg}");
    assert_eq!(reg["ttl"], 6, "{reg}");
    let id = reg["id"].as_str().expect("id").to_string();
    let other = r#"{"name":"lamp","features":["param"],"tags":["foyer"]}"#;
    assert_eq!(http("POST", &format!("{base}/register"), other).0, 201);

    let (status, by_tag) = http("GET", &format!("{base}/discover?tag=stage"), "");
    assert_eq!(status, 200);
    let by_tag = by_tag.as_array().cloned().unwrap_or_default();
    assert_eq!(by_tag.len(), 1, "{by_tag:?}");
    assert_eq!(by_tag[0]["name"], "desk");
    assert_eq!(by_tag[0]["endpoints"]["ws"], "ws://10.0.0.5:7330");
    assert_eq!(by_tag[0]["metadata"]["room"], "A");
    assert!(
        by_tag[0]["registeredAt"].as_u64().is_some() && by_tag[0]["lastSeen"].as_u64().is_some()
    );
    let by_feature = http("GET", &format!("{base}/discover?feature=event"), "").1;
    assert_eq!(by_feature.as_array().map(Vec::len), Some(1), "{by_feature}");
    let all = http("GET", &format!("{base}/discover?limit=1"), "").1;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "limit: {all}");

    // Refreshing keeps "desk" past the TTL; "lamp" is not refreshed and expires.
    assert_eq!(http("POST", &format!("{base}/refresh/{id}"), "").0, 200);
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(http("POST", &format!("{base}/refresh/{id}"), "").0, 200);
    }
    let left = http("GET", &format!("{base}/discover"), "").1;
    let names: Vec<_> = left
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(names, vec![Json::from("desk")], "{left}");

    assert_eq!(
        http("DELETE", &format!("{base}/unregister/{id}"), "").0,
        204
    );
    assert_eq!(
        http("DELETE", &format!("{base}/unregister/{id}"), "").0,
        404
    );
    assert_eq!(http("POST", &format!("{base}/refresh/{id}"), "").0, 404);

    // An entry left alone expires after the TTL.
    let (_, reg) = http("POST", &format!("{base}/register"), body);
    let id = reg["id"].as_str().expect("id").to_string();
    std::thread::sleep(Duration::from_millis(6600));
    let gone = http("GET", &format!("{base}/discover?tag=stage"), "").1;
    assert_eq!(gone.as_array().map(Vec::len), Some(0), "{gone}");
    assert_eq!(http("POST", &format!("{base}/refresh/{id}"), "").0, 404);
}

#[test]
fn rendezvous_rejects_bad_bodies_with_400_and_keeps_serving() {
    let (_relay, base) = rendezvous_relay(&[]);
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(20_000));
    let many_tags = format!(
        r#"{{"name":"n","tags":[{}]}}"#,
        (0..40)
            .map(|i| format!("\"t{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cases: Vec<(&str, String)> = vec![
        ("not JSON", "{not json".into()),
        ("empty", String::new()),
        ("array", "[1,2]".into()),
        ("no name", r#"{"features":["param"]}"#.into()),
        ("empty name", r#"{"name":"  "}"#.into()),
        ("wrong type", r#"{"name":5}"#.into()),
        ("tags not strings", r#"{"name":"n","tags":[1]}"#.into()),
        ("unknown field", r#"{"name":"n","colour":"red"}"#.into()),
        ("too many tags", many_tags),
        (
            "nested junk",
            "{\"name\":\"n\",\"metadata\":[[[[[]]]]]}".into(),
        ),
        ("invalid utf-8 escape", "{\"name\":\"\\ud800\"}".into()),
    ];
    for (what, body) in &cases {
        let (status, answer) = http("POST", &format!("{base}/register"), body);
        assert_eq!(status, 400, "{what}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {answer}"
        );
    }
    let (status, _) = http("POST", &format!("{base}/register"), &big);
    assert!(status == 400 || status == 413, "oversized body: {status}");
    let (status, answer) = http("GET", &format!("{base}/discover?limit=lots"), "");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(http("GET", &format!("{base}/health"), "").0, 200);
    assert_eq!(
        http("POST", &format!("{base}/register"), r#"{"name":"ok"}"#).0,
        201
    );
}

#[test]
fn rendezvous_limits_are_clear_errors_and_cors_is_open() {
    let (_relay, base) =
        rendezvous_relay(&["--rendezvous-max", "3", "--rendezvous-max-per-ip", "2"]);
    assert_eq!(
        http("POST", &format!("{base}/register"), r#"{"name":"a"}"#).0,
        201
    );
    assert_eq!(
        http("POST", &format!("{base}/register"), r#"{"name":"b"}"#).0,
        201
    );
    let (status, answer) = http("POST", &format!("{base}/register"), r#"{"name":"c"}"#);
    assert_eq!(status, 429, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 2 per address")),
        "{answer}"
    );
    let cors = http_origin(
        "GET",
        &format!("{base}/discover"),
        "https://console.example",
    );
    assert_eq!(cors["status"], 200, "{cors}");
    assert!(
        cors["cors"].as_str().is_some(),
        "no Access-Control-Allow-Origin: {cors}"
    );

    let (_relay2, base2) =
        rendezvous_relay(&["--rendezvous-max", "2", "--rendezvous-max-per-ip", "0"]);
    for n in ["a", "b"] {
        assert_eq!(
            http(
                "POST",
                &format!("{base2}/register"),
                &format!(r#"{{"name":"{n}"}}"#)
            )
            .0,
            201
        );
    }
    let (status, answer) = http("POST", &format!("{base2}/register"), r#"{"name":"c"}"#);
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("registry full")),
        "{answer}"
    );
}

#[test]
fn a_relay_registers_itself_with_another_relays_rendezvous_and_leaves_at_shutdown() {
    let (_b, base) = rendezvous_relay(&["--rendezvous-ttl", "3"]);
    let root = base.trim_end_matches("/api/v1").to_string();
    let a_name = unique("Member Relay");
    let mut a = Relay::start(&[
        "--name",
        &a_name,
        "--no-mdns",
        "--broadcast-port",
        "0",
        "--rendezvous-url",
        &root,
        "--rendezvous-refresh",
        "1",
        "--rendezvous-tag",
        "stage",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let list = http("GET", &format!("{base}/discover?tag=stage"), "").1;
        if let Some(e) = list
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == a_name.as_str()))
        {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "B never listed A: {list}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        entry["endpoints"]["ws"],
        format!("ws://127.0.0.1:{}", a.port),
        "{entry}"
    );
    // Refreshed: still listed after more than the TTL.
    std::thread::sleep(Duration::from_secs(4));
    let list = http("GET", &format!("{base}/discover?tag=stage"), "").1;
    assert!(
        list.as_array()
            .is_some_and(|l| l.iter().any(|e| e["name"] == a_name.as_str())),
        "A expired despite refreshing: {list}"
    );
    // `clasp discover --rendezvous` shows where it was found.
    let found = discover(
        &[],
        &[
            "--timeout",
            "2",
            "--no-mdns",
            "--no-broadcast",
            "--rendezvous",
            &root,
            "--tag",
            "stage",
        ],
    );
    let row = row(&found, &a_name, "rendezvous").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(row["url"], format!("ws://127.0.0.1:{}", a.port));
    // A unregisters when it shuts down.
    assert!(
        a.terminate(Duration::from_secs(10)).is_some(),
        "A did not stop"
    );
    let list = http("GET", &format!("{base}/discover?tag=stage"), "").1;
    assert!(
        list.as_array()
            .is_some_and(|l| l.iter().all(|e| e["name"] != a_name.as_str())),
        "A still listed: {list}"
    );
}

#[test]
fn a_taken_rendezvous_port_fails_the_start_clearly() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let mut cmd = Command::new(CLASP);
    cmd.args([
        "relay",
        "--host",
        "127.0.0.1",
        "--ws-port",
        &common::free_port().to_string(),
    ])
    .args([
        "--no-mdns",
        "--broadcast-port",
        "0",
        "--rendezvous-port",
        &port.to_string(),
    ]);
    let out = run_with_timeout(cmd, Duration::from_secs(20), "relay with a taken port");
    assert!(out.status.is_some_and(|s| !s.success()), "{}", out.stderr);
    assert!(out.stderr.contains("rendezvous port"), "{}", out.stderr);
}

// ---------------------------------------------------------------- two network namespaces

/// Two network namespaces joined by a veth pair (multicast on), deleted on drop, also when
/// the test fails. Needs root: without it the test fails, it does not skip.
struct Netns {
    a: String,
    b: String,
    a_ip: String,
    broadcast: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (iproute2): {e}"));
    assert!(
        out.status.success(),
        "`ip {}` failed (the namespace tests need root and iproute2): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    fn create() -> Netns {
        let id = std::process::id() % 100_000;
        let subnet = 10 + id % 240;
        let (a, b) = (format!("clasp-da-{id}"), format!("clasp-db-{id}"));
        let (va, vb) = (format!("vcda{id}"), format!("vcdb{id}"));
        let guard = Netns {
            a: a.clone(),
            b: b.clone(),
            a_ip: format!("10.213.{subnet}.1"),
            broadcast: format!("10.213.{subnet}.255"),
        };
        ip(&["netns", "add", &a]);
        ip(&["netns", "add", &b]);
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        ip(&["link", "set", &va, "netns", &a]);
        ip(&["link", "set", &vb, "netns", &b]);
        for (ns, dev, host) in [(&a, &va, 1), (&b, &vb, 2)] {
            let addr = format!("10.213.{subnet}.{host}/24");
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &addr,
                "broadcast",
                &guard.broadcast,
                "dev",
                dev,
            ]);
            ip(&["-n", ns, "link", "set", dev, "multicast", "on"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        guard
    }

    fn exec(&self, ns: &str) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), ns.into()]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A relay process in a namespace; killed on drop.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mdns_and_broadcast_work_across_two_network_namespaces() {
    assert!(
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0")),
        "the network-namespace test needs root (ip netns add); run the suite as root"
    );
    let net = Netns::create();
    let name = unique("Netns Relay");
    let (ws, bport) = (7330u16, 7331u16);
    // Declared after `net`, so it is dropped (killed) before the namespaces are deleted.
    let _relay = Spawned(
        Command::new("ip")
            .args(["netns", "exec", &net.a, CLASP, "relay", "--host", "0.0.0.0"])
            .args(["--ws-port", &ws.to_string(), "--name", &name])
            .args([
                "--broadcast-port",
                &bport.to_string(),
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the relay in namespace A"),
    );
    let in_b = net.exec(&net.b);
    let prefix: Vec<&str> = in_b.iter().map(String::as_str).collect();
    let want = format!("ws://{}:{ws}", net.a_ip);
    let mut list = Vec::new();
    for _ in 0..5 {
        list = discover(
            &prefix,
            &[
                "--timeout",
                "3",
                "--broadcast-to",
                &net.broadcast,
                "--broadcast-port",
                &bport.to_string(),
            ],
        );
        if row(&list, &name, "mdns").is_some() && row(&list, &name, "broadcast").is_some() {
            break;
        }
    }
    let mdns =
        row(&list, &name, "mdns").unwrap_or_else(|| panic!("mDNS across namespaces: {list:?}"));
    assert_eq!(mdns["url"], want.as_str());
    let bcast = row(&list, &name, "broadcast")
        .unwrap_or_else(|| panic!("broadcast across namespaces: {list:?}"));
    assert_eq!(bcast["url"], want.as_str());

    // The independent peer sees the advert from namespace B too.
    let zc = script("zeroconf_browse.py");
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &net.b,
        "python3",
        zc.to_str().expect("utf-8"),
    ])
    .args([&net.b_ip(), &name, "10"]);
    let out = run_with_timeout(
        cmd,
        Duration::from_secs(30),
        "python-zeroconf in namespace B",
    );
    let peer: Json = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} / {}", out.stdout, out.stderr));
    assert_eq!(peer["port"], ws, "{peer}");
    assert_eq!(peer["addresses"][0], net.a_ip.as_str(), "{peer}");
    assert_eq!(peer["txt"]["ws"], ws.to_string(), "{peer}");

    // The CLI client in B reaches the relay by name alone.
    let url = format!("clasp://{name}");
    let mut set = Command::new("ip");
    set.args([
        "netns", "exec", &net.b, CLASP, "--url", &url, "set", "/netns/x", "7",
    ]);
    let out = run_with_timeout(set, Duration::from_secs(30), "clasp set by name");
    assert!(
        out.status.is_some_and(|s| s.success()),
        "{} {}",
        out.stdout,
        out.stderr
    );
    let mut get = Command::new("ip");
    get.args([
        "netns", "exec", &net.b, CLASP, "--url", &url, "get", "/netns/x",
    ]);
    let out = run_with_timeout(get, Duration::from_secs(30), "clasp get by name");
    assert!(
        out.status.is_some_and(|s| s.success()),
        "{} {}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains('7'), "{}", out.stdout);
}

impl Netns {
    fn b_ip(&self) -> String {
        self.a_ip.trim_end_matches(".1").to_string() + ".2"
    }
}
