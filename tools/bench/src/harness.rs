//! What every section shares: child processes (relay, mosquitto) on free loopback ports,
//! /proc readings (RSS, CPU), the relay's /health, publish pacing, and the loss-free rate
//! search used by both fan-out rigs (CLASP and MQTT).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{Interval, MissedTickBehavior};

// ---------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------

pub use clasp_bench::process::free_port;

/// A server the bench started; stopped (SIGTERM, then SIGKILL) by [`ChildProc::stop`] and
/// killed on drop in any case.
pub struct ChildProc {
    name: &'static str,
    child: Child,
    pid: u32,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl ChildProc {
    /// Starts `program args…`, output to a log file, and waits until `addr` accepts TCP.
    pub async fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        addr: SocketAddr,
    ) -> Result<Self> {
        let log = std::env::temp_dir().join(format!(
            "clasp-bench-{}-{name}-{}.log",
            std::process::id(),
            addr.port()
        ));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("creating log file {}", log.display()))?;
        let err = out.try_clone().context("duplicating log file handle")?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("{name} exited before it had a pid"))?;
        let mut proc = Self {
            name,
            child,
            pid,
            log,
            exit: None,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = proc.exited()? {
                bail!(
                    "{name} exited during startup ({status}); log:\n{}",
                    proc.log_tail(20)
                );
            }
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(proc);
            }
            if Instant::now() > deadline {
                bail!("{name} did not listen on {addr} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        if self.exit.is_none() {
            self.exit = self
                .child
                .try_wait()
                .with_context(|| format!("waiting on {}", self.name))?;
        }
        Ok(self.exit)
    }

    /// The last `n` lines of the child's output.
    pub fn log_tail(&self, n: usize) -> String {
        let lines = self.log_lines();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Every line the child printed.
    pub fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Stops the child: SIGTERM, up to 10 s for it to exit, then SIGKILL. Returns how it
    /// ended (`None` if it had to be killed) and removes its log file.
    pub async fn stop(mut self) -> Result<Option<ExitStatus>> {
        if self.exited()?.is_none() {
            let pid = libc::pid_t::try_from(self.pid).context("pid out of range")?;
            // SAFETY: kill(2) on the pid of our own, not yet reaped, child process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
                Ok(status) => {
                    self.exit = Some(status.with_context(|| format!("waiting on {}", self.name))?)
                }
                Err(_) => {
                    self.child
                        .kill()
                        .await
                        .with_context(|| format!("killing {}", self.name))?;
                }
            }
        }
        let _ = std::fs::remove_file(&self.log);
        Ok(self.exit)
    }
}

// ---------------------------------------------------------------------------------------
// /proc readings
// ---------------------------------------------------------------------------------------

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS line in {path}"))
}

/// User + system CPU time of `pid` (`None` = this process).
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(Duration::from_micros(ticks * 1_000_000 / hz))
}

/// CPU used by the relay and by the bench over an interval, in % of one core.
pub struct CpuMeter {
    relay_pid: Option<u32>,
    start: Instant,
    relay0: Option<Duration>,
    bench0: Option<Duration>,
}

impl CpuMeter {
    /// Starts measuring.
    pub fn start(relay_pid: Option<u32>) -> Self {
        Self {
            relay_pid,
            start: Instant::now(),
            relay0: relay_pid.and_then(|p| cpu_time(Some(p))),
            bench0: cpu_time(None),
        }
    }

    /// (relay %, bench %) of one core since `start`.
    pub fn read(&self) -> (Option<f64>, Option<f64>) {
        let wall = self.start.elapsed().as_secs_f64().max(1e-6);
        let pct = |a: Option<Duration>, b: Option<Duration>| {
            Some((b?.saturating_sub(a?)).as_secs_f64() / wall * 100.0)
        };
        (
            pct(self.relay0, self.relay_pid.and_then(|p| cpu_time(Some(p)))),
            pct(self.bench0, cpu_time(None)),
        )
    }
}

/// "85%" or "?".
pub fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| format!("{v:.0}%"))
}

// ---------------------------------------------------------------------------------------
// Relay target
// ---------------------------------------------------------------------------------------

/// Where the relay comes from.
#[derive(Debug, Clone)]
pub struct RelaySource {
    /// Binary to start (a fresh relay per section) when `external` is `None`.
    pub bin: PathBuf,
    /// An already running relay.
    pub external: Option<SocketAddr>,
    /// Its pid (for RSS and CPU readings).
    pub external_pid: Option<u32>,
}

