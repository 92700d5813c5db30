//! MQTT publish → broker → MQTT subscriber round trips through the relay's embedded broker
//! (`clasp relay --mqtt-port`), beside mosquitto alone doing the same in the same run.
//! One publisher and one subscriber connection per broker (MQTT 3.1.1, QoS 0, rumqttc's
//! codec over plain tokio TCP): first one message at a time (latency), then a window of
//! messages in flight (throughput, and latency under load). Every phase is bounded.
//!
//! `cargo run --release -p clasp-bench --bin mqtt_broker_roundtrip -- --clasp target/release/clasp`

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use bytes::BytesMut;
use clap::Parser;
use clasp_bench::process::free_port;
use rumqttc::{ConnAck, Connect, ConnectReturnCode, Packet, Publish, QoS, Subscribe};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

const TOPIC: &str = "bench/rt";
const MAX_PACKET: usize = 64 * 1024;
/// Longest wait for any one message or startup step.
const STEP: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(about = "MQTT round trips: the CLASP relay's embedded broker vs mosquitto")]
struct Args {
    /// The clasp binary.
    #[arg(long, default_value = "target/release/clasp")]
    clasp: PathBuf,
    /// The mosquitto binary.
    #[arg(long, default_value = "/usr/sbin/mosquitto")]
    mosquitto: PathBuf,
    /// Messages one at a time (latency phase).
    #[arg(long, default_value_t = 2_000)]
    sequential: usize,
    /// Messages in the windowed phase (throughput).
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
    /// Messages in flight in the windowed phase.
    #[arg(long, default_value_t = 100)]
    window: usize,
    /// Payload bytes (at least 8: the send time).
    #[arg(long, default_value_t = 64)]
    payload: usize,
}

/// A broker process, killed when dropped.
struct Proc(Child);

async fn start(program: &PathBuf, args: &[String], mqtt: SocketAddr) -> Result<Proc> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let mut proc = Proc(child);
    let deadline = Instant::now() + STEP;
    while TcpStream::connect(mqtt).await.is_err() {
        if let Some(status) = proc.0.try_wait()? {
            bail!("{} exited: {status}", program.display());
        }
        if Instant::now() > deadline {
            bail!("{} did not listen on {mqtt}", program.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(proc)
}

/// An MQTT 3.1.1 connection.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    async fn open(addr: SocketAddr, id: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Conn {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
        };
        let mut connect = Connect::new(id);
        connect.keep_alive = 60;
        c.send(Packet::Connect(connect)).await?;
        match c.recv().await? {
            Packet::ConnAck(ConnAck {
                code: ConnectReturnCode::Success,
                ..
            }) => Ok(c),
            other => bail!("expected CONNACK, got {other:?}"),
        }
    }

    async fn send(&mut self, p: Packet) -> Result<()> {
        let mut out = BytesMut::new();
        p.write(&mut out, MAX_PACKET)
            .map_err(|e| anyhow!("encode: {e}"))?;
        self.stream.write_all(&out).await?;
        Ok(())
    }

    async fn recv(&mut self) -> Result<Packet> {
        loop {
            match Packet::read(&mut self.buf, MAX_PACKET) {
                Ok(p) => return Ok(p),
                Err(rumqttc::Error::InsufficientBytes(_)) => {}
                Err(e) => bail!("decode: {e}"),
            }
            let n = tokio::time::timeout(STEP, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| anyhow!("nothing received for {STEP:?}"))??;
            if n == 0 {
                bail!("connection closed");
            }
        }
    }
}

