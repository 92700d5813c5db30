//! `/metrics` in the Prometheus text format (issue 10) and `/ready`. Counters live where the
//! work happens (sessions, shards, journal) as relaxed atomics; this module only reads them
//! at scrape time, so a scrape costs the router nothing on its hot path. Components the
//! relay does not know about (bridges) add their own families through [`MetricsSource`].

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;

use crate::health::ActorState;
use crate::messages::GetShardStats;
use crate::router::Router;

/// Message types by wire code and metric label, in §4 order.
pub const MESSAGE_TYPES: [(u8, &str); 19] = {
    use clasp_proto::code::*;
    [
        (HELLO, "HELLO"),
        (WELCOME, "WELCOME"),
        (ANNOUNCE, "ANNOUNCE"),
        (FEDERATION_SYNC, "FEDERATION_SYNC"),
        (SUBSCRIBE, "SUBSCRIBE"),
        (UNSUBSCRIBE, "UNSUBSCRIBE"),
        (PUBLISH, "PUBLISH"),
        (SET, "SET"),
        (GET, "GET"),
        (SNAPSHOT, "SNAPSHOT"),
        (REPLAY, "REPLAY"),
        (BUNDLE, "BUNDLE"),
        (SYNC, "SYNC"),
        (PING, "PING"),
        (PONG, "PONG"),
        (ACK, "ACK"),
        (ERROR, "ERROR"),
        (QUERY, "QUERY"),
        (RESULT, "RESULT"),
    ]
};

/// A counter per message type.
#[derive(Debug)]
pub struct TypeCounts([AtomicU64; MESSAGE_TYPES.len()]);

