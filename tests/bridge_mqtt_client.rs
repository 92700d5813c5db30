//! The MQTT client bridge (FEATURES MQTT-8, MQTT-2..5 for the bridge, BR-1, BR-2, BR-5)
//! against a real mosquitto started by each test on a free loopback port, driven with
//! `mosquitto_pub` / `mosquitto_sub`, and the Rust CLASP client on the relay's side.

mod common;

use std::fs::File;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clasp_actors::client::Client;
use clasp_proto::{SignalType, Value};
use common::{free_port, run_ok, run_with_timeout, Relay};

const BIN: &str = env!("CARGO_BIN_EXE_clasp");
/// How long a value may take to cross the bridge.
const FLOW: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Processes: mosquitto, the bridge, mosquitto_sub captures. Every one is killed on drop.

/// A scratch directory of one test (configs, logs, payload files).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "clasp-mqttc-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
        .is_err()
    {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A mosquitto broker on a free port, restartable on the same port.
struct Broker {
    port: u16,
    conf: PathBuf,
    proc: Option<Proc>,
}

impl Broker {
    /// Anonymous access allowed.
    fn start(dir: &Path) -> Broker {
        Broker::with_conf(dir, "allow_anonymous true\n")
    }

    /// With extra configuration lines (authentication).
    fn with_conf(dir: &Path, extra: &str) -> Broker {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\n{extra}"))
            .expect("write mosquitto.conf");
        let mut broker = Broker {
            port,
            conf,
            proc: None,
        };
        broker.up();
        broker
    }

    fn up(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (scripts/setup.sh)");
        self.proc = Some(Proc(child));
        wait_port(self.port, "mosquitto");
    }

    fn down(&mut self) {
        self.proc = None;
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// `mosquitto_pub -h 127.0.0.1 -p PORT <args>` must exit 0 within 10 s.
    fn publish(&self, args: &[&str]) {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args);
        run_ok(
            cmd,
            Duration::from_secs(10),
            &format!("mosquitto_pub {args:?}"),
        );
    }

    /// The retained messages under `filter` as `topic payload` lines.
    fn retained(&self, filter: &str) -> Vec<String> {
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-v", "--retained-only", "-W", "2", "-t", filter]);
        let out = run_with_timeout(
            cmd,
            Duration::from_secs(10),
            "mosquitto_sub --retained-only",
        );
        let mut lines: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        lines.sort();
        lines
    }
}

/// `mosquitto_sub` (MQTT 5, retain-as-published) printing `qos retain topic payload`,
/// read as it comes.
struct Capture {
    _proc: Proc,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Capture {
    /// Subscribes to `filter` and returns once the subscription is live (a marker published
    /// on `marker` has come back).
    fn start(broker: &Broker, filter: &str, marker: &str) -> Capture {
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
            .args(["-V", "mqttv5", "--retain-as-published", "-q", "2"])
            .args(["-F", "%q %r %t %p", "-W", "60", "-t", filter])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub is installed");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let capture = Capture {
            _proc: Proc(child),
            out,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            broker.publish(&["-t", marker, "-m", "mark"]);
            std::thread::sleep(Duration::from_millis(100));
            if capture.lines().iter().any(|l| l.contains(marker)) {
                return capture;
            }
            assert!(Instant::now() < deadline, "mosquitto_sub never subscribed");
        }
    }

    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.out.lock().unwrap())
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn raw(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }

    /// Waits until a line equal to `line` has arrived.
    fn expect(&self, line: &str) {
        let deadline = Instant::now() + FLOW;
        while !self.lines().iter().any(|l| l == line) {
            assert!(
                Instant::now() < deadline,
                "mosquitto_sub never printed {line:?}; it printed {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many lines are about `topic`.
    fn count(&self, topic: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.split(' ').nth(2) == Some(topic))
            .count()
    }
}

/// A bridge process (`clasp mqtt ...`) logging to a file.
struct BridgeProc {
    _proc: Proc,
    log: PathBuf,
}

impl BridgeProc {
    /// `clasp mqtt --broker <broker> --target <relay> <extra>`, returned once it has
    /// subscribed on the broker.
    fn start(dir: &Path, relay: &Relay, broker_url: &str, extra: &[&str]) -> BridgeProc {
        let log = dir.join(format!("bridge-{}.log", free_port()));
        let child = Command::new(BIN)
            .args(["mqtt", "--broker", broker_url, "--target", &relay.url()])
            .args(extra)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("bridge log"))
            .spawn()
            .expect("clasp starts");
        let bridge = BridgeProc {
            _proc: Proc(child),
            log,
        };
        bridge.wait_log("connected to the MQTT broker", 1);
        bridge
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `needle` occurs `times` times in the log.
    fn wait_log(&self, needle: &str, times: usize) {
        wait_file(&self.log, needle, times);
    }
}

fn wait_file(path: &Path, needle: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.matches(needle).count() >= times {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} did not appear {times}x in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// The CLASP side: the Rust client.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn clasp(url: &str) -> Client {
    Client::builder(url)
        .name("mqtt-client-test")
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect("the CLASP client connects")
}

/// Polls `get` until `address` holds `expected`.
async fn wait_value(c: &Client, address: &str, expected: &Value) -> u64 {
    let deadline = Instant::now() + FLOW;
    loop {
        let last = c.get(address).await;
        if let Ok(p) = &last {
            if sorted(&p.value) == sorted(expected) {
                return p.revision;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{address} never became {expected:?}; last answer {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Map entries in key order, so JSON objects compare whatever order they were parsed in.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Map(entries) => {
            let mut e: Vec<(String, Value)> = entries
                .iter()
                .map(|(k, v)| (k.clone(), sorted(v)))
                .collect();
            e.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(e)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Tests.

/// MQTT → CLASP: every payload rule, in the standalone bridge.
#[test]
fn broker_payloads_become_values() {
    let dir = scratch("payload-in");
    let broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let _bridge = BridgeProc::start(&dir, &relay, &broker.url(), &[]);
    let raw = dir.join("raw.bin");
    std::fs::write(&raw, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    let raw = raw.to_string_lossy().to_string();
    let cases: Vec<(&str, Vec<&str>, Value)> = vec![
        (
            "in/json",
            vec!["-m", r#"{"value":22.5,"unit":"C"}"#],
            map(&[
                ("unit", Value::String("C".into())),
                ("value", Value::Float(22.5)),
            ]),
        ),
        (
            "in/array",
            vec!["-m", r#"[1,2.5,"x",null]"#],
            Value::Array(vec![
                Value::Int(1),
                Value::Float(2.5),
                Value::String("x".into()),
                Value::Null,
            ]),
        ),
        ("in/int", vec!["-m", "22"], Value::Int(22)),
        ("in/float", vec!["-m", "22.5"], Value::Float(22.5)),
        ("in/bool", vec!["-m", "true"], Value::Bool(true)),
        ("in/null", vec!["-m", "null"], Value::Null),
        (
            "in/quoted",
            vec!["-m", r#""22.5""#],
            Value::String("22.5".into()),
        ),
        ("in/numtext", vec!["-m", "+7.25"], Value::Float(7.25)),
        (
            "in/text",
            vec!["-m", "hello world"],
            Value::String("hello world".into()),
        ),
        (
            "in/bytes",
            vec!["-f", &raw],
            Value::Bytes(vec![0xff, 0xfe, 0x00, 0x01]),
        ),
    ];
    for (topic, payload, _) in &cases {
        let mut args = vec!["-r", "-t", topic];
        args.extend(payload);
        broker.publish(&args);
    }
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        for (topic, _, expected) in &cases {
            wait_value(&c, &format!("/mqtt/{topic}"), expected).await;
        }
    });
}

/// CLASP → MQTT: SETs are retained publishes, events are not, with the outbound payload
/// rules; the default outbound QoS is 0.
#[test]
fn clasp_changes_reach_the_broker() {
    let dir = scratch("payload-out");
    let broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let _bridge = BridgeProc::start(&dir, &relay, &broker.url(), &[]);
    let cap = Capture::start(&broker, "out/#", "out/_mark");
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        c.set("/mqtt/out/float", 22.5).await.unwrap();
        c.set("/mqtt/out/int", -3i64).await.unwrap();
        c.set("/mqtt/out/text", "on").await.unwrap();
        c.set("/mqtt/out/bool", false).await.unwrap();
        c.set("/mqtt/out/null", Value::Null).await.unwrap();
        c.set(
            "/mqtt/out/arr",
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
        )
        .await
        .unwrap();
        c.set("/mqtt/out/map", map(&[("a", Value::Bool(true))]))
            .await
            .unwrap();
        c.set("/mqtt/out/bytes", Value::Bytes(vec![0xc3, 0x28, 0x41]))
            .await
            .unwrap();
        c.emit("/mqtt/out/event", 5i64).await.unwrap();
        // The event is fire-and-forget: a round trip makes sure it has left.
        c.ping().await.unwrap();
    });
    for line in [
        "0 1 out/float 22.5",
        "0 1 out/int -3",
        "0 1 out/text on",
        "0 1 out/bool false",
        "0 1 out/null null",
        "0 1 out/arr [1,2]",
        r#"0 1 out/map {"a":true}"#,
        "0 0 out/event 5",
    ] {
        cap.expect(line);
    }
    let needle = b"out/bytes \xc3\x28\x41";
    assert!(
        cap.raw().windows(needle.len()).any(|w| w == needle),
        "raw bytes published as they are"
    );
    let retained = broker.retained("out/#");
    assert!(
        retained.contains(&"out/float 22.5".to_string()),
        "{retained:?}"
    );
    assert!(
        !retained.iter().any(|l| l.starts_with("out/event")),
        "an event is not retained: {retained:?}"
    );
}

/// MQTT-4: a retained publish is a param (in a late client's snapshot), a non-retained one
/// an event (seen live, never stored).
#[test]
fn retained_is_a_param_and_the_rest_events() {
    let dir = scratch("retain");
    let broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let _bridge = BridgeProc::start(&dir, &relay, &broker.url(), &[]);
    runtime().block_on(async {
        let live = clasp(&relay.url()).await;
        let mut sub = live.subscribe("/mqtt/rv/**").await.unwrap();
        broker.publish(&["-r", "-t", "rv/a", "-m", "1"]);
        broker.publish(&["-t", "rv/b", "-m", "2"]);
        let mut seen = Vec::new();
        let deadline = Instant::now() + FLOW;
        while seen.len() < 2 && Instant::now() < deadline {
            if let Some(u) = sub.next_within(Duration::from_millis(200)).await {
                seen.push((u.address.to_string(), u.signal, u.value));
            }
        }
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            vec![
                ("/mqtt/rv/a".to_string(), SignalType::Param, Value::Int(1)),
                ("/mqtt/rv/b".to_string(), SignalType::Event, Value::Int(2)),
            ]
        );
        let late = clasp(&relay.url()).await;
        let mut snap = late.subscribe("/mqtt/rv/**").await.unwrap();
        let mut got = Vec::new();
        while let Some(u) = snap.next_within(Duration::from_millis(800)).await {
            got.push(u.address.to_string());
        }
        assert_eq!(
            got,
            vec!["/mqtt/rv/a".to_string()],
            "snapshot: the retained one only"
        );
    });
}

/// `--subscribe` filters with `+` and `#`: only matching topics come in.
#[test]
fn wildcard_subscriptions() {
    let dir = scratch("wild");
    let broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let bridge = BridgeProc::start(
        &dir,
        &relay,
        &broker.url(),
        &["--subscribe", "sensors/+/temp", "--subscribe", "dev/#"],
    );
    assert!(bridge.log().contains("sensors/+/temp"));
    broker.publish(&["-r", "-t", "sensors/k/hum", "-m", "40"]);
    broker.publish(&["-r", "-t", "other/z", "-m", "1"]);
    broker.publish(&["-r", "-t", "sensors/k/temp", "-m", "21"]);
    broker.publish(&["-r", "-t", "dev/x/y", "-m", "on"]);
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        wait_value(&c, "/mqtt/sensors/k/temp", &Value::Int(21)).await;
        wait_value(&c, "/mqtt/dev/x/y", &Value::String("on".into())).await;
        // Published before the matching ones, so they would be there by now.
        assert!(
            c.get("/mqtt/sensors/k/hum").await.is_err(),
            "not subscribed"
        );
        assert!(c.get("/mqtt/other/z").await.is_err(), "not subscribed");
    });
}

/// MQTT-5: QoS 1 and 2 publishes complete and arrive; outbound uses `--qos`.
#[test]
fn qos_one_and_two() {
    let dir = scratch("qos");
    let broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let _bridge = BridgeProc::start(&dir, &relay, &broker.url(), &["--qos", "2"]);
    broker.publish(&["-q", "1", "-r", "-t", "q/one", "-m", "1"]);
    broker.publish(&["-q", "2", "-r", "-t", "q/two", "-m", "2"]);
    broker.publish(&["-q", "2", "-t", "q/ev", "-m", "3"]);
    let cap = Capture::start(&broker, "qo/#", "qo/_mark");
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        wait_value(&c, "/mqtt/q/one", &Value::Int(1)).await;
        wait_value(&c, "/mqtt/q/two", &Value::Int(2)).await;
        c.set("/mqtt/qo/x", 9i64).await.unwrap();
        c.emit("/mqtt/qo/e", 8i64).await.unwrap();
        // The event is fire-and-forget: a round trip makes sure it has left.
        c.ping().await.unwrap();
    });
    cap.expect("2 1 qo/x 9");
    cap.expect("2 0 qo/e 8");
}

/// BR-5: nothing loops. The bridge subscribes to `#`, so everything it publishes would
/// come back: each message appears on the broker exactly once over a bounded window, and
/// a value from the broker is written to the router once.
#[test]
fn no_echo_loop() {
    let dir = scratch("loop");
    let broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let _bridge = BridgeProc::start(&dir, &relay, &broker.url(), &[]);
    let cap = Capture::start(&broker, "loop/#", "loop/_mark");
    broker.publish(&["-r", "-t", "loop/in", "-m", "1"]);
    broker.publish(&["-t", "loop/inev", "-m", "2"]);
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        let rev = wait_value(&c, "/mqtt/loop/in", &Value::Int(1)).await;
        assert_eq!(rev, 1);
        c.set("/mqtt/loop/out", 7i64).await.unwrap();
        c.emit("/mqtt/loop/outev", 8i64).await.unwrap();
        // The event is fire-and-forget: a round trip makes sure it has left.
        c.ping().await.unwrap();
        cap.expect("0 1 loop/out 7");
        cap.expect("0 0 loop/outev 8");
        // The window in which an echo would have gone round several times.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            c.get("/mqtt/loop/in").await.unwrap().revision,
            1,
            "written once"
        );
        assert_eq!(
            c.get("/mqtt/loop/out").await.unwrap().revision,
            1,
            "not re-injected"
        );
    });
    for topic in ["loop/in", "loop/inev", "loop/out", "loop/outev"] {
        assert_eq!(cap.count(topic), 1, "{topic} once: {:#?}", cap.lines());
    }
}

