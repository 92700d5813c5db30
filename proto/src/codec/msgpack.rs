//! Decoding of legacy MessagePack payloads (§6): a map with a `type` key naming the message
//! and the other fields under their serde names. The official Python client sends BUNDLE and
//! QUERY this way. Markers are classified by `rmp`; every read goes through the bounds-checked
//! [`Reader`].

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use rmp::Marker;

use super::reader::Reader;
use super::MAX_BUNDLE_DEPTH;
use crate::message::*;
use crate::value::MAX_DEPTH;
use crate::{Address, DecodeError, Pattern, Value};

/// Whether a payload's first byte is a MessagePack map marker (§2 rule 2).
pub(crate) fn is_msgpack_map(first: u8) -> bool {
    matches!(first, 0x80..=0x8F | 0xDE | 0xDF)
}

/// Decodes a MessagePack payload into a message.
pub(crate) fn message(r: &mut Reader<'_>, bundle_depth: usize) -> Result<Message, DecodeError> {
    let offset = r.offset();
    let root = value(r, 0)?;
    to_message(&root, offset, bundle_depth)
}

fn err(reason: impl Into<String>, offset: usize) -> DecodeError {
    DecodeError::MsgPack {
        reason: reason.into(),
        offset,
    }
}

/// One MessagePack value as a CLASP [`Value`] (§6 value mapping).
fn value(r: &mut Reader<'_>, depth: usize) -> Result<Value, DecodeError> {
    let offset = r.offset();
    let marker = Marker::from_u8(r.u8("msgpack marker")?);
    let container = |depth: usize| {
        if depth >= MAX_DEPTH {
            Err(DecodeError::TooDeep {
                max: MAX_DEPTH,
                offset,
            })
        } else {
            Ok(())
        }
    };
    Ok(match marker {
        Marker::Null => Value::Null,
        Marker::True => Value::Bool(true),
        Marker::False => Value::Bool(false),
        Marker::FixPos(n) => Value::Int(i64::from(n)),
        Marker::FixNeg(n) => Value::Int(i64::from(n)),
        Marker::U8 => Value::Int(i64::from(r.u8("msgpack u8")?)),
        Marker::U16 => Value::Int(i64::from(r.u16("msgpack u16")?)),
        Marker::U32 => Value::Int(i64::from(r.u32("msgpack u32")?)),
        Marker::U64 => {
            let n = r.u64("msgpack u64")?;
            // Above i64::MAX becomes a float, as upstream does.
            i64::try_from(n).map_or(Value::Float(n as f64), Value::Int)
        }
        Marker::I8 => Value::Int(i64::from(r.u8("msgpack i8")? as i8)),
        Marker::I16 => Value::Int(i64::from(r.u16("msgpack i16")? as i16)),
        Marker::I32 => Value::Int(i64::from(r.u32("msgpack i32")? as i32)),
        Marker::I64 => Value::Int(r.u64("msgpack i64")? as i64),
        Marker::F32 => Value::Float(f64::from(r.f32("msgpack f32")?)),
        Marker::F64 => Value::Float(r.f64("msgpack f64")?),
        Marker::FixStr(n) => Value::String(str_data(r, usize::from(n))?),
        Marker::Str8 => {
            let n = r.u8("msgpack str8 length")?;
            Value::String(str_data(r, usize::from(n))?)
        }
        Marker::Str16 => {
            let n = r.u16("msgpack str16 length")?;
            Value::String(str_data(r, usize::from(n))?)
        }
        Marker::Str32 => {
            let n = len32(r, "msgpack str32 length")?;
            Value::String(str_data(r, n)?)
        }
        Marker::Bin8 => {
            let n = r.u8("msgpack bin8 length")?;
            Value::Bytes(r.take(usize::from(n), "msgpack bin")?.to_vec())
        }
        Marker::Bin16 => {
            let n = r.u16("msgpack bin16 length")?;
            Value::Bytes(r.take(usize::from(n), "msgpack bin")?.to_vec())
        }
        Marker::Bin32 => {
            let n = len32(r, "msgpack bin32 length")?;
            Value::Bytes(r.take(n, "msgpack bin")?.to_vec())
        }
        Marker::FixArray(n) => {
            container(depth)?;
            array(r, usize::from(n), depth)?
        }
        Marker::Array16 => {
            container(depth)?;
            let n = r.u16("msgpack array16 length")?;
            array(r, usize::from(n), depth)?
        }
        Marker::Array32 => {
            container(depth)?;
            let n = len32(r, "msgpack array32 length")?;
            array(r, n, depth)?
        }
        Marker::FixMap(n) => {
            container(depth)?;
            map(r, usize::from(n), depth)?
        }
        Marker::Map16 => {
            container(depth)?;
            let n = r.u16("msgpack map16 length")?;
            map(r, usize::from(n), depth)?
        }
        Marker::Map32 => {
            container(depth)?;
            let n = len32(r, "msgpack map32 length")?;
            map(r, n, depth)?
        }
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => return Err(err("MessagePack ext types are not CLASP values", offset)),
        Marker::Reserved => return Err(err("reserved MessagePack marker 0xc1", offset)),
    })
}

