//! One packet vocabulary for MQTT 3.1.1 and 5.0, over rumqttc's codec (`mqttbytes::v4` and
//! `v5::mqttbytes`): the rest of the broker speaks [`In`] and [`Out`] and never sees which
//! version a client uses. Bytes are framed, parsed and written by rumqttc only.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::{self as m4b, v4};
use rumqttc::v5::mqttbytes::{self as m5b, v5};

/// Protocol version of a connection, fixed by its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

/// Why bytes from a client are not a usable packet; each maps to a v5 DISCONNECT reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Larger than the broker's maximum packet size.
    #[error("packet of {0} bytes is over the maximum packet size")]
    TooLarge(usize),
    /// Not a well-formed packet.
    #[error("malformed packet: {0}")]
    Malformed(String),
    /// A well-formed packet the client may not send now.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// CONNECT with a protocol name or level this broker does not speak.
    #[error("unsupported protocol level {0}")]
    UnsupportedVersion(u8),
}

impl DecodeError {
    /// The MQTT 5 DISCONNECT reason code for it.
    pub fn reason(&self) -> u8 {
        match self {
            DecodeError::TooLarge(_) => 0x95,
            DecodeError::Malformed(_) => 0x81,
            DecodeError::Protocol(_) => 0x82,
            DecodeError::UnsupportedVersion(_) => 0x84,
        }
    }
}

/// A last will.
#[derive(Debug, Clone)]
pub struct Will {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS 0..=2.
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
}

/// What a CONNECT asked for.
#[derive(Debug, Clone)]
pub struct ConnectInfo {
    /// Protocol version.
    pub version: Version,
    /// Client id (may be empty: the broker assigns one).
    pub client_id: String,
    /// Clean session (v3) / clean start (v5).
    pub clean: bool,
    /// Keep-alive, seconds (0: none).
    pub keep_alive: u16,
    /// v5 session expiry interval, seconds (v3: 0 for clean sessions, forever otherwise).
    pub session_expiry: u32,
    /// v5 receive maximum: QoS 1/2 messages in flight to this client.
    pub receive_max: Option<u16>,
    /// Last will.
    pub will: Option<Will>,
    /// Password (a CLASP token when the relay has auth).
    pub password: Option<String>,
}

/// One subscription request.
#[derive(Debug, Clone)]
pub struct SubRequest {
    /// Topic filter.
    pub filter: String,
    /// Requested QoS.
    pub qos: u8,
    /// v5 no-local: do not deliver this client's own publishes.
    pub no_local: bool,
    /// v5 retain-as-published.
    pub retain_as_published: bool,
    /// v5 retain handling: 0 send retained, 1 only for a new subscription, 2 never.
    pub retain_handling: u8,
}

/// A packet from a connected client.
#[derive(Debug, Clone)]
pub enum In {
    /// PUBLISH.
    Publish {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Bytes,
        /// QoS.
        qos: u8,
        /// Retain flag.
        retain: bool,
        /// Packet id (0 for QoS 0).
        pkid: u16,
    },
    /// PUBACK.
    PubAck(u16),
    /// PUBREC.
    PubRec(u16),
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP.
    PubComp(u16),
    /// SUBSCRIBE.
    Subscribe {
        /// Packet id.
        pkid: u16,
        /// Filters.
        filters: Vec<SubRequest>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// Packet id.
        pkid: u16,
        /// Filters.
        filters: Vec<String>,
    },
    /// PINGREQ.
    PingReq,
    /// DISCONNECT; `with_will` for v5 reason 0x04.
    Disconnect {
        /// Publish the will anyway.
        with_will: bool,
    },
}

/// CONNACK outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnCode {
    /// Accepted.
    Accepted,
    /// Unsupported protocol version.
    BadVersion,
    /// Client id refused.
    BadClientId,
    /// Server unavailable (full, draining).
    Unavailable,
    /// Missing or wrong credentials.
    NotAuthorized,
}

/// SUBACK outcome per filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubCode {
    /// Granted at this QoS.
    Granted(u8),
    /// Invalid filter.
    Invalid,
    /// Scopes do not allow reading it.
    NotAuthorized,
    /// `$share/...` (v5).
    SharedUnsupported,
}

/// An outbound PUBLISH.
#[derive(Debug, Clone)]
pub struct OutPublish {
    /// Topic.
    pub topic: Arc<str>,
    /// Payload.
    pub payload: Bytes,
    /// QoS.
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
    /// Packet id (0 for QoS 0).
    pub pkid: u16,
    /// Redelivery.
    pub dup: bool,
}

