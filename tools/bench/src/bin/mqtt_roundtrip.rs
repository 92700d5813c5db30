//! `mqtt_roundtrip`: MQTT → CLASP → MQTT round trips through the relay with the MQTT client
//! bridge, beside a direct mosquitto pub → sub baseline measured in the same run.
//!
//! Path: a plain MQTT client publishes `rt/ping/v` on mosquitto; bridge A (`clasp mqtt
//! --subscribe 'rt/#'`, namespace `/mqtt`) turns it into the event `/mqtt/rt/ping/v` on the
//! relay; bridge B (`clasp mqtt --namespace /mqtt/rt/ping`) sees that event under its
//! namespace and publishes it on the broker as topic `v`, where the client is subscribed.
//! Every leg is a real process on 127.0.0.1; counts and waits are bounded.
//!
//! Run: `cargo build --bin clasp && cargo run -p clasp-bench --bin mqtt_roundtrip --
//! --clasp-bin target/debug/clasp` (use a release build for meaningful figures).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use clasp_bench::process::{free_port, KillOnDrop as Proc};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

/// MQTT round trips through the CLASP relay and the MQTT client bridge.
#[derive(Debug, Parser)]
struct Args {
    /// The `clasp` binary (relay and bridges).
    #[arg(long, default_value = "target/release/clasp")]
    clasp_bin: PathBuf,
    /// The mosquitto binary.
    #[arg(long, default_value = "mosquitto")]
    mosquitto_bin: PathBuf,
    /// Sequential round trips for the latency figures.
    #[arg(long, default_value_t = 2000)]
    count: u64,
    /// Messages for the throughput figure (sent with `--window` in flight).
    #[arg(long, default_value_t = 20_000)]
    burst: u64,
    /// Messages in flight during the throughput run.
    #[arg(long, default_value_t = 100)]
    window: u64,
    /// Time limit of each phase, seconds.
    #[arg(long, default_value_t = 60)]
    max_secs: u64,
}