/// The broker goes away and comes back on the same port: the bridge reconnects with
/// backoff, re-subscribes, sends the change it kept while disconnected, and values flow
/// both ways again.
#[test]
fn reconnects_after_broker_restart() {
    let dir = scratch("restart");
    let mut broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let bridge = BridgeProc::start(&dir, &relay, &broker.url(), &[]);
    broker.publish(&["-r", "-t", "rc/before", "-m", "1"]);
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        wait_value(&c, "/mqtt/rc/before", &Value::Int(1)).await;
        broker.down();
        bridge.wait_log("connection to the MQTT broker lost", 1);
        c.set("/mqtt/rc/offline", 5i64).await.unwrap();
        c.set("/mqtt/rc/offline", 6i64).await.unwrap();
        broker.up();
        bridge.wait_log("connected to the MQTT broker", 2);
        assert!(
            bridge.log().contains("replayed=1"),
            "the latest offline value is replayed:\n{}",
            bridge.log()
        );
        assert!(broker
            .retained("rc/#")
            .contains(&"rc/offline 6".to_string()));
        broker.publish(&["-r", "-t", "rc/after", "-m", "2"]);
        wait_value(&c, "/mqtt/rc/after", &Value::Int(2)).await;
        c.set("/mqtt/rc/out", 3i64).await.unwrap();
        let deadline = Instant::now() + FLOW;
        while !broker.retained("rc/#").contains(&"rc/out 3".to_string()) {
            assert!(Instant::now() < deadline, "rc/out never reached the broker");
        }
    });
}

