//! The relay binary at the protocol level, where the official clients cannot go: the
//! handshake, every invalid frame of the spec's vectors, admission, timeouts, /health and
//! the SIGTERM drain.

mod common;

use std::time::{Duration, Instant};

use clasp_proto::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as Ws;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(port: u16, subprotocol: bool) -> (Client, Option<String>) {
    let mut request = format!("ws://127.0.0.1:{port}/any/path")
        .into_client_request()
        .expect("request");
    if subprotocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("clasp"));
    }
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
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

async fn recv_within(ws: &mut Client, within: Duration) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()? {
            Some(Ok(Ws::Binary(b))) => {
                return Some(decode_frame(&b).expect("relay frames decode").message)
            }
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

async fn recv(ws: &mut Client) -> Message {
    recv_within(ws, Duration::from_secs(3))
        .await
        .expect("a frame within 3 s")
}

async fn hello(ws: &mut Client) -> Welcome {
    let hello = Message::Hello(Hello {
        version: 1,
        features: FeatureSet::CLIENT_DEFAULT,
        name: "raw".into(),
        token: None,
    });
    send(ws, QoS::Fire, &hello).await;
    let Message::Welcome(w) = recv(ws).await else {
        panic!("WELCOME first")
    };
    assert!(
        matches!(recv(ws).await, Message::Snapshot(_)),
        "then a SNAPSHOT"
    );
    w
}

/// Waits for the relay to close the socket; the close code, if any.
async fn closed_within(ws: &mut Client, within: Duration) -> Option<Option<u16>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Ws::Close(frame)))) => return Some(frame.map(|f| u16::from(f.code))),
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return Some(None),
        }
    }
}

fn addr(s: &str) -> Address {
    Address::parse(s).expect("valid")
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64
}

#[tokio::test]
async fn handshake_echoes_the_subprotocol_and_welcomes_with_the_clock() {
    let relay = Relay::start(&[]);
    let (mut ws, echoed) = open(relay.port, true).await;
    assert_eq!(echoed.as_deref(), Some("clasp"));
    let w = hello(&mut ws).await;
    assert!(
        now_us().abs_diff(w.time) < 1_000_000,
        "WELCOME time within 1 s"
    );
    assert!(!w.session.is_empty());
    // No subprotocol offered: accepted, none echoed.
    let (mut plain, echoed) = open(relay.port, false).await;
    assert_eq!(echoed, None);
    hello(&mut plain).await;
}

#[tokio::test]
async fn ack_only_for_qos_confirm_and_revisions_count_up() {
    let relay = Relay::start(&[]);
    let (mut ws, _) = open(relay.port, true).await;
    hello(&mut ws).await;
    send(&mut ws, QoS::Fire, &Message::Set(Set::new(addr("/r/x"), 1))).await;
    assert_eq!(
        recv_within(&mut ws, Duration::from_millis(300)).await,
        None,
        "no ACK for QoS 0"
    );
    send(
        &mut ws,
        QoS::Confirm,
        &Message::Set(Set::new(addr("/r/x"), 2)),
    )
    .await;
    match recv(&mut ws).await {
        Message::Ack(a) => assert_eq!((a.address.as_deref(), a.revision), (Some("/r/x"), Some(2))),
        other => panic!("expected ACK, got {other:?}"),
    }
}

#[tokio::test]
async fn revision_conflict_and_lock_errors() {
    let relay = Relay::start(&[]);
    let (mut a, _) = open(relay.port, true).await;
    hello(&mut a).await;
    let mut lock = Set::new(addr("/l/x"), 1);
    lock.lock = true;
    send(&mut a, QoS::Confirm, &Message::Set(lock)).await;
    assert!(matches!(recv(&mut a).await, Message::Ack(_)));
    let mut stale = Set::new(addr("/l/x"), 5);
    stale.revision = Some(7);
    send(&mut a, QoS::Confirm, &Message::Set(stale)).await;
    match recv(&mut a).await {
        Message::Error(e) => assert_eq!((e.code, e.address.as_deref()), (400, Some("/l/x"))),
        other => panic!("expected ERROR 400, got {other:?}"),
    }
    let (mut b, _) = open(relay.port, true).await;
    hello(&mut b).await;
    send(
        &mut b,
        QoS::Confirm,
        &Message::Set(Set::new(addr("/l/x"), 2)),
    )
    .await;
    match recv(&mut b).await {
        Message::Error(e) => assert_eq!(e.code, 401),
        other => panic!("expected ERROR 401, got {other:?}"),
    }
    // The holder disconnects: the lock goes with it.
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(
        &mut b,
        QoS::Confirm,
        &Message::Set(Set::new(addr("/l/x"), 3)),
    )
    .await;
    assert!(matches!(
        recv(&mut b).await,
        Message::Ack(Ack {
            revision: Some(2),
            ..
        })
    ));
}

