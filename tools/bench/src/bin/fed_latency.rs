//! `fed_latency`: a SET on one site reaching a subscriber on another, through a hub, with
//! a fixed delay added to each leaf↔hub link, beside the same figures on a single relay
//! measured in the same run (issue 9).
//!
//! Topology (all real `clasp relay` processes on 127.0.0.1): hub; leaf A (`/site-a/**`) and
//! leaf B (`/site-b/**`), each dialling the hub through a delaying TCP proxy that holds
//! every chunk for `--delay-ms` in each direction (the kernel here has no netem). The
//! writer is on A; subscribers are on B and on the hub.
//!
//! Run: `cargo build --release --bin clasp -p clasp -p clasp-bench --bins &&
//! target/release/fed_latency --clasp-bin target/release/clasp`.

#[path = "../client.rs"]
mod client;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use clasp_bench::process::{free_port, KillOnDrop as Proc};
use clasp_proto::{Message, Value};
use futures_util::SinkExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Cross-site latency and fan-out through a federation hub.
#[derive(Debug, Parser)]
struct Args {
    /// The `clasp` binary.
    #[arg(long, default_value = "target/release/clasp")]
    clasp_bin: PathBuf,
    /// Delay added to each leaf↔hub link, each direction, ms.
    #[arg(long, default_value_t = 5)]
    delay_ms: u64,
    /// Sequential SET → delivery samples.
    #[arg(long, default_value_t = 500)]
    count: u64,
    /// SETs in the fan-out throughput run.
    #[arg(long, default_value_t = 20_000)]
    burst: u64,
    /// Time limit of each phase, seconds.
    #[arg(long, default_value_t = 60)]
    max_secs: u64,
}