/// Topics that are no CLASP address are counted and logged, never fatal.
#[test]
fn bad_topics_are_reported_and_survived() {
    let dir = scratch("bad");
    let broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let bridge = BridgeProc::start(&dir, &relay, &broker.url(), &[]);
    broker.publish(&["-r", "-t", "bad//empty", "-m", "1"]);
    broker.publish(&["-r", "-t", "/leading", "-m", "1"]);
    broker.publish(&["-r", "-t", "star*topic", "-m", "1"]);
    broker.publish(&["-r", "-t", "good/one", "-m", "ok"]);
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        wait_value(&c, "/mqtt/good/one", &Value::String("ok".into())).await;
    });
    bridge.wait_log("bad input", 3);
    assert!(bridge.log().contains("empty level"), "{}", bridge.log());
}

/// Username and password from a mosquitto password file; wrong ones never connect.
#[test]
fn username_and_password() {
    let dir = scratch("auth");
    let pwfile = dir.join("passwd");
    std::fs::write(&pwfile, "").unwrap();
    let mut cmd = Command::new("mosquitto_passwd");
    cmd.arg("-b").arg(&pwfile).args(["bridge", "s3cret"]);
    run_ok(cmd, Duration::from_secs(10), "mosquitto_passwd");
    let broker = Broker::with_conf(
        &dir,
        &format!(
            "allow_anonymous false\npassword_file {}\n",
            pwfile.display()
        ),
    );
    let relay = Relay::start(&[]);
    let _bridge = BridgeProc::start(
        &dir,
        &relay,
        &broker.url(),
        &["--username", "bridge", "--password", "s3cret"],
    );
    broker.publish(&[
        "-u", "bridge", "-P", "s3cret", "-r", "-t", "au/x", "-m", "1",
    ]);
    let wrong = Command::new(BIN)
        .args(["mqtt", "--broker", &broker.url(), "--target", &relay.url()])
        .args([
            "--username",
            "bridge",
            "--password",
            "nope",
            "--namespace",
            "/wrong",
        ])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join("wrong.log")).unwrap())
        .spawn()
        .unwrap();
    let _wrong = Proc(wrong);
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        wait_value(&c, "/mqtt/au/x", &Value::Int(1)).await;
    });
    wait_file(
        &dir.join("wrong.log"),
        "cannot connect to the MQTT broker",
        1,
    );
    // The URL form of the credentials works too.
    let relay2 = Relay::start(&[]);
    let _url_bridge = BridgeProc::start(
        &dir,
        &relay2,
        &format!("mqtt://bridge:s3cret@127.0.0.1:{}", broker.port),
        &[],
    );
    runtime().block_on(async {
        let c = clasp(&relay2.url()).await;
        wait_value(&c, "/mqtt/au/x", &Value::Int(1)).await;
    });
}

