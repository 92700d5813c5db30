//! The relay's embedded MQTT broker (`clasp relay --mqtt-port P`) against real MQTT clients:
//! mosquitto_pub / mosquitto_sub in MQTT 3.1.1 and 5.0, the Rust CLASP client on the
//! WebSocket side, and a raw TCP peer (packets built by hand below, independently of the
//! broker's codec) for keep-alive, no-local and malformed input.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clasp::Client;
use clasp_proto::{SignalType, Value};
use common::auth::*;
use common::*;

const WAIT: Duration = Duration::from_secs(5);

/// A relay with the broker on a free port.
struct Broker {
    relay: Relay,
    mqtt: u16,
}

impl Broker {
    fn start(extra: &[&str]) -> Broker {
        let mqtt = free_port();
        let port = mqtt.to_string();
        let mut args = vec!["--mqtt-port", port.as_str()];
        args.extend_from_slice(extra);
        let relay = Relay::start(&args);
        wait_listening(mqtt);
        Broker { relay, mqtt }
    }
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
        .is_err()
    {
        assert!(Instant::now() < deadline, "MQTT port {port} never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `mosquitto_sub` in the background, its printed messages as lines (`-v`: `topic payload`).
struct Sub {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Messages printed before the SUBACK (a resumed session's queue comes first).
    early: std::cell::RefCell<std::collections::VecDeque<String>>,
}

impl Sub {
    /// Starts it and waits for its SUBACK (`-d` prints the protocol exchange).
    fn start(port: u16, args: &[&str]) -> Sub {
        // Line-buffered: mosquitto_sub buffers its output fully when it is a pipe.
        let mut child = Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-d",
                "-v",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub starts (apt install mosquitto-clients)");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut early = std::collections::VecDeque::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(l) if l.contains("received SUBACK") => break,
                Ok(l) if l.starts_with("Client ") || l.starts_with("Subscribed (") => {}
                Ok(l) => early.push_back(l),
                Err(_) => panic!("mosquitto_sub {args:?} got no SUBACK within {WAIT:?}"),
            }
        }
        Sub {
            child,
            lines,
            early: early.into(),
        }
    }

    /// The next printed message within `within`.
    fn next(&self, within: Duration) -> Option<String> {
        if let Some(l) = self.early.borrow_mut().pop_front() {
            return Some(l);
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with("Client ") || l.starts_with("Subscribed (") => {}
                Ok(l) => return Some(l),
                Err(_) => return None,
            }
        }
    }

    fn expect(&self, want: &str) {
        match self.next(WAIT) {
            Some(got) => assert_eq!(got, want),
            None => panic!("mosquitto_sub did not print {want:?} within {WAIT:?}"),
        }
    }

    fn expect_silence(&self, within: Duration) {
        if let Some(got) = self.next(within) {
            panic!("mosquitto_sub printed {got:?}, expected nothing");
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.kill();
    }
}

fn mosquitto(bin: &str, port: u16, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args);
    c
}

fn publish(port: u16, args: &[&str]) {
    run_ok(
        mosquitto("mosquitto_pub", port, args),
        WAIT,
        &format!("mosquitto_pub {args:?}"),
    );
}

async fn clasp_client(url: &str, token: Option<&str>) -> Client {
    let mut b = Client::builder(url)
        .name("mqtt-broker-test")
        .reconnect(false)
        .timeout(Duration::from_secs(3));
    if let Some(t) = token {
        b = b.token(t);
    }
    b.connect().await.expect("the Rust client connects")
}

#[test]
fn wildcard_subscriptions_get_publishes_of_both_versions() {
    let b = Broker::start(&[]);
    let v3 = Sub::start(b.mqtt, &["-V", "mqttv311", "-t", "sensors/#"]);
    let v5 = Sub::start(b.mqtt, &["-V", "mqttv5", "-t", "sensors/+/temp"]);
    publish(
        b.mqtt,
        &["-V", "mqttv311", "-t", "sensors/a/temp", "-m", "22.5"],
    );
    v3.expect("sensors/a/temp 22.5");
    v5.expect("sensors/a/temp 22.5");
    publish(
        b.mqtt,
        &["-V", "mqttv5", "-t", "sensors/b/temp", "-m", "{\"v\":1}"],
    );
    v3.expect("sensors/b/temp {\"v\":1}");
    v5.expect("sensors/b/temp {\"v\":1}");
    // `+` is one level: the v5 filter does not match a deeper topic, `#` does.
    publish(
        b.mqtt,
        &["-V", "mqttv5", "-t", "sensors/b/temp/x", "-m", "1"],
    );
    v3.expect("sensors/b/temp/x 1");
    v5.expect_silence(Duration::from_millis(500));
}

#[test]
fn qos1_and_qos2_publishes_complete_and_are_delivered() {
    let b = Broker::start(&[]);
    let sub = Sub::start(b.mqtt, &["-V", "mqttv5", "-q", "2", "-t", "q/#"]);
    for version in ["mqttv311", "mqttv5"] {
        for qos in ["1", "2"] {
            let msg = format!("{version}-{qos}");
            publish(b.mqtt, &["-V", version, "-q", qos, "-t", "q/x", "-m", &msg]);
            sub.expect(&format!("q/x {msg}"));
        }
    }
}

#[test]
fn unsubscribe_stops_delivery() {
    let b = Broker::start(&[]);
    // A persistent session subscribed to u/#; while connected it gets u/1.
    let mut first = Sub::start(
        b.mqtt,
        &[
            "-V",
            "mqttv311",
            "-c",
            "-i",
            "unsub-test",
            "-q",
            "1",
            "-t",
            "u/#",
        ],
    );
    publish(b.mqtt, &["-t", "u/1", "-m", "one", "-q", "1"]);
    first.expect("u/1 one");
    first.kill();
    // Reconnecting with the same session and unsubscribing (UNSUBSCRIBE) u/#: nothing more.
    let second = Sub::start(
        b.mqtt,
        &[
            "-V",
            "mqttv311",
            "-c",
            "-i",
            "unsub-test",
            "-U",
            "u/#",
            "-t",
            "other/x",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    publish(b.mqtt, &["-t", "u/2", "-m", "two", "-q", "1"]);
    publish(b.mqtt, &["-t", "other/x", "-m", "still-here"]);
    assert_eq!(
        second.next(WAIT).as_deref(),
        Some("other/x still-here"),
        "u/2 must not arrive after UNSUBSCRIBE"
    );
}

#[tokio::test]
async fn retained_is_a_param_and_plain_is_an_event() {
    let b = Broker::start(&[]);
    let mqtt = b.mqtt;
    tokio::task::spawn_blocking(move || {
        publish(mqtt, &["-V", "mqttv311", "-r", "-t", "state/a", "-m", "1"]);
        publish(mqtt, &["-V", "mqttv5", "-t", "state/b", "-m", "2"]);
        // A late MQTT subscriber gets the retained one only.
        let late = Sub::start(mqtt, &["-V", "mqttv5", "-t", "state/#"]);
        late.expect("state/a 1");
        late.expect_silence(Duration::from_millis(300));
    })
    .await
    .expect("mqtt side");
    // A late CLASP client sees the Param /mqtt/state/a and no /mqtt/state/b.
    let c = clasp_client(&b.relay.url(), None).await;
    let mut sub = c.subscribe("/mqtt/**").await.expect("subscribe");
    let mut seen = Vec::new();
    while let Some(u) = sub.next_within(Duration::from_millis(500)).await {
        seen.push((u.address.to_string(), u.value, u.signal));
    }
    assert_eq!(
        seen,
        vec![(
            "/mqtt/state/a".to_string(),
            Value::Int(1),
            SignalType::Param
        )]
    );
    // An empty retained payload clears it: late subscribers get nothing.
    tokio::task::spawn_blocking(move || {
        publish(mqtt, &["-r", "-t", "state/a", "-n"]);
        let late = Sub::start(mqtt, &["-t", "state/#"]);
        late.expect_silence(Duration::from_millis(500));
    })
    .await
    .expect("clear");
}

#[tokio::test]
async fn a_clasp_set_reaches_mqtt_subscribers_live_and_retained() {
    let b = Broker::start(&[]);
    let mqtt = b.mqtt;
    let live = tokio::task::spawn_blocking(move || Sub::start(mqtt, &["-t", "home/light"]))
        .await
        .expect("sub");
    let c = clasp_client(&b.relay.url(), None).await;
    c.set("/mqtt/home/light", "on").await.expect("set");
    let live = tokio::task::spawn_blocking(move || {
        live.expect("home/light on");
        live
    })
    .await
    .expect("live");
    drop(live);
    let out = tokio::task::spawn_blocking(move || {
        run_with_timeout(
            mosquitto(
                "mosquitto_sub",
                mqtt,
                &["-V", "mqttv5", "-t", "home/light", "-C", "1"],
            ),
            WAIT,
            "late mosquitto_sub",
        )
    })
    .await
    .expect("late");
    assert_eq!(out.stdout.trim(), "on", "stderr: {}", out.stderr);
    // Values go out as text: numbers in decimal, arrays and maps as JSON.
    c.set(
        "/mqtt/home/list",
        Value::Array(vec![Value::Int(1), Value::Int(2)]),
    )
    .await
    .expect("set array");
    c.set("/mqtt/home/level", 0.75).await.expect("set float");
    let out = tokio::task::spawn_blocking(move || {
        run_with_timeout(
            mosquitto("mosquitto_sub", mqtt, &["-t", "home/+", "-v", "-C", "3"]),
            WAIT,
            "mosquitto_sub home/+",
        )
    })
    .await
    .expect("values");
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        ["home/level 0.75", "home/light on", "home/list [1,2]"],
        "stderr: {}",
        out.stderr
    );
    // And an MQTT publish reaches the CLASP client.
    let mut sub = c.subscribe("/mqtt/home/**").await.expect("subscribe");
    while sub.next_within(Duration::from_millis(200)).await.is_some() {}
    tokio::task::spawn_blocking(move || {
        publish(
            mqtt,
            &["-t", "home/temp", "-m", "{\"value\":22.5,\"unit\":\"C\"}"],
        )
    })
    .await
    .expect("pub");
    let u = sub.next_within(WAIT).await.expect("the event arrives");
    assert_eq!(u.address.as_str(), "/mqtt/home/temp");
    assert_eq!(u.signal, SignalType::Event);
    assert!(matches!(u.value, Value::Map(_)), "{:?}", u.value);
}

#[test]
fn last_will_is_published_when_a_client_is_killed() {
    let b = Broker::start(&[]);
    let watcher = Sub::start(b.mqtt, &["-t", "wills/#"]);
    for version in ["mqttv311", "mqttv5"] {
        let topic = format!("wills/{version}");
        let mut doomed = Sub::start(
            b.mqtt,
            &[
                "-V",
                version,
                "-t",
                "x",
                "--will-topic",
                &topic,
                "--will-payload",
                "gone",
            ],
        );
        doomed.kill();
        watcher.expect(&format!("{topic} gone"));
    }
    // A clean DISCONNECT publishes no will.
    run_ok(
        mosquitto(
            "mosquitto_pub",
            b.mqtt,
            &[
                "-t",
                "x",
                "-m",
                "1",
                "--will-topic",
                "wills/clean",
                "--will-payload",
                "no",
            ],
        ),
        WAIT,
        "clean publisher",
    );
    watcher.expect_silence(Duration::from_millis(500));
}

#[test]
fn persistent_session_gets_qos1_messages_sent_while_away() {
    let b = Broker::start(&[]);
    for version in ["mqttv311", "mqttv5"] {
        let id = format!("persist-{version}");
        let topic = format!("p/{version}");
        let mut first = Sub::start(
            b.mqtt,
            &["-V", version, "-c", "-i", &id, "-q", "1", "-t", &topic],
        );
        first.kill();
        publish(
            b.mqtt,
            &["-V", version, "-q", "1", "-t", &topic, "-m", "queued"],
        );
        let back = Sub::start(
            b.mqtt,
            &["-V", version, "-c", "-i", &id, "-q", "1", "-t", &topic],
        );
        back.expect(&format!("{topic} queued"));
    }
}

#[test]
fn client_id_takeover_closes_the_first_connection() {
    let b = Broker::start(&[]);
    let mut first = Sub::start(b.mqtt, &["-V", "mqttv311", "-i", "same", "-t", "t/1"]);
    let _second = Sub::start(b.mqtt, &["-V", "mqttv311", "-i", "same", "-t", "t/2"]);
    let deadline = Instant::now() + WAIT;
    // mosquitto_sub reconnects when dropped; its debug shows the broker closed it.
    loop {
        match first
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(l) if l.contains("sending CONNECT") => break,
            Ok(_) => {}
            Err(_) => panic!("the first connection was not closed by the takeover"),
        }
    }
    first.kill();
}

// --- a raw TCP peer, packets built by hand ---

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn mstr(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

fn connect(level: u8, id: &str, keep_alive: u16) -> Vec<u8> {
    let mut body = mstr("MQTT");
    body.push(level);
    body.push(0x02);
    body.extend_from_slice(&keep_alive.to_be_bytes());
    if level == 5 {
        body.push(0);
    }
    body.extend(mstr(id));
    packet(0x10, &body)
}

fn subscribe(level: u8, filter: &str, options: u8) -> Vec<u8> {
    let mut body = 1u16.to_be_bytes().to_vec();
    if level == 5 {
        body.push(0);
    }
    body.extend(mstr(filter));
    body.push(options);
    packet(0x82, &body)
}

fn publish_raw(level: u8, topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = mstr(topic);
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

/// A raw connection that has been accepted (CONNACK 0).
fn raw_session(port: u16, level: u8, id: &str, keep_alive: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(&connect(level, id, keep_alive))
        .expect("CONNECT");
    let (kind, body) = read_packet(&mut s).expect("CONNACK");
    assert_eq!(kind >> 4, 2, "CONNACK");
    assert_eq!(body.get(1), Some(&0), "accepted");
    s
}

/// Reads one packet (type byte, body); `None` on close or timeout.
fn read_packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut first = [0u8; 1];
    s.read_exact(&mut first).ok()?;
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).ok()?;
        len |= usize::from(b[0] & 0x7f) << shift;
        shift += 7;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((first[0], body))
}

/// Reads until the broker closes the socket; the packets it sent first.
fn read_until_closed(s: &mut TcpStream, within: Duration) -> Vec<(u8, Vec<u8>)> {
    s.set_read_timeout(Some(within)).expect("timeout");
    let start = Instant::now();
    let mut got = Vec::new();
    while let Some(p) = read_packet(s) {
        got.push(p);
        assert!(start.elapsed() < within, "still open after {within:?}");
    }
    let mut rest = [0u8; 16];
    assert!(
        matches!(s.read(&mut rest), Ok(0) | Err(_)),
        "the socket is closed"
    );
    assert!(start.elapsed() < within, "not closed within {within:?}");
    got
}

#[test]
fn keep_alive_expiry_drops_a_silent_client() {
    let b = Broker::start(&[]);
    let mut s = raw_session(b.mqtt, 5, "sleepy", 1);
    let start = Instant::now();
    let got = read_until_closed(&mut s, Duration::from_secs(5));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1200),
        "closed too early ({waited:?}): 1.5 x keep-alive is 1.5 s"
    );
    assert_eq!(
        got.last().map(|(k, b)| (*k, b.first().copied())),
        Some((0xE0, Some(0x8D))),
        "v5 DISCONNECT keep-alive timeout"
    );
    // A client that pings stays.
    let mut s = raw_session(b.mqtt, 4, "pinger", 1);
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(600));
        s.write_all(&[0xC0, 0]).expect("PINGREQ");
        assert_eq!(read_packet(&mut s).map(|p| p.0), Some(0xD0), "PINGRESP");
    }
}