/// A packet to a client.
#[derive(Debug, Clone)]
pub enum Out {
    /// CONNACK.
    ConnAck {
        /// Session present.
        session_present: bool,
        /// Outcome.
        code: ConnCode,
        /// v5: the id the broker assigned.
        assigned_id: Option<String>,
        /// v5: maximum packet size the broker accepts.
        max_packet: u32,
        /// v5: QoS 1/2 messages the broker accepts in flight.
        receive_max: u16,
    },
    /// PUBLISH.
    Publish(OutPublish),
    /// PUBACK (`refused`: v5 reason Not authorized).
    PubAck {
        /// Packet id.
        pkid: u16,
        /// Refused by scopes.
        refused: bool,
    },
    /// PUBREC.
    PubRec {
        /// Packet id.
        pkid: u16,
        /// Refused by scopes.
        refused: bool,
    },
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP.
    PubComp(u16),
    /// SUBACK.
    SubAck {
        /// Packet id.
        pkid: u16,
        /// One per filter.
        codes: Vec<SubCode>,
    },
    /// UNSUBACK.
    UnsubAck {
        /// Packet id.
        pkid: u16,
        /// Filters in the request.
        count: usize,
    },
    /// PINGRESP.
    PingResp,
    /// v5 DISCONNECT with a reason code (v3 has no server DISCONNECT: nothing is written).
    Disconnect(u8),
}

fn qos_of(q: u8) -> Option<m4b::QoS> {
    m4b::qos(q).ok()
}

fn qos_num4(q: m4b::QoS) -> u8 {
    q as u8
}

fn qos_num5(q: m5b::QoS) -> u8 {
    q as u8
}

fn malformed(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed(e.to_string())
}

/// The protocol level byte of a complete CONNECT frame at the head of `buf`, or what to do.
fn protocol_level(buf: &[u8]) -> Result<u8, DecodeError> {
    if buf.first().map(|b| b >> 4) != Some(1) {
        return Err(DecodeError::Protocol("first packet is not CONNECT"));
    }
    let mut i = 1;
    while buf.get(i).is_some_and(|b| b & 0x80 != 0) {
        i += 1;
        if i > 4 {
            return Err(DecodeError::Malformed("remaining length".into()));
        }
    }
    let header = i + 1;
    let name_len = match (buf.get(header), buf.get(header + 1)) {
        (Some(hi), Some(lo)) => usize::from(*hi) << 8 | usize::from(*lo),
        _ => return Err(DecodeError::Malformed("short CONNECT".into())),
    };
    buf.get(header + 2 + name_len)
        .copied()
        .ok_or_else(|| DecodeError::Malformed("short CONNECT".into()))
}

/// Reads the CONNECT at the head of `buf`: `Ok(None)` until the whole packet has arrived.
pub fn decode_connect(buf: &mut BytesMut, max: usize) -> Result<Option<ConnectInfo>, DecodeError> {
    if buf.first().is_some_and(|b| b >> 4 != 1) {
        return Err(DecodeError::Protocol("first packet is not CONNECT"));
    }
    match m4b::check(buf.iter(), max) {
        Ok(_) => {}
        Err(m4b::Error::InsufficientBytes(_)) => return Ok(None),
        Err(m4b::Error::PayloadSizeLimitExceeded(n)) => return Err(DecodeError::TooLarge(n)),
        Err(e) => return Err(malformed(e)),
    }
    match protocol_level(buf)? {
        4 => match v4::Packet::read(buf, max).map_err(malformed)? {
            v4::Packet::Connect(c) => Ok(Some(ConnectInfo {
                version: Version::V4,
                session_expiry: if c.clean_session { 0 } else { u32::MAX },
                client_id: c.client_id,
                clean: c.clean_session,
                keep_alive: c.keep_alive,
                receive_max: None,
                will: c.last_will.map(|w| Will {
                    topic: w.topic,
                    payload: w.message,
                    qos: qos_num4(w.qos),
                    retain: w.retain,
                }),
                password: c.login.map(|l| l.password),
            })),
            _ => Err(DecodeError::Protocol("first packet is not CONNECT")),
        },
        5 => match v5::Packet::read(buf, Some(max as u32)).map_err(malformed)? {
            v5::Packet::Connect(c, will, login) => {
                let props = c.properties.unwrap_or_default();
                let will = match will {
                    Some(w) => Some(Will {
                        topic: String::from_utf8(w.topic.to_vec())
                            .map_err(|_| malformed("will topic is not UTF-8"))?,
                        payload: w.message,
                        qos: qos_num5(w.qos),
                        retain: w.retain,
                    }),
                    None => None,
                };
                Ok(Some(ConnectInfo {
                    version: Version::V5,
                    client_id: c.client_id,
                    clean: c.clean_start,
                    keep_alive: c.keep_alive,
                    session_expiry: props.session_expiry_interval.unwrap_or(0),
                    receive_max: props.receive_maximum,
                    will,
                    password: login.map(|l| l.password),
                }))
            }
            _ => Err(DecodeError::Protocol("first packet is not CONNECT")),
        },
        level => Err(DecodeError::UnsupportedVersion(level)),
    }
}