/// BR-2: the bridge embedded in the relay (`--mqtt-broker`), under a custom namespace.
#[test]
fn embedded_in_the_relay() {
    let dir = scratch("embedded");
    let broker = Broker::start(&dir);
    let log = dir.join("relay.log");
    let port = free_port();
    let child = Command::new(BIN)
        .args([
            "relay",
            "--host",
            "127.0.0.1",
            "--ws-port",
            &port.to_string(),
        ])
        .args(["--log-level", "info", "--mqtt-broker", &broker.url()])
        .args(["--mqtt-namespace", "/ext/mq"])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _relay = Proc(child);
    wait_port(port, "relay");
    wait_file(&log, "connected to the MQTT broker", 1);
    let url = format!("ws://127.0.0.1:{port}");
    let cap = Capture::start(&broker, "emb/#", "emb/_mark");
    broker.publish(&["-r", "-t", "emb/in", "-m", "4.5"]);
    runtime().block_on(async {
        let c = clasp(&url).await;
        wait_value(&c, "/ext/mq/emb/in", &Value::Float(4.5)).await;
        c.set("/ext/mq/emb/out", "hi").await.unwrap();
        // Outside the namespace: not published.
        c.set("/mqtt/emb/nope", 1i64).await.unwrap();
    });
    cap.expect("0 1 emb/out hi");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cap.count("emb/in"), 1, "no echo: {:#?}", cap.lines());
    assert_eq!(cap.count("emb/nope"), 0);
}

