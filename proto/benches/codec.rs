//! Codec and matcher throughput. Targets (issue 2): decode and encode of a 31-byte SET at
//! 10 M/s per core or more, a 100-entry SNAPSHOT, and matching one address against
//! 10 000 subscriptions in under 1 µs with the cache warm.
//!
//! Run: `cargo bench -p clasp-proto --bench codec`. Criterion prints time per iteration and
//! throughput in elements (messages or lookups) per second.

use std::hint::black_box;

use clasp_proto::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// `/mixer/ch01/gain` = 0.5 as the JS client sends it: 4-byte header + 27-byte payload.
fn set_frame() -> (Message, Vec<u8>) {
    let m = Message::Set(Set::new(
        Address::parse("/mixer/ch1/gain").expect("valid"),
        0.5,
    ));
    let frame = encode_frame(&FrameHeader::new(QoS::Confirm), &m).expect("encodes");
    assert_eq!(frame.len(), 31);
    (m, frame)
}

fn snapshot() -> Message {
    Message::Snapshot(Snapshot {
        params: (0..100)
            .map(|i| ParamState {
                address: Address::parse(&format!("/lights/zone{}/fixture{}/dim", i / 10, i % 10))
                    .expect("valid"),
                value: Value::Float(f64::from(i) / 100.0),
                revision: u64::from(i as u32) + 1,
                writer: Some("3f2a9c1e-0d4b-4c55-9a7e-5b1f0c2d3e4f".into()),
                timestamp: Some(1_700_000_000_000_000),
            })
            .collect(),
    })
}

fn codec(c: &mut Criterion) {
    let (set, set_bytes) = set_frame();
    let header = FrameHeader::new(QoS::Confirm);
    let mut g = c.benchmark_group("set_31_bytes");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| b.iter(|| decode_frame(black_box(&set_bytes))));
    let mut buf = Vec::with_capacity(64);
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            encode_frame_into(&header, black_box(&set), &mut buf)
        })
    });
    g.finish();

    let snap = snapshot();
    let snap_bytes = encode_frame(&header, &snap).expect("encodes");
    let mut g = c.benchmark_group("snapshot_100_params");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| decode_frame(black_box(&snap_bytes)))
    });
    let mut buf = Vec::with_capacity(snap_bytes.len());
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            encode_frame_into(&header, black_box(&snap), &mut buf)
        })
    });
    g.finish();
}

/// 10 000 subscriptions shaped like a lighting rig: exact addresses, one-level and
/// multi-level wildcards, in-segment globs.
fn subscriptions() -> Vec<Pattern> {
    (0..10_000u32)
        .map(|i| {
            let text = match i % 4 {
                0 => format!("/lights/zone{}/fixture{}/brightness", i % 100, i / 100),
                1 => format!("/lights/zone{}/*/color", i % 100),
                2 => format!("/site{}/**", i),
                _ => format!("/lights/zone{}*/fixture{}/brightness", i % 50, i % 10),
            };
            Pattern::compile(&text).expect("valid pattern")
        })
        .collect()
}

fn matching(c: &mut Criterion) {
    let patterns = subscriptions();
    let mut index = PatternIndex::new();
    for (i, p) in patterns.iter().enumerate() {
        index.insert(p, i as u32);
    }
    let address = "/lights/zone12/fixture3/brightness";
    let hits = index.lookup_uncached(address).len();
    assert!(hits > 0, "the benchmark address must match something");
    let mut g = c.benchmark_group("match_10000_patterns");
    g.throughput(Throughput::Elements(1));
    g.bench_with_input(
        BenchmarkId::new("index_warm_cache", hits),
        &address,
        |b, a| {
            index.lookup(a);
            b.iter(|| index.lookup(black_box(a)))
        },
    );
    g.bench_with_input(BenchmarkId::new("index_cold", hits), &address, |b, a| {
        b.iter(|| index.lookup_uncached(black_box(a)))
    });
    g.bench_with_input(BenchmarkId::new("linear_scan", hits), &address, |b, a| {
        b.iter(|| patterns.iter().filter(|p| p.matches(black_box(a))).count())
    });
    g.finish();
}

criterion_group!(benches, codec, matching);
criterion_main!(benches);