#[test]
fn own_publishes_come_back_in_v3_but_not_with_v5_no_local() {
    let b = Broker::start(&[]);
    let mut v3 = raw_session(b.mqtt, 4, "self-v3", 0);
    v3.write_all(&subscribe(4, "loop/#", 0)).expect("SUBSCRIBE");
    assert_eq!(read_packet(&mut v3).map(|p| p.0), Some(0x90), "SUBACK");
    v3.write_all(&publish_raw(4, "loop/a", b"mine"))
        .expect("PUBLISH");
    let (kind, body) = read_packet(&mut v3).expect("own publish comes back (3.1.1)");
    assert_eq!(kind >> 4, 3);
    assert!(body.ends_with(b"mine"));

    let mut v5 = raw_session(b.mqtt, 5, "self-v5", 0);
    v5.write_all(&subscribe(5, "loop/#", 0x04))
        .expect("SUBSCRIBE no-local");
    assert_eq!(read_packet(&mut v5).map(|p| p.0), Some(0x90), "SUBACK");
    v5.write_all(&publish_raw(5, "loop/b", b"mine"))
        .expect("PUBLISH");
    // The v3 client (no no-local) gets it; the v5 publisher does not.
    let (_, body) = read_packet(&mut v3).expect("v3 gets the v5 publish");
    assert!(body.ends_with(b"mine"));
    v5.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    assert!(read_packet(&mut v5).is_none(), "no-local: nothing back");
}