/// With MQTT 3.1.1 (no no-local option) the bridge's own publishes come back from the
/// broker: they are recognised and not re-injected, and nothing goes round twice.
#[test]
fn no_echo_loop_mqtt311() {
    let dir = scratch("loop311");
    let broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let _bridge = BridgeProc::start(&dir, &relay, &broker.url(), &["--mqtt-v311"]);
    let cap = Capture::start(&broker, "l3/#", "l3/_mark");
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        let watcher = clasp(&relay.url()).await;
        let mut sub = watcher.subscribe("/mqtt/l3/**").await.unwrap();
        c.set("/mqtt/l3/out", 7i64).await.unwrap();
        broker.publish(&["-t", "l3/in", "-m", "1"]);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Some(u) = sub.next_within(Duration::from_millis(100)).await {
                seen.push((u.address.to_string(), u.signal));
            }
        }
        assert!(
            seen.contains(&("/mqtt/l3/in".to_string(), SignalType::Event)),
            "{seen:?}"
        );
        let out: Vec<_> = seen.iter().filter(|s| s.0 == "/mqtt/l3/out").collect();
        assert_eq!(
            out,
            [&("/mqtt/l3/out".to_string(), SignalType::Param)],
            "{seen:?}"
        );
        assert_eq!(c.get("/mqtt/l3/out").await.unwrap().revision, 1);
    });
    assert_eq!(cap.count("l3/out"), 1, "{:#?}", cap.lines());
    assert_eq!(cap.count("l3/in"), 1, "{:#?}", cap.lines());
}

