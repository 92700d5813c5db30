//! Binary v1 decoding (§3–§5).

use alloc::vec::Vec;

use super::reader::Reader;
use super::MAX_BUNDLE_DEPTH;
use crate::message::*;
use crate::value::{code as vcode, MAX_DEPTH};
use crate::{DecodeError, Value};

/// Decodes one binary message from the reader (first byte = type code).
pub(crate) fn message(r: &mut Reader<'_>, bundle_depth: usize) -> Result<Message, DecodeError> {
    let type_offset = r.offset();
    let code = r.u8("message type")?;
    Ok(match code {
        code::HELLO => Message::Hello(Hello {
            version: r.u8("version")?,
            features: FeatureSet(r.u8("features")?),
            name: r.string("name")?,
            token: r.optional_string("token")?,
        }),
        code::WELCOME => Message::Welcome(Welcome {
            version: r.u8("version")?,
            features: FeatureSet(r.u8("features")?),
            time: r.u64("time")?,
            session: r.string("session")?,
            name: r.string("name")?,
            token: r.optional_string("token")?,
        }),
        code::ANNOUNCE => Message::Announce(announce(r)?),
        code::FEDERATION_SYNC => Message::FederationSync(federation_sync(r)?),
        code::SUBSCRIBE => Message::Subscribe(subscribe(r)?),
        code::UNSUBSCRIBE => Message::Unsubscribe(Unsubscribe {
            id: r.u32("subscription id")?,
        }),
        code::PUBLISH => Message::Publish(publish(r)?),
        code::SET => Message::Set(set(r)?),
        code::GET => Message::Get(Get {
            address: r.address("address")?,
        }),
        code::SNAPSHOT => Message::Snapshot(snapshot(r)?),
        code::REPLAY => Message::Replay(replay(r)?),
        code::BUNDLE => Message::Bundle(bundle(r, bundle_depth)?),
        code::SYNC => {
            let flags = r.u8("sync flags")?;
            let t1 = r.u64("t1")?;
            let t2 = if flags & 0x01 != 0 {
                Some(r.u64("t2")?)
            } else {
                None
            };
            let t3 = if flags & 0x02 != 0 {
                Some(r.u64("t3")?)
            } else {
                None
            };
            Message::Sync(ClockSync { t1, t2, t3 })
        }
        code::PING => Message::Ping,
        code::PONG => Message::Pong,
        code::ACK => Message::Ack(ack(r)?),
        code::ERROR => Message::Error(error(r)?),
        code::QUERY => Message::Query(Query {
            pattern: r.pattern("pattern")?,
        }),
        code::RESULT => Message::Result(result(r)?),
        code => {
            return Err(DecodeError::UnknownMessageType {
                code,
                offset: type_offset,
            })
        }
    })
}

/// A value: type code + data.
pub(crate) fn value(r: &mut Reader<'_>, depth: usize) -> Result<Value, DecodeError> {
    let offset = r.offset();
    let code = r.u8("value type")?;
    value_data(r, code, offset, depth)
}

/// The data of a value whose type code was read already (at `offset`).
pub(crate) fn value_data(
    r: &mut Reader<'_>,
    code: u8,
    offset: usize,
    depth: usize,
) -> Result<Value, DecodeError> {
    Ok(match code {
        vcode::NULL => Value::Null,
        vcode::BOOL => Value::Bool(r.u8("bool")? != 0),
        vcode::I8 => Value::Int(i64::from(r.u8("i8")? as i8)),
        vcode::I16 => Value::Int(i64::from(r.u16("i16")? as i16)),
        vcode::I32 => Value::Int(i64::from(r.u32("i32")? as i32)),
        vcode::I64 => Value::Int(r.u64("i64")? as i64),
        vcode::F32 => Value::Float(f64::from(r.f32("f32")?)),
        vcode::F64 => Value::Float(r.f64("f64")?),
        vcode::STRING => Value::String(r.string("string value")?),
        vcode::BYTES => {
            let len = usize::from(r.u16("bytes length")?);
            Value::Bytes(r.take(len, "bytes value")?.to_vec())
        }
        vcode::ARRAY => {
            if depth >= MAX_DEPTH {
                return Err(DecodeError::TooDeep {
                    max: MAX_DEPTH,
                    offset,
                });
            }
            let count = usize::from(r.u16("array count")?);
            let mut items = Vec::with_capacity(r.capacity(count, 1));
            for _ in 0..count {
                items.push(value(r, depth + 1)?);
            }
            Value::Array(items)
        }
        vcode::MAP => {
            if depth >= MAX_DEPTH {
                return Err(DecodeError::TooDeep {
                    max: MAX_DEPTH,
                    offset,
                });
            }
            let count = usize::from(r.u16("map count")?);
            let mut entries = Vec::with_capacity(r.capacity(count, 3));
            for _ in 0..count {
                let key = r.string("map key")?;
                entries.push((key, value(r, depth + 1)?));
            }
            Value::Map(entries)
        }
        code => return Err(DecodeError::UnknownValueType { code, offset }),
    })
}