/// A child process killed on drop.
fn spawn(bin: &PathBuf, args: &[String], port: Option<u16>) -> Result<Proc> {
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let proc = Proc(child);
    if let Some(port) = port {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("{} did not listen on {port}", bin.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(proc)
}

/// One measured path: a publisher client and a subscriber client on the broker.
struct Path {
    publisher: AsyncClient,
    received: mpsc::UnboundedReceiver<u64>,
    out_topic: String,
}

impl Path {
    async fn open(port: u16, out_topic: &str, in_topic: &str, tag: &str) -> Result<Path> {
        let mut opts = MqttOptions::new(format!("bench-sub-{tag}"), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        let (sub, mut sub_loop) = AsyncClient::new(opts, 1024);
        let (tx, received) = mpsc::unbounded_channel();
        sub.subscribe(in_topic, QoS::AtMostOnce).await?;
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _keep = sub;
            let mut subscribed_tx = Some(subscribed_tx);
            while let Ok(event) = sub_loop.poll().await {
                match event {
                    Event::Incoming(Packet::SubAck(_)) => {
                        if let Some(t) = subscribed_tx.take() {
                            let _ = t.send(());
                        }
                    }
                    Event::Incoming(Packet::Publish(p)) => {
                        if let Some(seq) = std::str::from_utf8(&p.payload)
                            .ok()
                            .and_then(|s| s.trim().parse().ok())
                        {
                            let _ = tx.send(seq);
                        }
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .context("no SUBACK")??;
        let opts = MqttOptions::new(format!("bench-pub-{tag}"), "127.0.0.1", port);
        let (publisher, mut pub_loop) = AsyncClient::new(opts, 4096);
        tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
        Ok(Path {
            publisher,
            received,
            out_topic: out_topic.to_string(),
        })
    }

    async fn send(&self, seq: u64) -> Result<()> {
        self.publisher
            .publish(&self.out_topic, QoS::AtMostOnce, false, seq.to_string())
            .await?;
        Ok(())
    }

    /// Waits for `seq` (skipping older ones), at most `within`.
    async fn wait(&mut self, seq: u64, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.received.recv()).await {
                Ok(Some(s)) if s == seq => return true,
                Ok(Some(_)) => continue,
                _ => return false,
            }
        }
    }

    /// Publishes until one comes back (bridges subscribed and connected).
    async fn warm_up(&mut self) -> Result<()> {
        for seq in 1_000_000_000..1_000_000_100u64 {
            self.send(seq).await?;
            if self.wait(seq, Duration::from_millis(200)).await {
                return Ok(());
            }
        }
        bail!("nothing came back within 20 s: the path is not connected")
    }
}

struct Figures {
    name: &'static str,
    rtts_us: Vec<u64>,
    lost: u64,
    burst_rate: f64,
    burst_got: u64,
    burst_sent: u64,
}

async fn measure(name: &'static str, path: &mut Path, args: &Args) -> Result<Figures> {
    path.warm_up().await?;
    let limit = Instant::now() + Duration::from_secs(args.max_secs);
    let mut rtts_us = Vec::new();
    let mut lost = 0;
    for seq in 0..args.count {
        if Instant::now() > limit {
            break;
        }
        let t0 = Instant::now();
        path.send(seq).await?;
        if path.wait(seq, Duration::from_secs(2)).await {
            rtts_us.push(t0.elapsed().as_micros() as u64);
        } else {
            lost += 1;
        }
    }
    // Throughput: `window` in flight, bounded count and time.
    let base = 10_000_000u64;
    let start = Instant::now();
    let limit = start + Duration::from_secs(args.max_secs);
    let (mut sent, mut got) = (0u64, 0u64);
    while got < args.burst && Instant::now() < limit {
        while sent < args.burst && sent - got < args.window {
            path.send(base + sent).await?;
            sent += 1;
        }
        match tokio::time::timeout(Duration::from_secs(2), path.received.recv()).await {
            Ok(Some(s)) if s >= base => got += 1,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Figures {
        name,
        rtts_us,
        lost,
        burst_rate: got as f64 / secs.max(1e-9),
        burst_got: got,
        burst_sent: sent,
    })
}

fn percentile(sorted: &[u64], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[i] as f64 / 1000.0
}

fn print(rows: &[Figures]) {
    println!(
        "{:<42} {:>8} {:>6} {:>10} {:>10} {:>10} {:>12} {:>14}",
        "path", "trips", "lost", "p50 ms", "p99 ms", "seq msg/s", "burst msg/s", "burst got/sent"
    );
    for r in rows {
        let mut v = r.rtts_us.clone();
        v.sort_unstable();
        let mean_s = v.iter().sum::<u64>() as f64 / 1e6 / v.len().max(1) as f64;
        println!(
            "{:<42} {:>8} {:>6} {:>10.3} {:>10.3} {:>10.0} {:>12.0} {:>14}",
            r.name,
            v.len(),
            r.lost,
            percentile(&v, 50),
            percentile(&v, 99),
            1.0 / mean_s.max(1e-9),
            r.burst_rate,
            format!("{}/{}", r.burst_got, r.burst_sent),
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("clasp-mqtt-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mport = free_port()?;
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {mport} 127.0.0.1\nallow_anonymous true\n"),
    )?;
    let _broker = spawn(
        &args.mosquitto_bin,
        &["-c".into(), conf.display().to_string()],
        Some(mport),
    )?;
    let mut rows = Vec::new();
    let mut direct = Path::open(mport, "base/v", "base/v", "direct").await?;
    rows.push(measure("mosquitto pub -> sub (baseline)", &mut direct, &args).await?);

    let wport = free_port()?;
    let clasp = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let _relay = spawn(
        &args.clasp_bin,
        &clasp(&[
            "relay",
            "--host",
            "127.0.0.1",
            "--ws-port",
            &wport.to_string(),
            "--log-level",
            "warn",
        ]),
        Some(wport),
    )?;
    let broker = format!("mqtt://127.0.0.1:{mport}");
    let target = format!("ws://127.0.0.1:{wport}");
    let _bridge_in = spawn(
        &args.clasp_bin,
        &clasp(&[
            "mqtt",
            "--broker",
            &broker,
            "--target",
            &target,
            "--subscribe",
            "rt/#",
            "--client-id",
            "bench-bridge-in",
        ]),
        None,
    )?;
    let _bridge_out = spawn(
        &args.clasp_bin,
        &clasp(&[
            "mqtt",
            "--broker",
            &broker,
            "--target",
            &target,
            "--namespace",
            "/mqtt/rt/ping",
            "--subscribe",
            "bench-unused/none",
            "--client-id",
            "bench-bridge-out",
        ]),
        None,
    )?;
    let mut bridged = Path::open(mport, "rt/ping/v", "v", "bridged").await?;
    rows.push(
        measure(
            "mqtt -> bridge -> relay -> bridge -> mqtt",
            &mut bridged,
            &args,
        )
        .await?,
    );
    println!(
        "\nMQTT round trips, QoS 0, payload = sequence number; {} sequential trips, then {} with {} in flight; clasp = {}",
        args.count,
        args.burst,
        args.window,
        args.clasp_bin.display()
    );
    print(&rows);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