/// A burst from the broker is delivered whole: nothing is dropped between paho and the
/// router when the router is slower than the broker.
#[test]
fn inbound_burst_is_not_lost() {
    const N: usize = 2000;
    let dir = scratch("burst");
    // mosquitto queues at most 1000 QoS 1 messages per client by default and drops the
    // rest; a loaded machine can fall that far behind, and that loss would be the broker's.
    let broker = Broker::with_conf(&dir, "allow_anonymous true\nmax_queued_messages 0\n");
    let relay = Relay::start(&[]);
    let _bridge = BridgeProc::start(&dir, &relay, &broker.url(), &["--subscribe", "burst/#"]);
    let lines: String = (0..N).map(|i| format!("{i}\n")).collect();
    let input = dir.join("burst.txt");
    std::fs::write(&input, lines).unwrap();
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        let mut sub = c.subscribe("/mqtt/burst/**").await.unwrap();
        let mut child = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
            .args(["-q", "1", "-t", "burst/ev", "-l"])
            .stdin(File::open(&input).unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < N && Instant::now() < deadline {
            if let Some(u) = sub.next_within(Duration::from_millis(500)).await {
                got.push(u.value);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let expected: Vec<Value> = (0..N as i64).map(Value::Int).collect();
        let missing: Vec<i64> = (0..N as i64)
            .filter(|i| !got.contains(&Value::Int(*i)))
            .take(20)
            .collect();
        assert_eq!(
            got.len(),
            N,
            "all {N} events arrive; first missing {missing:?}"
        );
        assert_eq!(got, expected, "in order");
    });
}

/// `mqtts://` with `--ca-file`: the bridge verifies the broker's certificate (self-signed,
/// made by this test for 127.0.0.1) and values flow both ways over TLS.
#[test]
fn tls_with_ca_file() {
    let dir = scratch("tls");
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("rcgen makes a certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    let broker = Broker::with_conf(
        &dir,
        &format!(
            "allow_anonymous true\ncafile {0}\ncertfile {0}\nkeyfile {1}\n",
            cert.display(),
            key.display()
        ),
    );
    let relay = Relay::start(&[]);
    let cafile = cert.to_string_lossy().to_string();
    let _bridge = BridgeProc::start(
        &dir,
        &relay,
        &format!("mqtts://127.0.0.1:{}", broker.port),
        &["--ca-file", &cafile],
    );
    broker.publish(&["--cafile", &cafile, "-r", "-t", "tls/in", "-m", "1"]);
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        wait_value(&c, "/mqtt/tls/in", &Value::Int(1)).await;
        c.set("/mqtt/tls/out", "secure").await.unwrap();
    });
    let deadline = Instant::now() + FLOW;
    loop {
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
            .args(["--cafile", &cafile, "-v", "--retained-only", "-W", "2"])
            .args(["-t", "tls/out"]);
        let out = run_with_timeout(cmd, Duration::from_secs(10), "mosquitto_sub over TLS");
        if out.stdout.contains("tls/out secure") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tls/out never reached the broker"
        );
    }
    // Without the CA the broker's certificate is refused.
    let wrong = Command::new(BIN)
        .args([
            "mqtt",
            "--broker",
            &format!("mqtts://127.0.0.1:{}", broker.port),
        ])
        .args(["--target", &relay.url(), "--namespace", "/untrusted"])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join("untrusted.log")).unwrap())
        .spawn()
        .unwrap();
    let _wrong = Proc(wrong);
    wait_file(
        &dir.join("untrusted.log"),
        "cannot connect to the MQTT broker",
        1,
    );
}

