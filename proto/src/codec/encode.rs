//! Binary v1 encoding (§3–§5). Values are always written with the canonical type codes.

use alloc::vec::Vec;

use crate::message::*;
use crate::{EncodeError, Value};

type Out = Vec<u8>;

fn len16(len: usize, field: &'static str) -> Result<u16, EncodeError> {
    u16::try_from(len).map_err(|_| EncodeError::TooLong { field, len })
}

fn put_str(out: &mut Out, s: &str, field: &'static str) -> Result<(), EncodeError> {
    out.extend_from_slice(&len16(s.len(), field)?.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_opt_str(out: &mut Out, s: Option<&str>, field: &'static str) -> Result<(), EncodeError> {
    put_str(out, s.unwrap_or(""), field)
}

fn put_u16(out: &mut Out, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_u32(out: &mut Out, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_u64(out: &mut Out, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_f64(out: &mut Out, v: f64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn bit(set: bool, mask: u8) -> u8 {
    if set {
        mask
    } else {
        0
    }
}

/// Type code + data.
pub(crate) fn value(out: &mut Out, v: &Value) -> Result<(), EncodeError> {
    out.push(v.kind() as u8);
    value_data(out, v)
}

/// Data only (SET carries the code in its flags).
pub(crate) fn value_data(out: &mut Out, v: &Value) -> Result<(), EncodeError> {
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Int(i) => out.extend_from_slice(&i.to_be_bytes()),
        Value::Float(f) => put_f64(out, *f),
        Value::String(s) => put_str(out, s, "string value")?,
        Value::Bytes(b) => {
            put_u16(out, len16(b.len(), "bytes value")?);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            put_u16(out, len16(items.len(), "array")?);
            for item in items {
                value(out, item)?;
            }
        }
        Value::Map(entries) => {
            put_u16(out, len16(entries.len(), "map")?);
            for (k, item) in entries {
                put_str(out, k, "map key")?;
                value(out, item)?;
            }
        }
    }
    Ok(())
}

/// Appends the binary payload of `msg` to `out`.
pub(crate) fn message(out: &mut Out, msg: &Message) -> Result<(), EncodeError> {
    out.push(msg.type_code());
    match msg {
        Message::Hello(m) => {
            out.push(m.version);
            out.push(m.features.0);
            put_str(out, &m.name, "name")?;
            put_opt_str(out, m.token.as_deref(), "token")?;
        }
        Message::Welcome(m) => {
            out.push(m.version);
            out.push(m.features.0);
            put_u64(out, m.time);
            put_str(out, &m.session, "session")?;
            put_str(out, &m.name, "name")?;
            put_opt_str(out, m.token.as_deref(), "token")?;
        }
        Message::Announce(m) => {
            put_str(out, &m.namespace, "namespace")?;
            put_u16(out, len16(m.signals.len(), "signals")?);
            for s in &m.signals {
                put_str(out, &s.address, "signal address")?;
                out.push(s.signal.code());
                out.push(
                    bit(s.datatype.is_some(), 0x01)
                        | bit(s.access.is_some(), 0x02)
                        | bit(s.meta.is_some(), 0x04),
                );
                if let Some(d) = &s.datatype {
                    put_str(out, d, "datatype")?;
                }
                if let Some(a) = &s.access {
                    put_str(out, a, "access")?;
                }
                if let Some(meta) = &s.meta {
                    out.push(
                        bit(meta.unit.is_some(), 0x01)
                            | bit(meta.range.is_some(), 0x02)
                            | bit(meta.default.is_some(), 0x04)
                            | bit(meta.description.is_some(), 0x08),
                    );
                    if let Some(u) = &meta.unit {
                        put_str(out, u, "unit")?;
                    }
                    if let Some((lo, hi)) = meta.range {
                        put_f64(out, lo);
                        put_f64(out, hi);
                    }
                    if let Some(d) = &meta.default {
                        value(out, d)?;
                    }
                    if let Some(d) = &meta.description {
                        put_str(out, d, "description")?;
                    }
                }
            }
        }
        Message::FederationSync(m) => {
            out.push(m.op as u8);
            put_u16(out, len16(m.patterns.len(), "patterns")?);
            for p in &m.patterns {
                put_str(out, p.as_str(), "pattern")?;
            }
            put_u16(out, len16(m.revisions.len(), "revisions")?);
            for (address, rev) in &m.revisions {
                put_str(out, address.as_str(), "revision address")?;
                put_u64(out, *rev);
            }
            out.push(bit(m.since_revision.is_some(), 0x80) | bit(m.origin.is_some(), 0x40));
            if let Some(rev) = m.since_revision {
                put_u64(out, rev);
            }
            if let Some(origin) = &m.origin {
                put_str(out, origin, "origin")?;
            }
        }
        Message::Subscribe(m) => {
            put_u32(out, m.id);
            put_str(out, m.pattern.as_str(), "pattern")?;
            out.push(m.types.0);
            let o = &m.options;
            out.push(
                bit(o.max_rate.is_some(), 0x01)
                    | bit(o.epsilon.is_some(), 0x02)
                    | bit(o.history.is_some(), 0x04)
                    | bit(o.window.is_some(), 0x08),
            );
            if let Some(v) = o.max_rate {
                put_u32(out, v);
            }
            if let Some(v) = o.epsilon {
                put_f64(out, v);
            }
            if let Some(v) = o.history {
                put_u32(out, v);
            }
            if let Some(v) = o.window {
                put_u32(out, v);
            }
        }
        Message::Unsubscribe(m) => put_u32(out, m.id),
        Message::Publish(m) => {
            out.push(
                (m.signal.code() << 5)
                    | bit(m.timestamp.is_some(), 0x10)
                    | bit(m.id.is_some(), 0x08)
                    | (m.phase as u8),
            );
            put_str(out, m.address.as_str(), "address")?;
            match &m.payload {
                Payload::None => out.push(0),
                Payload::Value(v) => {
                    out.push(1);
                    value(out, v)?;
                }
                Payload::Samples(samples) => {
                    out.push(2);
                    put_u16(out, len16(samples.len(), "samples")?);
                    for s in samples {
                        put_f64(out, *s);
                    }
                }
            }
            if let Some(ts) = m.timestamp {
                put_u64(out, ts);
            }
            if let Some(id) = m.id {
                put_u32(out, id);
            }
            if let Some(rate) = m.rate {
                put_u32(out, rate);
            }
        }
        Message::Set(m) => {
            out.push(
                bit(m.revision.is_some(), 0x80)
                    | bit(m.lock, 0x40)
                    | bit(m.unlock, 0x20)
                    | bit(m.ttl.is_some(), 0x10)
                    | (m.value.kind() as u8),
            );
            put_str(out, m.address.as_str(), "address")?;
            value_data(out, &m.value)?;
            if let Some(rev) = m.revision {
                put_u64(out, rev);
            }
            if let Some(ttl) = m.ttl {
                put_u32(out, ttl.to_raw());
            }
        }
        Message::Get(m) => put_str(out, m.address.as_str(), "address")?,
        Message::Snapshot(m) => {
            put_u16(out, len16(m.params.len(), "params")?);
            for p in &m.params {
                param_state(out, p)?;
            }
        }
        Message::Replay(m) => {
            out.push(
                bit(m.from.is_some(), 0x80)
                    | bit(m.to.is_some(), 0x40)
                    | bit(m.limit.is_some(), 0x20),
            );
            put_str(out, m.pattern.as_str(), "pattern")?;
            if let Some(v) = m.from {
                put_u64(out, v);
            }
            if let Some(v) = m.to {
                put_u64(out, v);
            }
            if let Some(v) = m.limit {
                put_u32(out, v);
            }
            out.push(m.types.0);
        }
        Message::Bundle(m) => {
            out.push(bit(m.timestamp.is_some(), 0x80));
            put_u16(out, len16(m.messages.len(), "bundle messages")?);
            if let Some(ts) = m.timestamp {
                put_u64(out, ts);
            }
            for inner in &m.messages {
                let len_at = out.len();
                put_u16(out, 0);
                message(out, inner)?;
                let len = len16(out.len() - len_at - 2, "inner message")?;
                out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
            }
        }
        Message::Sync(m) => {
            out.push(bit(m.t2.is_some(), 0x01) | bit(m.t3.is_some(), 0x02));
            put_u64(out, m.t1);
            if let Some(t) = m.t2 {
                put_u64(out, t);
            }
            if let Some(t) = m.t3 {
                put_u64(out, t);
            }
        }
        Message::Ping | Message::Pong => {}
        Message::Ack(m) => {
            out.push(
                bit(m.address.is_some(), 0x01)
                    | bit(m.revision.is_some(), 0x02)
                    | bit(m.locked.is_some(), 0x04)
                    | bit(m.holder.is_some(), 0x08)
                    | bit(m.correlation_id.is_some(), 0x10),
            );
            if let Some(a) = &m.address {
                put_str(out, a, "address")?;
            }
            if let Some(rev) = m.revision {
                put_u64(out, rev);
            }
            if let Some(locked) = m.locked {
                out.push(u8::from(locked));
            }
            if let Some(h) = &m.holder {
                put_str(out, h, "holder")?;
            }
            if let Some(c) = m.correlation_id {
                put_u32(out, c);
            }
        }
        Message::Error(m) => {
            put_u16(out, m.code);
            put_str(out, &m.message, "error message")?;
            out.push(bit(m.address.is_some(), 0x01) | bit(m.correlation_id.is_some(), 0x02));
            if let Some(a) = &m.address {
                put_str(out, a, "address")?;
            }
            if let Some(c) = m.correlation_id {
                put_u32(out, c);
            }
        }
        Message::Query(m) => put_str(out, m.pattern.as_str(), "pattern")?,
        Message::Result(m) => {
            put_u16(out, len16(m.signals.len(), "signals")?);
            for s in &m.signals {
                put_str(out, &s.address, "signal address")?;
                out.push(s.signal.code());
                out.push(bit(s.datatype.is_some(), 0x01) | bit(s.access.is_some(), 0x02));
                if let Some(d) = &s.datatype {
                    put_str(out, d, "datatype")?;
                }
                if let Some(a) = &s.access {
                    put_str(out, a, "access")?;
                }
            }
        }
    }
    Ok(())
}

/// One SNAPSHOT entry; shared with [`super::param_state_len`]-based chunking.
pub(crate) fn param_state(out: &mut Out, p: &ParamState) -> Result<(), EncodeError> {
    put_str(out, p.address.as_str(), "param address")?;
    value(out, &p.value)?;
    put_u64(out, p.revision);
    out.push(bit(p.writer.is_some(), 0x01) | bit(p.timestamp.is_some(), 0x02));
    if let Some(w) = &p.writer {
        put_str(out, w, "writer")?;
    }
    if let Some(ts) = p.timestamp {
        put_u64(out, ts);
    }
    Ok(())
}
