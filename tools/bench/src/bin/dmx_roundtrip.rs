//! `dmx_roundtrip`: 32 DMX universes at 44 Hz in and out through a relay, over Art-Net or
//! sACN, with the relay process's CPU use and the latency it adds.
//!
//! The relay runs two bridges of one protocol on one namespace (a `[[bridge]]` config
//! file): the first receives the frames sent here, the second sends the changes on to a
//! receiving socket here (a bridge never echoes its own input, so a second one does the
//! sending, as a second node would). Each frame carries a counter in channel 1 and a ramp
//! in channels 2–17; the latency of a frame is from its send to the first output frame
//! of its universe carrying its counter. The same sender and receiver, connected directly,
//! give the floor of the measurement. Packets are built and parsed with the
//! `artnet_protocol` and `sacn` crates. CPU use is the relay's utime+stime from
//! /proc/<pid>/stat over the measured seconds.
//!
//! `cargo run --release -p clasp-bench --bin dmx_roundtrip -- --relay-bin target/release/clasp`

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, ValueEnum};

/// Universes sent.
const UNIVERSES: u16 = 32;
/// Counter values before they repeat (channel 1).
const COUNTER: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Protocol {
    Artnet,
    Sacn,
}

/// 32 universes at 44 Hz through the relay's Art-Net or sACN bridges.
#[derive(Debug, Parser)]
#[command(name = "dmx_roundtrip")]
struct Cli {
    /// Relay binary to start (on free 127.0.0.1 ports; stopped at the end).
    #[arg(long, default_value = "target/release/clasp")]
    relay_bin: PathBuf,
    /// Protocols to run, in turn.
    #[arg(long, value_enum, default_values_t = [Protocol::Artnet, Protocol::Sacn])]
    protocol: Vec<Protocol>,
    /// Frames per second per universe sent.
    #[arg(long, default_value_t = 44.0)]
    rate: f64,
    /// Seconds measured (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

impl Protocol {
    fn first_universe(self) -> u16 {
        match self {
            Protocol::Artnet => 0,
            Protocol::Sacn => 1,
        }
    }

    fn encode(self, universe: u16, seq: u8, levels: &[u8]) -> Result<Vec<u8>> {
        match self {
            Protocol::Artnet => {
                let out = artnet_protocol::Output {
                    sequence: seq.max(1),
                    port_address: artnet_protocol::PortAddress::try_from(universe)?,
                    data: levels.to_vec().into(),
                    ..Default::default()
                };
                Ok(artnet_protocol::ArtCommand::Output(out).write_to_buffer()?)
            }
            Protocol::Sacn => {
                use sacn::packet::*;
                let mut values = vec![0u8];
                values.extend_from_slice(levels);
                let packet = AcnRootLayerProtocol {
                    pdu: E131RootLayer {
                        cid: uuid::Uuid::from_bytes([7; 16]),
                        data: E131RootLayerData::DataPacket(DataPacketFramingLayer {
                            source_name: "bench".into(),
                            priority: 100,
                            synchronization_address: 0,
                            sequence_number: seq,
                            preview_data: false,
                            stream_terminated: false,
                            force_synchronization: false,
                            universe,
                            data: DataPacketDmpLayer {
                                property_values: values.into(),
                            },
                        }),
                    },
                };
                packet
                    .pack_alloc()
                    .map_err(|e| anyhow::anyhow!("sACN encode: {e}"))
            }
        }
    }

    /// (universe, channel 1) of a received data packet.
    fn decode(self, bytes: &[u8]) -> Option<(u16, u8)> {
        match self {
            Protocol::Artnet => match artnet_protocol::ArtCommand::from_buffer(bytes).ok()? {
                artnet_protocol::ArtCommand::Output(o) => {
                    Some((u16::from(o.port_address), *o.data.as_ref().first()?))
                }
                _ => None,
            },
            Protocol::Sacn => {
                let p = sacn::packet::AcnRootLayerProtocol::parse(bytes).ok()?;
                match p.pdu.data {
                    sacn::packet::E131RootLayerData::DataPacket(f) => {
                        Some((f.universe, *f.data.property_values.get(1)?))
                    }
                    _ => None,
                }
            }
        }
    }