/// A burst of retained values on one topic: each is written to the router, none is
/// published back (not even an older one whose echo arrives late), and broker and router
/// agree on the last value.
#[test]
fn retained_burst_on_one_topic_does_not_echo() {
    const N: usize = 300;
    let dir = scratch("rburst");
    let broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let _bridge = BridgeProc::start(&dir, &relay, &broker.url(), &[]);
    let cap = Capture::start(&broker, "rb/#", "rb/_mark");
    let input = dir.join("values.txt");
    std::fs::write(&input, (0..N).map(|i| format!("{i}\n")).collect::<String>()).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "mosquitto_pub -h 127.0.0.1 -p {} -r -q 1 -t rb/x -l < {}",
        broker.port,
        input.display()
    ));
    run_ok(cmd, Duration::from_secs(20), "mosquitto_pub -l");
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        wait_value(&c, "/mqtt/rb/x", &Value::Int(N as i64 - 1)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            c.get("/mqtt/rb/x").await.unwrap().value,
            Value::Int(N as i64 - 1)
        );
    });
    assert_eq!(cap.count("rb/x"), N, "only the publisher's messages");
    assert_eq!(broker.retained("rb/#"), vec![format!("rb/x {}", N - 1)]);
}

/// The official JS client on the CLASP side (FEATURES MQTT-2, MQTT-3, MQTT-4): a late JS
/// client's snapshot has the retained broker value as a map and not the event; a JS SET
/// reaches `mosquitto_sub` as a retained publish.
#[test]
fn official_js_client_both_ways() {
    common::require_js_client();
    let dir = scratch("js");
    let broker = Broker::start(&dir);
    let relay = Relay::start(&[]);
    let _bridge = BridgeProc::start(&dir, &relay, &broker.url(), &[]);
    broker.publish(&["-r", "-t", "js/ret", "-m", r#"{"value":22.5,"unit":"C"}"#]);
    broker.publish(&["-t", "js/ev", "-m", "2"]);
    broker.publish(&["-r", "-t", "js/done", "-m", "1"]);
    runtime().block_on(async {
        let c = clasp(&relay.url()).await;
        // Published last, so the other two have been through the bridge once it is here.
        wait_value(&c, "/mqtt/js/done", &Value::Int(1)).await;
    });
    let script = r#"
import { assert, client, recorder, scenario, until } from './js/lib/harness.mjs';
await scenario('mqtt_client_js', async () => {
  const late = await client('js-mqtt-late');
  await until(() => late.cached('/mqtt/js/done') !== undefined, 5000, 'the SNAPSHOT');
  assert.deepEqual(late.cached('/mqtt/js/ret'), { value: 22.5, unit: 'C' }, 'retained → param (a map)');
  assert.equal(late.cached('/mqtt/js/ev'), undefined, 'non-retained → event, not state');
  const echo = recorder(late, '/mqtt/js/light');
  late.set('/mqtt/js/light', 'on');
  await until(() => echo.some((g) => g.value === 'on'), 5000, 'the SET applied');
});
"#;
    let mut cmd = common::node();
    cmd.args(["--input-type=module", "-e", script, "_", &relay.url()]);
    run_ok(cmd, Duration::from_secs(40), "JS scenario mqtt_client_js");
    let deadline = Instant::now() + FLOW;
    while !broker.retained("js/#").contains(&"js/light on".to_string()) {
        assert!(
            Instant::now() < deadline,
            "js/light never reached the broker"
        );
    }
}
