//! `clasp-bench`: load and latency benchmark of the CLASP relay, driven from a separate
//! process over real WebSockets, with mosquitto as the peer for fan-out.
//!
//! Every section gets a fresh relay (started from `--relay-bin` on a free loopback port and
//! stopped at the end) unless `--relay-addr` points at a running one.

mod client;
mod fanout;
mod harness;
mod idle;
mod latency;
mod mqtt_peer;
mod report;
mod snapshot;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, ValueEnum};

use harness::{FanoutTiming, RelaySource, Target};
use report::Report;

/// Load and latency benchmark for the CLASP relay.
#[derive(Debug, Parser)]
#[command(name = "clasp-bench", version, about)]
struct Cli {
    /// Relay binary to start (a fresh relay per section, on a free 127.0.0.1 port).
    #[arg(long, default_value = "target/release/clasp")]
    relay_bin: PathBuf,
    /// Benchmark an already running relay at HOST:PORT instead of starting one
    /// (start it with --max-sessions 0 for the idle test).
    #[arg(long)]
    relay_addr: Option<SocketAddr>,
    /// Pid of the relay given by --relay-addr (needed for the RSS test and CPU figures).
    #[arg(long, requires = "relay_addr")]
    relay_pid: Option<u32>,
    /// Idle connections to open for the RSS test.
    #[arg(long = "connections", value_name = "N", default_value_t = 10_000)]
    connections: usize,
    /// Short windows (CI smoke): fan-out trials of 0.2 s, 4 s per subscriber count.
    #[arg(long)]
    quick: bool,
    /// Run one section only.
    #[arg(long, value_enum)]
    only: Option<Section>,
    /// mosquitto binary for the peer comparison.
    #[arg(long, default_value = "mosquitto")]
    mosquitto_bin: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// Max loss-free fan-out rate, 1/10/100 subscribers.
    Fanout,
    /// SET → subscriber latency at 1000 msg/s.
    Latency,
    /// Relay RSS per idle connection.
    Idle,
    /// Late joiner: 10 000 params in the initial SNAPSHOT.
    Snapshot,
    /// The fan-out harness against mosquitto.
    Mosquitto,
}

const SUBSCRIBER_COUNTS: [usize; 3] = [1, 10, 100];
/// First offered rate of a search, as delivered msg/s.
const START_DELIVERED: u64 = 40_000;
const LATENCY_RATE: u64 = 1000;
const SNAPSHOT_PARAMS: usize = 10_000;
/// File descriptors the bench needs besides the idle connections.
const FD_RESERVE: u64 = 512;

struct Settings {
    timing: FanoutTiming,
    latency: Duration,
    snapshot_runs: usize,
    settle: Duration,
}

impl Settings {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                timing: FanoutTiming {
                    window: Duration::from_millis(200),
                    grace: Duration::from_millis(100),
                    budget: Duration::from_secs(4),
                },
                latency: Duration::from_secs(1),
                snapshot_runs: 3,
                settle: Duration::from_millis(300),
            }
        } else {
            Self {
                timing: FanoutTiming {
                    window: Duration::from_millis(1000),
                    grace: Duration::from_millis(300),
                    budget: Duration::from_secs(30),
                },
                latency: Duration::from_secs(5),
                snapshot_runs: 11,
                settle: Duration::from_secs(1),
            }
        }
    }
}