/// A relay to benchmark.
pub struct Target {
    /// WebSocket address.
    pub addr: SocketAddr,
    /// Relay pid, when known.
    pub pid: Option<u32>,
    proc: Option<ChildProc>,
}

impl Target {
    /// Starts a fresh relay on a free loopback port (or uses the external one).
    pub async fn start(source: &RelaySource) -> Result<Self> {
        if let Some(addr) = source.external {
            return Ok(Self {
                addr,
                pid: source.external_pid,
                proc: None,
            });
        }
        let port = free_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        // --max-sessions 0: the default (1000) would refuse the idle-connection test.
        let args: Vec<String> = [
            "relay",
            "--host",
            "127.0.0.1",
            "--ws-port",
            &port.to_string(),
            "--log-level",
            "warn",
            "--max-sessions",
            "0",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let proc = ChildProc::spawn("relay", &source.bin, &args, addr).await?;
        Ok(Self {
            addr,
            pid: Some(proc.pid()),
            proc: Some(proc),
        })
    }

    /// Whether the relay we started has died; `Some(description)` if so.
    pub fn died(&mut self) -> Option<String> {
        let proc = self.proc.as_mut()?;
        match proc.exited() {
            Ok(Some(status)) => Some(format!(
                "relay exited unexpectedly ({status}); last log lines:\n{}",
                proc.log_tail(15)
            )),
            Ok(None) => None,
            Err(e) => Some(format!("{e:#}")),
        }
    }

    /// Prints the relay's /health counters, stops it, and returns problems seen: death,
    /// a bad exit, warnings or errors in its log.
    pub async fn finish(mut self, section: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(died) = self.died() {
            problems.push(format!("{section}: {died}"));
        } else if let Some(h) = health(self.addr).await {
            println!("  relay /health after {section}: {}", health_summary(&h));
        }
        let Some(proc) = self.proc.take() else {
            return problems;
        };
        let noisy: Vec<String> = proc
            .log_lines()
            .into_iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked"))
            .collect();
        if !noisy.is_empty() {
            let shown: Vec<&str> = noisy.iter().take(5).map(String::as_str).collect();
            problems.push(format!(
                "{section}: relay logged {} warning/error line(s), first: {}",
                noisy.len(),
                shown.join(" | ")
            ));
        }
        match proc.stop().await {
            Ok(Some(status)) if !status.success() => {
                problems.push(format!("{section}: relay exited with {status} on SIGTERM"))
            }
            Ok(Some(_)) => {}
            Ok(None) => problems.push(format!(
                "{section}: relay did not exit within 10 s of SIGTERM (killed)"
            )),
            Err(e) => problems.push(format!("{section}: stopping relay: {e:#}")),
        }
        problems
    }
}

/// GET /health from the relay (best effort).
pub async fn health(addr: SocketAddr) -> Option<serde_json::Value> {
    let fetch = async {
        let mut tcp = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.ok()?;
        let mut body = Vec::new();
        tcp.read_to_end(&mut body).await.ok()?;
        let text = String::from_utf8_lossy(&body);
        let (_, json) = text.split_once("\r\n\r\n")?;
        serde_json::from_str(json.trim()).ok()
    };
    tokio::time::timeout(Duration::from_secs(3), fetch)
        .await
        .ok()
        .flatten()
}

/// sessions / params / counters, on one line.
pub fn health_summary(h: &serde_json::Value) -> String {
    format!(
        "sessions={} params={} counters={}",
        h["sessions"], h["params"], h["counters"]
    )
}

// ---------------------------------------------------------------------------------------
// Pacing
// ---------------------------------------------------------------------------------------

/// Spreads `total` sends over time at `rate` per second, in 1 ms batches.
pub struct Pacer {
    start: Instant,
    rate: f64,
    total: u64,
    sent: u64,
    ticker: Interval,
}

impl Pacer {
    /// A pacer for `total` sends at `rate`/s starting now.
    pub fn new(rate: u64, total: u64) -> Self {
        let mut ticker = tokio::time::interval(Duration::from_millis(1));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Self {
            start: Instant::now(),
            rate: rate as f64,
            total,
            sent: 0,
            ticker,
        }
    }

