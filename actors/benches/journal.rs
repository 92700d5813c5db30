//! Journal and recovery figures (issue 8): sustained SET/s into a relay with `--journal`
//! (sync=batch, and sync=always for reference) as a ratio of SET/s without it, and the time to
//! recover 1 M params from a snapshot. Run with `cargo bench -p clasp-actors --bench journal`.
//!
//! Throughput: one connection pipelines N SETs (QoS Fire, 1000 addresses of one namespace, so
//! one shard does all the work) and then one Confirm SET; the clock stops at its ACK. With a
//! journal that ACK is sent only once every entry before it is committed, so the figure
//! includes durability.

use std::time::{Duration, Instant};

use clasp_actors::journal::db::Db;
use clasp_actors::journal::recover;
use clasp_actors::shard::{ParamStore, PersistedParam, StoreLimits};
use clasp_actors::{JournalConfig, JournalSync, Relay, RelayConfig};
use clasp_proto::{
    decode_frame, encode_frame, Address, FeatureSet, FrameHeader, Hello, Message, QoS, Set, Value,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;

const SETS: usize = 200_000;
const RUNS: usize = 9;
const RECOVER_PARAMS: usize = 1_000_000;

fn frame(qos: QoS, m: &Message) -> Ws {
    Ws::Binary(encode_frame(&FrameHeader::new(qos), m).expect("encodes"))
}

async fn set_rate(journal: Option<JournalConfig>) -> f64 {
    let relay = Relay::start(RelayConfig {
        host: "127.0.0.1".into(),
        port: 0,
        max_params: 0,
        param_ttl: None,
        journal,
        ..RelayConfig::default()
    })
    .expect("relay starts");
    let port = relay.local_addrs()[0].port();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
        .await
        .expect("connects");
    let hello = Message::Hello(Hello {
        version: 1,
        features: FeatureSet::CLIENT_DEFAULT,
        name: "bench".into(),
        token: None,
    });
    ws.send(frame(QoS::Fire, &hello)).await.expect("hello");
    let addresses: Vec<Address> = (0..1000)
        .map(|i| Address::parse(&format!("/bench/{i}")).expect("address"))
        .collect();
    let frames: Vec<Ws> = (0..SETS)
        .map(|i| {
            let set = Set::new(
                addresses[i % addresses.len()].clone(),
                Value::Float(i as f64),
            );
            frame(QoS::Fire, &Message::Set(set))
        })
        .collect();
    let done = frame(
        QoS::Confirm,
        &Message::Set(Set::new(
            Address::parse("/bench/done").expect("address"),
            1.0,
        )),
    );
    // Drain WELCOME and SNAPSHOT.
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let start = Instant::now();
    for f in frames {
        ws.feed(f).await.expect("send");
    }
    ws.send(done).await.expect("send");
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Ws::Binary(b)))) => {
                if let Ok(d) = decode_frame(&b) {
                    if let Message::Ack(a) = d.message {
                        if a.address.as_deref() == Some("/bench/done") {
                            break;
                        }
                    }
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no ACK: {other:?}"),
        }
    }
    let rate = (SETS + 1) as f64 / start.elapsed().as_secs_f64();
    drop(ws);
    let mut relay = relay;
    relay.drain().await;
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("clasp-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn recovery() {
    let dir = temp("recover");
    let db = Db::open(&dir.join("state.redb")).expect("db");
    let params: Vec<PersistedParam> = (0..RECOVER_PARAMS)
        .map(|i| PersistedParam {
            address: format!("/venue/{}/fixture/{i}", i % 64).into(),
            value: Value::Float(i as f64 / 7.0),
            revision: 1 + (i % 50) as u64,
            writer: format!("7b0c3f0e-3c1b-4c8e-9d59-3f1e2a9b{:04x}", i % 40).into(),
            timestamp: 1_796_000_000_000_000 + i as u64,
            ttl: None,
            ttl_anchor_us: 1_796_000_000_000_000,
            lock: None,
        })
        .collect();
    let t = Instant::now();
    db.write_snapshot(&params, 0).expect("snapshot");
    let write_s = t.elapsed().as_secs_f64();
    drop(params);
    let t = Instant::now();
    let found = recover(Some(&db), Some(&db)).expect("recovers");
    let read_s = t.elapsed().as_secs_f64();
    if std::env::var_os("RECOVERY_ONLY").is_some() {
        eprintln!("read {read_s:.3}");
    }
    assert_eq!(
        found.params.iter().map(Vec::len).sum::<usize>(),
        RECOVER_PARAMS
    );
    // As the relay does: partition by owning shard, then each shard loads its part on its
    // own thread.
    let t = Instant::now();
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hasher = std::collections::hash_map::RandomState::new();
    let parts = clasp_actors::router::partition_by_shard(
        &hasher,
        shards,
        found.params.into_iter().flatten(),
    );
    let partition_s = t.elapsed().as_secs_f64();
    let n: usize = std::thread::scope(|s| {
        let loaders: Vec<_> = parts
            .into_iter()
            .map(|part| {
                s.spawn(move || {
                    let mut store = ParamStore::new(StoreLimits {
                        max_params: 0,
                        eviction: Default::default(),
                        default_ttl: None,
                        total: Default::default(),
                    });
                    let n = store.restore(part, 1_796_000_000_000_000, Instant::now());
                    // A relay keeps its store; freeing it is not part of recovery.
                    std::mem::forget(store);
                    n
                })
            })
            .collect();
        loaders.into_iter().map(|l| l.join().unwrap_or(0)).sum()
    });
    let load_s = t.elapsed().as_secs_f64();
    assert_eq!(n, RECOVER_PARAMS);
    println!(
        "  (of which partitioning by shard: {:.0} ms)",
        partition_s * 1e3
    );
    let total = read_s + load_s;
    println!(
        "recovery of {RECOVER_PARAMS} params: read+decode {:.0} ms, partition and load into the shards {:.0} ms, total {:.0} ms = {:.2} M params/s (target >= 1 M/s); writing the snapshot took {:.0} ms",
        read_s * 1e3,
        load_s * 1e3,
        total * 1e3,
        RECOVER_PARAMS as f64 / total / 1e6,
        write_s * 1e3
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo bench` passes --bench. A test runner lists (`--list`) or runs the target without
    // it: this file holds no tests, and the figures mean nothing from a debug build.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if std::env::var_os("RECOVERY_ONLY").is_some() {
        recovery();
        return;
    }
    // One run of one mode, for profiling: ONLY=off|batch|always.
    if let Ok(mode) = std::env::var("ONLY") {
        let dir = temp("only");
        let journal = match mode.as_str() {
            "off" => None,
            "always" => Some(JournalConfig {
                sync: JournalSync::Always,
                ..JournalConfig::at(dir.join("j.redb"))
            }),
            _ => Some(JournalConfig::at(dir.join("j.redb"))),
        };
        let rate = actix::System::new().block_on(set_rate(journal));
        println!("{mode}: {rate:.0} SET/s");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    // Recovery first, in a fresh process: after nine relays have come and gone the allocator's
    // state would be measured along with it.
    recovery();
    let system = actix::System::new();
    system.block_on(async {
        let dir = temp("journal");
        let mut off = Vec::new();
        let mut batch = Vec::new();
        let mut always = Vec::new();
        for run in 0..RUNS {
            eprintln!("run {run}: journal off");
            off.push(set_rate(None).await);
            eprintln!("run {run}: journal batch");
            let mut j = JournalConfig::at(dir.join(format!("batch-{run}.redb")));
            j.sync = JournalSync::Batch;
            batch.push(set_rate(Some(j)).await);
            let mut j = JournalConfig::at(dir.join(format!("always-{run}.redb")));
            j.sync = JournalSync::Always;
            eprintln!("run {run}: journal always");
            always.push(set_rate(Some(j)).await);
        }
        let (off, batch, always) = (median(off), median(batch), median(always));
        println!("sustained SET/s ({SETS} pipelined SETs + one acknowledged, median of {RUNS}):");
        println!("  journal off:          {off:>10.0} SET/s");
        println!(
            "  journal sync=batch:   {batch:>10.0} SET/s  ratio {:.2} (target >= 0.80)",
            batch / off
        );
        println!(
            "  journal sync=always:  {always:>10.0} SET/s  ratio {:.2}",
            always / off
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}