#[tokio::test]
async fn ping_sync_query_announce_and_unknown_get() {
    let relay = Relay::start(&[]);
    let (mut ws, _) = open(relay.port, true).await;
    hello(&mut ws).await;
    send(&mut ws, QoS::Fire, &Message::Ping).await;
    assert_eq!(recv(&mut ws).await, Message::Pong);
    let t1 = now_us();
    send(
        &mut ws,
        QoS::Fire,
        &Message::Sync(ClockSync {
            t1,
            t2: None,
            t3: None,
        }),
    )
    .await;
    match recv(&mut ws).await {
        Message::Sync(s) => {
            let (t2, t3) = (s.t2.expect("t2"), s.t3.expect("t3"));
            assert_eq!(s.t1, t1);
            assert!(t2 <= t3 && now_us().abs_diff(t3) < 1_000_000);
        }
        other => panic!("expected SYNC, got {other:?}"),
    }
    let announce = Announce {
        namespace: "/lumen".into(),
        signals: vec![SignalDef {
            address: "/lumen/opacity".into(),
            signal: SignalType::Param,
            datatype: Some("f64".into()),
            access: Some("rw".into()),
            meta: None,
        }],
    };
    send(&mut ws, QoS::Confirm, &Message::Announce(announce)).await;
    assert!(
        matches!(recv(&mut ws).await, Message::Ack(Ack { address: Some(ref a), .. }) if a == "/lumen")
    );
    send(
        &mut ws,
        QoS::Fire,
        &Message::Query(Query {
            pattern: Pattern::compile("/lumen/**").expect("valid"),
        }),
    )
    .await;
    match recv(&mut ws).await {
        Message::Result(r) => assert_eq!(
            r.signals
                .iter()
                .map(|s| s.address.as_str())
                .collect::<Vec<_>>(),
            ["/lumen/opacity"]
        ),
        other => panic!("expected RESULT, got {other:?}"),
    }
    send(
        &mut ws,
        QoS::Fire,
        &Message::Get(Get {
            address: addr("/nothing/here"),
        }),
    )
    .await;
    assert_eq!(recv_within(&mut ws, Duration::from_millis(500)).await, None);
}

#[tokio::test]
async fn every_invalid_frame_gets_an_error_and_the_connection_stays() {
    let data: serde_json::Value =
        serde_json::from_str(include_str!("../proto/tests/data/vectors.json")).expect("vectors");
    let relay = Relay::start(&[]);
    let (mut ws, _) = open(relay.port, true).await;
    hello(&mut ws).await;
    for v in data["invalid_frames"].as_array().expect("invalid_frames") {
        let name = v["name"].as_str().expect("name");
        let bytes = hex::decode(v["hex"].as_str().expect("hex")).expect("hex");
        ws.send(Ws::Binary(bytes)).await.expect("sends");
        match recv(&mut ws).await {
            Message::Error(e) => {
                let want: &[u16] = if name == "set_address_multibyte_first_char" {
                    &[200]
                } else {
                    &[100, 101]
                };
                assert!(
                    want.contains(&e.code),
                    "{name}: ERROR {} {}",
                    e.code,
                    e.message
                );
            }
            other => panic!("{name}: expected ERROR, got {other:?}"),
        }
        send(&mut ws, QoS::Fire, &Message::Ping).await;
        assert_eq!(
            recv(&mut ws).await,
            Message::Pong,
            "{name}: connection still works"
        );
    }
    // Text messages are not CLASP: ignored.
    ws.send(Ws::Text("hello".into())).await.expect("sends");
    send(&mut ws, QoS::Fire, &Message::Ping).await;
    assert_eq!(recv(&mut ws).await, Message::Pong);
    // An oversized WebSocket message closes with 1009 and the relay lives on.
    ws.send(Ws::Binary(vec![0x53; 200_000]))
        .await
        .expect("sends");
    assert_eq!(
        closed_within(&mut ws, Duration::from_secs(3)).await,
        Some(Some(1009))
    );
    let (mut again, _) = open(relay.port, true).await;
    hello(&mut again).await;
}

#[tokio::test]
async fn sessions_without_hello_are_closed() {
    let relay = Relay::start(&[]);
    // First message not HELLO: closed at once.
    let (mut ws, _) = open(relay.port, true).await;
    send(&mut ws, QoS::Fire, &Message::Ping).await;
    assert_eq!(
        closed_within(&mut ws, Duration::from_secs(3)).await,
        Some(Some(1008))
    );
    // Nothing at all: closed after 10 s.
    let (mut idle, _) = open(relay.port, true).await;
    let started = Instant::now();
    assert_eq!(
        closed_within(&mut idle, Duration::from_secs(12)).await,
        Some(Some(1008))
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn max_sessions_refuses_with_error_501_and_a_close() {
    let relay = Relay::start(&["--max-sessions", "2"]);
    let (mut a, _) = open(relay.port, true).await;
    hello(&mut a).await;
    let (mut b, _) = open(relay.port, true).await;
    hello(&mut b).await;
    let (mut c, _) = open(relay.port, true).await;
    match recv(&mut c).await {
        Message::Error(e) => assert_eq!(e.code, 501, "{}", e.message),
        other => panic!("expected ERROR 501, got {other:?}"),
    }
    assert_eq!(
        closed_within(&mut c, Duration::from_secs(3)).await,
        Some(Some(1013))
    );
    // A slot frees when a session ends.
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut d, _) = open(relay.port, true).await;
    hello(&mut d).await;
}

#[tokio::test]
async fn idle_sessions_time_out() {
    let relay = Relay::start(&["--session-timeout", "1"]);
    let (mut ws, _) = open(relay.port, true).await;
    hello(&mut ws).await;
    // tokio-tungstenite answers the relay's pings only while we read; stop reading.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        closed_within(&mut ws, Duration::from_secs(3))
            .await
            .is_some(),
        "closed"
    );
}

