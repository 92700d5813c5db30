//! The relay binary at the protocol level, where the official clients cannot go: the
//! WebSocket handshake, ACK policy, revisions, conflicts and locks, clock sync, every invalid
//! frame of the spec's vectors, admission, timeouts, /health and the SIGTERM drain. Frames are
//! built and read with `clasp-proto`; each test starts its own relay; every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use clasp_proto::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as Ws;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The longest any single reply may take.
const REPLY: Duration = Duration::from_secs(3);
/// How long "nothing is sent" is watched for.
const SILENCE: Duration = Duration::from_millis(500);

/// Opens a WebSocket (offering subprotocol `clasp` or none); returns the echoed subprotocol.
async fn open(port: u16, offer_clasp: bool) -> (Client, Option<String>) {
    let mut request = format!("ws://127.0.0.1:{port}/any/path")
        .into_client_request()
        .expect("request");
    if offer_clasp {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("clasp"));
    }
    let (ws, response) = tokio::time::timeout(REPLY, tokio_tungstenite::connect_async(request))
        .await
        .expect("upgrade answered within 3 s")
        .expect("upgrade accepted");
    let echoed = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (ws, echoed)
}

async fn send(ws: &mut Client, qos: QoS, m: &Message) {
    let frame = encode_frame(&FrameHeader::new(qos), m).expect("encodes");
    ws.send(Ws::Binary(frame)).await.expect("sends");
}

/// The next CLASP frame within `within`; `None` if nothing came or the socket closed. WS
/// control frames are skipped; a text message from the relay fails the test (§1.1).
async fn recv_within(ws: &mut Client, within: Duration) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()? {
            Some(Ok(Ws::Binary(b))) => {
                return Some(
                    decode_frame(&b)
                        .unwrap_or_else(|e| panic!("relay sent an undecodable frame {b:02x?}: {e}"))
                        .message,
                )
            }
            Some(Ok(Ws::Text(t))) => panic!("relay sent a text message: {t:?}"),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

async fn recv(ws: &mut Client) -> Message {
    recv_within(ws, REPLY)
        .await
        .expect("a frame from the relay within 3 s")
}

/// Nothing arrives for [`SILENCE`].
async fn assert_silent(ws: &mut Client, what: &str) {
    if let Some(m) = recv_within(ws, SILENCE).await {
        panic!("{what}: expected nothing, got {m:?}");
    }
}

/// PING gets PONG: the connection works.
async fn assert_alive(ws: &mut Client, what: &str) {
    send(ws, QoS::Fire, &Message::Ping).await;
    assert_eq!(
        recv_within(ws, REPLY).await,
        Some(Message::Pong),
        "{what}: PING still gets PONG"
    );
}

async fn say_hello(ws: &mut Client, name: &str) {
    let hello = Message::Hello(Hello {
        version: 1,
        features: FeatureSet::CLIENT_DEFAULT,
        name: name.into(),
        token: None,
    });
    send(ws, QoS::Fire, &hello).await;
}

/// HELLO; WELCOME must come first, then the initial SNAPSHOT (possibly in several chunks).
async fn hello(ws: &mut Client) -> (Welcome, Snapshot) {
    say_hello(ws, "raw").await;
    let welcome = match recv(ws).await {
        Message::Welcome(w) => w,
        other => panic!("expected WELCOME first, got {other:?}"),
    };
    let snapshot = match recv(ws).await {
        Message::Snapshot(s) => s,
        other => panic!("expected the initial SNAPSHOT after WELCOME, got {other:?}"),
    };
    (welcome, snapshot)
}

async fn session(port: u16) -> Client {
    let (mut ws, _) = open(port, true).await;
    hello(&mut ws).await;
    ws
}

/// How the relay ended a connection.
#[derive(Debug, PartialEq)]
enum Ended {
    /// A Close frame with this code (`None`: a Close frame without a code).
    Close(Option<u16>),
    /// The TCP connection ended without a Close frame.
    Dropped,
}

/// Waits for the relay to end the socket; `None` if it is still open after `within`.
async fn ended_within(ws: &mut Client, within: Duration) -> Option<Ended> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Ws::Close(frame)))) => {
                return Some(Ended::Close(frame.map(|f| u16::from(f.code))))
            }
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return Some(Ended::Dropped),
        }
    }
}

fn addr(s: &str) -> Address {
    Address::parse(s).expect("valid address")
}