    /// The sequence numbers to send now; `None` when all were handed out.
    pub async fn next_batch(&mut self) -> Option<Range<u64>> {
        while self.sent < self.total {
            self.ticker.tick().await;
            let due = ((self.start.elapsed().as_secs_f64() * self.rate) as u64 + 1).min(self.total);
            if due > self.sent {
                let batch = self.sent..due;
                self.sent = due;
                return Some(batch);
            }
        }
        None
    }

    /// Seconds since the pacer started.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// A data value that carries its trial and sequence number exactly (< 2^53).
pub fn tag(trial: u64, seq: u64) -> f64 {
    ((trial << 32) | (seq & 0xFFFF_FFFF)) as f64
}

/// The trial a [`tag`] belongs to.
pub fn tag_trial(v: f64) -> u64 {
    (v as u64) >> 32
}

// ---------------------------------------------------------------------------------------
// Fan-out trials and the rate search
// ---------------------------------------------------------------------------------------

/// Timing of fan-out trials.
#[derive(Debug, Clone, Copy)]
pub struct FanoutTiming {
    /// How long the publisher sends at the offered rate.
    pub window: Duration,
    /// Extra time after the last send for deliveries to arrive.
    pub grace: Duration,
    /// Time cap of one subscriber count's search.
    pub budget: Duration,
}

/// Outcome of one trial at one offered rate.
#[derive(Debug, Clone)]
pub struct Trial {
    /// Offered publish rate (msg/s).
    pub offered: u64,
    /// Subscribers.
    pub subscribers: usize,
    /// Messages published.
    pub sent: u64,
    /// Seconds the publisher needed to send them.
    pub send_secs: f64,
    /// Fewest messages any subscriber received.
    pub min_received: u64,
    /// Most messages any subscriber received.
    pub max_received: u64,
    /// Why the trial is not loss-free (`None` = passed).
    pub failure: Option<String>,
    /// CPU % of one core used by the server and by the bench.
    pub server_cpu: Option<f64>,
    /// Same for the bench process.
    pub bench_cpu: Option<f64>,
}

impl Trial {
    /// Judges a trial from raw counts and connection troubles.
    #[allow(clippy::too_many_arguments)]
    ///
    /// `counts` are taken at the end of the window plus grace; `settled` later, once
    /// deliveries stopped, to tell late messages from lost ones.
    pub fn judge(
        offered: u64,
        window: Duration,
        sent: u64,
        send_secs: f64,
        counts: &[u64],
        settled: &[u64],
        trouble: Vec<String>,
        cpu: (Option<f64>, Option<f64>),
    ) -> Self {
        let min_received = counts.iter().copied().min().unwrap_or(0);
        let max_received = counts.iter().copied().max().unwrap_or(0);
        let mut reasons = trouble;
        let short = counts.iter().filter(|&&c| c < sent).count();
        if short > 0 {
            let lost: u64 = settled.iter().map(|&c| sent.saturating_sub(c)).sum();
            let total_short: u64 = counts.iter().map(|&c| sent.saturating_sub(c)).sum();
            reasons.push(format!(
                "loss: {short}/{} subscribers short, worst got {min_received}/{sent} ({:.2}%); of {total_short} missing at the deadline {} arrived late, {lost} never",
                counts.len(),
                min_received as f64 * 100.0 / sent.max(1) as f64,
                total_short - lost,
            ));
        }
        if max_received > sent {
            reasons.push(format!(
                "duplicates: a subscriber got {max_received}/{sent}"
            ));
        }
        if send_secs > window.as_secs_f64() * 1.10 {
            reasons.push(format!(
                "publisher reached only {:.0}/s (relay back-pressure or bench CPU)",
                sent as f64 / send_secs
            ));
        }
        Self {
            offered,
            subscribers: counts.len(),
            sent,
            send_secs,
            min_received,
            max_received,
            failure: (!reasons.is_empty()).then(|| reasons.join("; ")),
            server_cpu: cpu.0,
            bench_cpu: cpu.1,
        }
    }