impl Default for TypeCounts {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl TypeCounts {
    /// Counts a message by its name (`Message::name`).
    pub fn bump_name(&self, name: &str) {
        if let Some(i) = MESSAGE_TYPES.iter().position(|(_, n)| *n == name) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an encoded frame by the type byte after its header.
    pub fn bump_frame(&self, frame: &[u8]) {
        let Ok((_, payload, _)) = clasp_proto::FrameHeader::split(frame) else {
            return;
        };
        let Some(code) = payload.first() else { return };
        if let Some(i) = MESSAGE_TYPES.iter().position(|(c, _)| c == code) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn get(&self, i: usize) -> u64 {
        self.0[i].load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency histogram's buckets, in microseconds.
const LATENCY_BOUNDS_US: [u64; 12] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000,
];

/// A fixed-bucket latency histogram (cumulative only when rendered).
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    /// Records one observation.
    pub fn observe(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        family(out, name, "histogram", help);
        let mut total = 0;
        for (i, bound) in LATENCY_BOUNDS_US.iter().enumerate() {
            total += self.buckets[i].load(Ordering::Relaxed);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {total}");
        }
        total += self.buckets[LATENCY_BOUNDS_US.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {total}");
    }
}

/// Something outside the router that reports metrics and readiness (the bridges).
pub trait MetricsSource: Send + Sync {
    /// Appends complete metric families (HELP, TYPE, samples) to `out`.
    fn render(&self, out: &mut String);

    /// Components that are not ready yet, by name (empty: ready).
    fn not_ready(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The extra sources a relay reports; shared by every worker.
#[derive(Clone, Default)]
pub struct MetricsSources(Arc<Mutex<Vec<Arc<dyn MetricsSource>>>>);

impl MetricsSources {
    /// Adds a source.
    pub fn add(&self, source: Arc<dyn MetricsSource>) {
        self.lock().push(source);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<dyn MetricsSource>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn all(&self) -> Vec<Arc<dyn MetricsSource>> {
        self.lock().clone()
    }
}

impl std::fmt::Debug for MetricsSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetricsSources({})", self.lock().len())
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, quote, newline).
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// The whole `/metrics` page.
pub async fn render(router: &Router) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let c = &router.counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let shards = join_all(router.shards().iter().map(|s| s.send(GetShardStats))).await;
    let subscriptions: usize = shards
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|s| s.subscriptions)
        .sum();

    single(
        &mut out,
        "clasp_uptime_seconds",
        "gauge",
        "Seconds since the relay started.",
        router.started.elapsed().as_secs_f64(),
    );
    single(
        &mut out,
        "clasp_sessions",
        "gauge",
        "Client sessions connected.",
        router.session_count.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "clasp_params",
        "gauge",
        "Params stored.",
        router.param_count.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "clasp_subscriptions",
        "gauge",
        "Subscriptions registered.",
        subscriptions,
    );
    single(
        &mut out,
        "clasp_draining",
        "gauge",
        "1 while the relay drains for shutdown.",
        u8::from(router.draining.load(Ordering::Relaxed)),
    );

    for (name, help, counts) in [
        (
            "clasp_messages_received_total",
            "Messages received from clients, by type.",
            &c.messages_in,
        ),
        (
            "clasp_messages_sent_total",
            "Messages queued to clients, by type.",
            &c.messages_out,
        ),
    ] {
        family(&mut out, name, "counter", help);
        for (i, (_, ty)) in MESSAGE_TYPES.iter().enumerate() {
            let _ = writeln!(out, "{name}{{type=\"{ty}\"}} {}", counts.get(i));
        }
    }
    single(
        &mut out,
        "clasp_bytes_received_total",
        "counter",
        "Frame bytes received from clients.",
        load(&c.bytes_in),
    );
    single(
        &mut out,
        "clasp_bytes_sent_total",
        "counter",
        "Frame bytes queued to clients.",
        load(&c.bytes_out),
    );
    family(
        &mut out,
        "clasp_dropped_total",
        "counter",
        "Frames not delivered because a client fell behind, by reason.",
    );
    for (reason, n) in [
        ("conflated", load(&c.dropped_conflated)),
        ("shed", load(&c.dropped_shed)),
        ("slow_consumer", load(&c.slow_disconnects)),
    ] {
        let _ = writeln!(out, "clasp_dropped_total{{reason=\"{reason}\"}} {n}");
    }
    single(
        &mut out,
        "clasp_slow_consumers_disconnected_total",
        "counter",
        "Sessions closed because their outbound queue overflowed.",
        load(&c.slow_disconnects),
    );
    single(
        &mut out,
        "clasp_errors_sent_total",
        "counter",
        "ERROR messages sent.",
        load(&c.errors),
    );
    let (queued, deepest) = router.queue_depths();
    single(
        &mut out,
        "clasp_outbound_queue_frames",
        "gauge",
        "Frames waiting in all sessions' outbound queues.",
        queued,
    );
    single(
        &mut out,
        "clasp_outbound_queue_max_frames",
        "gauge",
        "Frames waiting in the fullest session's outbound queue.",
        deepest,
    );
    c.delivery_latency.render(
        &mut out,
        "clasp_delivery_latency_seconds",
        "Time from a shard's fan-out to the subscriber's outbound queue.",
    );

    if let Some(progress) = &router.journal_progress {
        let assigned = progress.assigned.load(Ordering::Acquire);
        let committed = progress.committed.load(Ordering::Acquire);
        single(
            &mut out,
            "clasp_journal_lag_entries",
            "gauge",
            "Journal entries accepted but not yet committed to disk.",
            assigned.saturating_sub(committed),
        );
        single(
            &mut out,
            "clasp_journal_committed_seq",
            "gauge",
            "Sequence number of the last committed journal entry.",
            committed,
        );
    }

    let actors = router.actors.snapshot();
    family(
        &mut out,
        "clasp_actor_up",
        "gauge",
        "1 when a supervised actor is running.",
    );
    for (name, row) in &actors {
        let up = u8::from(row.state == ActorState::Running);
        let _ = writeln!(out, "clasp_actor_up{{actor=\"{}\"}} {up}", label(name));
    }
    family(
        &mut out,
        "clasp_actor_restarts_total",
        "counter",
        "Times a supervised actor was restarted.",
    );
    for (name, row) in &actors {
        let _ = writeln!(
            out,
            "clasp_actor_restarts_total{{actor=\"{}\"}} {}",
            label(name),
            row.restarts
        );
    }
    for source in router.metrics.all() {
        source.render(&mut out);
    }
    out
}

/// What `/ready` reports: `Ok` when the relay should get traffic, else what it waits for.
pub fn readiness(router: &Router) -> Result<(), Vec<String>> {
    let mut waiting = Vec::new();
    if router.draining.load(Ordering::Relaxed) {
        waiting.push("draining".to_string());
    }
    // The relay's own actors; bridges report through their source.
    const CORE: [&str; 4] = ["shard-", "journal", "auth", "rules"];
    for (name, row) in router.actors.snapshot() {
        if row.state == ActorState::Restarting && CORE.iter().any(|c| name.starts_with(c)) {
            waiting.push(name);
        }
    }
    for source in router.metrics.all() {
        waiting.extend(source.not_ready());
    }
    if waiting.is_empty() {
        Ok(())
    } else {
        Err(waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(5));
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_secs(2));
        let mut out = String::new();
        h.render(&mut out, "x", "test");
        assert!(out.contains("x_bucket{le=\"0.00001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