fn pattern(s: &str) -> Pattern {
    Pattern::compile(s).expect("valid pattern")
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

fn set(address: &str, value: impl Into<Value>) -> Message {
    Message::Set(Set::new(addr(address), value))
}

fn get(address: &str) -> Message {
    Message::Get(Get {
        address: addr(address),
    })
}

fn subscribe(id: u32, p: &str) -> Message {
    Message::Subscribe(Subscribe {
        id,
        pattern: pattern(p),
        types: TypeMask::ALL,
        options: SubscribeOptions::default(),
    })
}

async fn expect_ack(ws: &mut Client, what: &str) -> Ack {
    match recv(ws).await {
        Message::Ack(a) => a,
        other => panic!("{what}: expected ACK, got {other:?}"),
    }
}

async fn expect_error(ws: &mut Client, what: &str) -> ErrorMessage {
    match recv(ws).await {
        Message::Error(e) => e,
        other => panic!("{what}: expected ERROR, got {other:?}"),
    }
}

/// The one param a GET answers with.
async fn get_param(ws: &mut Client, address: &str) -> ParamState {
    send(ws, QoS::Fire, &get(address)).await;
    match recv(ws).await {
        Message::Snapshot(mut s) if s.params.len() == 1 => s.params.remove(0),
        other => panic!("GET {address}: expected a one-param SNAPSHOT, got {other:?}"),
    }
}

// ---- handshake -------------------------------------------------------------------------

#[tokio::test]
async fn subprotocol_clasp_is_echoed() {
    let relay = Relay::start(&[]);
    let (mut ws, echoed) = open(relay.port, true).await;
    assert_eq!(
        echoed.as_deref(),
        Some("clasp"),
        "Sec-WebSocket-Protocol echoed"
    );
    hello(&mut ws).await;
}

#[tokio::test]
async fn client_offering_no_subprotocol_is_accepted() {
    let relay = Relay::start(&[]);
    let (mut ws, echoed) = open(relay.port, false).await;
    assert_eq!(echoed, None, "no subprotocol offered, none chosen");
    hello(&mut ws).await;
    assert_alive(&mut ws, "session without subprotocol").await;
}

#[tokio::test]
async fn welcome_carries_the_relay_clock_and_name_and_is_followed_by_a_snapshot() {
    let relay = Relay::start(&["--name", "Stage left"]);
    let (mut ws, _) = open(relay.port, true).await;
    let before = now_us();
    let (w, snapshot) = hello(&mut ws).await;
    let after = now_us();
    assert!(
        w.time + 1_000_000 >= before && w.time <= after + 1_000_000,
        "WELCOME time {} within 1 s of the local clock [{before}, {after}]",
        w.time
    );
    assert_eq!(w.version, 1);
    assert_eq!(w.name, "Stage left", "--name is sent in WELCOME");
    assert!(!w.session.is_empty(), "a session id");
    assert!(
        snapshot.params.is_empty(),
        "a fresh relay's SNAPSHOT is empty"
    );

    // A later session gets its own id, and its initial SNAPSHOT holds the state.
    send(&mut ws, QoS::Confirm, &set("/w/x", 1.5)).await;
    expect_ack(&mut ws, "SET /w/x").await;
    let (mut late, _) = open(relay.port, true).await;
    let (w2, snapshot) = hello(&mut late).await;
    assert_ne!(w2.session, w.session, "distinct session ids");
    let p = snapshot
        .params
        .iter()
        .find(|p| p.address.as_str() == "/w/x")
        .expect("initial SNAPSHOT has /w/x");
    assert_eq!((p.value.clone(), p.revision), (Value::Float(1.5), 1));
    assert_eq!(
        p.writer.as_deref(),
        Some(w.session.as_str()),
        "writer is the first session"
    );
}

// ---- SET: ACK policy, revisions, conflicts, locks --------------------------------------

#[tokio::test]
async fn set_with_qos_confirm_or_commit_is_acked_and_qos_fire_is_not() {
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;
    send(&mut ws, QoS::Fire, &set("/r/fire", 1)).await;
    assert_silent(&mut ws, "SET with QoS 0 (the Python client's)").await;

    send(&mut ws, QoS::Confirm, &set("/r/confirm", 1)).await;
    let a = expect_ack(&mut ws, "SET with QoS 1").await;
    assert_eq!(
        (a.address.as_deref(), a.revision),
        (Some("/r/confirm"), Some(1)),
        "ACK {{address, revision}}"
    );
    send(&mut ws, QoS::Commit, &set("/r/confirm", 2)).await;
    let a = expect_ack(&mut ws, "SET with QoS 2").await;
    assert_eq!(
        (a.address.as_deref(), a.revision),
        (Some("/r/confirm"), Some(2))
    );
    // The QoS 0 write was applied all the same.
    assert_eq!(get_param(&mut ws, "/r/fire").await.value, Value::Int(1));
}

#[tokio::test]
async fn revisions_start_at_one_and_increase_by_one_per_write() {
    let relay = Relay::start(&[]);
    let mut writer = session(relay.port).await;
    let mut watcher = session(relay.port).await;
    send(&mut watcher, QoS::Fire, &subscribe(1, "/rev/**")).await;
    assert_alive(&mut watcher, "after SUBSCRIBE").await;

    for (i, value) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let want = i as u64 + 1;
        send(&mut writer, QoS::Confirm, &set("/rev/x", value)).await;
        let a = expect_ack(&mut writer, "SET").await;
        assert_eq!(a.revision, Some(want), "ACK revision of write {want}");
        match recv(&mut watcher).await {
            Message::Set(s) => {
                assert_eq!(s.address.as_str(), "/rev/x");
                assert_eq!(s.value, Value::from(value));
                assert_eq!(
                    s.revision,
                    Some(want),
                    "broadcast SET carries the new revision"
                );
            }
            other => panic!("subscriber: expected SET, got {other:?}"),
        }
    }
    let p = get_param(&mut writer, "/rev/x").await;
    assert_eq!((p.value, p.revision), (Value::from("d"), 4));
    // Another address has its own count.
    send(&mut writer, QoS::Confirm, &set("/rev/y", 0)).await;
    assert_eq!(
        expect_ack(&mut writer, "SET /rev/y").await.revision,
        Some(1)
    );
}