#[test]
fn malformed_input_closes_only_that_connection() {
    let b = Broker::start(&[]);
    let watcher = Sub::start(b.mqtt, &["-t", "ok/#"]);
    // Garbage instead of CONNECT.
    let mut s = TcpStream::connect(("127.0.0.1", b.mqtt)).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    read_until_closed(&mut s, WAIT);
    // A broken PUBLISH on a v5 session: DISCONNECT 0x81 (malformed), then closed.
    let mut s = raw_session(b.mqtt, 5, "broken", 0);
    s.write_all(&[0x30, 0x03, 0xff, 0xff, 0x00]).expect("write");
    let got = read_until_closed(&mut s, WAIT);
    assert_eq!(
        got.last().map(|(k, b)| (*k, b.first().copied())),
        Some((0xE0, Some(0x81)))
    );
    // Over the maximum packet size: DISCONNECT 0x95.
    let mut s = raw_session(b.mqtt, 5, "huge", 0);
    let _ = s.write_all(&[0x30, 0xff, 0xff, 0xff, 0x7f]);
    let got = read_until_closed(&mut s, WAIT);
    assert_eq!(
        got.last().map(|(k, b)| (*k, b.first().copied())),
        Some((0xE0, Some(0x95)))
    );
    // Everyone else is still served.
    publish(b.mqtt, &["-t", "ok/1", "-m", "fine"]);
    watcher.expect("ok/1 fine");
}

