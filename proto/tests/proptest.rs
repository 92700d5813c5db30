//! Property tests: every message we can build survives encode → decode unchanged, and no
//! byte string (random, or a valid frame with bytes flipped or cut) makes the decoder panic.

use clasp_proto::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn float() -> impl Strategy<Value = f64> {
    // NaN never compares equal; its round trip is covered by the special-floats vector.
    prop_oneof![
        proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        float().prop_map(Value::Float),
        ".{0,12}".prop_map(Value::String),
        vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec(("[a-z]{0,6}", inner), 0..6).prop_map(Value::Map),
        ]
    })
}

fn address() -> impl Strategy<Value = Address> {
    vec("[a-zA-Z0-9_.-]{0,8}", 1..5).prop_map(|segs| {
        Address::parse(&format!("/{}", segs.join("/"))).expect("generated address is valid")
    })
}

fn pattern() -> impl Strategy<Value = Pattern> {
    let segment = prop_oneof![
        "[a-z0-9]{1,6}",
        Just("*".to_string()),
        Just("**".to_string()),
        "[a-z]{1,3}\\*",
        "\\*[a-z]{1,3}",
    ];
    vec(segment, 1..5).prop_map(|segs| {
        Pattern::compile(&format!("/{}", segs.join("/"))).expect("generated pattern is valid")
    })
}

fn opt_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(".{1,10}")
}

fn signal() -> impl Strategy<Value = SignalType> {
    prop_oneof![
        Just(SignalType::Param),
        Just(SignalType::Event),
        Just(SignalType::Stream),
        Just(SignalType::Gesture),
        Just(SignalType::Timeline),
    ]
}

fn phase() -> impl Strategy<Value = GesturePhase> {
    prop_oneof![
        Just(GesturePhase::Start),
        Just(GesturePhase::Move),
        Just(GesturePhase::End),
        Just(GesturePhase::Cancel),
    ]
}

fn ttl() -> impl Strategy<Value = Ttl> {
    prop_oneof![
        Just(Ttl::Never),
        (1u32..0x8000_0000).prop_map(Ttl::Sliding),
        (0u32..0x8000_0000).prop_map(Ttl::Absolute),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        Just(Payload::None),
        value().prop_map(Payload::Value),
        vec(float(), 0..8).prop_map(Payload::Samples),
    ]
}

