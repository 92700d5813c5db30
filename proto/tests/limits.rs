//! Limits and bad input beyond the spec's vectors: nesting caps, empty payloads, oversized
//! messages, MessagePack corner cases and size-based SNAPSHOT chunking.

use clasp_proto::*;

fn set_frame(value: Value) -> Vec<u8> {
    let addr = Address::parse("/x").expect("valid");
    encode_frame(
        &FrameHeader::default(),
        &Message::Set(Set::new(addr, value)),
    )
    .expect("encodes")
}

fn nested_arrays(depth: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

#[test]
fn values_nested_to_the_cap_decode_and_deeper_ones_are_rejected() {
    assert!(decode_frame(&set_frame(nested_arrays(MAX_DEPTH))).is_ok());
    let err = decode_frame(&set_frame(nested_arrays(MAX_DEPTH + 1))).expect_err("too deep");
    assert!(
        matches!(err, DecodeError::TooDeep { max: MAX_DEPTH, .. }),
        "{err:?}"
    );
    assert_eq!(err.error_code(), 101);
}

#[test]
fn bundles_nested_too_deep_are_rejected() {
    let mut m = Message::Ping;
    for _ in 0..=clasp_proto::codec::MAX_BUNDLE_DEPTH {
        m = Message::Bundle(Bundle {
            timestamp: None,
            messages: vec![m],
        });
    }
    let frame = encode_frame(&FrameHeader::default(), &m).expect("encodes");
    assert!(matches!(
        decode_frame(&frame),
        Err(DecodeError::TooDeep { .. })
    ));
}

#[test]
fn empty_payload_is_an_error() {
    assert_eq!(
        decode_frame(&[0x53, 0x01, 0, 0]),
        Err(DecodeError::EmptyPayload { offset: 4 })
    );
}

#[test]
fn timestamp_flag_without_timestamp_is_truncation() {
    let err = decode_frame(&[0x53, 0x21, 0, 1, 0x41]).expect_err("short");
    assert!(matches!(
        err,
        DecodeError::Truncated {
            field: "frame timestamp",
            offset: 4,
            ..
        }
    ));
}

#[test]
fn oversized_payload_fails_to_encode_and_leaves_the_buffer_alone() {
    let big = Value::Bytes(vec![0; 65_000]);
    let two = Value::Array(vec![big.clone(), big]);
    let addr = Address::parse("/big").expect("valid");
    let mut out = vec![1, 2, 3];
    let err = encode_frame_into(
        &FrameHeader::default(),
        &Message::Set(Set::new(addr, two)),
        &mut out,
    )
    .expect_err("too large");
    assert!(matches!(err, EncodeError::PayloadTooLarge { .. }));
    assert_eq!(out, vec![1, 2, 3]);
    let long = Value::String("x".repeat(70_000));
    assert!(matches!(
        encode_frame(
            &FrameHeader::default(),
            &Message::Set(Set::new(Address::parse("/s").expect("valid"), long))
        ),
        Err(EncodeError::TooLong {
            field: "string value",
            len: 70_000
        })
    ));
}

#[test]
fn snapshot_chunks_stay_under_the_payload_limit_and_keep_every_param() {
    let params: Vec<ParamState> = (0..3000)
        .map(|i| ParamState {
            address: Address::parse(&format!("/chunk/{i}")).expect("valid"),
            value: Value::String("v".repeat(100)),
            revision: i,
            writer: Some("session".into()),
            timestamp: Some(1),
        })
        .collect();
    let frames = encode_snapshot_frames(&FrameHeader::default(), &params).expect("encodes");
    assert!(frames.len() > 1, "3000 × ~130 bytes needs several frames");
    let mut seen = Vec::new();
    for f in &frames {
        assert!(f.len() - 4 <= MAX_PAYLOAD);
        let Message::Snapshot(s) = decode_frame(f).expect("decodes").message else {
            panic!("not a snapshot")
        };
        seen.extend(s.params);
    }
    assert_eq!(seen, params);
    let empty = encode_snapshot_frames(&FrameHeader::default(), &[]).expect("encodes");
    assert_eq!(empty, vec![vec![0x53, 0x01, 0x00, 0x03, 0x23, 0x00, 0x00]]);
}

#[test]
fn msgpack_corner_cases() {
    // {"type":"SET","address":"/b","value":bin[ff]}: bin maps to bytes (§6 SHOULD).
    let mut p = vec![0x83, 0xa4];
    p.extend(b"type");
    p.extend([0xa3]);
    p.extend(b"SET");
    p.extend([0xa7]);
    p.extend(b"address");
    p.extend([0xa2]);
    p.extend(b"/b");
    p.extend([0xa5]);
    p.extend(b"value");
    p.extend([0xc4, 0x01, 0xff]);
    let m = decode_message(&p).expect("decodes");
    assert_eq!(
        m,
        Message::Set(Set::new(
            Address::parse("/b").expect("valid"),
            Value::Bytes(vec![0xff])
        ))
    );

    // u64 above i64::MAX becomes a float, as upstream.
    let mut q = p[..p.len() - 3].to_vec();
    q.extend([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let Message::Set(s) = decode_message(&q).expect("decodes") else {
        panic!("not a SET")
    };
    assert_eq!(s.value, Value::Float(u64::MAX as f64));

    // Unknown type name, missing type, non-string key, ext, truncated.
    let unknown = [0x81, 0xa4, b't', b'y', b'p', b'e', 0xa3, b'F', b'O', b'O'];
    assert!(matches!(
        decode_message(&unknown),
        Err(DecodeError::MsgPack { .. })
    ));
    assert!(matches!(
        decode_message(&[0x80]),
        Err(DecodeError::MsgPack { .. })
    ));
    assert!(matches!(
        decode_message(&[0x81, 0x01, 0x01]),
        Err(DecodeError::MsgPack { .. })
    ));
    assert!(matches!(
        decode_message(&[0x81, 0xa1, b'x', 0xd4, 0, 0]),
        Err(DecodeError::MsgPack { .. })
    ));
    assert!(matches!(
        decode_message(&[0xde, 0x00]),
        Err(DecodeError::Truncated { .. })
    ));
    // A map32 claiming 4 billion entries must fail fast without allocating for them.
    assert!(matches!(
        decode_message(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn lying_counts_do_not_allocate() {
    // SNAPSHOT claiming 65535 params with no bytes behind the count.
    let err = decode_message(&[0x23, 0xff, 0xff]).expect_err("truncated");
    assert!(matches!(
        err,
        DecodeError::Truncated {
            field: "param address",
            ..
        }
    ));
}

#[test]
fn decode_error_messages_name_field_and_offset() {
    let err = decode_frame(&hex::decode("5301000e218700022f613ff0000000000000").expect("hex"))
        .expect_err("truncated");
    assert_eq!(
        err.to_string(),
        "truncated revision at offset 18: needs 8 bytes, 0 left"
    );
}