    /// Loss-free.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Delivered messages per second (offered × subscribers).
    pub fn delivered(&self) -> u64 {
        self.offered * self.subscribers as u64
    }
}

/// After a short trial, waits (up to `max_wait`) until every subscriber has `sent`
/// messages or the counts stop moving for 300 ms, and returns the final counts.
pub async fn settle_counts(read: impl Fn() -> Vec<u64>, sent: u64, max_wait: Duration) -> Vec<u64> {
    let deadline = Instant::now() + max_wait;
    let mut last = read();
    let mut still_since = Instant::now();
    while Instant::now() < deadline && last.iter().any(|&c| c < sent) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = read();
        if now != last {
            still_since = Instant::now();
            last = now;
        } else if still_since.elapsed() >= Duration::from_millis(300) {
            break;
        }
    }
    last
}

/// Something that can run fan-out trials (the CLASP rig and the MQTT rig).
pub trait FanoutRig {
    /// Label for log lines ("clasp", "mosquitto").
    fn label(&self) -> &'static str;
    /// Publishes `rate`/s for `timing.window`, counts per subscriber until `timing.grace`
    /// after the last send.
    fn trial(&mut self, rate: u64, timing: FanoutTiming) -> impl Future<Output = Result<Trial>>;
}

/// Result of a search at one subscriber count.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    /// Subscribers.
    pub subscribers: usize,
    /// Highest loss-free trial (confirmed if `confirmed`).
    pub best: Option<Trial>,
    /// Lowest failing trial.
    pub first_fail: Option<Trial>,
    /// Trials run.
    pub trials: usize,
    /// Whether the time cap ended the search before it converged.
    pub capped: bool,
    /// Whether `best`'s rate passed [`CONFIRMATIONS`] more times.
    pub confirmed: bool,
}

/// Repeats of the found rate, each on fresh connections, before it is reported.
pub const CONFIRMATIONS: usize = 2;

/// Search state shared by its two phases.
struct Search<'a, R> {
    rig: &'a mut R,
    subscribers: usize,
    timing: FanoutTiming,
    began: Instant,
    last_trial: Duration,
    trials: usize,
    best: Option<Trial>,
    fail: Option<Trial>,
    passes: Vec<Trial>,
}

impl<R: FanoutRig> Search<'_, R> {
    /// Whether one more trial fits in `share` of the budget.
    fn fits(&self, share: f64) -> bool {
        self.began.elapsed() + self.last_trial < self.timing.budget.mul_f64(share)
    }

    async fn run(&mut self, rate: u64, phase: &str) -> Result<Trial> {
        let t0 = Instant::now();
        let trial = self.rig.trial(rate, self.timing).await?;
        self.last_trial = t0.elapsed();
        self.trials += 1;
        println!(
            "  [{} {:>3} sub{phase}] offered {:>9}/s  sent {:>8} in {:.2}s  received min {:>8} max {:>8}  server/bench cpu {}/{}  {}",
            self.rig.label(),
            self.subscribers,
            trial.offered,
            trial.sent,
            trial.send_secs,
            trial.min_received,
            trial.max_received,
            pct(trial.server_cpu),
            pct(trial.bench_cpu),
            trial
                .failure
                .as_deref()
                .map_or_else(|| "PASS".to_owned(), |f| format!("FAIL: {f}")),
        );
        if trial.passed() {
            self.passes.push(trial.clone());
        } else if self
            .fail
            .as_ref()
            .is_none_or(|f| trial.offered <= f.offered)
        {
            self.fail = Some(trial.clone());
        }
        Ok(trial)
    }
}