#[tokio::test]
async fn set_with_a_wrong_expected_revision_gets_error_400_and_changes_nothing() {
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;
    let mut watcher = session(relay.port).await;
    send(&mut watcher, QoS::Fire, &subscribe(1, "/cas/**")).await;
    assert_alive(&mut watcher, "after SUBSCRIBE").await;
    for v in [1, 2] {
        send(&mut ws, QoS::Confirm, &set("/cas/x", v)).await;
        expect_ack(&mut ws, "SET").await;
        assert!(matches!(recv(&mut watcher).await, Message::Set(_)));
    }

    let mut stale = Set::new(addr("/cas/x"), 99);
    stale.revision = Some(1);
    send(&mut ws, QoS::Confirm, &Message::Set(stale)).await;
    let e = expect_error(&mut ws, "SET expecting revision 1 of a param at 2").await;
    assert_eq!(
        (e.code, e.address.as_deref()),
        (400, Some("/cas/x")),
        "{}",
        e.message
    );
    assert_silent(&mut watcher, "a refused SET is not broadcast").await;
    let p = get_param(&mut ws, "/cas/x").await;
    assert_eq!((p.value, p.revision), (Value::Int(2), 2), "state unchanged");

    // The right expected revision is accepted.
    let mut fresh = Set::new(addr("/cas/x"), 3);
    fresh.revision = Some(2);
    send(&mut ws, QoS::Confirm, &Message::Set(fresh)).await;
    assert_eq!(
        expect_ack(&mut ws, "SET expecting 2").await.revision,
        Some(3)
    );
}

fn locking(address: &str, value: impl Into<Value>, lock: bool, unlock: bool) -> Message {
    let mut s = Set::new(addr(address), value);
    s.lock = lock;
    s.unlock = unlock;
    Message::Set(s)
}

