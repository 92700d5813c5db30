//! `dmx_frames`: how on time the DMX bridge's frames are, on a socat pty pair standing in for
//! the USB interface.
//!
//! 1. Open DMX (`--dmx-device open`, a frame every tick): 513-byte frames read off the far
//!    end of the pty, timestamped; prints frames/s and the p50/p99/max gap between frames
//!    beside the nominal period.
//! 2. ENTTEC Pro: a CLASP client (WebSocket) sets `/dmx/1` to a new level every 100 ms;
//!    prints the p50/p99/max time from the SET leaving the client to the label 6 frame with
//!    that level arriving at the far end (at most one refresh period plus the path).
//!
//! Bounded by time. `cargo run --release -p clasp-bench --bin dmx_frames -- --relay-bin
//! target/release/clasp` (needs socat).

#[path = "../client.rs"]
#[allow(dead_code)]
mod client;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use clasp_bench::process::{free_port, KillOnDrop as Guard};
use futures_util::SinkExt as _;

/// DMX frame timing through the relay's embedded DMX bridge.
#[derive(Debug, Parser)]
#[command(name = "dmx_frames")]
struct Cli {
    /// Relay binary to start (on a free 127.0.0.1 port; stopped at the end).
    #[arg(long, default_value = "target/release/clasp")]
    relay_bin: PathBuf,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

fn socat(dir: &Path) -> Result<(Guard, PathBuf, PathBuf)> {
    let (a, b) = (dir.join("A"), dir.join("B"));
    let child = Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", a.display()))
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start socat")?;
    let g = Guard(child);
    let end = Instant::now() + Duration::from_secs(5);
    while !(a.exists() && b.exists()) {
        if Instant::now() > end {
            bail!("socat made no pty pair");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((g, a, b))
}

fn relay(bin: &Path, port: u16, extra: &[&str]) -> Result<Guard> {
    let child = Command::new(bin)
        .args([
            "relay",
            "--host",
            "127.0.0.1",
            "--ws-port",
            &port.to_string(),
            "--log-level",
            "warn",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    let g = Guard(child);
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > end {
            bail!("relay did not listen");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(g)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn read_exact(f: &mut std::fs::File, buf: &mut [u8]) -> bool {
    f.read_exact(buf).is_ok()
}

fn open_phase(cli: &Cli, dir: &Path) -> Result<()> {
    let (_socat, a, b) = socat(dir)?;
    let mut far = std::fs::File::open(&b)?;
    let port = free_port()?;
    let _relay = relay(
        &cli.relay_bin,
        port,
        &[
            "--dmx-port",
            &a.display().to_string(),
            "--dmx-device",
            "open",
        ],
    )?;
    let (tx, rx) = mpsc::channel::<Instant>();
    std::thread::spawn(move || {
        let mut frame = [0u8; 513];
        while read_exact(&mut far, &mut frame) {
            if tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    // Skip the first second (start-up), then measure.
    let warm = Instant::now() + Duration::from_secs(1);
    while Instant::now() < warm {
        let _ = rx.recv_timeout(Duration::from_millis(100));
    }
    let end = Instant::now() + Duration::from_secs(cli.seconds);
    let mut stamps = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(t) => stamps.push(t),
            Err(_) => break,
        }
    }
    let mut gaps: Vec<f64> = stamps
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1e3)
        .collect();
    gaps.sort_by(f64::total_cmp);
    println!(
        "| Open DMX, idle | {:.1} frames/s (--refresh 40) | gap p50 {:.2} ms | p99 {:.2} ms | max {:.2} ms |",
        stamps.len() as f64 / cli.seconds as f64,
        pct(&gaps, 0.5),
        pct(&gaps, 0.99),
        gaps.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

async fn pro_phase(cli: &Cli, dir: &Path) -> Result<()> {
    let (_socat, a, b) = socat(dir)?;
    let mut far = std::fs::File::open(&b)?;
    let port = free_port()?;
    let _relay = relay(
        &cli.relay_bin,
        port,
        &["--dmx-port", &a.display().to_string()],
    )?;
    let (tx, rx) = mpsc::channel::<(u8, Instant)>();
    std::thread::spawn(move || {
        let mut head = [0u8; 4];
        let mut body = vec![0u8; 700];
        loop {
            if !read_exact(&mut far, &mut head[..1]) {
                return;
            }
            if head[0] != 0x7E || !read_exact(&mut far, &mut head[1..]) {
                continue;
            }
            let len = usize::from(u16::from_le_bytes([head[2], head[3]])).min(600);
            if !read_exact(&mut far, &mut body[..len + 1]) {
                return;
            }
            if let Some(level) = body.get(1) {
                if tx.send((*level, Instant::now())).is_err() {
                    return;
                }
            }
        }
    });
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut ws = client::session(addr, "dmx-bench").await?;
    let address = client::address("/dmx/1")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    while rx.try_recv().is_ok() {}
    let end = Instant::now() + Duration::from_secs(cli.seconds);
    let mut lat = Vec::new();
    let mut level: u8 = 1;
    let mut sets = 0u64;
    while Instant::now() < end {
        sets += 1;
        level = if level >= 250 { 1 } else { level + 1 };
        let sent = Instant::now();
        ws.send(client::set_frame(&address, i64::from(level))?)
            .await?;
        let deadline = sent + Duration::from_secs(1);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok((l, at)) if l == level => {
                    lat.push((at - sent).as_secs_f64() * 1e3);
                    break;
                }
                Ok((l, _)) => seen.push(l),
                Err(_) => break,
            }
        }
        if lat.len() as u64 != sets {
            eprintln!("level {level}: no frame with it within 1 s (other frames: {seen:?})");
        }
        // Drain the relay's answers so its queue to us stays empty.
        while let Ok(Ok(Some(_))) =
            tokio::time::timeout(Duration::from_millis(1), client::recv(&mut ws)).await
        {}
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "| Pro, a SET every 100 ms | {} SETs, {} frames seen | set→frame p50 {:.2} ms | p99 {:.2} ms | max {:.2} ms |",
        sets,
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let dir = std::env::temp_dir().join(format!("clasp-dmx-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!("| phase | rate | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    let (open_dir, pro_dir) = (dir.join("open"), dir.join("pro"));
    std::fs::create_dir_all(&open_dir)?;
    std::fs::create_dir_all(&pro_dir)?;
    open_phase(&cli, &open_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(pro_phase(&cli, &pro_dir))?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
