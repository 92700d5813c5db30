//! UDP broadcast discovery (DI-2): a client sends an encoded HELLO frame to the responder's
//! port (usually as a broadcast); the relay answers with a WELCOME frame (its name, its
//! features, a fresh session id). Frames go through the `clasp_proto` codec both ways.
//!
//! WELCOME has no field for the WebSocket port, and a relay's port need not be 7330, so the
//! answer datagram carries a second frame right after the WELCOME: a SET of
//! [`INFO_ADDRESS`] to `{ws: port, tls: bool, auth: bool}`. WIRE §2 rule 3 has decoders
//! ignore bytes after a frame's payload, so a client that only knows WELCOME reads the
//! datagram as before.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clasp_proto::{
    decode_frame, encode_frame, Address, FeatureSet, FrameHeader, Hello, Message, QoS, Set, Value,
    Welcome,
};

use super::{DiscoveryError, DiscoveryStats, Found, Source};

/// The address of the SET that follows the WELCOME in an answer.
pub const INFO_ADDRESS: &str = "/clasp/discovery/relay";

/// Largest datagram read; a HELLO is a few dozen bytes.
const MAX_DATAGRAM: usize = 2048;

/// What the responder answers with.
#[derive(Debug, Clone)]
pub struct Responder {
    /// Relay name (WELCOME name).
    pub name: String,
    /// WebSocket port.
    pub ws_port: u16,
    /// Whether HELLO needs a token.
    pub auth: bool,
    /// Whether the port speaks TLS.
    pub tls: bool,
}

impl Responder {
    /// The answer to one datagram: `None` (and the datagram is not answered) unless it is a
    /// well-formed HELLO frame.
    pub fn answer(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        match decode_frame(datagram).ok()?.message {
            Message::Hello(_) => {}
            _ => return None,
        }
        let welcome = Message::Welcome(Welcome {
            version: clasp_proto::PROTOCOL_VERSION,
            features: FeatureSet::ROUTER_DEFAULT,
            time: crate::clock::now_micros(),
            session: uuid::Uuid::new_v4().to_string(),
            name: self.name.clone(),
            token: None,
        });
        let mut out = encode_frame(&FrameHeader::new(QoS::Fire), &welcome).ok()?;
        let info = Value::Map(vec![
            ("ws".into(), Value::Int(i64::from(self.ws_port))),
            ("tls".into(), Value::Bool(self.tls)),
            ("auth".into(), Value::Bool(self.auth)),
        ]);
        if let Ok(address) = Address::parse(INFO_ADDRESS) {
            let set = Message::Set(Set::new(address, info));
            if let Ok(extra) = encode_frame(&FrameHeader::new(QoS::Fire), &set) {
                out.extend_from_slice(&extra);
            }
        }
        Some(out)
    }
}

/// Binds the responder's socket (so a taken port is reported at start). Must run inside a
/// tokio runtime.
pub fn bind(host: &str, port: u16) -> std::io::Result<tokio::net::UdpSocket> {
    let socket = UdpSocket::bind((host, port))?;
    socket.set_broadcast(true)?;
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket)
}

/// Answers HELLOs until the task is aborted. Anything else is counted and dropped; no
/// datagram can end the loop.
pub async fn serve(
    socket: tokio::net::UdpSocket,
    responder: Responder,
    stats: Arc<DiscoveryStats>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                tracing::debug!(error = %e, "broadcast: receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(datagram) = buf.get(..len) else {
            continue;
        };
        match responder.answer(datagram) {
            Some(reply) => {
                stats.broadcast_answered.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = socket.send_to(&reply, from).await {
                    tracing::debug!(error = %e, %from, "broadcast: cannot answer");
                }
            }
            None => {
                let n = stats.broadcast_rejected.fetch_add(1, Ordering::Relaxed);
                if n == 0 {
                    tracing::warn!(%from, len, "broadcast: ignoring a datagram that is not a HELLO frame (further ones are only counted)");
                } else {
                    tracing::debug!(%from, len, "broadcast: not a HELLO frame");
                }
            }
        }
    }
}

/// The HELLO frame a probing client sends.
pub fn hello_frame() -> Result<Vec<u8>, DiscoveryError> {
    let hello = Message::Hello(Hello {
        version: clasp_proto::PROTOCOL_VERSION,
        features: FeatureSet::ROUTER_DEFAULT,
        name: "clasp-discover".into(),
        token: None,
    });
    Ok(encode_frame(&FrameHeader::new(QoS::Fire), &hello)?)
}

/// Reads an answer datagram: the WELCOME's name, and the port from the info frame after it
/// (7330 when a responder sends only the WELCOME).
pub fn parse_answer(datagram: &[u8], from: SocketAddr) -> Option<Found> {
    let (_, payload, offset) = clasp_proto::FrameHeader::split(datagram).ok()?;
    let Message::Welcome(welcome) = decode_frame(datagram).ok()?.message else {
        return None;
    };
    let rest = datagram.get(offset + payload.len()..).unwrap_or_default();
    let mut port = clasp_proto::DEFAULT_PORT;
    let mut tls = false;
    if let Ok(decoded) = decode_frame(rest) {
        if let Message::Set(set) = decoded.message {
            if set.address.as_ref() == INFO_ADDRESS {
                if let Value::Map(fields) = set.value {
                    for (k, v) in fields {
                        match (k.as_str(), v) {
                            ("ws", Value::Int(p)) => port = u16::try_from(p).unwrap_or(port),
                            ("tls", Value::Bool(b)) => tls = b,
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    let host = match from.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    Some(Found {
        name: welcome.name,
        url: format!("{}://{host}:{port}", if tls { "wss" } else { "ws" }),
        source: Source::Broadcast,
    })
}

/// Sends one HELLO to `to:port` and collects the answers for `timeout` (or until the relay
/// called `stop_at` answers).
pub fn probe(
    to: IpAddr,
    port: u16,
    timeout: Duration,
    stop_at: Option<&str>,
) -> Result<Vec<Found>, DiscoveryError> {
    let bind: SocketAddr = match to {
        IpAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind)?;
    socket.set_broadcast(true)?;
    socket.send_to(&hello_frame()?, (to, port))?;
    let deadline = Instant::now() + timeout;
    let mut found = Vec::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left))?;
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            // An ICMP "port unreachable" from a host without a responder: keep listening.
            Err(_) => continue,
        };
        let Some(relay) = buf.get(..len).and_then(|d| parse_answer(d, from)) else {
            continue;
        };
        let hit = stop_at.is_some_and(|n| n == relay.name);
        if !found.contains(&relay) {
            found.push(relay);
        }
        if hit {
            break;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responder() -> Responder {
        Responder {
            name: "r1".into(),
            ws_port: 9000,
            auth: false,
            tls: false,
        }
    }

    #[test]
    fn a_hello_gets_a_welcome_with_the_port() {
        let reply = responder()
            .answer(&hello_frame().unwrap_or_default())
            .unwrap_or_default();
        let found = parse_answer(&reply, ([10, 0, 0, 1], 7331).into());
        assert_eq!(
            found.map(|f| (f.name, f.url)),
            Some(("r1".into(), "ws://10.0.0.1:9000".into()))
        );
    }

    #[test]
    fn garbage_gets_no_answer() {
        let r = responder();
        for bad in [
            &b""[..],
            b"\x53",
            b"\x53\x01\xff\xff\x01",
            b"hello",
            &[0u8; 600],
        ] {
            assert!(r.answer(bad).is_none(), "{bad:?}");
        }
    }
}