#[tokio::test]
async fn lock_refuses_other_sessions_with_401_until_the_holder_unlocks() {
    let relay = Relay::start(&[]);
    let mut a = session(relay.port).await;
    let mut b = session(relay.port).await;
    send(&mut a, QoS::Confirm, &locking("/lock/x", 1, true, false)).await;
    assert_eq!(expect_ack(&mut a, "A locks").await.revision, Some(1));

    send(&mut b, QoS::Confirm, &set("/lock/x", 2)).await;
    let e = expect_error(&mut b, "B writes a param A holds").await;
    assert_eq!(
        (e.code, e.address.as_deref()),
        (401, Some("/lock/x")),
        "{}",
        e.message
    );
    // The unlock flag does not get a non-holder through.
    send(&mut b, QoS::Confirm, &locking("/lock/x", 3, false, true)).await;
    let e = expect_error(&mut b, "B writes with the unlock flag").await;
    assert_eq!(e.code, 401, "{}", e.message);
    assert_eq!(
        get_param(&mut b, "/lock/x").await.value,
        Value::Int(1),
        "B changed nothing"
    );

    // The holder may still write, and releases with unlock.
    send(&mut a, QoS::Confirm, &set("/lock/x", 4)).await;
    assert_eq!(expect_ack(&mut a, "holder writes").await.revision, Some(2));
    send(&mut a, QoS::Confirm, &locking("/lock/x", 5, false, true)).await;
    assert_eq!(expect_ack(&mut a, "holder unlocks").await.revision, Some(3));
    send(&mut b, QoS::Confirm, &set("/lock/x", 6)).await;
    assert_eq!(
        expect_ack(&mut b, "B writes after unlock").await.revision,
        Some(4)
    );
}

#[tokio::test]
async fn lock_is_released_when_its_holder_disconnects() {
    let relay = Relay::start(&[]);
    let mut a = session(relay.port).await;
    let mut b = session(relay.port).await;
    send(&mut a, QoS::Confirm, &locking("/lock/y", 1, true, false)).await;
    expect_ack(&mut a, "A locks").await;
    send(&mut b, QoS::Confirm, &set("/lock/y", 2)).await;
    assert_eq!(expect_error(&mut b, "B while A holds").await.code, 401);

    a.close(None).await.expect("A closes");
    drop(a);
    // The relay notices the close asynchronously: retry for a bounded time.
    let deadline = Instant::now() + REPLY;
    loop {
        send(&mut b, QoS::Confirm, &set("/lock/y", 3)).await;
        match recv(&mut b).await {
            Message::Ack(ack) => {
                assert_eq!(ack.revision, Some(2));
                break;
            }
            Message::Error(e) if e.code == 401 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("B after A disconnected: expected ACK, got {other:?}"),
        }
    }
}

// ---- SYNC, PING, ANNOUNCE/QUERY, GET ---------------------------------------------------

#[tokio::test]
async fn sync_answers_t1_with_receive_and_send_times() {
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;
    let t1 = now_us();
    let sync = Message::Sync(ClockSync {
        t1,
        t2: None,
        t3: None,
    });
    send(&mut ws, QoS::Fire, &sync).await;
    let s = match recv(&mut ws).await {
        Message::Sync(s) => s,
        other => panic!("expected SYNC, got {other:?}"),
    };
    let t4 = now_us();
    let (t2, t3) = (s.t2.expect("t2"), s.t3.expect("t3"));
    assert_eq!(s.t1, t1, "t1 echoed");
    assert!(t2 <= t3, "t2 {t2} <= t3 {t3}");
    // Same machine, same clock: the relay's times fall between ours, give or take 1 s.
    assert!(
        t2 + 1_000_000 >= t1 && t3 <= t4 + 1_000_000,
        "t1 {t1} t2 {t2} t3 {t3} t4 {t4}"
    );
}

#[tokio::test]
async fn ping_gets_pong() {
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;
    for _ in 0..3 {
        assert_alive(&mut ws, "PING").await;
    }
}