/// Reads one packet from the head of `buf`: `Ok(None)` until a whole packet has arrived.
pub fn decode(version: Version, buf: &mut BytesMut, max: usize) -> Result<Option<In>, DecodeError> {
    match version {
        Version::V4 => decode4(buf, max),
        Version::V5 => decode5(buf, max),
    }
}

fn decode4(buf: &mut BytesMut, max: usize) -> Result<Option<In>, DecodeError> {
    let packet = match v4::Packet::read(buf, max) {
        Ok(p) => p,
        Err(m4b::Error::InsufficientBytes(_)) => return Ok(None),
        Err(m4b::Error::PayloadSizeLimitExceeded(n)) => return Err(DecodeError::TooLarge(n)),
        Err(e) => return Err(malformed(e)),
    };
    Ok(Some(match packet {
        v4::Packet::Publish(p) => In::Publish {
            topic: p.topic,
            payload: p.payload,
            qos: qos_num4(p.qos),
            retain: p.retain,
            pkid: p.pkid,
        },
        v4::Packet::PubAck(p) => In::PubAck(p.pkid),
        v4::Packet::PubRec(p) => In::PubRec(p.pkid),
        v4::Packet::PubRel(p) => In::PubRel(p.pkid),
        v4::Packet::PubComp(p) => In::PubComp(p.pkid),
        v4::Packet::Subscribe(s) => In::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| SubRequest {
                    filter: f.path,
                    qos: qos_num4(f.qos),
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: 0,
                })
                .collect(),
        },
        v4::Packet::Unsubscribe(u) => In::Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
        },
        v4::Packet::PingReq => In::PingReq,
        v4::Packet::Disconnect => In::Disconnect { with_will: false },
        v4::Packet::Connect(_) => return Err(DecodeError::Protocol("second CONNECT")),
        _ => return Err(DecodeError::Protocol("a server-to-client packet")),
    }))
}

fn decode5(buf: &mut BytesMut, max: usize) -> Result<Option<In>, DecodeError> {
    // A v5 DISCONNECT may have no body (normal disconnection); rumqttc wants one.
    if buf.len() >= 2 && buf[0] == 0xE0 && buf[1] == 0 {
        let _ = buf.split_to(2);
        return Ok(Some(In::Disconnect { with_will: false }));
    }
    let packet = match v5::Packet::read(buf, Some(max as u32)) {
        Ok(p) => p,
        Err(m5b::Error::InsufficientBytes(_)) => return Ok(None),
        Err(m5b::Error::PayloadSizeLimitExceeded { pkt_size, .. }) => {
            return Err(DecodeError::TooLarge(pkt_size))
        }
        Err(e) => return Err(malformed(e)),
    };
    Ok(Some(match packet {
        v5::Packet::Publish(p) => In::Publish {
            topic: String::from_utf8(p.topic.to_vec())
                .map_err(|_| malformed("topic is not UTF-8"))?,
            payload: p.payload,
            qos: qos_num5(p.qos),
            retain: p.retain,
            pkid: p.pkid,
        },
        v5::Packet::PubAck(p) => In::PubAck(p.pkid),
        v5::Packet::PubRec(p) => In::PubRec(p.pkid),
        v5::Packet::PubRel(p) => In::PubRel(p.pkid),
        v5::Packet::PubComp(p) => In::PubComp(p.pkid),
        v5::Packet::Subscribe(s) => In::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| SubRequest {
                    filter: f.path,
                    qos: qos_num5(f.qos),
                    no_local: f.nolocal,
                    retain_as_published: f.preserve_retain,
                    retain_handling: match f.retain_forward_rule {
                        v5::RetainForwardRule::OnEverySubscribe => 0,
                        v5::RetainForwardRule::OnNewSubscribe => 1,
                        v5::RetainForwardRule::Never => 2,
                    },
                })
                .collect(),
        },
        v5::Packet::Unsubscribe(u) => In::Unsubscribe {
            pkid: u.pkid,
            filters: u.filters,
        },
        v5::Packet::PingReq(_) => In::PingReq,
        v5::Packet::Disconnect(d) => In::Disconnect {
            with_will: d.reason_code == v5::DisconnectReasonCode::DisconnectWithWillMessage,
        },
        v5::Packet::Connect(..) => return Err(DecodeError::Protocol("second CONNECT")),
        v5::Packet::Auth(_) => return Err(DecodeError::Protocol("enhanced authentication")),
        _ => return Err(DecodeError::Protocol("a server-to-client packet")),
    }))
}