    fn config(self, input: u16, output: u16, target: u16) -> String {
        let (kind, last) = match self {
            Protocol::Artnet => ("artnet", UNIVERSES - 1),
            Protocol::Sacn => ("sacn", UNIVERSES),
        };
        let first = self.first_universe();
        let bridge = |port: u16, dest: String| {
            format!(
                "[[bridge]]\nkind = \"{kind}\"\nport = {port}\ninterface = \"127.0.0.1\"\n\
                 namespace = \"/dmx\"\nuniverses = \"{first}-{last}\"\ndest = [\"{dest}\"]\n"
            )
        };
        // The first bridge's own output has nothing to send (its input is not echoed);
        // its destination is the discard port.
        format!(
            "{}\n{}",
            bridge(input, "127.0.0.1:9".into()),
            bridge(output, format!("127.0.0.1:{target}"))
        )
    }
}

/// What one run measured.
struct Run {
    frames_in: u64,
    frames_out: u64,
    latencies_us: Vec<u64>,
    cpu_percent: Option<f64>,
    seconds: f64,
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied()
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

fn start_relay(bin: &PathBuf, config: &std::path::Path) -> Result<RelayProc> {
    let ws = free_tcp_port()?;
    let child = Command::new(bin)
        .args(["relay", "--host", "127.0.0.1", "--ws-port", &ws.to_string()])
        .args(["--log-level", "warn", "--config"])
        .arg(config)
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

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Sends 32 universes at `rate` to `to` and measures what arrives on `rx` for `seconds`
/// after a warm-up; `pid` is the relay whose CPU is read (none for the direct path).
fn measure(
    proto: Protocol,
    to: u16,
    rx: UdpSocket,
    rate: f64,
    seconds: u64,
    pid: Option<u32>,
) -> Result<Run> {
    let start = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new(
        (0..usize::from(UNIVERSES) * COUNTER)
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let frames_out = Arc::new(AtomicU64::new(0));

    let receiver = {
        let (sent_at, measuring, stop, latencies, frames_out) = (
            sent_at.clone(),
            measuring.clone(),
            stop.clone(),
            latencies.clone(),
            frames_out.clone(),
        );
        rx.set_read_timeout(Some(Duration::from_millis(50)))?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut last = vec![None::<u8>; usize::from(UNIVERSES)];
            while !stop.load(Ordering::Relaxed) {
                let Ok(n) = rx.recv(&mut buf) else { continue };
                let Some((u, counter)) = proto.decode(&buf[..n]) else {
                    continue;
                };
                let now = start.elapsed().as_micros() as u64;
                let i = usize::from(u.wrapping_sub(proto.first_universe()));
                let Some(slot) = last.get_mut(i) else {
                    continue;
                };
                if measuring.load(Ordering::Relaxed) {
                    frames_out.fetch_add(1, Ordering::Relaxed);
                }
                if *slot == Some(counter) {
                    continue;
                }
                *slot = Some(counter);
                let sent = sent_at[i * COUNTER + usize::from(counter)].load(Ordering::Relaxed);
                if sent > 0 && measuring.load(Ordering::Relaxed) {
                    if let Ok(mut l) = latencies.lock() {
                        l.push(now.saturating_sub(sent));
                    }
                }
            }
        })
    };

    let tx = UdpSocket::bind("127.0.0.1:0")?;
    let period = Duration::from_secs_f64(1.0 / rate);
    let warmup = Duration::from_secs(2);
    let total = warmup + Duration::from_secs(seconds);
    let mut frames_in = 0u64;
    let mut k: u64 = 0;
    let mut cpu_start = None;
    let mut measured_from = None;
    let mut levels = [0u8; 512];
    while start.elapsed() < total {
        if measured_from.is_none() && start.elapsed() >= warmup {
            measured_from = Some(Instant::now());
            cpu_start = pid.and_then(cpu_ticks);
            measuring.store(true, Ordering::Relaxed);
        }
        let counter = (k % COUNTER as u64) as u8;
        for i in 0..UNIVERSES {
            let universe = proto.first_universe() + i;
            levels[0] = counter;
            for (c, level) in levels[1..17].iter_mut().enumerate() {
                *level = (k as usize + c + usize::from(i)) as u8;
            }
            let bytes = proto.encode(universe, (k % 256) as u8, &levels)?;
            sent_at[usize::from(i) * COUNTER + usize::from(counter)]
                .store(start.elapsed().as_micros() as u64, Ordering::Relaxed);
            tx.send_to(&bytes, ("127.0.0.1", to))?;
            if measured_from.is_some() {
                frames_in += 1;
            }
        }
        k += 1;
        let next = start + period.mul_f64(k as f64);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let elapsed = measured_from.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let cpu_end = pid.and_then(cpu_ticks);
    // Let the last frames arrive.
    std::thread::sleep(Duration::from_millis(200));
    measuring.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = receiver.join();
    let cpu_percent = match (cpu_start, cpu_end) {
        (Some(a), Some(b)) if elapsed > 0.0 => {
            Some((b.saturating_sub(a)) as f64 / ticks_per_second() / elapsed * 100.0)
        }
        _ => None,
    };
    let mut latencies_us = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    latencies_us.sort_unstable();
    Ok(Run {
        frames_in,
        frames_out: frames_out.load(Ordering::Relaxed),
        latencies_us,
        cpu_percent,
        seconds: elapsed,
    })
}

fn row(path: &str, r: &Run) -> String {
    let ms = |v: Option<u64>| v.map_or("-".into(), |us| format!("{:.2}", us as f64 / 1000.0));
    format!(
        "| {path:<24} | {:>9.0} | {:>10.0} | {:>8} | {:>8} | {:>9} | {:>6} |",
        r.frames_in as f64 / r.seconds.max(1e-9),
        r.frames_out as f64 / r.seconds.max(1e-9),
        ms(percentile(&r.latencies_us, 0.5)),
        ms(percentile(&r.latencies_us, 0.99)),
        r.cpu_percent.map_or("-".into(), |c| format!("{c:.1}%")),
        r.latencies_us.len(),
    )
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut rows = Vec::new();
    for proto in &cli.protocol {
        let proto = *proto;
        let name = match proto {
            Protocol::Artnet => "Art-Net",
            Protocol::Sacn => "sACN",
        };
        // Floor: the same sender and receiver, directly.
        let rx = UdpSocket::bind("127.0.0.1:0")?;
        let to = rx.local_addr()?.port();
        rows.push(row(
            &format!("{name} direct (floor)"),
            &measure(proto, to, rx, cli.rate, cli.seconds, None)?,
        ));

        let rx = UdpSocket::bind("127.0.0.1:0")?;
        let target = rx.local_addr()?.port();
        let (input, output) = (free_udp_port()?, free_udp_port()?);
        let dir = std::env::temp_dir().join(format!("dmx-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, proto.config(input, output, target))?;
        let relay = start_relay(&cli.relay_bin, &config)?;
        let run = measure(proto, input, rx, cli.rate, cli.seconds, Some(relay.0.id()))?;
        rows.push(row(&format!("{name} through the relay"), &run));
        drop(relay);
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!(
        "DMX round trip: {UNIVERSES} universes at {} Hz, {} s measured (relay: {})",
        cli.rate,
        cli.seconds,
        cli.relay_bin.display()
    );
    println!("| path                     | frames/s in | frames/s out | p50 ms | p99 ms | relay CPU | samples |");
    println!("|--------------------------|-------------|--------------|--------|--------|-----------|---------|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