#[tokio::test]
async fn health_reports_sessions_params_and_actors() {
    let relay = Relay::start(&["--shards", "2"]);
    let (mut ws, _) = open(relay.port, true).await;
    hello(&mut ws).await;
    send(
        &mut ws,
        QoS::Confirm,
        &Message::Set(Set::new(addr("/h/x"), 1)),
    )
    .await;
    assert!(matches!(recv(&mut ws).await, Message::Ack(_)));
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", relay.port))
        .await
        .expect("connects");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes");
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.expect("reads");
    let body = raw.split("\r\n\r\n").nth(1).expect("a body");
    let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(json["sessions"], 1);
    assert_eq!(json["params"], 1);
    assert!(json["uptime"].as_f64().is_some() && json["version"].is_string());
    assert_eq!(json["actors"]["shard-0"]["state"], "running");
    assert_eq!(json["actors"]["shard-1"]["state"], "running");
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let mut relay = Relay::start(&["--drain-timeout", "5"]);
    let (mut ws, _) = open(relay.port, true).await;
    hello(&mut ws).await;
    let started = Instant::now();
    let status = relay
        .terminate(Duration::from_secs(7))
        .expect("exits within the drain timeout");
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(
        closed_within(&mut ws, Duration::from_secs(2)).await,
        Some(Some(1001))
    );
}

async fn expect_error(ws: &mut Client) -> ErrorMessage {
    match recv(ws).await {
        Message::Error(e) => e,
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn each_refusal_has_its_error_code() {
    let relay = Relay::start(&[]);
    let (mut ws, _) = open(relay.port, true).await;
    hello(&mut ws).await;

    // 202: a pattern the relay cannot compile (raw bytes: our encoder only takes valid ones).
    let mut payload = vec![0x10, 0, 0, 0, 1];
    payload.extend_from_slice(&4u16.to_be_bytes());
    payload.extend_from_slice(b"/a//");
    payload.extend_from_slice(&[0xFF, 0]);
    let mut frame = vec![0x53, 0x01];
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(&payload);
    ws.send(Ws::Binary(frame)).await.expect("sends");
    let e = expect_error(&mut ws).await;
    assert_eq!(
        (e.code, e.address.as_deref()),
        (202, Some("/a//")),
        "{}",
        e.message
    );

    // 403: FEDERATION_SYNC from a session without the federation feature.
    let sync = FederationSync {
        op: FederationOp::DeclareNamespaces,
        patterns: vec![Pattern::compile("/site/**").expect("valid")],
        revisions: vec![],
        since_revision: None,
        origin: None,
    };
    send(&mut ws, QoS::Confirm, &Message::FederationSync(sync)).await;
    assert_eq!(expect_error(&mut ws).await.code, 403);

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
    let e = expect_error(&mut ws).await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "Target session not found: nobody")
    );

    // 501: REPLAY without a journal.
    let replay = Replay {
        pattern: Pattern::compile("/**").expect("valid"),
        from: None,
        to: None,
        limit: None,
        types: TypeMask::ALL,
    };
    send(&mut ws, QoS::Confirm, &Message::Replay(replay)).await;
    assert_eq!(expect_error(&mut ws).await.code, 501);

    // 429: the 1001st subscription of a session.
    for id in 0..1000u32 {
        let sub = Subscribe {
            id,
            pattern: Pattern::compile(&format!("/many/{id}")).expect("valid"),
            types: TypeMask::ALL,
            options: SubscribeOptions::default(),
        };
        send(&mut ws, QoS::Fire, &Message::Subscribe(sub)).await;
    }
    let sub = Subscribe {
        id: 5000,
        pattern: Pattern::compile("/many/extra").expect("valid"),
        types: TypeMask::ALL,
        options: SubscribeOptions::default(),
    };
    send(&mut ws, QoS::Fire, &Message::Subscribe(sub)).await;
    let e = expect_error(&mut ws).await;
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
    let mut frame = vec![0x53, 0x01];
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(&payload);
    ws.send(Ws::Binary(frame)).await.expect("sends");
    let e = expect_error(&mut ws).await;
    assert_eq!((e.code, e.address.as_deref()), (200, Some("nope")));

    // Still serving after all of it.
    send(&mut ws, QoS::Fire, &Message::Ping).await;
    assert_eq!(recv(&mut ws).await, Message::Pong);
}