struct Figures {
    name: &'static str,
    seq_p50: Duration,
    seq_p99: Duration,
    rate: f64,
    load_p50: Duration,
    load_p99: Duration,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(name: &'static str, addr: SocketAddr, args: &Args) -> Result<Figures> {
    let mut sub = Conn::open(addr, &format!("bench-sub-{}", std::process::id())).await?;
    let mut subscribe = Subscribe::new(TOPIC, QoS::AtMostOnce);
    subscribe.pkid = 1;
    sub.send(Packet::Subscribe(subscribe)).await?;
    match sub.recv().await? {
        Packet::SubAck(_) => {}
        other => bail!("expected SUBACK, got {other:?}"),
    }
    let mut publ = Conn::open(addr, &format!("bench-pub-{}", std::process::id())).await?;
    let epoch = Instant::now();
    let payload_len = args.payload.max(8);
    let publish = |at: Duration| {
        let mut payload = vec![0u8; payload_len];
        payload[..8].copy_from_slice(&(at.as_nanos() as u64).to_be_bytes());
        Packet::Publish(Publish::new(TOPIC, QoS::AtMostOnce, payload))
    };
    let sent_at = |p: &Publish| -> Option<Duration> {
        let b: [u8; 8] = p.payload.get(..8)?.try_into().ok()?;
        Some(Duration::from_nanos(u64::from_be_bytes(b)))
    };

    // One at a time.
    let mut seq = Vec::with_capacity(args.sequential);
    for _ in 0..args.sequential {
        publ.send(publish(epoch.elapsed())).await?;
        loop {
            if let Packet::Publish(p) = sub.recv().await? {
                let at = sent_at(&p).ok_or_else(|| anyhow!("short payload"))?;
                seq.push(epoch.elapsed().saturating_sub(at));
                break;
            }
        }
    }
    seq.sort();

    // A window in flight: the subscriber frees a slot per message received.
    let slots = Arc::new(Semaphore::new(args.window.max(1)));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(args.messages)));
    let total = args.messages;
    let reader = {
        let (slots, lat) = (slots.clone(), lat.clone());
        tokio::spawn(async move {
            let mut got = 0;
            while got < total {
                match sub.recv().await {
                    Ok(Packet::Publish(p)) => {
                        if let Some(at) = sent_at(&p) {
                            if let Ok(mut l) = lat.lock() {
                                l.push(epoch.elapsed().saturating_sub(at));
                            }
                        }
                        got += 1;
                        slots.add_permits(1);
                    }
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    };
    let start = Instant::now();
    for _ in 0..total {
        let permit = tokio::time::timeout(STEP, slots.acquire())
            .await
            .map_err(|_| anyhow!("{name}: no message came back for {STEP:?} (lost?)"))??;
        permit.forget();
        publ.send(publish(epoch.elapsed())).await?;
    }
    tokio::time::timeout(STEP, reader)
        .await
        .map_err(|_| anyhow!("{name}: the last messages did not arrive"))???;
    let elapsed = start.elapsed();
    let mut load = lat.lock().map(|l| l.clone()).unwrap_or_default();
    load.sort();
    Ok(Figures {
        name,
        seq_p50: pct(&seq, 0.5),
        seq_p99: pct(&seq, 0.99),
        rate: total as f64 / elapsed.as_secs_f64(),
        load_p50: pct(&load, 0.5),
        load_p99: pct(&load, 0.99),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut results = Vec::new();

    let mqtt = free_port()?;
    let ws = free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, mqtt));
    let relay_args: Vec<String> = [
        "relay",
        "--host",
        "127.0.0.1",
        "--ws-port",
        &ws.to_string(),
        "--mqtt-port",
        &mqtt.to_string(),
        "--log-level",
        "warn",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    {
        let _relay = start(&args.clasp, &relay_args, addr).await?;
        results.push(measure("clasp relay --mqtt-port", addr, &args).await?);
    }

    let port = free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let config = std::env::temp_dir().join(format!("mqtt-rt-{}-{port}.conf", std::process::id()));
    std::fs::write(
        &config,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    )?;
    let mosq_args = vec!["-c".to_string(), config.display().to_string()];
    {
        let _mosq = start(&args.mosquitto, &mosq_args, addr).await;
        let _ = std::fs::remove_file(&config);
        let _mosq = _mosq?;
        results.push(measure("mosquitto", addr, &args).await?);
    }

    println!(
        "MQTT 3.1.1 QoS 0, {} B payload: {} sequential round trips, then {} with {} in flight",
        args.payload.max(8),
        args.sequential,
        args.messages,
        args.window
    );
    println!(
        "{:<26} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "broker", "seq p50", "seq p99", "msgs/s", "load p50", "load p99"
    );
    for f in &results {
        println!(
            "{:<26} {:>12.1?} {:>12.1?} {:>12.0} {:>12.1?} {:>12.1?}",
            f.name, f.seq_p50, f.seq_p99, f.rate, f.load_p50, f.load_p99
        );
    }
    Ok(())
}
