//! A raw-protocol WebSocket client for relay tests, and an in-process relay on a free port.
#![allow(dead_code)]

use std::time::Duration;

use clasp_actors::{Relay, RelayConfig};
use clasp_proto::{
    decode_frame, encode_frame, Address, FeatureSet, FrameHeader, Hello, Message, Pattern, QoS,
    Subscribe, SubscribeOptions, TypeMask,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;

pub type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Starts a relay on 127.0.0.1 with an ephemeral port.
pub fn relay(config: RelayConfig) -> (Relay, u16) {
    let relay = Relay::start(RelayConfig {
        host: "127.0.0.1".into(),
        port: 0,
        ..config
    })
    .expect("relay starts");
    let port = relay.local_addrs()[0].port();
    (relay, port)
}

/// Connects, says HELLO and consumes WELCOME and the initial SNAPSHOT frames.
pub async fn connect(port: u16) -> Client {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
        .await
        .expect("connects");
    let hello = Message::Hello(Hello {
        version: 1,
        features: FeatureSet::CLIENT_DEFAULT,
        name: "test".into(),
        token: None,
    });
    send(&mut ws, QoS::Fire, &hello).await;
    assert!(matches!(recv(&mut ws).await, Message::Welcome(_)));
    assert!(matches!(recv(&mut ws).await, Message::Snapshot(_)));
    ws
}

pub async fn send(ws: &mut Client, qos: QoS, m: &Message) {
    let frame = encode_frame(&FrameHeader::new(qos), m).expect("encodes");
    ws.send(Ws::Binary(frame)).await.expect("sends");
}

/// Next CLASP message within 3 s.
pub async fn recv(ws: &mut Client) -> Message {
    recv_within(ws, Duration::from_secs(3))
        .await
        .expect("a frame within the timeout")
}

/// Next CLASP message, or `None` if nothing arrives in `within`.
pub async fn recv_within(ws: &mut Client, within: Duration) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        match msg {
            Some(Ok(Ws::Binary(b))) => {
                return Some(decode_frame(&b).expect("relay frames decode").message)
            }
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

/// Everything that arrives within `within`.
pub async fn drain(ws: &mut Client, within: Duration) -> Vec<Message> {
    let deadline = tokio::time::Instant::now() + within;
    let mut out = Vec::new();
    while let Some(m) = recv_within(
        ws,
        deadline.saturating_duration_since(tokio::time::Instant::now()),
    )
    .await
    {
        out.push(m);
    }
    out
}

pub async fn subscribe(ws: &mut Client, id: u32, pattern: &str, options: SubscribeOptions) {
    let sub = Subscribe {
        id,
        pattern: Pattern::compile(pattern).expect("valid"),
        types: TypeMask::ALL,
        options,
    };
    send(ws, QoS::Fire, &Message::Subscribe(sub)).await;
    // Let the shards register it before the test writes.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

pub fn addr(s: &str) -> Address {
    Address::parse(s).expect("valid")
}

/// The next message, which must be an ERROR.
pub async fn expect_error(ws: &mut Client) -> clasp_proto::ErrorMessage {
    match recv(ws).await {
        Message::Error(e) => e,
        other => panic!("expected ERROR, got {other:?}"),
    }
}