fn len32(r: &mut Reader<'_>, field: &'static str) -> Result<usize, DecodeError> {
    let n = r.u32(field)?;
    // A payload is at most 64 KiB; anything longer is truncated input anyway.
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn str_data(r: &mut Reader<'_>, len: usize) -> Result<String, DecodeError> {
    let offset = r.offset();
    let bytes = r.take(len, "msgpack str")?;
    core::str::from_utf8(bytes)
        .map(ToOwned::to_owned)
        .map_err(|_| DecodeError::InvalidUtf8 {
            field: "msgpack str",
            offset,
        })
}

fn array(r: &mut Reader<'_>, count: usize, depth: usize) -> Result<Value, DecodeError> {
    let mut items = Vec::with_capacity(r.capacity(count, 1));
    for _ in 0..count {
        items.push(value(r, depth + 1)?);
    }
    Ok(Value::Array(items))
}

fn map(r: &mut Reader<'_>, count: usize, depth: usize) -> Result<Value, DecodeError> {
    let mut entries = Vec::with_capacity(r.capacity(count, 2));
    for _ in 0..count {
        let key_offset = r.offset();
        let key = match value(r, depth + 1)? {
            Value::String(s) => s,
            _ => return Err(err("map key is not a string", key_offset)),
        };
        entries.push((key, value(r, depth + 1)?));
    }
    Ok(Value::Map(entries))
}

/// Named fields of one MessagePack map. `nil` counts as absent (§6).
struct Fields<'a> {
    entries: &'a [(String, Value)],
    offset: usize,
}

impl<'a> Fields<'a> {
    fn of(v: &'a Value, offset: usize, what: &str) -> Result<Self, DecodeError> {
        match v {
            Value::Map(entries) => Ok(Self { entries, offset }),
            _ => Err(err(format!("{what} is not a map"), offset)),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !matches!(v, Value::Null))
    }

    fn bad(&self, key: &str, want: &str) -> DecodeError {
        err(format!("field `{key}` must be {want}"), self.offset)
    }

    fn missing(&self, key: &str) -> DecodeError {
        err(format!("missing field `{key}`"), self.offset)
    }

