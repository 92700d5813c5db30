//! The spec's test vectors (`tests/data/vectors.json`, copied from shared/spec/vectors):
//! every frame decodes to the reference decoder's typed form and re-encodes to the same
//! bytes (narrow integer/float types re-encode canonically, checked against hand-computed
//! frames); every invalid frame fails with the expected typed error.

use clasp_proto::*;
use serde_json::{json, Value as Json};

fn load() -> Json {
    serde_json::from_str(include_str!("data/vectors.json")).expect("vectors.json parses")
}

fn float_json(f: f64) -> Json {
    if f.is_nan() {
        json!("nan")
    } else if f == f64::INFINITY {
        json!("inf")
    } else if f == f64::NEG_INFINITY {
        json!("-inf")
    } else if f == 0.0 && f.is_sign_negative() {
        json!("-0")
    } else {
        json!(f)
    }
}

/// Our value in the reference decoder's typed form.
fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => json!({"t": "null"}),
        Value::Bool(b) => json!({"t": "bool", "v": b}),
        Value::Int(i) => json!({"t": "i64", "v": i}),
        Value::Float(f) => json!({"t": "f64", "v": float_json(*f)}),
        Value::String(s) => json!({"t": "string", "v": s}),
        Value::Bytes(b) => json!({"t": "bytes", "hex": hex::encode(b)}),
        Value::Array(items) => {
            json!({"t": "array", "v": items.iter().map(value_json).collect::<Vec<_>>()})
        }
        Value::Map(entries) => {
            json!({"t": "map", "v": entries.iter().map(|(k, v)| json!([k, value_json(v)])).collect::<Vec<_>>()})
        }
    }
}

