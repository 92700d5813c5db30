//! `osc_roundtrip`: OSC → CLASP → OSC through a relay with the embedded OSC bridge, beside a
//! direct UDP socket-to-socket baseline in the same run.
//!
//! A UDP socket sends `/bench/<k> i <seq>` to the bridge (`--osc-port`); the bridge SETs
//! `/osc/bench/<k>`, its own subscription sees the change and sends it as OSC to the
//! `--osc-send` target, a second socket here, which reads `seq` back. Each path is measured
//! twice: one message at a time (latency: p50/p99 of send → receive) and with a window of
//! messages outstanding (throughput: messages/s; latency under load). Bounded by count and
//! time; prints a table.
//!
//! `cargo run --release -p clasp-bench --bin osc_roundtrip -- --relay-bin target/release/clasp`

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use rosc::{OscMessage, OscPacket, OscType};

/// OSC round trips through the relay's embedded OSC bridge, against a UDP baseline.
#[derive(Debug, Parser)]
#[command(name = "osc_roundtrip")]
struct Cli {
    /// Relay binary to start (on free 127.0.0.1 ports; stopped at the end).
    #[arg(long, default_value = "target/release/clasp")]
    relay_bin: PathBuf,
    /// Messages in the one-at-a-time (latency) phase of each path.
    #[arg(long, default_value_t = 2_000)]
    latency_count: u64,
    /// Messages in the windowed (throughput) phase of each path.
    #[arg(long, default_value_t = 50_000)]
    count: u64,
    /// Messages outstanding at once in the throughput phase.
    #[arg(long, default_value_t = 64)]
    window: u64,
    /// Longest a phase may run, seconds.
    #[arg(long, default_value_t = 20)]
    max_seconds: u64,
    /// Distinct addresses the messages rotate over.
    #[arg(long, default_value_t = 16)]
    addresses: u64,
}

/// What one phase measured.
struct Phase {
    sent: u64,
    received: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile(&self, p: f64) -> Option<u64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(i).copied()
    }
}

fn packet(address: &str, seq: u64) -> Result<Vec<u8>> {
    Ok(rosc::encoder::encode(&OscPacket::Message(OscMessage {
        addr: address.to_string(),
        args: vec![OscType::Long(seq as i64)],
    }))?)
}

/// The sequence number in a received packet (`i` or `h`), if it is one of ours.
fn seq_of(bytes: &[u8]) -> Option<u64> {
    let (_, p) = rosc::decoder::decode_udp(bytes).ok()?;
    let OscPacket::Message(m) = p else {
        return None;
    };
    if !m.addr.starts_with("/bench/") {
        return None;
    }
    match m.args.first()? {
        OscType::Int(i) => u64::try_from(*i).ok(),
        OscType::Long(h) => u64::try_from(*h).ok(),
        _ => None,
    }
}