    fn opt_str(&self, key: &str) -> Result<Option<String>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    fn str(&self, key: &str) -> Result<String, DecodeError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Int(i)) => u64::try_from(*i)
                .map(Some)
                .map_err(|_| self.bad(key, "unsigned")),
            Some(Value::Float(f))
                if *f >= 0.0 && *f <= u64::MAX as f64 && (*f as u64) as f64 == *f =>
            {
                Ok(Some(*f as u64))
            }
            Some(_) => Err(self.bad(key, "an unsigned integer")),
        }
    }

    fn u64(&self, key: &str) -> Result<u64, DecodeError> {
        self.opt_u64(key)?.ok_or_else(|| self.missing(key))
    }

    fn opt_u32(&self, key: &str) -> Result<Option<u32>, DecodeError> {
        self.opt_u64(key)?
            .map(|n| u32::try_from(n).map_err(|_| self.bad(key, "a u32")))
            .transpose()
    }

    fn u32(&self, key: &str) -> Result<u32, DecodeError> {
        self.opt_u32(key)?.ok_or_else(|| self.missing(key))
    }

    fn opt_u8(&self, key: &str) -> Result<Option<u8>, DecodeError> {
        self.opt_u64(key)?
            .map(|n| u8::try_from(n).map_err(|_| self.bad(key, "a u8")))
            .transpose()
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.bad(key, "a number")),
        }
    }

    fn flag(&self, key: &str) -> Result<bool, DecodeError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(key, "a bool")),
        }
    }

    fn address(&self, key: &str) -> Result<Address, DecodeError> {
        let text = self.str(key)?;
        Address::parse(&text).map_err(|reason| DecodeError::InvalidAddress {
            address: text,
            reason,
            offset: self.offset,
        })
    }

    fn pattern_of(&self, text: String) -> Result<Pattern, DecodeError> {
        Pattern::compile(&text).map_err(|reason| DecodeError::InvalidPattern {
            pattern: text,
            reason,
            offset: self.offset,
        })
    }

    fn pattern(&self, key: &str) -> Result<Pattern, DecodeError> {
        let text = self.str(key)?;
        self.pattern_of(text)
    }

    fn list(&self, key: &str) -> Result<&'a [Value], DecodeError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(self.bad(key, "an array")),
        }
    }

    fn signal(&self, key: &str) -> Result<Option<SignalType>, DecodeError> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(name) => SignalType::from_name(&name)
                .map(Some)
                .ok_or_else(|| self.bad(key, "a signal type name")),
        }
    }

    /// A type mask given as a list of names or as the raw byte; absent means all.
    fn types(&self, key: &str) -> Result<TypeMask, DecodeError> {
        match self.get(key) {
            None => Ok(TypeMask::ALL),
            Some(Value::Array(items)) => {
                let mut mask = 0u8;
                for item in items {
                    let signal = item.as_str().and_then(SignalType::from_name);
                    mask |= signal
                        .ok_or_else(|| self.bad(key, "a list of signal type names"))?
                        .mask_bit();
                }
                Ok(TypeMask(mask))
            }
            Some(_) => self.opt_u8(key).map(|m| TypeMask(m.unwrap_or(0xFF))),
        }
    }

    /// Features given as a list of names or as the raw byte.
    fn features(&self, key: &str) -> Result<FeatureSet, DecodeError> {
        match self.get(key) {
            None => Ok(FeatureSet::CLIENT_DEFAULT),
            Some(Value::Array(items)) => {
                let mut bits = 0u8;
                for item in items {
                    bits |= match item.as_str() {
                        Some("param") => FeatureSet::PARAM,
                        Some("event") => FeatureSet::EVENT,
                        Some("stream") => FeatureSet::STREAM,
                        Some("gesture") => FeatureSet::GESTURE,
                        Some("timeline") => FeatureSet::TIMELINE,
                        Some("federation") => FeatureSet::FEDERATION,
                        _ => return Err(self.bad(key, "a list of feature names")),
                    };
                }
                Ok(FeatureSet(bits))
            }
            Some(_) => self.opt_u8(key).map(|b| FeatureSet(b.unwrap_or(0))),
        }
    }
}