fn announce(r: &mut Reader<'_>) -> Result<Announce, DecodeError> {
    let namespace = r.string("namespace")?;
    let count = usize::from(r.u16("signal count")?);
    let mut signals = Vec::with_capacity(r.capacity(count, 4));
    for _ in 0..count {
        let address = r.string("signal address")?;
        let signal = SignalType::from_code(r.u8("signal type")?);
        let opt = r.u8("signal flags")?;
        let datatype = if opt & 0x01 != 0 {
            Some(r.string("datatype")?)
        } else {
            None
        };
        let access = if opt & 0x02 != 0 {
            Some(r.string("access")?)
        } else {
            None
        };
        let meta = if opt & 0x04 != 0 {
            let mf = r.u8("meta flags")?;
            Some(SignalMeta {
                unit: if mf & 0x01 != 0 {
                    Some(r.string("unit")?)
                } else {
                    None
                },
                range: if mf & 0x02 != 0 {
                    Some((r.f64("range min")?, r.f64("range max")?))
                } else {
                    None
                },
                default: if mf & 0x04 != 0 {
                    Some(value(r, 0)?)
                } else {
                    None
                },
                description: if mf & 0x08 != 0 {
                    Some(r.string("description")?)
                } else {
                    None
                },
            })
        } else {
            None
        };
        signals.push(SignalDef {
            address,
            signal,
            datatype,
            access,
            meta,
        });
    }
    Ok(Announce { namespace, signals })
}

fn federation_sync(r: &mut Reader<'_>) -> Result<FederationSync, DecodeError> {
    let op_offset = r.offset();
    let op_code = r.u8("federation op")?;
    let op = FederationOp::from_code(op_code).ok_or(DecodeError::InvalidCode {
        field: "federation op",
        value: u64::from(op_code),
        offset: op_offset,
    })?;
    let count = usize::from(r.u16("pattern count")?);
    let mut patterns = Vec::with_capacity(r.capacity(count, 2));
    for _ in 0..count {
        patterns.push(r.pattern("federation pattern")?);
    }
    let count = usize::from(r.u16("revision count")?);
    let mut revisions = Vec::with_capacity(r.capacity(count, 10));
    for _ in 0..count {
        let address = r.address("revision address")?;
        revisions.push((address, r.u64("revision")?));
    }
    let flags = r.u8("federation flags")?;
    let since_revision = if flags & 0x80 != 0 {
        Some(r.u64("since revision")?)
    } else {
        None
    };
    let origin = if flags & 0x40 != 0 {
        Some(r.string("origin")?)
    } else {
        None
    };
    Ok(FederationSync {
        op,
        patterns,
        revisions,
        since_revision,
        origin,
    })
}

fn subscribe(r: &mut Reader<'_>) -> Result<Subscribe, DecodeError> {
    let id = r.u32("subscription id")?;
    let pattern = r.pattern("pattern")?;
    let types = TypeMask(r.u8("type mask")?);
    let opt = r.u8("subscribe options")?;
    let options = SubscribeOptions {
        max_rate: if opt & 0x01 != 0 {
            Some(r.u32("max rate")?)
        } else {
            None
        },
        epsilon: if opt & 0x02 != 0 {
            Some(r.f64("epsilon")?)
        } else {
            None
        },
        history: if opt & 0x04 != 0 {
            Some(r.u32("history")?)
        } else {
            None
        },
        window: if opt & 0x08 != 0 {
            Some(r.u32("window")?)
        } else {
            None
        },
    };
    Ok(Subscribe {
        id,
        pattern,
        types,
        options,
    })
}

fn publish(r: &mut Reader<'_>) -> Result<Publish, DecodeError> {
    let flags = r.u8("publish flags")?;
    let address = r.address("address")?;
    let payload = match r.u8("value indicator")? {
        1 => Payload::Value(value(r, 0)?),
        2 => {
            let count = usize::from(r.u16("sample count")?);
            let mut samples = Vec::with_capacity(r.capacity(count, 8));
            for _ in 0..count {
                samples.push(r.f64("sample")?);
            }
            Payload::Samples(samples)
        }
        _ => Payload::None,
    };
    let timestamp = if flags & 0x10 != 0 {
        Some(r.u64("timestamp")?)
    } else {
        None
    };
    let id = if flags & 0x08 != 0 {
        Some(r.u32("gesture id")?)
    } else {
        None
    };
    // §5.8: rate has no flag; it is there iff at least 4 bytes remain.
    let rate = if r.remaining() >= 4 {
        Some(r.u32("rate")?)
    } else {
        None
    };
    Ok(Publish {
        signal: SignalType::from_code(flags >> 5),
        phase: GesturePhase::from_code(flags),
        address,
        payload,
        timestamp,
        id,
        rate,
    })
}

