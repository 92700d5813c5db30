//! Memory per idle connection: the relay's VmRSS before and after N connections that each
//! did HELLO and got WELCOME, then nothing else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use futures_util::StreamExt as _;

use crate::client::{self, Ws};
use crate::harness::{health, rss_kib};

/// Connections per loopback source IP (the ephemeral port range is ~28 000 ports).
const PER_SOURCE_IP: usize = 20_000;
/// Handshakes in flight at once.
const CONCURRENCY: usize = 128;
/// Give up after this many failed connections.
const MAX_FAILURES: usize = 200;

/// Idle-connection figures.
#[derive(Debug, Clone)]
pub struct IdleResult {
    /// Connections asked for.
    pub requested: usize,
    /// Connections that got WELCOME.
    pub connected: usize,
    /// Connections that failed.
    pub failed: usize,
    /// First failure.
    pub first_error: Option<String>,
    /// Seconds to open them all.
    pub connect_secs: f64,
    /// Relay VmRSS before (KiB).
    pub rss_before_kib: u64,
    /// Relay VmRSS with the connections open (KiB).
    pub rss_after_kib: u64,
    /// Relay VmRSS after they were closed (KiB).
    pub rss_closed_kib: u64,
    /// Sessions the relay reported with the connections open.
    pub sessions_open: Option<u64>,
    /// Sessions the relay reported after they were closed.
    pub sessions_closed: Option<u64>,
    /// Relay VmRSS with a second round of N connections open (KiB): growth over
    /// `rss_after_kib` means memory of closed sessions is not reused.
    pub rss_second_kib: u64,
}

impl IdleResult {
    /// Bytes of relay RSS per open connection.
    pub fn bytes_per_connection(&self) -> f64 {
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) * 1024.0
            / self.connected.max(1) as f64
    }
}

fn source_ip(i: usize) -> Option<IpAddr> {
    let block = i / PER_SOURCE_IP;
    (block > 0).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (block as u8))))
}

async fn open(addr: SocketAddr, i: usize) -> Result<Ws> {
    let mut ws = client::connect(addr, source_ip(i)).await?;
    client::hello(&mut ws, "bench-idle").await?;
    Ok(ws)
}

fn sessions(h: Option<serde_json::Value>) -> Option<u64> {
    h?.get("sessions")?.as_u64()
}

/// Opens `n` sessions, at most [`CONCURRENCY`] handshakes at a time; stops after
/// [`MAX_FAILURES`] failures. Returns the open ones, the failure count and the first error.
async fn open_all(addr: SocketAddr, n: usize) -> (Vec<Ws>, usize, Option<String>) {
    let mut conns: Vec<Ws> = Vec::with_capacity(n);
    let mut failed = 0;
    let mut first_error = None;
    let mut attempts = futures_util::stream::iter(0..n)
        .map(|i| open(addr, i))
        .buffer_unordered(CONCURRENCY);
    while let Some(r) = attempts.next().await {
        match r {
            Ok(ws) => conns.push(ws),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
                if failed >= MAX_FAILURES {
                    break;
                }
            }
        }
    }
    (conns, failed, first_error)
}

/// Opens `n` idle sessions against the relay `pid` listening on `addr`.
pub async fn run(addr: SocketAddr, pid: u32, n: usize, settle: Duration) -> Result<IdleResult> {
    // One connection first, so one-off lazy allocations are not counted per connection.
    let warm = open(addr, 0).await.context("warm-up connection")?;
    drop(warm);
    tokio::time::sleep(settle).await;
    let rss_before_kib = rss_kib(pid)?;

    let started = Instant::now();
    let (conns, failed, first_error) = open_all(addr, n).await;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let rss_after_kib = rss_kib(pid)?;
    let sessions_open = sessions(health(addr).await);
    let connected = conns.len();

    drop(conns);
    tokio::time::sleep(settle * 2).await;
    let rss_closed_kib = rss_kib(pid)?;
    let sessions_closed = sessions(health(addr).await);

    // Second round: does the relay reuse what the first round freed?
    let (conns, _, _) = open_all(addr, n).await;
    tokio::time::sleep(settle).await;
    let rss_second_kib = rss_kib(pid)?;
    drop(conns);
    tokio::time::sleep(settle).await;
    Ok(IdleResult {
        requested: n,
        connected,
        failed,
        first_error,
        connect_secs,
        rss_before_kib,
        rss_after_kib,
        rss_closed_kib,
        sessions_open,
        sessions_closed,
        rss_second_kib,
    })
}