fn to_message(root: &Value, offset: usize, bundle_depth: usize) -> Result<Message, DecodeError> {
    let f = Fields::of(root, offset, "MessagePack payload")?;
    let kind = f.str("type")?;
    Ok(match kind.as_str() {
        "HELLO" => Message::Hello(Hello {
            version: f.opt_u8("version")?.unwrap_or(1),
            features: f.features("features")?,
            name: f.opt_str("name")?.unwrap_or_default(),
            token: f.opt_str("token")?.filter(|t| !t.is_empty()),
        }),
        "WELCOME" => Message::Welcome(Welcome {
            version: f.opt_u8("version")?.unwrap_or(1),
            features: f.features("features")?,
            time: f.opt_u64("time")?.unwrap_or(0),
            session: f.opt_str("session")?.unwrap_or_default(),
            name: f.opt_str("name")?.unwrap_or_default(),
            token: f.opt_str("token")?.filter(|t| !t.is_empty()),
        }),
        "ANNOUNCE" => {
            let mut signals = Vec::new();
            for item in f.list("signals")? {
                let s = Fields::of(item, offset, "signal")?;
                let signal = match s.signal("signal_type")? {
                    Some(t) => t,
                    None => s.signal("signal")?.unwrap_or(SignalType::Param),
                };
                let meta = match s.get("meta") {
                    None => None,
                    Some(m) => {
                        let m = Fields::of(m, offset, "meta")?;
                        let range = match m.list("range")? {
                            [lo, hi] => match (lo.as_f64(), hi.as_f64()) {
                                (Some(lo), Some(hi)) => Some((lo, hi)),
                                _ => return Err(m.bad("range", "two numbers")),
                            },
                            [] => None,
                            _ => return Err(m.bad("range", "two numbers")),
                        };
                        Some(SignalMeta {
                            unit: m.opt_str("unit")?,
                            range,
                            default: m.get("default").cloned(),
                            description: m.opt_str("description")?,
                        })
                    }
                };
                signals.push(SignalDef {
                    address: s.str("address")?,
                    signal,
                    datatype: s.opt_str("datatype")?,
                    access: s.opt_str("access")?,
                    meta,
                });
            }
            Message::Announce(Announce {
                namespace: f.opt_str("namespace")?.unwrap_or_default(),
                signals,
            })
        }
        "FEDERATION_SYNC" => {
            let op = match f.get("op") {
                Some(Value::String(name)) => match name.as_str() {
                    "DeclareNamespaces" => Some(FederationOp::DeclareNamespaces),
                    "RequestSync" => Some(FederationOp::RequestSync),
                    "RevisionVector" => Some(FederationOp::RevisionVector),
                    "SyncComplete" => Some(FederationOp::SyncComplete),
                    _ => None,
                },
                Some(_) => f.opt_u8("op")?.and_then(FederationOp::from_code),
                None => None,
            };
            let op = op.ok_or_else(|| f.bad("op", "a federation op"))?;
            let mut patterns = Vec::new();
            for p in f.list("patterns")? {
                let text = p
                    .as_str()
                    .ok_or_else(|| f.bad("patterns", "a list of strings"))?;
                patterns.push(f.pattern_of(text.to_string())?);
            }
            let mut revisions = Vec::new();
            if let Some(Value::Map(entries)) = f.get("revisions") {
                for (address, rev) in entries {
                    let address =
                        Address::parse(address).map_err(|reason| DecodeError::InvalidAddress {
                            address: address.clone(),
                            reason,
                            offset,
                        })?;
                    let rev = rev
                        .as_i64()
                        .and_then(|r| u64::try_from(r).ok())
                        .ok_or_else(|| f.bad("revisions", "a map of unsigned revisions"))?;
                    revisions.push((address, rev));
                }
            }
            Message::FederationSync(FederationSync {
                op,
                patterns,
                revisions,
                since_revision: f.opt_u64("since_revision")?,
                origin: f.opt_str("origin")?,
            })
        }
        "SUBSCRIBE" => {
            let options = match f.get("options") {
                None => SubscribeOptions::default(),
                Some(o) => {
                    let o = Fields::of(o, offset, "options")?;
                    SubscribeOptions {
                        max_rate: o.opt_u32("max_rate")?,
                        epsilon: o.opt_f64("epsilon")?,
                        history: o.opt_u32("history")?,
                        window: o.opt_u32("window")?,
                    }
                }
            };
            Message::Subscribe(Subscribe {
                id: f.u32("id")?,
                pattern: f.pattern("pattern")?,
                types: f.types("types")?,
                options,
            })
        }
        "UNSUBSCRIBE" => Message::Unsubscribe(Unsubscribe { id: f.u32("id")? }),
        "PUBLISH" => {
            let payload = if let Some(samples) = f.get("samples") {
                let Value::Array(items) = samples else {
                    return Err(f.bad("samples", "an array of numbers"));
                };
                let mut out = Vec::with_capacity(items.len());
                for s in items {
                    out.push(
                        s.as_f64()
                            .ok_or_else(|| f.bad("samples", "an array of numbers"))?,
                    );
                }
                Payload::Samples(out)
            } else if let Some(v) = f.get("value").or_else(|| f.get("payload")) {
                Payload::Value(v.clone())
            } else {
                Payload::None
            };
            let phase = match f.opt_str("phase")? {
                None => GesturePhase::Start,
                Some(p) => {
                    GesturePhase::from_name(&p).ok_or_else(|| f.bad("phase", "a gesture phase"))?
                }
            };
            Message::Publish(Publish {
                signal: f.signal("signal")?.unwrap_or(SignalType::Event),
                phase,
                address: f.address("address")?,
                payload,
                timestamp: f.opt_u64("timestamp")?,
                id: f.opt_u32("id")?,
                rate: f.opt_u32("rate")?,
            })
        }
        "SET" => {
            let ttl = match f.get("ttl") {
                None => None,
                Some(Value::Int(_)) => f.opt_u32("ttl")?.map(Ttl::from_raw),
                Some(Value::String(s)) if s == "Never" => Some(Ttl::Never),
                Some(Value::Map(entries)) => match entries.as_slice() {
                    [(kind, secs)] => {
                        let secs = secs
                            .as_i64()
                            .and_then(|s| u32::try_from(s).ok())
                            .ok_or_else(|| f.bad("ttl", "a TTL"))?;
                        match kind.as_str() {
                            "Sliding" => Some(Ttl::Sliding(secs)),
                            "Absolute" => Some(Ttl::Absolute(secs)),
                            _ => return Err(f.bad("ttl", "a TTL")),
                        }
                    }
                    _ => return Err(f.bad("ttl", "a TTL")),
                },
                Some(_) => return Err(f.bad("ttl", "a TTL")),
            };
            Message::Set(Set {
                address: f.address("address")?,
                value: f.get("value").cloned().unwrap_or(Value::Null),
                revision: f.opt_u64("revision")?,
                lock: f.flag("lock")?,
                unlock: f.flag("unlock")?,
                ttl,
            })
        }
        "GET" => Message::Get(Get {
            address: f.address("address")?,
        }),
        "SNAPSHOT" => {
            let mut params = Vec::new();
            for item in f.list("params")? {
                let p = Fields::of(item, offset, "param")?;
                params.push(ParamState {
                    address: p.address("address")?,
                    value: p.get("value").cloned().unwrap_or(Value::Null),
                    revision: p.opt_u64("revision")?.unwrap_or(0),
                    writer: p.opt_str("writer")?,
                    timestamp: p.opt_u64("timestamp")?,
                });
            }
            Message::Snapshot(Snapshot { params })
        }
        "REPLAY" => Message::Replay(Replay {
            pattern: f.pattern("pattern")?,
            from: f.opt_u64("from")?,
            to: f.opt_u64("to")?,
            limit: f.opt_u32("limit")?,
            types: f.types("types")?,
        }),
        "BUNDLE" => {
            if bundle_depth >= MAX_BUNDLE_DEPTH {
                return Err(DecodeError::TooDeep {
                    max: MAX_BUNDLE_DEPTH,
                    offset,
                });
            }
            let mut messages = Vec::new();
            for inner in f.list("messages")? {
                messages.push(to_message(inner, offset, bundle_depth + 1)?);
            }
            Message::Bundle(Bundle {
                timestamp: f.opt_u64("timestamp")?,
                messages,
            })
        }
        "SYNC" => Message::Sync(ClockSync {
            t1: f.u64("t1")?,
            t2: f.opt_u64("t2")?,
            t3: f.opt_u64("t3")?,
        }),
        "PING" => Message::Ping,
        "PONG" => Message::Pong,
        "ACK" => Message::Ack(Ack {
            address: f.opt_str("address")?,
            revision: f.opt_u64("revision")?,
            locked: match f.get("locked") {
                None => None,
                Some(_) => Some(f.flag("locked")?),
            },
            holder: f.opt_str("holder")?,
            correlation_id: f.opt_u32("correlation_id")?,
        }),
        "ERROR" => Message::Error(ErrorMessage {
            code: f
                .opt_u64("code")?
                .and_then(|c| u16::try_from(c).ok())
                .ok_or_else(|| f.bad("code", "a u16"))?,
            message: f.opt_str("message")?.unwrap_or_default(),
            address: f.opt_str("address")?,
            correlation_id: f.opt_u32("correlation_id")?,
        }),
        "QUERY" => Message::Query(Query {
            pattern: f.pattern("pattern")?,
        }),
        "RESULT" => {
            let mut signals = Vec::new();
            for item in f.list("signals")? {
                let s = Fields::of(item, offset, "signal")?;
                let signal = match s.signal("signal_type")? {
                    Some(t) => t,
                    None => s.signal("signal")?.unwrap_or(SignalType::Param),
                };
                signals.push(SignalInfo {
                    address: s.str("address")?,
                    signal,
                    datatype: s.opt_str("datatype")?,
                    access: s.opt_str("access")?,
                });
            }
            Message::Result(QueryResult { signals })
        }
        other => return Err(err(format!("unknown message type {other:?}"), offset)),
    })
}