/// The reference form with narrow types widened as our decoder (and upstream) does.
fn canonical(expected: &Json) -> Json {
    match expected {
        Json::Object(map) => {
            if let Some(Json::String(t)) = map.get("t") {
                match t.as_str() {
                    "i8" | "i16" | "i32" => return json!({"t": "i64", "v": map["v"]}),
                    "f32" => {
                        let f = map["v"].as_f64().expect("f32 vector value is a number");
                        return json!({"t": "f64", "v": float_json(f)});
                    }
                    _ => {}
                }
            }
            let mut out: serde_json::Map<String, Json> =
                map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect();
            // SET carries the value's type code in its flags: widen that too.
            if out.get("type") == Some(&json!("SET")) {
                let code = match out["value"]["t"].as_str() {
                    Some("i64") => Some(0x05),
                    Some("f64") => Some(0x07),
                    _ => None,
                };
                if let (Some(code), Some(flags)) = (code, out["flags"].as_u64()) {
                    out.insert("flags".into(), json!((flags & 0xF0) | code));
                }
            }
            Json::Object(out)
        }
        Json::Array(items) => Json::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn types_json(mask: TypeMask) -> Json {
    if mask.0 == 0xFF {
        return json!("all(0xFF)");
    }
    let names: Vec<&str> = [
        SignalType::Param,
        SignalType::Event,
        SignalType::Stream,
        SignalType::Gesture,
        SignalType::Timeline,
    ]
    .into_iter()
    .filter(|s| mask.0 & s.mask_bit() != 0)
    .map(SignalType::name)
    .collect();
    json!(names)
}

fn features_json(f: FeatureSet) -> Json {
    let all = [
        (FeatureSet::PARAM, "param"),
        (FeatureSet::EVENT, "event"),
        (FeatureSet::STREAM, "stream"),
        (FeatureSet::GESTURE, "gesture"),
        (FeatureSet::TIMELINE, "timeline"),
        (FeatureSet::FEDERATION, "federation"),
    ];
    json!(all
        .iter()
        .filter(|(bit, _)| f.has(*bit))
        .map(|(_, n)| *n)
        .collect::<Vec<_>>())
}

fn put<T: Into<Json>>(obj: &mut serde_json::Map<String, Json>, key: &str, v: Option<T>) {
    if let Some(v) = v {
        obj.insert(key.to_string(), v.into());
    }
}

fn flag(set: bool, bit: u8) -> u8 {
    if set {
        bit
    } else {
        0
    }
}

/// Our message in the reference decoder's form (binary payloads).
fn message_json(m: &Message) -> Json {
    let mut o = serde_json::Map::new();
    o.insert("type".into(), json!(m.name()));
    match m {
        Message::Hello(h) => {
            o.insert("version".into(), json!(h.version));
            o.insert("feature_flags".into(), json!(h.features.0));
            o.insert("features".into(), features_json(h.features));
            o.insert("name".into(), json!(h.name));
            o.insert("token".into(), json!(h.token.clone().unwrap_or_default()));
        }
        Message::Welcome(w) => {
            o.insert("version".into(), json!(w.version));
            o.insert("feature_flags".into(), json!(w.features.0));
            o.insert("features".into(), features_json(w.features));
            o.insert("time".into(), json!(w.time));
            o.insert("session".into(), json!(w.session));
            o.insert("name".into(), json!(w.name));
            o.insert("token".into(), json!(w.token.clone().unwrap_or_default()));
        }
        Message::Announce(a) => {
            o.insert("namespace".into(), json!(a.namespace));
            let signals: Vec<Json> = a
                .signals
                .iter()
                .map(|s| {
                    let mut e = serde_json::Map::new();
                    e.insert("address".into(), json!(s.address));
                    e.insert("type".into(), json!(s.signal.name()));
                    e.insert(
                        "opt_flags".into(),
                        json!(
                            flag(s.datatype.is_some(), 1)
                                | flag(s.access.is_some(), 2)
                                | flag(s.meta.is_some(), 4)
                        ),
                    );
                    put(&mut e, "datatype", s.datatype.clone());
                    put(&mut e, "access", s.access.clone());
                    if let Some(meta) = &s.meta {
                        let mut me = serde_json::Map::new();
                        me.insert(
                            "meta_flags".into(),
                            json!(
                                flag(meta.unit.is_some(), 1)
                                    | flag(meta.range.is_some(), 2)
                                    | flag(meta.default.is_some(), 4)
                                    | flag(meta.description.is_some(), 8)
                            ),
                        );
                        put(&mut me, "unit", meta.unit.clone());
                        put(&mut me, "range", meta.range.map(|(a, b)| json!([a, b])));
                        put(&mut me, "default", meta.default.as_ref().map(value_json));
                        put(&mut me, "description", meta.description.clone());
                        e.insert("meta".into(), Json::Object(me));
                    }
                    Json::Object(e)
                })
                .collect();
            o.insert("signals".into(), json!(signals));
        }
        Message::FederationSync(f) => {
            let name = match f.op {
                FederationOp::DeclareNamespaces => "1 (DeclareNamespaces)",
                FederationOp::RequestSync => "2 (RequestSync)",
                FederationOp::RevisionVector => "3 (RevisionVector)",
                FederationOp::SyncComplete => "4 (SyncComplete)",
            };
            o.insert("op".into(), json!(name));
            o.insert(
                "patterns".into(),
                json!(f.patterns.iter().map(Pattern::as_str).collect::<Vec<_>>()),
            );
            o.insert(
                "revisions".into(),
                json!(f
                    .revisions
                    .iter()
                    .map(|(a, r)| json!([a.as_str(), r]))
                    .collect::<Vec<_>>()),
            );
            o.insert(
                "flags".into(),
                json!(flag(f.since_revision.is_some(), 0x80) | flag(f.origin.is_some(), 0x40)),
            );
            put(&mut o, "since_revision", f.since_revision);
            put(&mut o, "origin", f.origin.clone());
        }
        Message::Subscribe(s) => {
            o.insert("id".into(), json!(s.id));
            o.insert("pattern".into(), json!(s.pattern.as_str()));
            o.insert("type_mask".into(), json!(s.types.0));
            o.insert("types".into(), types_json(s.types));
            let opts = &s.options;
            o.insert(
                "opt_flags".into(),
                json!(
                    flag(opts.max_rate.is_some(), 1)
                        | flag(opts.epsilon.is_some(), 2)
                        | flag(opts.history.is_some(), 4)
                        | flag(opts.window.is_some(), 8)
                ),
            );
            put(&mut o, "max_rate", opts.max_rate);
            put(&mut o, "epsilon", opts.epsilon);
            put(&mut o, "history", opts.history);
            put(&mut o, "window", opts.window);
        }
        Message::Unsubscribe(u) => {
            o.insert("id".into(), json!(u.id));
        }
        Message::Publish(p) => {
            let flags = (p.signal.code() << 5)
                | flag(p.timestamp.is_some(), 0x10)
                | flag(p.id.is_some(), 0x08)
                | p.phase as u8;
            o.insert("flags".into(), json!(flags));
            o.insert("signal".into(), json!(p.signal.name()));
            o.insert("has_timestamp".into(), json!(p.timestamp.is_some()));
            o.insert("has_id".into(), json!(p.id.is_some()));
            o.insert("phase".into(), json!(p.phase.name()));
            o.insert("address".into(), json!(p.address.as_str()));
            match &p.payload {
                Payload::None => {
                    o.insert("value_indicator".into(), json!(0));
                }
                Payload::Value(v) => {
                    o.insert("value_indicator".into(), json!(1));
                    o.insert("value".into(), value_json(v));
                }
                Payload::Samples(s) => {
                    o.insert("value_indicator".into(), json!(2));
                    o.insert(
                        "samples".into(),
                        json!(s.iter().map(|f| float_json(*f)).collect::<Vec<_>>()),
                    );
                }
            }
            put(&mut o, "timestamp", p.timestamp);
            put(&mut o, "id", p.id);
            put(&mut o, "rate", p.rate);
        }
        Message::Set(s) => {
            let flags = flag(s.revision.is_some(), 0x80)
                | flag(s.lock, 0x40)
                | flag(s.unlock, 0x20)
                | flag(s.ttl.is_some(), 0x10)
                | s.value.kind() as u8;
            o.insert("flags".into(), json!(flags));
            o.insert("has_revision".into(), json!(s.revision.is_some()));
            o.insert("lock".into(), json!(s.lock));
            o.insert("unlock".into(), json!(s.unlock));
            o.insert("has_ttl".into(), json!(s.ttl.is_some()));
            o.insert("address".into(), json!(s.address.as_str()));
            o.insert("value".into(), value_json(&s.value));
            put(&mut o, "revision", s.revision);
            if let Some(ttl) = s.ttl {
                o.insert("ttl_raw".into(), json!(ttl.to_raw()));
                let t = match ttl {
                    Ttl::Never => json!("never"),
                    Ttl::Sliding(n) => json!({"sliding_secs": n}),
                    Ttl::Absolute(n) => json!({"absolute_secs": n}),
                };
                o.insert("ttl".into(), t);
            }
        }
        Message::Get(g) => {
            o.insert("address".into(), json!(g.address.as_str()));
        }
        Message::Snapshot(s) => {
            let params: Vec<Json> = s
                .params
                .iter()
                .map(|p| {
                    let mut e = serde_json::Map::new();
                    e.insert("address".into(), json!(p.address.as_str()));
                    e.insert("value".into(), value_json(&p.value));
                    e.insert("revision".into(), json!(p.revision));
                    e.insert(
                        "opt_flags".into(),
                        json!(flag(p.writer.is_some(), 1) | flag(p.timestamp.is_some(), 2)),
                    );
                    put(&mut e, "writer", p.writer.clone());
                    put(&mut e, "timestamp", p.timestamp);
                    Json::Object(e)
                })
                .collect();
            o.insert("params".into(), json!(params));
        }
        Message::Replay(r) => {
            o.insert(
                "flags".into(),
                json!(
                    flag(r.from.is_some(), 0x80)
                        | flag(r.to.is_some(), 0x40)
                        | flag(r.limit.is_some(), 0x20)
                ),
            );
            o.insert("pattern".into(), json!(r.pattern.as_str()));
            put(&mut o, "from", r.from);
            put(&mut o, "to", r.to);
            put(&mut o, "limit", r.limit);
            o.insert("type_mask".into(), json!(r.types.0));
            o.insert("types".into(), types_json(r.types));
        }
        Message::Bundle(b) => {
            o.insert("flags".into(), json!(flag(b.timestamp.is_some(), 0x80)));
            put(&mut o, "timestamp", b.timestamp);
            o.insert(
                "messages".into(),
                json!(b.messages.iter().map(message_json).collect::<Vec<_>>()),
            );
        }
        Message::Sync(s) => {
            o.insert(
                "flags".into(),
                json!(flag(s.t2.is_some(), 1) | flag(s.t3.is_some(), 2)),
            );
            o.insert("t1".into(), json!(s.t1));
            put(&mut o, "t2", s.t2);
            put(&mut o, "t3", s.t3);
        }
        Message::Ping | Message::Pong => {}
        Message::Ack(a) => {
            o.insert(
                "flags".into(),
                json!(
                    flag(a.address.is_some(), 1)
                        | flag(a.revision.is_some(), 2)
                        | flag(a.locked.is_some(), 4)
                        | flag(a.holder.is_some(), 8)
                        | flag(a.correlation_id.is_some(), 0x10)
                ),
            );
            put(&mut o, "address", a.address.clone());
            put(&mut o, "revision", a.revision);
            put(&mut o, "locked", a.locked);
            put(&mut o, "holder", a.holder.clone());
            put(&mut o, "correlation_id", a.correlation_id);
        }
        Message::Error(e) => {
            o.insert("code".into(), json!(e.code));
            o.insert("message".into(), json!(e.message));
            o.insert(
                "flags".into(),
                json!(flag(e.address.is_some(), 1) | flag(e.correlation_id.is_some(), 2)),
            );
            put(&mut o, "address", e.address.clone());
            put(&mut o, "correlation_id", e.correlation_id);
        }
        Message::Query(q) => {
            o.insert("pattern".into(), json!(q.pattern.as_str()));
        }
        Message::Result(r) => {
            let signals: Vec<Json> = r
                .signals
                .iter()
                .map(|s| {
                    let mut e = serde_json::Map::new();
                    e.insert("address".into(), json!(s.address));
                    e.insert("type".into(), json!(s.signal.name()));
                    e.insert(
                        "opt_flags".into(),
                        json!(flag(s.datatype.is_some(), 1) | flag(s.access.is_some(), 2)),
                    );
                    put(&mut e, "datatype", s.datatype.clone());
                    put(&mut e, "access", s.access.clone());
                    Json::Object(e)
                })
                .collect();
            o.insert("signals".into(), json!(signals));
        }
    }
    Json::Object(o)
}

/// MessagePack vectors carry the plain MessagePack map; compare field by field in the
/// serde names of §6.
fn plain_json(m: &Message) -> Json {
    fn plain_value(v: &Value) -> Json {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => json!(b),
            Value::Int(i) => json!(i),
            Value::Float(f) => json!(f),
            Value::String(s) => json!(s),
            Value::Bytes(b) => json!(b),
            Value::Array(a) => Json::Array(a.iter().map(plain_value).collect()),
            Value::Map(m) => {
                Json::Object(m.iter().map(|(k, v)| (k.clone(), plain_value(v))).collect())
            }
        }
    }
    match m {
        Message::Set(s) => json!({
            "type": "SET", "address": s.address.as_str(), "value": plain_value(&s.value),
            "revision": s.revision, "lock": s.lock, "unlock": s.unlock,
        }),
        Message::Publish(p) => {
            let payload = match &p.payload {
                Payload::Value(v) => plain_value(v),
                _ => Json::Null,
            };
            json!({"type": "PUBLISH", "address": p.address.as_str(), "signal": p.signal.name(), "payload": payload})
        }
        Message::Bundle(b) => json!({
            "type": "BUNDLE", "timestamp": b.timestamp,
            "messages": b.messages.iter().map(plain_json).collect::<Vec<_>>(),
        }),
        Message::Query(q) => json!({"type": "QUERY", "pattern": q.pattern.as_str()}),
        other => panic!("no MessagePack vector expected for {}", other.name()),
    }
}

/// Keeps only the keys the expected object has (our plain form may name more).
fn project(ours: &Json, expected: &Json) -> Json {
    match (ours, expected) {
        (Json::Object(o), Json::Object(e)) => Json::Object(
            e.keys()
                .map(|k| (k.clone(), project(o.get(k).unwrap_or(&Json::Null), &e[k])))
                .collect(),
        ),
        (Json::Array(o), Json::Array(e)) if o.len() == e.len() => {
            Json::Array(o.iter().zip(e).map(|(a, b)| project(a, b)).collect())
        }
        _ => ours.clone(),
    }
}

/// Canonical re-encodings of the vectors that use narrow types, computed by hand from
/// §3.2: i8/i16/i32 become 0x05 + 8 bytes, f32 becomes 0x07 + 8 bytes.
fn canonical_reencoding(name: &str) -> Option<&'static str> {
    Some(match name {
        "spec_set_i8" => "5341000e 2105 0002 2f69 fffffffffffffffb",
        "spec_set_i16" => "5341000e 2105 0002 2f69 fffffffffffffed4",
        "spec_set_i32" => "5341000e 2105 0002 2f69 00000000000186a0",
        "spec_set_f32" => "5341000e 2107 0002 2f66 3fe0000000000000",
        "spec_set_array_all_widths" => concat!(
            "53410040 210a 0002 2f77 0006",
            "05 0000000000000001 05 0000000000000002 05 0000000000000003 05 0000000000000004",
            "07 3ff8000000000000 0b 0001 0001 7a 09 0002 dead"
        ),
        "spec_publish_gesture_i32_payload" => concat!(
            "5301002e 2079 0002 2f67 01 0b 0002",
            "0001 78 05 fffffffffffffff9 0001 70 07 3fd0000000000000",
            "0000000000000001 00000003"
        ),
        _ => return None,
    })
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("valid hex in test")
}