fn set(r: &mut Reader<'_>) -> Result<Set, DecodeError> {
    let flags_offset = r.offset();
    let flags = r.u8("set flags")?;
    let address = r.address("address")?;
    let value = value_data(r, flags & 0x0F, flags_offset, 0)?;
    let revision = if flags & 0x80 != 0 {
        Some(r.u64("revision")?)
    } else {
        None
    };
    let ttl = if flags & 0x10 != 0 {
        Some(Ttl::from_raw(r.u32("ttl")?))
    } else {
        None
    };
    Ok(Set {
        address,
        value,
        revision,
        lock: flags & 0x40 != 0,
        unlock: flags & 0x20 != 0,
        ttl,
    })
}

fn snapshot(r: &mut Reader<'_>) -> Result<Snapshot, DecodeError> {
    let count = usize::from(r.u16("param count")?);
    let mut params = Vec::with_capacity(r.capacity(count, 12));
    for _ in 0..count {
        let address = r.address("param address")?;
        let value = value(r, 0)?;
        let revision = r.u64("revision")?;
        let opt = r.u8("param flags")?;
        let writer = if opt & 0x01 != 0 {
            Some(r.string("writer")?)
        } else {
            None
        };
        let timestamp = if opt & 0x02 != 0 {
            Some(r.u64("timestamp")?)
        } else {
            None
        };
        params.push(ParamState {
            address,
            value,
            revision,
            writer,
            timestamp,
        });
    }
    Ok(Snapshot { params })
}

fn replay(r: &mut Reader<'_>) -> Result<Replay, DecodeError> {
    let flags = r.u8("replay flags")?;
    let pattern = r.pattern("pattern")?;
    let from = if flags & 0x80 != 0 {
        Some(r.u64("from")?)
    } else {
        None
    };
    let to = if flags & 0x40 != 0 {
        Some(r.u64("to")?)
    } else {
        None
    };
    let limit = if flags & 0x20 != 0 {
        Some(r.u32("limit")?)
    } else {
        None
    };
    let types = TypeMask(r.u8("type mask")?);
    Ok(Replay {
        pattern,
        from,
        to,
        limit,
        types,
    })
}

fn bundle(r: &mut Reader<'_>, depth: usize) -> Result<Bundle, DecodeError> {
    let start = r.offset() - 1;
    if depth >= MAX_BUNDLE_DEPTH {
        return Err(DecodeError::TooDeep {
            max: MAX_BUNDLE_DEPTH,
            offset: start,
        });
    }
    let flags = r.u8("bundle flags")?;
    let count = usize::from(r.u16("message count")?);
    let timestamp = if flags & 0x80 != 0 {
        Some(r.u64("timestamp")?)
    } else {
        None
    };
    let mut messages = Vec::with_capacity(r.capacity(count, 3));
    for _ in 0..count {
        let len = usize::from(r.u16("inner message length")?);
        let base = r.offset();
        let inner = r.take(len, "inner message")?;
        messages.push(super::decode_payload_at(inner, base, depth + 1)?.0);
    }
    Ok(Bundle {
        timestamp,
        messages,
    })
}

fn ack(r: &mut Reader<'_>) -> Result<Ack, DecodeError> {
    let flags = r.u8("ack flags")?;
    Ok(Ack {
        address: if flags & 0x01 != 0 {
            Some(r.string("address")?)
        } else {
            None
        },
        revision: if flags & 0x02 != 0 {
            Some(r.u64("revision")?)
        } else {
            None
        },
        locked: if flags & 0x04 != 0 {
            Some(r.u8("locked")? != 0)
        } else {
            None
        },
        holder: if flags & 0x08 != 0 {
            Some(r.string("holder")?)
        } else {
            None
        },
        correlation_id: if flags & 0x10 != 0 {
            Some(r.u32("correlation id")?)
        } else {
            None
        },
    })
}

fn error(r: &mut Reader<'_>) -> Result<ErrorMessage, DecodeError> {
    let code = r.u16("error code")?;
    let message = r.string("error message")?;
    let flags = r.u8("error flags")?;
    Ok(ErrorMessage {
        code,
        message,
        address: if flags & 0x01 != 0 {
            Some(r.string("address")?)
        } else {
            None
        },
        correlation_id: if flags & 0x02 != 0 {
            Some(r.u32("correlation id")?)
        } else {
            None
        },
    })
}

fn result(r: &mut Reader<'_>) -> Result<QueryResult, DecodeError> {
    let count = usize::from(r.u16("signal count")?);
    let mut signals = Vec::with_capacity(r.capacity(count, 4));
    for _ in 0..count {
        let address = r.string("signal address")?;
        let signal = SignalType::from_code(r.u8("signal type")?);
        let opt = r.u8("signal flags")?;
        let datatype = if opt & 0x01 != 0 {
            Some(r.string("datatype")?)
        } else {
            None
        };
        let access = if opt & 0x02 != 0 {
            Some(r.string("access")?)
        } else {
            None
        };
        signals.push(SignalInfo {
            address,
            signal,
            datatype,
            access,
        });
    }
    Ok(QueryResult { signals })
}
