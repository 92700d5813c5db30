//! SET → subscriber latency: a publisher sends one QoS-Fire SET per millisecond whose value
//! is the send time (ns on the bench's monotonic clock, as i64); one subscriber, on its own
//! connection, takes the difference on receipt.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clasp_proto::Message;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::client;

/// Up to `count` latency samples, waiting at most 2 s after the last send: the same for
/// CLASP and for mosquitto.
pub async fn collect_samples(rx: &mut mpsc::UnboundedReceiver<f64>, count: usize) -> Vec<f64> {
    let mut samples = Vec::with_capacity(count);
    let deadline = Instant::now() + Duration::from_secs(2);
    while samples.len() < count {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some(s)) => samples.push(s),
            _ => break,
        }
    }
    samples
}

const WARMUP_ADDRESS: &str = "/bench/lat/warmup";
const DATA_ADDRESS: &str = "/bench/lat/x";

/// Latency figures in µs.
#[derive(Debug, Clone)]
pub struct LatencyResult {
    /// Messages sent (measured part).
    pub sent: usize,
    /// Samples received.
    pub received: usize,
    /// Offered rate.
    pub rate: u64,
    /// Percentiles.
    pub p50: f64,
    /// p99.
    pub p99: f64,
    /// p99.9.
    pub p999: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl LatencyResult {
    /// Summarises `samples` (µs) of `sent` messages at `rate`/s.
    pub fn from_samples(mut samples: Vec<f64>, sent: usize, rate: u64) -> Result<Self> {
        if samples.is_empty() {
            bail!("no latency sample arrived");
        }
        samples.sort_by(f64::total_cmp);
        Ok(Self {
            sent,
            received: samples.len(),
            rate,
            p50: percentile(&samples, 0.50),
            p99: percentile(&samples, 0.99),
            p999: percentile(&samples, 0.999),
            min: samples[0],
            max: samples[samples.len() - 1],
            mean: samples.iter().sum::<f64>() / samples.len() as f64,
        })
    }
}

/// Runs `duration` at `rate` SET/s after a short warm-up.
pub async fn run(addr: SocketAddr, rate: u64, duration: Duration) -> Result<LatencyResult> {
    let base = Instant::now();
    let mut sub = client::session(addr, "bench-lat-sub").await?;
    sub.send(client::subscribe_frame(1, "/bench/lat/**")?)
        .await
        .context("sending SUBSCRIBE")?;
    let (samples_tx, mut samples_rx) = mpsc::unbounded_channel::<f64>();
    let (warm_tx, mut warm_rx) = mpsc::unbounded_channel::<()>();
    let reader: tokio::task::JoinHandle<Result<()>> = tokio::spawn(async move {
        loop {
            let message = match client::recv(&mut sub).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(anyhow::anyhow!("subscriber connection ended")),
                Err(e) => return Err(e),
            };
            let now = base.elapsed().as_nanos() as i64;
            match message {
                Message::Set(set) if set.address.as_str() == DATA_ADDRESS => {
                    if let Some(sent) = set.value.as_i64() {
                        let _ = samples_tx.send((now - sent) as f64 / 1000.0);
                    }
                }
                Message::Set(_) => {
                    let _ = warm_tx.send(());
                }
                Message::Error(e) => bail!("subscriber got ERROR {}: {}", e.code, e.message),
                _ => {}
            }
        }
    });

    let publisher = client::session(addr, "bench-lat-pub").await?;
    let (mut publisher, mut pub_reader) = publisher.split();
    let drain = tokio::spawn(async move { while pub_reader.next().await.is_some() {} });
    let warmup = client::address(WARMUP_ADDRESS)?;
    let data = client::address(DATA_ADDRESS)?;

    // Warm-up: until the subscription delivers, then 250 more messages at the same rate.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        publisher
            .send(client::set_frame(&warmup, 0.0)?)
            .await
            .context("warm-up SET")?;
        if tokio::time::timeout(Duration::from_millis(20), warm_rx.recv())
            .await
            .is_ok()
        {
            break;
        }
        if Instant::now() > deadline || reader.is_finished() {
            bail!("subscriber never received the warm-up SET");
        }
    }
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    for i in 0..250 {
        ticker.tick().await;
        publisher
            .send(client::set_frame(&warmup, f64::from(i))?)
            .await
            .context("warm-up SET")?;
    }

    let count = (rate as f64 * duration.as_secs_f64()).round() as usize;
    for _ in 0..count {
        ticker.tick().await;
        let stamp = base.elapsed().as_nanos() as i64;
        publisher
            .send(client::set_frame(&data, stamp)?)
            .await
            .context("publishing")?;
    }
    let samples = collect_samples(&mut samples_rx, count).await;
    drain.abort();
    if reader.is_finished() {
        match reader.await {
            Ok(Err(e)) => return Err(e.context("latency subscriber")),
            Ok(Ok(())) | Err(_) => bail!("latency subscriber stopped early"),
        }
    }
    reader.abort();
    LatencyResult::from_samples(samples, count, rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<f64> = (1..=1000).rev().map(f64::from).collect();
        let r = LatencyResult::from_samples(samples, 1000, 1000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.p50, r.p99, r.p999), (500.0, 990.0, 999.0));
        assert_eq!((r.min, r.max, r.received), (1.0, 1000.0, 1000));
        assert!(LatencyResult::from_samples(Vec::new(), 1, 1).is_err());
    }
}