/// Finds the highest loss-free offered rate. Phase 1 (70 % of the budget) doubles the rate
/// from `start_rate` until a trial loses messages, then bisects between the last good and
/// first bad rate until they are within 5 %. Phase 2 repeats the found rate
/// [`CONFIRMATIONS`] times; if a repeat fails it steps down 10 % and tries again, as long
/// as the budget lasts. Every trial runs on fresh connections.
pub async fn search<R: FanoutRig>(
    rig: &mut R,
    subscribers: usize,
    start_rate: u64,
    timing: FanoutTiming,
) -> Result<SearchOutcome> {
    const MAX_RATE: u64 = 8_000_000;
    const MIN_RATE: u64 = 10;
    let mut s = Search {
        rig,
        subscribers,
        timing,
        began: Instant::now(),
        last_trial: timing.window + timing.grace,
        trials: 0,
        best: None,
        fail: None,
        passes: Vec::new(),
    };
    let mut rate = start_rate.max(MIN_RATE);
    let mut capped = false;
    loop {
        if !s.fits(0.7) {
            capped = true;
            break;
        }
        let trial = s.run(rate, "").await?;
        if trial.passed() {
            s.best = Some(trial);
        }
        rate = match (&s.best, &s.fail) {
            (Some(b), None) => {
                if b.offered * 2 > MAX_RATE {
                    break;
                }
                b.offered * 2
            }
            (None, Some(f)) => {
                if f.offered / 2 < MIN_RATE {
                    break;
                }
                f.offered / 2
            }
            (Some(b), Some(f)) => {
                let (lo, hi) = (b.offered, f.offered);
                if hi <= lo || (hi - lo) as f64 / lo as f64 <= 0.05 {
                    break;
                }
                // Round to 3 significant digits so rates read well.
                round3((lo + hi) / 2)
            }
            (None, None) => unreachable!("a trial was just recorded"),
        };
    }

    let mut confirmed = false;
    let mut candidate = s.best.as_ref().map(|b| b.offered);
    'confirm: while let Some(rate) = candidate {
        let mut passed = None;
        for i in 0..CONFIRMATIONS {
            if !s.fits(1.0) {
                capped = true;
                break 'confirm;
            }
            let trial = s
                .run(rate, &format!(" confirm {}/{CONFIRMATIONS}", i + 1))
                .await?;
            if !trial.passed() {
                s.best = None;
                candidate = Some(round3(rate * 9 / 10)).filter(|&r| r >= MIN_RATE);
                continue 'confirm;
            }
            passed = Some(trial);
        }
        s.best = passed;
        confirmed = true;
        break;
    }
    if !confirmed {
        // Fall back on the highest pass below the lowest failure.
        let fail = s.fail.as_ref().map(|f| f.offered);
        s.best = s
            .passes
            .iter()
            .filter(|t| fail.is_none_or(|f| t.offered < f))
            .max_by_key(|t| t.offered)
            .cloned();
    }
    Ok(SearchOutcome {
        subscribers,
        best: s.best,
        first_fail: s.fail,
        trials: s.trials,
        capped,
        confirmed,
    })
}

fn round3(v: u64) -> u64 {
    let mut scale = 1;
    while v / scale >= 1000 {
        scale *= 10;
    }
    (v / scale) * scale
}

/// Waits until every subscriber counter reached `sent` or `grace` passed, then reads them:
/// the end of one fan-out trial, the same for CLASP and for mosquitto.
pub async fn await_counts(
    counters: &[&std::sync::atomic::AtomicU64],
    sent: u64,
    grace: Duration,
) -> Vec<u64> {
    use std::sync::atomic::Ordering;
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && counters.iter().any(|c| c.load(Ordering::Relaxed) < sent) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    counters.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// When a trial came up short, waits (up to 3 s) for the counts to settle, to tell late
/// messages from lost ones; otherwise the counts as they are.
pub async fn settle_if_short(
    counters: &[&std::sync::atomic::AtomicU64],
    counts: &[u64],
    sent: u64,
) -> Vec<u64> {
    use std::sync::atomic::Ordering;
    if counts.iter().any(|&c| c < sent) {
        settle_counts(
            || counters.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            sent,
            Duration::from_secs(3),
        )
        .await
    } else {
        counts.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_carry_trial_and_sequence_exactly() {
        for (trial, seq) in [(1, 0), (7, 123_456), (100_000, 0xFFFF_FFFF)] {
            let v = tag(trial, seq);
            assert_eq!(tag_trial(v), trial);
            assert_eq!((v as u64) & 0xFFFF_FFFF, seq);
        }
    }

    #[test]
    fn rates_round_to_three_digits() {
        assert_eq!(round3(999), 999);
        assert_eq!(round3(123_456), 123_000);
        assert_eq!(round3(7_020), 7_020);
    }

    #[test]
    fn judging_tells_loss_late_and_publisher_lag() {
        let w = Duration::from_secs(1);
        let ok = Trial::judge(
            100,
            w,
            100,
            1.0,
            &[100, 100],
            &[100, 100],
            vec![],
            (None, None),
        );
        assert!(ok.passed());
        assert_eq!(ok.delivered(), 200);

        let late = Trial::judge(
            100,
            w,
            100,
            1.0,
            &[90, 100],
            &[100, 100],
            vec![],
            (None, None),
        );
        let why = late.failure.unwrap_or_default();
        assert!(why.contains("10 arrived late, 0 never"), "{why}");

        let lost = Trial::judge(
            100,
            w,
            100,
            1.0,
            &[90, 100],
            &[95, 100],
            vec![],
            (None, None),
        );
        assert!(lost
            .failure
            .unwrap_or_default()
            .contains("5 arrived late, 5 never"));

        let slow = Trial::judge(100, w, 100, 1.5, &[100], &[100], vec![], (None, None));
        assert!(slow
            .failure
            .unwrap_or_default()
            .contains("publisher reached only"));
    }
}
