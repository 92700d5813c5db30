//! A minimal CLASP client over tokio-tungstenite: WebSocket with subprotocol `clasp`, one
//! binary frame per WS message, every frame encoded and decoded by `clasp-proto`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clasp_proto::{
    decode_frame, encode_frame, Address, FeatureSet, FrameHeader, Hello, Message, Pattern, QoS,
    Set, Subscribe, SubscribeOptions, TypeMask, Value, Welcome, PROTOCOL_VERSION, WS_SUBPROTOCOL,
};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

/// One client connection.
pub type Ws = WebSocketStream<TcpStream>;

/// How long any single handshake step may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a TCP connection (optionally from a given loopback source IP) and upgrades it to a
/// WebSocket offering the `clasp` subprotocol.
pub async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> Result<Ws> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .context("socket()")?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind to source {ip}"))?;
    }
    let tcp = tokio::time::timeout(STEP_TIMEOUT, socket.connect(addr))
        .await
        .map_err(|_| anyhow!("TCP connect to {addr} timed out"))?
        .with_context(|| format!("TCP connect to {addr}"))?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let mut request = format!("ws://{addr}/")
        .into_client_request()
        .context("WebSocket request")?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(WS_SUBPROTOCOL),
    );
    let (ws, _response) =
        tokio::time::timeout(STEP_TIMEOUT, tokio_tungstenite::client_async(request, tcp))
            .await
            .map_err(|_| anyhow!("WebSocket upgrade at {addr} timed out"))?
            .with_context(|| format!("WebSocket upgrade at {addr}"))?;
    Ok(ws)
}

/// Encodes `message` as one binary WS message carrying one CLASP frame.
pub fn frame(message: &Message, qos: QoS) -> Result<WsMessage> {
    let bytes = encode_frame(&FrameHeader::new(qos), message)
        .with_context(|| format!("encoding {}", message.name()))?;
    Ok(WsMessage::Binary(bytes))
}

/// A QoS-Fire SET frame.
pub fn set_frame(address: &Address, value: impl Into<Value>) -> Result<WsMessage> {
    frame(&Message::Set(Set::new(address.clone(), value)), QoS::Fire)
}

/// A SUBSCRIBE to every signal type, without options.
pub fn subscribe_frame(id: u32, pattern: &str) -> Result<WsMessage> {
    let pattern = Pattern::compile(pattern).with_context(|| format!("pattern {pattern:?}"))?;
    frame(
        &Message::Subscribe(Subscribe {
            id,
            pattern,
            types: TypeMask::ALL,
            options: SubscribeOptions::default(),
        }),
        QoS::Fire,
    )
}

/// Parses an address the bench itself chose.
pub fn address(text: &str) -> Result<Address> {
    Address::parse(text).with_context(|| format!("address {text:?}"))
}

/// Decodes a WS message: `Ok(None)` for non-binary messages (pings, text).
pub fn decode(ws_message: &WsMessage) -> Result<Option<Message>> {
    match ws_message {
        WsMessage::Binary(bytes) => decode_frame(bytes)
            .map(|d| Some(d.message))
            .context("undecodable frame from the relay"),
        _ => Ok(None),
    }
}

/// Next decoded CLASP message; `Ok(None)` when the connection closed.
pub async fn recv(ws: &mut Ws) -> Result<Option<Message>> {
    loop {
        match ws.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(anyhow!(e).context("WebSocket read")),
            Some(Ok(WsMessage::Close(close))) => {
                let why = close
                    .map(|c| format!("{} {}", u16::from(c.code), c.reason))
                    .unwrap_or_default();
                bail!("relay closed the connection ({why})");
            }
            Some(Ok(m)) => {
                if let Some(message) = decode(&m)? {
                    return Ok(Some(message));
                }
            }
        }
    }
}

/// Sends HELLO and waits for WELCOME, which must be the first message (WIRE.md §7.1).
pub async fn hello(ws: &mut Ws, name: &str) -> Result<Welcome> {
    let hello = Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        features: FeatureSet::CLIENT_DEFAULT,
        name: name.to_owned(),
        token: None,
    });
    ws.send(frame(&hello, QoS::Fire)?)
        .await
        .context("sending HELLO")?;
    let first = tokio::time::timeout(STEP_TIMEOUT, recv(ws))
        .await
        .map_err(|_| anyhow!("no WELCOME within {STEP_TIMEOUT:?}"))??;
    match first {
        Some(Message::Welcome(w)) => Ok(w),
        Some(Message::Error(e)) => {
            bail!("relay answered HELLO with ERROR {}: {}", e.code, e.message)
        }
        Some(other) => bail!(
            "relay answered HELLO with {} instead of WELCOME",
            other.name()
        ),
        None => bail!("relay closed the connection before WELCOME"),
    }
}

/// Connects and completes the HELLO/WELCOME handshake.
pub async fn session(addr: SocketAddr, name: &str) -> Result<Ws> {
    let mut ws = connect(addr, None).await?;
    hello(&mut ws, name).await?;
    Ok(ws)
}