#[tokio::test]
async fn query_after_announce_gets_result() {
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;
    let announce = Announce {
        namespace: "/lumen".into(),
        signals: vec![
            SignalDef {
                address: "/lumen/opacity".into(),
                signal: SignalType::Param,
                datatype: Some("f64".into()),
                access: Some("rw".into()),
                meta: None,
            },
            SignalDef {
                address: "/lumen/fire".into(),
                signal: SignalType::Event,
                datatype: None,
                access: None,
                meta: None,
            },
        ],
    };
    send(&mut ws, QoS::Confirm, &Message::Announce(announce)).await;
    let a = expect_ack(&mut ws, "ANNOUNCE with QoS 1").await;
    assert_eq!(
        a.address.as_deref(),
        Some("/lumen"),
        "ACK names the namespace"
    );

    let query = |p: &str| {
        Message::Query(Query {
            pattern: pattern(p),
        })
    };
    send(&mut ws, QoS::Fire, &query("/lumen/**")).await;
    let mut signals = match recv(&mut ws).await {
        Message::Result(r) => r.signals,
        other => panic!("expected RESULT, got {other:?}"),
    };
    signals.sort_by(|x, y| x.address.cmp(&y.address));
    assert_eq!(
        signals,
        vec![
            SignalInfo {
                address: "/lumen/fire".into(),
                signal: SignalType::Event,
                datatype: None,
                access: None,
            },
            SignalInfo {
                address: "/lumen/opacity".into(),
                signal: SignalType::Param,
                datatype: Some("f64".into()),
                access: Some("rw".into()),
            },
        ]
    );
    send(&mut ws, QoS::Fire, &query("/elsewhere/**")).await;
    match recv(&mut ws).await {
        Message::Result(r) => assert!(r.signals.is_empty(), "no match: {r:?}"),
        other => panic!("expected an empty RESULT, got {other:?}"),
    }
}

#[tokio::test]
async fn get_of_an_unknown_address_gets_nothing() {
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;
    send(&mut ws, QoS::Fire, &get("/nothing/here")).await;
    assert_silent(&mut ws, "GET of an unknown address").await;
    assert_alive(&mut ws, "after GET").await;
}

// ---- malformed input -------------------------------------------------------------------

