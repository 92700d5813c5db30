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
}

impl SnapshotResult {
    /// Median HELLO → all params.
    pub fn median_ms(&self) -> f64 {
        self.runs_ms[self.runs_ms.len() / 2]
    }
}

/// Writes `params` params with QoS Confirm and waits for every ACK.
async fn preload(addr: SocketAddr, params: usize) -> Result<f64> {
    let started = Instant::now();
    let ws = client::session(addr, "bench-snap-loader").await?;
    let (mut sink, mut stream) = ws.split();
    let acks = tokio::spawn(async move {
        let mut acked = 0;
        while acked < params {
            match stream.next().await {
                None => bail!("loader connection ended after {acked} ACKs"),
                Some(Err(e)) => bail!("loader read: {e}"),
                Some(Ok(m)) => match client::decode(&m)? {
                    Some(Message::Ack(_)) => acked += 1,
                    Some(Message::Error(e)) => {
                        bail!("pre-load SET refused: ERROR {} {}", e.code, e.message)
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    });
    for chunk in (0..params).collect::<Vec<_>>().chunks(256) {
        for &i in chunk {
            let set = Set::new(client::address(&format!("{PREFIX}p{i:05}"))?, i as f64);
            sink.feed(client::frame(&Message::Set(set), QoS::Confirm)?)
                .await
                .context("pre-load SET")?;
        }
        sink.flush().await.context("pre-load SET")?;
    }
    tokio::time::timeout(Duration::from_secs(60), acks)
        .await
        .map_err(|_| anyhow!("pre-load: not every SET was acknowledged within 60 s"))?
        .context("pre-load reader")??;
    Ok(started.elapsed().as_secs_f64())
}

/// One late join: (HELLO → WELCOME ms, HELLO → all params ms, SNAPSHOT frames).
async fn join(addr: SocketAddr, params: usize) -> Result<(f64, f64, usize)> {
    let mut ws = client::connect(addr, None).await?;
    let t0 = Instant::now();
    client::hello(&mut ws, "bench-late-joiner").await?;
    let welcome = t0.elapsed();
    let mut seen = 0;
    let mut frames = 0;
    let deadline = t0 + Duration::from_secs(10);
    while seen < params {
        let message = tokio::time::timeout_at(deadline.into(), client::recv(&mut ws))
            .await
            .map_err(|_| anyhow!("only {seen}/{params} params arrived within 10 s"))??;
        match message {
            Some(Message::Snapshot(s)) => {
                frames += 1;
                seen += s
                    .params
                    .iter()
                    .filter(|p| p.address.as_str().starts_with(PREFIX))
                    .count();
            }
            Some(_) => {}
            None => bail!("connection ended after {seen}/{params} params"),
        }
    }
    let done = t0.elapsed();
    Ok((
        welcome.as_secs_f64() * 1e3,
        done.as_secs_f64() * 1e3,
        frames,
    ))
}

/// Pre-loads `params` params, then times `runs` late joiners.
pub async fn run(addr: SocketAddr, params: usize, runs: usize) -> Result<SnapshotResult> {
    let preload_secs = preload(addr, params).await?;
    let mut runs_ms = Vec::with_capacity(runs);
    let mut welcomes = Vec::with_capacity(runs);
    let mut frames = 0;
    for _ in 0..runs.max(1) {
        let (w, d, f) = join(addr, params).await?;
        welcomes.push(w);
        runs_ms.push(d);
        frames = f;
    }
    runs_ms.sort_by(f64::total_cmp);
    welcomes.sort_by(f64::total_cmp);
    Ok(SnapshotResult {
        params,
        preload_secs,
        welcome_ms: welcomes[welcomes.len() / 2],
        runs_ms,
        frames,
    })
}