#[test]
fn mqtt_clients_count_against_max_sessions() {
    let b = Broker::start(&["--max-sessions", "1"]);
    let _first = Sub::start(b.mqtt, &["-t", "x"]);
    let refused = run_with_timeout(
        mosquitto("mosquitto_pub", b.mqtt, &["-t", "x", "-m", "1"]),
        WAIT,
        "second client",
    );
    assert!(
        !refused.status.is_some_and(|s| s.success()),
        "a second client is refused: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.to_lowercase().contains("unavailable"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_others_are_served() {
    let b = Broker::start(&[]);
    let watcher = Sub::start(b.mqtt, &["-t", "ok/#"]);
    let mut slow = raw_session(b.mqtt, 5, "slow", 0);
    slow.write_all(&subscribe(5, "flood/#", 0))
        .expect("SUBSCRIBE");
    assert_eq!(read_packet(&mut slow).map(|p| p.0), Some(0x90), "SUBACK");
    // 3000 x 16 KiB: more than the default queue (1000) plus what the sockets buffer.
    let mut flood = raw_session(b.mqtt, 4, "flooder", 0);
    let one = publish_raw(4, "flood/x", &[7u8; 16 * 1024]);
    let started = Instant::now();
    for _ in 0..3000 {
        if flood.write_all(&one).is_err() || started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    // The slow client's socket ends (after what was already buffered).
    read_until_closed(&mut slow, Duration::from_secs(30));
    publish(b.mqtt, &["-t", "ok/1", "-m", "fine"]);
    watcher.expect("ok/1 fine");
}

#[tokio::test]
async fn with_auth_the_password_is_a_token_and_its_scopes_apply() {
    let mqtt = free_port();
    let port = mqtt.to_string();
    let r = AuthRelay::start("mqtt-broker", &["--mqtt-port", &port]);
    wait_listening(mqtt);
    let scoped = r.guest(&["write:/mqtt/allowed/**"]);
    let admin = r.admin.clone();
    let c = clasp_client(&r.relay.url(), Some(&admin)).await;
    let mut seen = c.subscribe("/mqtt/**").await.expect("subscribe");
    let results = tokio::task::spawn_blocking(move || {
        let attempt = |args: &[&str]| {
            run_with_timeout(
                mosquitto("mosquitto_pub", mqtt, args),
                WAIT,
                "mosquitto_pub",
            )
        };
        let none = attempt(&["-t", "allowed/x", "-m", "1"]);
        let wrong = attempt(&[
            "-V",
            "mqttv5",
            "-u",
            "x",
            "-P",
            "cpsk_wrong",
            "-t",
            "allowed/x",
            "-m",
            "1",
        ]);
        let forbidden = attempt(&[
            "-u", "x", "-P", &scoped, "-t", "secret/x", "-q", "1", "-m", "1",
        ]);
        let allowed = attempt(&[
            "-u",
            "x",
            "-P",
            &scoped,
            "-t",
            "allowed/x",
            "-q",
            "1",
            "-m",
            "ok",
        ]);
        // Reading needs a read scope covering the whole filter.
        for version in ["mqttv311", "mqttv5"] {
            let denied = run_with_timeout(
                mosquitto(
                    "mosquitto_sub",
                    mqtt,
                    &[
                        "-V", version, "-u", "x", "-P", &scoped, "-t", "secret/#", "-W", "3",
                    ],
                ),
                WAIT,
                "mosquitto_sub outside its scopes",
            );
            assert!(
                format!("{}{}", denied.stdout, denied.stderr).contains("denied"),
                "{version}: {} {}",
                denied.stdout,
                denied.stderr
            );
        }
        (none, wrong, forbidden, allowed)
    })
    .await
    .expect("publishers");
    let (none, wrong, forbidden, allowed) = results;
    for (what, o) in [("no password", &none), ("wrong password", &wrong)] {
        assert!(
            !o.status.is_some_and(|s| s.success()),
            "{what} must be refused: {} {}",
            o.stdout,
            o.stderr
        );
        assert!(
            o.stderr.to_lowercase().contains("not authori"),
            "{what}: {}",
            o.stderr
        );
    }
    assert!(
        forbidden.status.is_some_and(|s| s.success()),
        "{}",
        forbidden.stderr
    );
    assert!(
        allowed.status.is_some_and(|s| s.success()),
        "{}",
        allowed.stderr
    );
    // Only the allowed publish reached CLASP.
    let mut got = Vec::new();
    while let Some(u) = seen.next_within(Duration::from_millis(700)).await {
        got.push((u.address.to_string(), u.value));
    }
    assert_eq!(
        got,
        vec![("/mqtt/allowed/x".to_string(), Value::String("ok".into()))]
    );
    // Revoking the token ends its MQTT connection.
    let token = r.guest(&["read:/mqtt/**"]);
    let revoke = token.clone();
    let mut sub = tokio::task::spawn_blocking(move || {
        Sub::start(
            mqtt,
            &["-V", "mqttv5", "-u", "x", "-P", &token, "-t", "r/#"],
        )
    })
    .await
    .expect("sub");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        matches!(sub.child.try_wait(), Ok(None)),
        "connected before the revocation"
    );
    while let Ok(l) = sub.lines.try_recv() {
        assert!(!l.contains("sending CONNECT"), "reconnected before: {l}");
    }
    let (status, body) = r.post("/auth/revoke", serde_json::json!({ "token": revoke }), None);
    assert_eq!(status, 200, "{body}");
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + WAIT;
        loop {
            if sub.child.try_wait().ok().flatten().is_some() {
                break;
            }
            match sub.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) if l.contains("sending CONNECT") => break,
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "the connection of a revoked token stays open"
            );
        }
        sub.kill();
    })
    .await
    .expect("revoked");
}
