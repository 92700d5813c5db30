//! Late joiner: the relay holds N params; a new client's HELLO is timed until every one of
//! them has arrived in the SNAPSHOT frames that follow WELCOME.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clasp_proto::{Message, QoS, Set};
use futures_util::{SinkExt as _, StreamExt as _};

use crate::client;

const PREFIX: &str = "/bench/snap/";

/// Late-joiner figures.
#[derive(Debug, Clone)]
pub struct SnapshotResult {
    /// Params pre-loaded.
    pub params: usize,
    /// Seconds the pre-load took (until every SET was acknowledged).
    pub preload_secs: f64,
    /// HELLO → last param, ms, one per run, sorted.
    pub runs_ms: Vec<f64>,
    /// HELLO → WELCOME, ms, median.
    pub welcome_ms: f64,
    /// SNAPSHOT frames per join.
    pub frames: usize,
    /// Bytes of those frames.
    pub bytes: usize,
    /// Median time the bench spent decoding them, ms (included in the join time).
    pub decode_ms: f64,
    /// Empty relay: median HELLO → WELCOME, ms.
    pub empty_welcome_ms: f64,
    /// Empty relay: median HELLO → (empty) SNAPSHOT, ms.
    pub empty_done_ms: f64,
}

impl SnapshotResult {
    /// Median HELLO → all params.
    pub fn median_ms(&self) -> f64 {
        self.runs_ms[self.runs_ms.len() / 2]
    }
}

/// SETs the loader keeps in flight. A burst of 10 000 QoS-1 SETs overflows the relay's
/// 1024-frame outbound queue with ACKs (ERROR 503, sometimes a disconnect), so the
/// pre-load waits for ACKs like a well-behaved client.
const PRELOAD_WINDOW: usize = 256;

/// Writes `params` params with QoS Confirm, at most [`PRELOAD_WINDOW`] unacknowledged.
async fn preload(addr: SocketAddr, params: usize) -> Result<f64> {
    let started = Instant::now();
    let ws = client::session(addr, "bench-snap-loader").await?;
    let (mut sink, mut stream) = ws.split();
    let (acked_tx, mut acked_rx) = tokio::sync::watch::channel(0usize);
    let acks = tokio::spawn(async move {
        let mut acked = 0;
        while acked < params {
            match stream.next().await {
                None => bail!("loader connection ended after {acked} ACKs"),
                Some(Err(e)) => bail!("loader read: {e}"),
                Some(Ok(m)) => match client::decode(&m)? {
                    Some(Message::Ack(_)) => {
                        acked += 1;
                        acked_tx.send_replace(acked);
                    }
                    Some(Message::Error(e)) => {
                        bail!("pre-load SET refused: ERROR {} {}", e.code, e.message)
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    while sent < params {
        // Wait for room in the window (or for the reader to fail).
        let room = tokio::time::timeout_at(
            deadline.into(),
            acked_rx.wait_for(|&acked| sent - acked < PRELOAD_WINDOW),
        )
        .await;
        match room {
            Ok(Ok(acked)) => {
                let until = (*acked + PRELOAD_WINDOW).min(params);
                drop(acked);
                while sent < until {
                    let set = Set::new(
                        client::address(&format!("{PREFIX}p{sent:05}"))?,
                        sent as f64,
                    );
                    sink.feed(client::frame(&Message::Set(set), QoS::Confirm)?)
                        .await
                        .context("pre-load SET")?;
                    sent += 1;
                }
                sink.flush().await.context("pre-load SET")?;
            }
            Ok(Err(_)) => break, // reader ended: its result says why
            Err(_) => bail!("pre-load: ACKs stalled after {sent} SETs"),
        }
    }
    tokio::time::timeout_at(deadline.into(), acks)
        .await
        .map_err(|_| anyhow!("pre-load: not every SET was acknowledged within 60 s"))?
        .context("pre-load reader")??;
    Ok(started.elapsed().as_secs_f64())
}

/// One late join.
struct Join {
    /// HELLO → WELCOME, ms.
    welcome_ms: f64,
    /// HELLO → last param, ms.
    done_ms: f64,
    /// SNAPSHOT frames.
    frames: usize,
    /// Bytes of those frames.
    bytes: usize,
    /// Time the bench spent decoding them, ms.
    decode_ms: f64,
}

/// Joins and waits for the first SNAPSHOT and for `params` params under [`PREFIX`].
async fn join(addr: SocketAddr, params: usize) -> Result<Join> {
    let mut ws = client::connect(addr, None).await?;
    let t0 = Instant::now();
    client::hello(&mut ws, "bench-late-joiner").await?;
    let welcome = t0.elapsed();
    let (mut seen, mut frames, mut bytes) = (0, 0, 0);
    let mut decode = Duration::ZERO;
    let deadline = t0 + Duration::from_secs(10);
    while seen < params || frames == 0 {
        let next = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .map_err(|_| anyhow!("only {seen}/{params} params arrived within 10 s"))?;
        let raw = match next {
            None => bail!("connection ended after {seen}/{params} params"),
            Some(r) => r.context("late joiner read")?,
        };
        let d0 = Instant::now();
        let message = client::decode(&raw)?;
        decode += d0.elapsed();
        if let Some(Message::Snapshot(s)) = message {
            frames += 1;
            bytes += raw.len();
            seen += s
                .params
                .iter()
                .filter(|p| p.address.as_str().starts_with(PREFIX))
                .count();
        }
    }
    let done = t0.elapsed();
    Ok(Join {
        welcome_ms: welcome.as_secs_f64() * 1e3,
        done_ms: done.as_secs_f64() * 1e3,
        frames,
        bytes,
        decode_ms: decode.as_secs_f64() * 1e3,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times late joiners on the empty relay (baseline), pre-loads `params` params, then
/// times `runs` late joiners.
pub async fn run(addr: SocketAddr, params: usize, runs: usize) -> Result<SnapshotResult> {
    let runs = runs.max(1);
    let mut empty = Vec::with_capacity(runs);
    for _ in 0..runs {
        empty.push(join(addr, 0).await.context("join on the empty relay")?);
    }
    let preload_secs = preload(addr, params).await?;
    let mut joins = Vec::with_capacity(runs);
    for _ in 0..runs {
        joins.push(join(addr, params).await?);
    }
    let mut runs_ms: Vec<f64> = joins.iter().map(|j| j.done_ms).collect();
    runs_ms.sort_by(f64::total_cmp);
    let last = &joins[joins.len() - 1];
    Ok(SnapshotResult {
        params,
        preload_secs,
        runs_ms,
        welcome_ms: median(joins.iter().map(|j| j.welcome_ms).collect()),
        frames: last.frames,
        bytes: last.bytes,
        decode_ms: median(joins.iter().map(|j| j.decode_ms).collect()),
        empty_welcome_ms: median(empty.iter().map(|j| j.welcome_ms).collect()),
        empty_done_ms: median(empty.iter().map(|j| j.done_ms).collect()),
    })
}