fn frame_json(h: &FrameHeader, payload_length: usize) -> Json {
    let mut o = json!({
        "flags": format!("0x{:02x}", h.flags()),
        "qos": h.qos as u8,
        "has_timestamp": h.timestamp.is_some(),
        "encrypted": h.encrypted,
        "compressed": h.compressed,
        "version": h.version,
        "payload_length": payload_length,
    });
    if let Some(ts) = h.timestamp {
        o["timestamp"] = json!(ts);
    }
    o
}

#[test]
fn all_vectors_decode_to_the_reference_form_and_reencode() {
    let data = load();
    let vectors = data["vectors"].as_array().expect("vectors array");
    assert_eq!(vectors.len(), 150, "the spec ships 150 vectors");
    let mut msgpack = 0;
    for v in vectors {
        let name = v["name"].as_str().expect("name");
        let bytes = unhex(v["hex"].as_str().expect("hex"));
        let decoded = decode_frame(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = &v["decoded"];
        let (_, payload, _) = FrameHeader::split(&bytes).expect("header splits");
        assert_eq!(
            frame_json(&decoded.header, payload.len()),
            expected["frame"],
            "{name}: frame header"
        );
        match expected["payload_encoding"].as_str() {
            Some("msgpack") => {
                msgpack += 1;
                assert_eq!(decoded.encoding, PayloadEncoding::MsgPack, "{name}");
                let ours = plain_json(&decoded.message);
                assert_eq!(
                    project(&ours, &expected["message"]),
                    expected["message"],
                    "{name}: message"
                );
                // Re-encoded as binary, it must decode back to the same message.
                let binary = encode_frame(&decoded.header, &decoded.message).expect("encodes");
                assert_eq!(
                    decode_frame(&binary).expect("decodes").message,
                    decoded.message,
                    "{name}"
                );
            }
            _ => {
                assert_eq!(decoded.encoding, PayloadEncoding::Binary, "{name}");
                assert_eq!(
                    message_json(&decoded.message),
                    canonical(&expected["message"]),
                    "{name}: message"
                );
                let reencoded = encode_frame(&decoded.header, &decoded.message).expect("encodes");
                let want = canonical_reencoding(name).map_or_else(|| bytes.clone(), unhex);
                assert_eq!(
                    hex::encode(&reencoded),
                    hex::encode(&want),
                    "{name}: re-encoding"
                );
            }
        }
    }
    assert_eq!(msgpack, 4, "four MessagePack vectors");
}

#[test]
fn every_invalid_frame_fails_with_its_typed_error() {
    let data = load();
    let invalid = data["invalid_frames"].as_array().expect("invalid_frames");
    assert_eq!(invalid.len(), 9);
    for v in invalid {
        let name = v["name"].as_str().expect("name");
        let bytes = unhex(v["hex"].as_str().expect("hex"));
        let err = decode_frame(&bytes).expect_err(name);
        let ok = match name {
            "truncated_set_revision" => {
                matches!(
                    err,
                    DecodeError::Truncated {
                        field: "revision",
                        offset: 18,
                        needed: 8,
                        available: 0
                    }
                )
            }
            "bad_magic" => err == DecodeError::BadMagic { found: 0 },
            "length_longer_than_data" => {
                err == DecodeError::FrameTruncated {
                    expected: 5,
                    available: 1,
                }
            }
            "unknown_message_type_0x7f" => {
                err == DecodeError::UnknownMessageType {
                    code: 0x7f,
                    offset: 4,
                }
            }
            "unknown_value_type_0x0c" => {
                err == DecodeError::UnknownValueType {
                    code: 0x0c,
                    offset: 5,
                }
            }
            "federation_bad_op" => {
                err == DecodeError::InvalidCode {
                    field: "federation op",
                    value: 9,
                    offset: 5,
                }
            }
            "string_length_overrun" => {
                matches!(
                    err,
                    DecodeError::Truncated {
                        field: "address",
                        offset: 7,
                        needed: 16,
                        available: 2
                    }
                )
            }
            "invalid_utf8_address" => {
                err == DecodeError::InvalidUtf8 {
                    field: "address",
                    offset: 7,
                }
            }
            "set_address_multibyte_first_char" => {
                matches!(&err, DecodeError::InvalidAddress { address, offset: 6, .. } if address == "é/x")
                    && err.error_code() == 200
            }
            other => panic!("unexpected invalid vector {other}"),
        };
        assert!(ok, "{name}: got {err:?}");
        let code = err.error_code();
        assert!(matches!(code, 100 | 101 | 200), "{name}: ERROR code {code}");
    }
}