fn leaf_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), ".{0,10}", opt_string()).prop_map(
            |(version, f, name, token)| {
                Message::Hello(Hello {
                    version,
                    features: FeatureSet(f),
                    name,
                    token,
                })
            }
        ),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u64>(),
            ".{0,10}",
            ".{0,10}",
            opt_string()
        )
            .prop_map(|(version, f, time, session, name, token)| {
                Message::Welcome(Welcome {
                    version,
                    features: FeatureSet(f),
                    time,
                    session,
                    name,
                    token,
                })
            }),
        (
            ".{0,8}",
            vec(
                (
                    ".{1,8}",
                    signal(),
                    opt_string(),
                    opt_string(),
                    proptest::option::of((
                        opt_string(),
                        proptest::option::of((float(), float())),
                        proptest::option::of(value()),
                        opt_string()
                    ))
                ),
                0..3
            )
        )
            .prop_map(|(namespace, defs)| {
                let signals = defs
                    .into_iter()
                    .map(|(address, signal, datatype, access, meta)| SignalDef {
                        address,
                        signal,
                        datatype,
                        access,
                        meta: meta.map(|(unit, range, default, description)| SignalMeta {
                            unit,
                            range,
                            default,
                            description,
                        }),
                    })
                    .collect();
                Message::Announce(Announce { namespace, signals })
            }),
        (
            1u8..=4,
            vec(pattern(), 0..3),
            vec((address(), any::<u64>()), 0..3),
            proptest::option::of(any::<u64>()),
            opt_string()
        )
            .prop_map(|(op, patterns, revisions, since_revision, origin)| {
                Message::FederationSync(FederationSync {
                    op: FederationOp::from_code(op).expect("1..=4 are ops"),
                    patterns,
                    revisions,
                    since_revision,
                    origin,
                })
            }),
        (
            any::<u32>(),
            pattern(),
            any::<u8>(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(float()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(id, pattern, mask, max_rate, epsilon, history, window)| {
                Message::Subscribe(Subscribe {
                    id,
                    pattern,
                    types: TypeMask(mask),
                    options: SubscribeOptions {
                        max_rate,
                        epsilon,
                        history,
                        window,
                    },
                })
            }),
        any::<u32>().prop_map(|id| Message::Unsubscribe(Unsubscribe { id })),
        (
            signal(),
            phase(),
            address(),
            payload(),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(signal, phase, address, payload, timestamp, id, rate)| {
                Message::Publish(Publish {
                    signal,
                    phase,
                    address,
                    payload,
                    timestamp,
                    id,
                    rate,
                })
            }),
        (
            address(),
            value(),
            proptest::option::of(any::<u64>()),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(ttl())
        )
            .prop_map(|(address, value, revision, lock, unlock, ttl)| {
                Message::Set(Set {
                    address,
                    value,
                    revision,
                    lock,
                    unlock,
                    ttl,
                })
            }),
        address().prop_map(|address| Message::Get(Get { address })),
        vec(
            (
                address(),
                value(),
                any::<u64>(),
                opt_string(),
                proptest::option::of(any::<u64>())
            ),
            0..4
        )
        .prop_map(|ps| {
            Message::Snapshot(Snapshot {
                params: ps
                    .into_iter()
                    .map(|(address, value, revision, writer, timestamp)| ParamState {
                        address,
                        value,
                        revision,
                        writer,
                        timestamp,
                    })
                    .collect(),
            })
        }),
        (
            pattern(),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u32>()),
            any::<u8>()
        )
            .prop_map(|(pattern, from, to, limit, mask)| {
                Message::Replay(Replay {
                    pattern,
                    from,
                    to,
                    limit,
                    types: TypeMask(mask),
                })
            }),
        (
            any::<u64>(),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(t1, t2, t3)| Message::Sync(ClockSync { t1, t2, t3 })),
        Just(Message::Ping),
        Just(Message::Pong),
        (
            opt_string(),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<bool>()),
            opt_string(),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(address, revision, locked, holder, correlation_id)| {
                Message::Ack(Ack {
                    address,
                    revision,
                    locked,
                    holder,
                    correlation_id,
                })
            }),
        (
            any::<u16>(),
            ".{0,20}",
            opt_string(),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(code, message, address, correlation_id)| {
                Message::Error(ErrorMessage {
                    code,
                    message,
                    address,
                    correlation_id,
                })
            }),
        pattern().prop_map(|pattern| Message::Query(Query { pattern })),
        vec((".{1,8}", signal(), opt_string(), opt_string()), 0..3).prop_map(|sigs| {
            Message::Result(QueryResult {
                signals: sigs
                    .into_iter()
                    .map(|(address, signal, datatype, access)| SignalInfo {
                        address,
                        signal,
                        datatype,
                        access,
                    })
                    .collect(),
            })
        }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => leaf_message(),
        1 => (proptest::option::of(any::<u64>()), vec(leaf_message(), 0..4))
            .prop_map(|(timestamp, messages)| Message::Bundle(Bundle { timestamp, messages })),
    ]
}

fn header() -> impl Strategy<Value = FrameHeader> {
    (
        0u8..3,
        proptest::option::of(any::<u64>()),
        any::<bool>(),
        any::<bool>(),
        0u8..8,
    )
        .prop_map(
            |(qos, timestamp, encrypted, compressed, version)| FrameHeader {
                qos: QoS::from_bits(qos),
                timestamp,
                encrypted,
                compressed,
                version,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn frames_round_trip(h in header(), m in message()) {
        let frame = encode_frame(&h, &m).expect("small messages encode");
        let decoded = decode_frame(&frame).expect("our own frames decode");
        prop_assert_eq!(decoded.header, h);
        prop_assert_eq!(decoded.encoding, PayloadEncoding::Binary);
        prop_assert_eq!(decoded.message, m);
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = decode_frame(&bytes);
        let _ = decode_message(&bytes);
    }

    #[test]
    fn damaged_frames_never_panic(m in message(), cut in any::<prop::sample::Index>(),
                                  flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)) {
        let frame = encode_frame(&FrameHeader::default(), &m).expect("encodes");
        let mut payload = frame[4..].to_vec();
        for (i, b) in flips {
            if !payload.is_empty() {
                let i = i.index(payload.len());
                payload[i] ^= b;
            }
        }
        let _ = decode_message(&payload);
        let cut = cut.index(frame.len() + 1);
        let _ = decode_frame(&frame[..cut]);
        // A truncated payload behind an honest length field must be an error, never a panic.
        if cut > 4 && cut < frame.len() {
            let mut short = frame[..cut].to_vec();
            let len = (cut - 4) as u16;
            short[2..4].copy_from_slice(&len.to_be_bytes());
            let _ = decode_frame(&short);
        }
    }
}