fn relay(bin: &PathBuf, port: u16, extra: &[&str]) -> Result<Proc> {
    let child = Command::new(bin)
        .args([
            "relay",
            "--host",
            "127.0.0.1",
            "--ws-port",
            &port.to_string(),
        ])
        .args(["--log-level", "error", "--no-mdns", "--broadcast-port", "0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("relay did not listen on {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(proc)
}

/// `GET /health` with a bare HTTP/1.0 request: the body.
fn health(port: u16) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn wait_synced(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !health(port).contains("\"state\":\"up\"") {
        if Instant::now() > deadline {
            bail!("relay on {port} never synced with its hub");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Forwards TCP from `listen` to `upstream`, holding every chunk for `delay` each way.
async fn delay_proxy(listen: TcpListener, upstream: SocketAddr, delay: Duration) {
    loop {
        let Ok((down, _)) = listen.accept().await else {
            return;
        };
        let Ok(up) = tokio::net::TcpStream::connect(upstream).await else {
            continue;
        };
        let _ = down.set_nodelay(true);
        let _ = up.set_nodelay(true);
        let (dr, dw) = down.into_split();
        let (ur, uw) = up.into_split();
        tokio::spawn(pump(dr, uw, delay));
        tokio::spawn(pump(ur, dw, delay));
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((due, bytes)) = rx.recv().await {
            // A timer rounds up to the runtime's 1 ms tick: only wait when there is time left.
            if due > tokio::time::Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx
                    .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Waits on `sub` for a SET of `address` whose value is `want`.
async fn await_value(
    sub: &mut client::Ws,
    address: &str,
    want: i64,
    limit: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let m = tokio::time::timeout_at(deadline, client::recv(sub))
            .await
            .map_err(|_| anyhow::anyhow!("{address} = {want} never arrived"))??;
        match m {
            Some(Message::Set(s)) if s.address.as_str() == address => {
                if s.value == Value::Int(want) {
                    return Ok(());
                }
            }
            Some(_) => {}
            None => bail!("subscriber connection closed"),
        }
    }
}

/// Writes probes (-1, -2, ...) until `sub` sees one: its subscription is then live.
async fn live(w: &mut client::Ws, sub: &mut client::Ws, address: &str) -> Result<()> {
    let addr = client::address(address)?;
    for i in 1..=100i64 {
        w.send(client::set_frame(&addr, -i)?).await?;
        if await_value(sub, address, -i, Duration::from_millis(200))
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
    bail!("subscription to {address} never became live")
}

/// One SET at a time on `writer`, each timed until `sub` sees it.
async fn latency(
    writer: SocketAddr,
    sub: SocketAddr,
    address: &str,
    n: u64,
    limit: Duration,
) -> Result<Vec<Duration>> {
    let mut w = client::session(writer, "fed-bench-writer").await?;
    let mut s = client::session(sub, "fed-bench-sub").await?;
    s.send(client::subscribe_frame(1, "/site-a/**")?).await?;
    let addr = client::address(address)?;
    live(&mut w, &mut s, address).await?;
    let started = Instant::now();
    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..n as i64 {
        if started.elapsed() > limit {
            break;
        }
        let t = Instant::now();
        w.send(client::set_frame(&addr, i)?).await?;
        await_value(&mut s, address, i, Duration::from_secs(5)).await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    Ok(samples)
}

/// `burst` SETs pipelined on `writer` over 100 addresses; time until each subscriber has
/// every address's final value.
async fn fanout(
    writer: SocketAddr,
    subs: &[SocketAddr],
    burst: u64,
    limit: Duration,
) -> Result<(Duration, Vec<u64>)> {
    let mut w = client::session(writer, "fed-bench-burst").await?;
    let mut readers = Vec::new();
    for (i, s) in subs.iter().enumerate() {
        let mut ws = client::session(*s, &format!("fed-bench-fan-{i}")).await?;
        ws.send(client::subscribe_frame(1, "/site-a/fan/**")?)
            .await?;
        readers.push(ws);
    }
    // Subscriptions live before the burst.
    for r in &mut readers {
        live(&mut w, r, "/site-a/fan/probe").await?;
    }
    let addresses: Vec<_> = (0..100)
        .map(|i| client::address(&format!("/site-a/fan/{i}")))
        .collect::<Result<_>>()?;
    let last = burst as i64 - 1;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut r in readers {
        tasks.push(tokio::spawn(async move {
            let mut got = 0u64;
            let deadline = tokio::time::Instant::now() + limit;
            loop {
                let Ok(Ok(Some(m))) = tokio::time::timeout_at(deadline, client::recv(&mut r)).await
                else {
                    return got;
                };
                if let Message::Set(s) = m {
                    got += 1;
                    if s.value == Value::Int(last) {
                        return got;
                    }
                }
            }
        }));
    }
    for i in 0..burst as i64 {
        w.feed(client::set_frame(&addresses[(i % 100) as usize], i)?)
            .await?;
        if i % 256 == 0 {
            w.flush().await?;
        }
    }
    w.flush().await?;
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap_or(0));
    }
    Ok((started.elapsed(), counts))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let limit = Duration::from_secs(args.max_secs);
    let delay = Duration::from_millis(args.delay_ms);
    let (hp, ap, bp) = (free_port()?, free_port()?, free_port()?);
    let _hub = relay(&args.clasp_bin, hp, &["--federation-id", "hub"])?;
    let hub_addr: SocketAddr = ([127, 0, 0, 1], hp).into();
    let mut proxies = Vec::new();
    for _ in 0..2 {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        proxies.push(l.local_addr()?.port());
        tokio::spawn(delay_proxy(l, hub_addr, delay));
    }
    let via = |p: u16| format!("ws://127.0.0.1:{p}");
    let (va, vb) = (via(proxies[0]), via(proxies[1]));
    let _a = relay(
        &args.clasp_bin,
        ap,
        &[
            "--federation-id",
            "site-a",
            "--federation-namespace",
            "/site-a/**",
            "--federation-hub",
            &va,
        ],
    )?;
    let _b = relay(
        &args.clasp_bin,
        bp,
        &[
            "--federation-id",
            "site-b",
            "--federation-namespace",
            "/site-b/**",
            "--federation-hub",
            &vb,
        ],
    )?;
    wait_synced(ap)?;
    wait_synced(bp)?;
    let (a, b): (SocketAddr, SocketAddr) =
        (([127, 0, 0, 1], ap).into(), ([127, 0, 0, 1], bp).into());

    println!(
        "fed_latency: hub + 2 leaves, {} ms added per leaf-hub link each way, {} samples",
        args.delay_ms, args.count
    );
    let single = latency(a, a, "/site-a/lat", args.count, limit).await?;
    let cross = latency(a, b, "/site-a/lat", args.count, limit).await?;
    println!("| path | samples | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (name, s) in [
        ("single relay (writer and subscriber on A)", &single),
        ("cross-site A -> hub -> B", &cross),
    ] {
        println!(
            "| {name} | {} | {:.3} ms | {:.3} ms | {:.3} ms |",
            s.len(),
            percentile(s, 0.5).as_secs_f64() * 1e3,
            percentile(s, 0.99).as_secs_f64() * 1e3,
            s.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
    }
    let floor = 2 * args.delay_ms;
    println!("(floor from the injected delay alone: {floor} ms)");
    let (t1, c1) = fanout(a, &[a], args.burst, limit).await?;
    let (t2, c2) = fanout(a, &[b, hub_addr], args.burst, limit).await?;
    println!("| fan-out | SETs | time to last value | SET/s | updates received |");
    println!("|---|---|---|---|---|");
    println!(
        "| single relay, 1 subscriber | {} | {:.3} s | {:.0} | {:?} |",
        args.burst,
        t1.as_secs_f64(),
        args.burst as f64 / t1.as_secs_f64(),
        c1
    );
    println!(
        "| federated, subscribers on B and the hub | {} | {:.3} s | {:.0} | {:?} |",
        args.burst,
        t2.as_secs_f64(),
        args.burst as f64 / t2.as_secs_f64(),
        c2
    );
    Ok(())
}