#[tokio::test]
async fn every_invalid_frame_gets_an_error_and_the_connection_keeps_working() {
    let data: serde_json::Value =
        serde_json::from_str(include_str!("../proto/tests/data/vectors.json")).expect("vectors");
    let vectors = data["invalid_frames"].as_array().expect("invalid_frames");
    assert_eq!(vectors.len(), 9, "the spec has 9 invalid frames");
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;
    let mut failures = Vec::new();
    for v in vectors {
        let name = v["name"].as_str().expect("name");
        let bytes = hex::decode(v["hex"].as_str().expect("hex")).expect("hex");
        ws.send(Ws::Binary(bytes)).await.expect("sends");
        let want: &[u16] = if name == "set_address_multibyte_first_char" {
            &[200]
        } else {
            &[100, 101]
        };
        match recv_within(&mut ws, REPLY).await {
            Some(Message::Error(e)) if want.contains(&e.code) => {}
            other => failures.push(format!("{name}: expected ERROR {want:?}, got {other:?}")),
        }
        send(&mut ws, QoS::Fire, &Message::Ping).await;
        match recv_within(&mut ws, REPLY).await {
            Some(Message::Pong) => {}
            other => {
                failures.push(format!("{name}: afterwards PING got {other:?}, not PONG"));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // And the relay itself is unharmed.
    let mut fresh = session(relay.port).await;
    assert_alive(&mut fresh, "a new session").await;
}

#[tokio::test]
async fn text_messages_are_ignored() {
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;
    ws.send(Ws::Text("hello".into())).await.expect("sends");
    ws.send(Ws::Text("{\"type\":\"SET\"}".into()))
        .await
        .expect("sends");
    assert_silent(&mut ws, "text message").await;
    assert_alive(&mut ws, "after text messages").await;
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009_and_the_relay_lives_on() {
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;
    ws.send(Ws::Binary(vec![0x53; 200_000]))
        .await
        .expect("sends");
    assert_eq!(
        ended_within(&mut ws, REPLY).await,
        Some(Ended::Close(Some(1009)))
    );
    let mut again = session(relay.port).await;
    assert_alive(&mut again, "a new session").await;
}

// ---- session lifecycle -----------------------------------------------------------------

#[tokio::test]
async fn a_first_message_that_is_not_hello_closes_the_connection() {
    let relay = Relay::start(&[]);
    let (mut ws, _) = open(relay.port, true).await;
    send(&mut ws, QoS::Fire, &Message::Ping).await;
    assert_eq!(
        ended_within(&mut ws, REPLY).await,
        Some(Ended::Close(Some(1008))),
        "closed with 1008 (policy)"
    );
    let (mut ws, _) = open(relay.port, true).await;
    send(&mut ws, QoS::Confirm, &set("/early/x", 1)).await;
    assert!(
        matches!(ended_within(&mut ws, REPLY).await, Some(Ended::Close(_))),
        "a SET before HELLO closes too"
    );
    let mut fresh = session(relay.port).await;
    send(&mut fresh, QoS::Fire, &get("/early/x")).await;
    assert_silent(&mut fresh, "the SET before HELLO was not applied").await;
}

#[tokio::test]
async fn a_session_without_hello_is_closed_after_10_seconds() {
    let relay = Relay::start(&[]);
    let (mut idle, _) = open(relay.port, true).await;
    let started = Instant::now();
    let ended = ended_within(&mut idle, Duration::from_secs(12)).await;
    let after = started.elapsed();
    assert!(ended.is_some(), "still open after {after:?}");
    assert!(
        after >= Duration::from_secs(9) && after <= Duration::from_millis(11_500),
        "closed after {after:?}, want ~10 s"
    );
    assert_eq!(ended, Some(Ended::Close(Some(1008))));
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close() {
    // RFC 6455 §5.5.1: the endpoint that receives a Close sends one back. Without it the
    // Python client's close() waits on the socket and sees code 1006.
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;
    ws.send(Ws::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .expect("sends Close");
    let started = Instant::now();
    let ended = ended_within(&mut ws, REPLY).await;
    assert_eq!(
        ended,
        Some(Ended::Close(Some(1000))),
        "relay's answer to a client Close (after {:?})",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "answered at once"
    );
}

#[tokio::test]
async fn idle_sessions_time_out() {
    let relay = Relay::start(&["--session-timeout", "1"]);
    let mut ws = session(relay.port).await;
    // tokio-tungstenite answers the relay's WS pings only while we read: stop reading.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        ended_within(&mut ws, REPLY).await.is_some(),
        "a silent peer is closed after --session-timeout"
    );
}

#[tokio::test]
async fn max_sessions_refuses_the_next_connection_with_error_501_and_a_close() {
    let relay = Relay::start(&["--max-sessions", "2"]);
    let mut a = session(relay.port).await;
    let mut b = session(relay.port).await;
    let (mut c, _) = open(relay.port, true).await;
    say_hello(&mut c, "third").await;
    let e = expect_error(&mut c, "third connection").await;
    assert_eq!(e.code, 501, "{}", e.message);
    assert_eq!(
        ended_within(&mut c, REPLY).await,
        Some(Ended::Close(Some(1013))),
        "then closed (1013 try again later)"
    );
    assert_alive(&mut a, "first session").await;
    assert_alive(&mut b, "second session").await;
    // A slot frees when a session ends.
    a.close(None).await.expect("closes");
    drop(a);
    let deadline = Instant::now() + REPLY;
    loop {
        let (mut d, _) = open(relay.port, true).await;
        say_hello(&mut d, "fourth").await;
        match recv(&mut d).await {
            Message::Welcome(_) => break,
            Message::Error(e) if e.code == 501 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("after a session ended: expected WELCOME, got {other:?}"),
        }
    }
}

// ---- /health and shutdown --------------------------------------------------------------

/// `GET <path>` on the WebSocket port: (status line, headers, body).
async fn http_get(port: u16, path: &str) -> (String, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("writes");
    let mut raw = String::new();
    tokio::time::timeout(REPLY, tcp.read_to_string(&mut raw))
        .await
        .expect("answered within 3 s")
        .expect("reads");
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers and body");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_string(),
        headers.to_ascii_lowercase(),
        body.to_string(),
    )
}

#[tokio::test]
async fn health_answers_json_on_the_websocket_port() {
    let relay = Relay::start(&["--shards", "2"]);
    let mut ws = session(relay.port).await;
    send(&mut ws, QoS::Confirm, &set("/h/x", 1)).await;
    expect_ack(&mut ws, "SET").await;
    send(&mut ws, QoS::Confirm, &set("/h/y", 2)).await;
    expect_ack(&mut ws, "SET").await;

    let (status, headers, body) = http_get(relay.port, "/health").await;
    assert!(status.contains(" 200"), "status {status}");
    assert!(
        headers.contains("content-type: application/json"),
        "JSON content type: {headers}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    assert!(json["version"].is_string(), "version: {json}");
    assert!(
        json["uptime"].as_f64().is_some_and(|u| u >= 0.0),
        "uptime: {json}"
    );
    assert_eq!(json["sessions"], 1, "sessions: {json}");
    assert_eq!(json["params"], 2, "params: {json}");
    let actors = json["actors"].as_object().expect("actors is an object");
    assert!(actors.len() >= 2, "one actor per shard at least: {json}");
    for (name, actor) in actors {
        assert!(actor["state"].is_string(), "{name} has a state: {actor}");
    }
}

#[tokio::test]
async fn sigterm_with_connected_clients_exits_zero_within_the_drain_timeout() {
    let mut relay = Relay::start(&["--drain-timeout", "5"]);
    let mut a = session(relay.port).await;
    let mut b = session(relay.port).await;
    send(&mut a, QoS::Fire, &subscribe(1, "/**")).await;
    assert_alive(&mut a, "subscribed").await;
    assert_alive(&mut b, "connected").await;
    let started = Instant::now();
    let status = relay
        .terminate(Duration::from_secs(6))
        .expect("exits within the 5 s drain timeout (+1 s)");
    assert!(status.success(), "exit status {status}");
    for (name, ws) in [("a", &mut a), ("b", &mut b)] {
        assert_eq!(
            ended_within(ws, Duration::from_secs(1)).await,
            Some(Ended::Close(Some(1001))),
            "client {name} closed with 1001 (going away)"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(7));
}

// ---- refusal codes ---------------------------------------------------------------------

fn raw_frame(payload: &[u8]) -> Ws {
    let mut frame = vec![0x53, 0x01];
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(payload);
    Ws::Binary(frame)
}

#[tokio::test]
async fn each_refusal_has_its_error_code() {
    let relay = Relay::start(&[]);
    let mut ws = session(relay.port).await;

    // 202: a pattern the relay cannot compile (raw bytes: our encoder only takes valid ones).
    let mut payload = vec![0x10, 0, 0, 0, 1];
    payload.extend_from_slice(&4u16.to_be_bytes());
    payload.extend_from_slice(b"/a//");
    payload.extend_from_slice(&[0xFF, 0]);
    ws.send(raw_frame(&payload)).await.expect("sends");
    let e = expect_error(&mut ws, "SUBSCRIBE /a//").await;
    assert_eq!(
        (e.code, e.address.as_deref()),
        (202, Some("/a//")),
        "{}",
        e.message
    );

    // 403: FEDERATION_SYNC from a session without the federation feature.
    let sync = FederationSync {
        op: FederationOp::DeclareNamespaces,
        patterns: vec![pattern("/site/**")],
        revisions: vec![],
        since_revision: None,
        origin: None,
    };
    send(&mut ws, QoS::Confirm, &Message::FederationSync(sync)).await;
    assert_eq!(expect_error(&mut ws, "FEDERATION_SYNC").await.code, 403);

    // 404: P2P signal to a session that does not exist.
    let p2p = Publish {
        signal: SignalType::Event,
        phase: GesturePhase::Start,
        address: addr("/clasp/p2p/signal/nobody"),
        payload: Payload::Value(Value::Null),
        timestamp: None,
        id: None,
        rate: None,
    };
    send(&mut ws, QoS::Confirm, &Message::Publish(p2p)).await;
    let e = expect_error(&mut ws, "P2P to nobody").await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "Target session not found: nobody")
    );

    // 501: REPLAY without a journal.
    let replay = Replay {
        pattern: pattern("/**"),
        from: None,
        to: None,
        limit: None,
        types: TypeMask::ALL,
    };
    send(&mut ws, QoS::Confirm, &Message::Replay(replay)).await;
    assert_eq!(expect_error(&mut ws, "REPLAY").await.code, 501);

    // 429: the 1001st subscription of a session.
    for id in 0..1000u32 {
        send(&mut ws, QoS::Fire, &subscribe(id, &format!("/many/{id}"))).await;
    }
    send(&mut ws, QoS::Fire, &subscribe(5000, "/many/extra")).await;
    let e = expect_error(&mut ws, "1001st SUBSCRIBE").await;
    assert_eq!(
        (e.code, e.address.as_deref()),
        (429, Some("/many/extra")),
        "{}",
        e.message
    );

    // 200: an address that does not start with '/'.
    let mut payload = vec![0x22];
    payload.extend_from_slice(&4u16.to_be_bytes());
    payload.extend_from_slice(b"nope");
    ws.send(raw_frame(&payload)).await.expect("sends");
    let e = expect_error(&mut ws, "GET nope").await;
    assert_eq!((e.code, e.address.as_deref()), (200, Some("nope")));

    assert_alive(&mut ws, "after every refusal").await;
}