/// Sends `count` messages from `tx` to `to`, at most `window` outstanding, receiving at
/// `rx`; stops after `max` even if messages were lost.
fn phase(
    tx: &UdpSocket,
    to: SocketAddr,
    rx: &UdpSocket,
    count: u64,
    window: u64,
    addresses: u64,
    max: Duration,
) -> Result<Phase> {
    let rx = rx.try_clone()?;
    rx.set_read_timeout(Some(Duration::from_millis(200)))?;
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + max;
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let receiver = {
        let (received, sent_at, stop) = (received.clone(), sent_at.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut latencies = Vec::with_capacity(count as usize);
            let mut buf = [0u8; 2048];
            while received.load(Ordering::Relaxed) < count
                && Instant::now() < deadline
                && !stop.load(Ordering::Relaxed)
            {
                let Ok(n) = rx.recv(&mut buf) else { continue };
                let Some(seq) = buf.get(..n).and_then(seq_of) else {
                    continue;
                };
                let Some(at) = sent_at.get(seq as usize) else {
                    continue;
                };
                let now = start.elapsed().as_micros() as u64;
                latencies.push(now.saturating_sub(at.load(Ordering::Relaxed)));
                received.fetch_add(1, Ordering::Relaxed);
            }
            latencies
        })
    };
    let mut sent = 0;
    // Lost datagrams leave the window short for good: count them as done after a while.
    let mut stalled_since: Option<Instant> = None;
    let mut written_off = 0;
    while sent < count && Instant::now() < deadline {
        let done = received.load(Ordering::Relaxed) + written_off;
        if sent - done.min(sent) >= window {
            let since = *stalled_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(200) {
                written_off += sent - done.min(sent);
                stalled_since = None;
            }
            std::thread::yield_now();
            continue;
        }
        stalled_since = None;
        let address = format!("/bench/{}", sent % addresses.max(1));
        if let Some(slot) = sent_at.get(sent as usize) {
            slot.store(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        tx.send_to(&packet(&address, sent)?, to)?;
        sent += 1;
    }
    // Wait for the stragglers (bounded by the deadline and a short grace).
    let grace = Instant::now() + Duration::from_secs(1);
    while received.load(Ordering::Relaxed) < sent && Instant::now() < grace.min(deadline) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let received_n = received.load(Ordering::Relaxed);
    let latencies_us = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver thread panicked"))?;
    Ok(Phase {
        sent,
        received: received_n,
        elapsed,
        latencies_us,
    })
}

fn free_tcp_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_udp_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The relay process; killed when dropped.
struct RelayProc(Child);

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_relay(bin: &PathBuf, osc_port: u16, target: u16) -> Result<RelayProc> {
    let ws = free_tcp_port()?;
    let child = Command::new(bin)
        .args(["relay", "--host", "127.0.0.1", "--ws-port", &ws.to_string()])
        .args(["--log-level", "warn", "--osc-port", &osc_port.to_string()])
        .args(["--osc-send", &format!("127.0.0.1:{target}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let mut relay = RelayProc(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", ws)).is_err() {
        if let Some(status) = relay.0.try_wait()? {
            bail!("the relay exited before listening: {status}");
        }
        if Instant::now() > deadline {
            bail!("the relay did not listen within 15 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(relay)
}

/// Sends probes until one comes back through the bridge (it binds after the relay listens).
fn wait_for_bridge(tx: &UdpSocket, to: SocketAddr, rx: &UdpSocket) -> Result<()> {
    rx.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        tx.send_to(&packet("/bench/probe", 0)?, to)?;
        if let Ok(n) = rx.recv(&mut buf) {
            if buf.get(..n).and_then(seq_of).is_some() {
                // Drain anything else in flight.
                while rx.recv(&mut buf).is_ok() {}
                return Ok(());
            }
        }
    }
    bail!("no OSC came back through the bridge within 10 s")
}

fn row(path: &str, mode: &str, p: &Phase) -> String {
    let us = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    format!(
        "| {path:<28} | {mode:<13} | {:>7} | {:>7} | {:>5} | {:>9.0} | {:>7} | {:>7} |",
        p.sent,
        p.received,
        p.sent - p.received.min(p.sent),
        p.rate(),
        us(p.percentile(0.5)),
        us(p.percentile(0.99)),
    )
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let max = Duration::from_secs(cli.max_seconds);
    let sender = UdpSocket::bind("127.0.0.1:0")?;
    let target = UdpSocket::bind("127.0.0.1:0")?;
    let target_port = target.local_addr()?.port();
    let mut rows = Vec::new();

    // Baseline: straight from the sender socket to the target socket.
    let direct = target.local_addr()?;
    let one = phase(
        &sender,
        direct,
        &target,
        cli.latency_count,
        1,
        cli.addresses,
        max,
    )?;
    rows.push(row("udp socket → socket", "one at a time", &one));
    let many = phase(
        &sender,
        direct,
        &target,
        cli.count,
        cli.window,
        cli.addresses,
        max,
    )?;
    rows.push(row(
        "udp socket → socket",
        &format!("window {}", cli.window),
        &many,
    ));

    // Through the relay's embedded OSC bridge.
    let osc_port = free_udp_port()?;
    let _relay = start_relay(&cli.relay_bin, osc_port, target_port)?;
    let bridge: SocketAddr = ([127, 0, 0, 1], osc_port).into();
    wait_for_bridge(&sender, bridge, &target)?;
    let one = phase(
        &sender,
        bridge,
        &target,
        cli.latency_count,
        1,
        cli.addresses,
        max,
    )?;
    rows.push(row("osc → clasp relay → osc", "one at a time", &one));
    let many = phase(
        &sender,
        bridge,
        &target,
        cli.count,
        cli.window,
        cli.addresses,
        max,
    )?;
    rows.push(row(
        "osc → clasp relay → osc",
        &format!("window {}", cli.window),
        &many,
    ));

    println!("OSC round trip (relay: {})", cli.relay_bin.display());
    println!(
        "| {:<28} | {:<13} | {:>7} | {:>7} | {:>5} | {:>9} | {:>7} | {:>7} |",
        "path", "mode", "sent", "recv", "lost", "msg/s", "p50 µs", "p99 µs"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|{}|{}|",
        "-".repeat(30),
        "-".repeat(15),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(7),
        "-".repeat(11),
        "-".repeat(9),
        "-".repeat(9)
    );
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