/// Appends `out` as `version` bytes to `buf`. v3 has no server DISCONNECT: nothing is written.
pub fn encode(version: Version, out: &Out, buf: &mut BytesMut) -> Result<(), String> {
    match version {
        Version::V4 => encode4(out, buf),
        Version::V5 => encode5(out, buf),
    }
}

fn encode4(out: &Out, buf: &mut BytesMut) -> Result<(), String> {
    let packet = match out {
        Out::ConnAck {
            session_present,
            code,
            ..
        } => v4::Packet::ConnAck(v4::ConnAck::new(
            match code {
                ConnCode::Accepted => v4::ConnectReturnCode::Success,
                ConnCode::BadVersion => v4::ConnectReturnCode::RefusedProtocolVersion,
                ConnCode::BadClientId => v4::ConnectReturnCode::BadClientId,
                ConnCode::Unavailable => v4::ConnectReturnCode::ServiceUnavailable,
                ConnCode::NotAuthorized => v4::ConnectReturnCode::NotAuthorized,
            },
            *session_present && *code == ConnCode::Accepted,
        )),
        Out::Publish(p) => v4::Packet::Publish(v4::Publish {
            dup: p.dup,
            qos: qos_of(p.qos).unwrap_or(m4b::QoS::AtMostOnce),
            retain: p.retain,
            topic: p.topic.to_string(),
            pkid: p.pkid,
            payload: p.payload.clone(),
        }),
        Out::PubAck { pkid, .. } => v4::Packet::PubAck(v4::PubAck::new(*pkid)),
        Out::PubRec { pkid, .. } => v4::Packet::PubRec(v4::PubRec::new(*pkid)),
        Out::PubRel(pkid) => v4::Packet::PubRel(v4::PubRel::new(*pkid)),
        Out::PubComp(pkid) => v4::Packet::PubComp(v4::PubComp::new(*pkid)),
        Out::SubAck { pkid, codes } => v4::Packet::SubAck(v4::SubAck::new(
            *pkid,
            codes
                .iter()
                .map(|c| match c {
                    SubCode::Granted(q) => {
                        v4::SubscribeReasonCode::Success(qos_of(*q).unwrap_or(m4b::QoS::AtMostOnce))
                    }
                    _ => v4::SubscribeReasonCode::Failure,
                })
                .collect(),
        )),
        Out::UnsubAck { pkid, .. } => v4::Packet::UnsubAck(v4::UnsubAck::new(*pkid)),
        Out::PingResp => v4::Packet::PingResp,
        Out::Disconnect(_) => return Ok(()),
    };
    packet
        .write(buf, usize::MAX)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn encode5(out: &Out, buf: &mut BytesMut) -> Result<(), String> {
    let qos5 = |q: u8| m5b::qos(q).unwrap_or(m5b::QoS::AtMostOnce);
    let packet = match out {
        Out::ConnAck {
            session_present,
            code,
            assigned_id,
            max_packet,
            receive_max,
        } => v5::Packet::ConnAck(v5::ConnAck {
            session_present: *session_present && *code == ConnCode::Accepted,
            code: match code {
                ConnCode::Accepted => v5::ConnectReturnCode::Success,
                ConnCode::BadVersion => v5::ConnectReturnCode::UnsupportedProtocolVersion,
                ConnCode::BadClientId => v5::ConnectReturnCode::ClientIdentifierNotValid,
                ConnCode::Unavailable => v5::ConnectReturnCode::ServerBusy,
                ConnCode::NotAuthorized => v5::ConnectReturnCode::NotAuthorized,
            },
            properties: (*code == ConnCode::Accepted).then(|| v5::ConnAckProperties {
                session_expiry_interval: None,
                receive_max: Some(*receive_max),
                max_qos: None,
                retain_available: Some(1),
                max_packet_size: Some(*max_packet),
                assigned_client_identifier: assigned_id.clone(),
                topic_alias_max: None,
                reason_string: None,
                user_properties: Vec::new(),
                wildcard_subscription_available: Some(1),
                subscription_identifiers_available: Some(0),
                shared_subscription_available: Some(0),
                server_keep_alive: None,
                response_information: None,
                server_reference: None,
                authentication_method: None,
                authentication_data: None,
            }),
        }),
        Out::Publish(p) => v5::Packet::Publish(v5::Publish {
            dup: p.dup,
            qos: qos5(p.qos),
            retain: p.retain,
            topic: Bytes::copy_from_slice(p.topic.as_bytes()),
            pkid: p.pkid,
            payload: p.payload.clone(),
            properties: None,
        }),
        Out::PubAck { pkid, refused } => v5::Packet::PubAck(v5::PubAck {
            pkid: *pkid,
            reason: if *refused {
                v5::PubAckReason::NotAuthorized
            } else {
                v5::PubAckReason::Success
            },
            properties: None,
        }),
        Out::PubRec { pkid, refused } => v5::Packet::PubRec(v5::PubRec {
            pkid: *pkid,
            reason: if *refused {
                v5::PubRecReason::NotAuthorized
            } else {
                v5::PubRecReason::Success
            },
            properties: None,
        }),
        Out::PubRel(pkid) => v5::Packet::PubRel(v5::PubRel::new(*pkid, None)),
        Out::PubComp(pkid) => v5::Packet::PubComp(v5::PubComp::new(*pkid, None)),
        Out::SubAck { pkid, codes } => v5::Packet::SubAck(v5::SubAck {
            pkid: *pkid,
            return_codes: codes
                .iter()
                .map(|c| match c {
                    SubCode::Granted(q) => v5::SubscribeReasonCode::Success(qos5(*q)),
                    SubCode::Invalid => v5::SubscribeReasonCode::TopicFilterInvalid,
                    SubCode::NotAuthorized => v5::SubscribeReasonCode::NotAuthorized,
                    SubCode::SharedUnsupported => {
                        v5::SubscribeReasonCode::SharedSubscriptionsNotSupported
                    }
                })
                .collect(),
            properties: None,
        }),
        Out::UnsubAck { pkid, count } => v5::Packet::UnsubAck(v5::UnsubAck {
            pkid: *pkid,
            reasons: vec![v5::UnsubAckReason::Success; *count],
            properties: None,
        }),
        Out::PingResp => v5::Packet::PingResp(v5::PingResp),
        Out::Disconnect(reason) => {
            v5::Packet::Disconnect(v5::Disconnect::new(disconnect_reason(*reason)))
        }
    };
    packet
        .write(buf, None)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn disconnect_reason(code: u8) -> v5::DisconnectReasonCode {
    use v5::DisconnectReasonCode as R;
    match code {
        0x81 => R::MalformedPacket,
        0x82 => R::ProtocolError,
        0x87 => R::NotAuthorized,
        0x89 => R::ServerBusy,
        0x8B => R::ServerShuttingDown,
        0x8D => R::KeepAliveTimeout,
        0x8E => R::SessionTakenOver,
        0x95 => R::PacketTooLarge,
        0x97 => R::QuotaExceeded,
        _ => R::UnspecifiedError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_v4_and_v5_are_told_apart() {
        let mut buf = BytesMut::new();
        let mut c = v4::Connect::new("a");
        c.keep_alive = 30;
        v4::Packet::Connect(c).write(&mut buf, 1024).unwrap();
        let info = decode_connect(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(info.version, Version::V4);
        assert_eq!(info.client_id, "a");
        assert!(buf.is_empty());

        let mut buf = BytesMut::new();
        let c = v5::Connect {
            keep_alive: 10,
            client_id: "b".into(),
            clean_start: false,
            properties: None,
        };
        v5::Packet::Connect(c, None, None)
            .write(&mut buf, None)
            .unwrap();
        let info = decode_connect(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(info.version, Version::V5);
        assert!(!info.clean);
    }

    #[test]
    fn partial_and_garbage() {
        let mut buf = BytesMut::from(&[0x10u8][..]);
        assert!(decode_connect(&mut buf, 1024).unwrap().is_none());
        let mut buf = BytesMut::from(&[0x30u8, 0x02, 0, 0][..]);
        assert!(decode_connect(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff, 0xff, 0x01][..]);
        assert!(decode(Version::V4, &mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&[0xE0u8, 0x00][..]);
        assert!(matches!(
            decode(Version::V5, &mut buf, 1024),
            Ok(Some(In::Disconnect { with_will: false }))
        ));
    }
}