/// Raises RLIMIT_NOFILE so `connections` sockets fit (the relay we start inherits it).
/// Returns how many idle connections can actually be opened.
fn raise_fd_limit(connections: usize) -> usize {
    let need = connections as u64 + FD_RESERVE;
    let mut limit = rlimit::increase_nofile_limit(need).unwrap_or(0);
    if limit < need {
        // Raising the hard limit needs privilege; try, and keep what we got otherwise.
        if rlimit::setrlimit(rlimit::Resource::NOFILE, need, need).is_ok() {
            limit = need;
        }
    }
    if limit < need {
        let reachable = limit.saturating_sub(FD_RESERVE) as usize;
        println!(
            "WARNING: open-files limit is {limit}; only {reachable} of the {connections} idle connections can be opened"
        );
        reachable
    } else {
        connections
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let wants = |s: Section| cli.only.is_none_or(|o| o == s);
    if cli.relay_addr.is_none() && !cli.relay_bin.exists() && cli.only != Some(Section::Mosquitto) {
        bail!(
            "relay binary {} not found: run `cargo build --release` first or pass --relay-bin",
            cli.relay_bin.display()
        );
    }
    let connections = if wants(Section::Idle) {
        raise_fd_limit(cli.connections)
    } else {
        cli.connections
    };
    let settings = Settings::new(cli.quick);
    let source = RelaySource {
        bin: cli.relay_bin.clone(),
        external: cli.relay_addr,
        external_pid: cli.relay_pid,
    };
    println!(
        "clasp-bench: relay {}, {} mode, {} cores",
        cli.relay_addr
            .map_or_else(|| cli.relay_bin.display().to_string(), |a| a.to_string()),
        if cli.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut report = Report::default();
    let mut failed_sections = 0;

    if wants(Section::Fanout) {
        println!("\n== 1. fan-out: max loss-free rate (window {:?}, grace {:?}, cap {:?} per subscriber count)",
            settings.timing.window, settings.timing.grace, settings.timing.budget);
        for subs in SUBSCRIBER_COUNTS {
            let section = format!("fan-out {subs} sub");
            match fanout_clasp(&source, subs, &settings, &mut report).await {
                Ok(o) => report.fanout.push(o),
                Err(e) => {
                    failed_sections += 1;
                    report.problems.push(format!("{section}: {e:#}"));
                }
            }
        }
    }
    if wants(Section::Mosquitto) {
        println!("\n== 5. peer: the same fan-out harness against mosquitto (QoS 0, one topic)");
        for subs in SUBSCRIBER_COUNTS {
            match fanout_mosquitto(&cli, subs, &settings).await {
                Ok(o) => report.mosquitto.push(o),
                Err(e) => {
                    failed_sections += 1;
                    report.problems.push(format!("mosquitto {subs} sub: {e:#}"));
                }
            }
        }
        print_ratios(&report);
    }
    if wants(Section::Latency) {
        println!(
            "\n== 2. SET -> subscriber latency, {LATENCY_RATE} msg/s for {:?}",
            settings.latency
        );
        let result = with_relay(&source, "latency", &mut report, |t| async move {
            latency::run(t, LATENCY_RATE, settings.latency).await
        })
        .await;
        match result {
            Some(l) => {
                println!(
                    "  latency: p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  (min {:.1}, mean {:.1}, max {:.1}; {}/{} samples)",
                    l.p50, l.p99, l.p999, l.min, l.mean, l.max, l.received, l.sent
                );
                if l.received < l.sent {
                    report.problems.push(format!(
                        "latency: {} of {} SETs at {LATENCY_RATE}/s never reached the subscriber",
                        l.sent - l.received,
                        l.sent
                    ));
                }
                report.latency = Some(l);
            }
            None => failed_sections += 1,
        }
        // The same shape against mosquitto, as a reference for this machine.
        match mosquitto_latency(&cli, &settings).await {
            Ok(l) => {
                println!(
                    "  mosquitto latency (same shape, QoS 0, {LATENCY_RATE} msg/s): p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  (min {:.1}, max {:.1}; {}/{} samples)",
                    l.p50, l.p99, l.p999, l.min, l.max, l.received, l.sent
                );
                report.mosquitto_latency = Some(l);
            }
            Err(e) => report.problems.push(format!("mosquitto latency: {e:#}")),
        }
    }
    if wants(Section::Snapshot) {
        println!("\n== 4. late joiner: {SNAPSHOT_PARAMS} params, HELLO -> all params received");
        let runs = settings.snapshot_runs;
        let result = with_relay(&source, "snapshot", &mut report, |t| async move {
            snapshot::run(t, SNAPSHOT_PARAMS, runs).await
        })
        .await;
        match result {
            Some(s) => {
                println!(
                    "  empty relay: HELLO -> WELCOME {:.2} ms, -> empty SNAPSHOT {:.2} ms (medians)",
                    s.empty_welcome_ms, s.empty_done_ms
                );
                println!(
                    "  pre-load of {} params took {:.2} s; {} joins: HELLO -> all params median {:.2} ms, min {:.2} ms, max {:.2} ms",
                    s.params,
                    s.preload_secs,
                    s.runs_ms.len(),
                    s.median_ms(),
                    s.runs_ms[0],
                    s.runs_ms[s.runs_ms.len() - 1],
                );
                println!(
                    "  (WELCOME after {:.2} ms; {} SNAPSHOT frames, {} bytes; bench decoding took {:.2} ms of it)",
                    s.welcome_ms, s.frames, s.bytes, s.decode_ms
                );
                let gap = s.empty_done_ms - s.empty_welcome_ms;
                if gap > 20.0 {
                    report.problems.push(format!(
                        "snapshot: on an empty relay the initial SNAPSHOT arrives {gap:.1} ms after WELCOME (WELCOME itself after {:.2} ms); \
                         the two small frames are written back to back, so this is the Nagle/delayed-ACK stall of a socket without TCP_NODELAY",
                        s.empty_welcome_ms
                    ));
                }
                report.snapshot = Some(s);
            }
            None => failed_sections += 1,
        }
    }
    if wants(Section::Idle) {
        println!("\n== 3. idle connections: relay RSS with {connections} sessions (HELLO/WELCOME, then idle)");
        let settle = settings.settle;
        let result = async {
            let mut target = Target::start(&source).await?;
            let Some(pid) = target.pid else {
                bail!("the idle test needs the relay's pid: pass --relay-pid with --relay-addr");
            };
            let r = idle::run(target.addr, pid, connections, settle).await;
            let died = target.died();
            report.problems.extend(target.finish("idle").await);
            if let Some(d) = died {
                bail!("{d}");
            }
            r
        }
        .await;
        match result {
            Ok(i) => {
                println!(
                    "  {}/{} connected in {:.2} s; relay VmRSS {} KiB -> {} KiB with them open -> {} KiB after closing -> {} KiB with a second round open; sessions reported {} open, {} after close",
                    i.connected,
                    i.requested,
                    i.connect_secs,
                    i.rss_before_kib,
                    i.rss_after_kib,
                    i.rss_closed_kib,
                    i.rss_second_kib,
                    i.sessions_open.map_or("?".into(), |s| s.to_string()),
                    i.sessions_closed.map_or("?".into(), |s| s.to_string()),
                );
                println!(
                    "  RSS per idle connection: {:.0} bytes ({:.2} KiB)",
                    i.bytes_per_connection(),
                    i.bytes_per_connection() / 1024.0
                );
                if i.failed > 0 {
                    report.problems.push(format!(
                        "idle: {} connection(s) failed, first: {}",
                        i.failed,
                        i.first_error.as_deref().unwrap_or("?")
                    ));
                }
                if i.sessions_closed.is_some_and(|s| s > 0) {
                    report.problems.push(format!(
                        "idle: relay still reported {} sessions {:?} after all clients closed",
                        i.sessions_closed.unwrap_or(0),
                        settle * 2
                    ));
                }
                if i.rss_closed_kib as f64 > i.rss_after_kib as f64 * 0.9 {
                    println!(
                        "  note: the relay kept {} KiB after every session closed (allocator retention; a second round went to {} KiB)",
                        i.rss_closed_kib, i.rss_second_kib
                    );
                }
                report.idle = Some(i);
            }
            Err(e) => {
                failed_sections += 1;
                report.problems.push(format!("idle: {e:#}"));
            }
        }
    }

    report::print(&report, connections);
    if failed_sections > 0 {
        bail!("{failed_sections} section(s) could not be measured (see above)");
    }
    Ok(())
}

/// Runs one section against a fresh relay; section errors and relay problems go to the
/// report, `None` if the section failed.
async fn with_relay<T, F, Fut>(
    source: &RelaySource,
    section: &str,
    report: &mut Report,
    body: F,
) -> Option<T>
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut target = match Target::start(source).await {
        Ok(t) => t,
        Err(e) => {
            report.problems.push(format!("{section}: {e:#}"));
            return None;
        }
    };
    let result = body(target.addr).await;
    let died = target.died();
    report.problems.extend(target.finish(section).await);
    match (result, died) {
        (Ok(v), None) => Some(v),
        (Ok(_), Some(_)) => None, // the death is already in the problems
        (Err(e), _) => {
            report.problems.push(format!("{section}: {e:#}"));
            None
        }
    }
}

async fn fanout_clasp(
    source: &RelaySource,
    subs: usize,
    settings: &Settings,
    report: &mut Report,
) -> Result<harness::SearchOutcome> {
    let mut target = Target::start(source).await?;
    let mut rig = fanout::ClaspRig::new(target.addr, target.pid, subs)?;
    let start = (START_DELIVERED / subs as u64).max(100);
    let outcome = harness::search(&mut rig, subs, start, settings.timing).await;
    drop(rig);
    let died = target.died();
    report
        .problems
        .extend(target.finish(&format!("fan-out {subs} sub")).await);
    if let Some(d) = died {
        bail!("{d}");
    }
    let outcome = outcome?;
    print_outcome("clasp", &outcome);
    if let Some(f) = &outcome.first_fail {
        // Loss below a tenth of the reference rate is a relay problem, not a limit.
        let reference = report::REFERENCE_DELIVERED
            .iter()
            .find(|(s, _)| *s == subs)
            .map_or(0, |(_, r)| *r);
        if f.delivered() < reference / 10 {
            report.problems.push(format!(
                "fan-out {subs} sub: failed already at {}/s offered: {}",
                f.offered,
                f.failure.as_deref().unwrap_or("")
            ));
        }
    }
    Ok(outcome)
}

async fn fanout_mosquitto(
    cli: &Cli,
    subs: usize,
    settings: &Settings,
) -> Result<harness::SearchOutcome> {
    let broker = mqtt_peer::Mosquitto::start(&cli.mosquitto_bin).await?;
    let mut rig = mqtt_peer::MqttRig::new(broker.addr, Some(broker.pid()), subs);
    let start = (START_DELIVERED / subs as u64).max(100);
    let outcome = harness::search(&mut rig, subs, start, settings.timing).await;
    if let Some(problem) = broker.stop().await {
        println!("  mosquitto: {problem}");
    }
    let outcome = outcome?;
    print_outcome("mosquitto", &outcome);
    Ok(outcome)
}

async fn mosquitto_latency(cli: &Cli, settings: &Settings) -> Result<latency::LatencyResult> {
    let broker = mqtt_peer::Mosquitto::start(&cli.mosquitto_bin).await?;
    let result = mqtt_peer::latency(broker.addr, LATENCY_RATE, settings.latency).await;
    if let Some(problem) = broker.stop().await {
        println!("  mosquitto: {problem}");
    }
    result
}

fn print_outcome(label: &str, o: &harness::SearchOutcome) {
    let best = o.best.as_ref().map_or_else(
        || "none".to_owned(),
        |b| {
            format!(
                "{}/s offered = {} delivered msg/s",
                report::thousands(b.offered),
                report::thousands(b.delivered())
            )
        },
    );
    let fail = o.first_fail.as_ref().map_or_else(
        || "no loss seen".to_owned(),
        |f| format!("loss from {}/s offered", report::thousands(f.offered)),
    );
    println!(
        "  {label} max loss-free fan-out, {} subscriber(s): {best} ({fail}; {} trials{})",
        o.subscribers,
        o.trials,
        if o.capped {
            ", stopped by time cap"
        } else {
            ""
        }
    );
}

fn print_ratios(r: &Report) {
    for m in &r.mosquitto {
        let clasp = r
            .fanout
            .iter()
            .find(|c| c.subscribers == m.subscribers)
            .and_then(|c| c.best.as_ref());
        match (clasp, m.best.as_ref()) {
            (Some(c), Some(b)) if b.delivered() > 0 => println!(
                "  ratio CLASP/mosquitto, {} subscriber(s): {:.2}x ({} vs {} delivered msg/s)",
                m.subscribers,
                c.delivered() as f64 / b.delivered() as f64,
                report::thousands(c.delivered()),
                report::thousands(b.delivered())
            ),
            _ => println!(
                "  ratio CLASP/mosquitto, {} subscriber(s): n/a",
                m.subscribers
            ),
        }
    }
}
