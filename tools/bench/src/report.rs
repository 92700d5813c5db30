//! The final summary table.

use crate::harness::SearchOutcome;
use crate::idle::IdleResult;
use crate::latency::LatencyResult;
use crate::snapshot::SnapshotResult;

/// Reference delivered rates (msg/s) for 1, 10 and 100 subscribers; CLASP's target is 2×.
pub const REFERENCE_DELIVERED: [(usize, u64); 3] = [(1, 186_000), (10, 465_000), (100, 566_000)];
/// p99 target (µs).
pub const LATENCY_P99_TARGET_US: f64 = 150.0;
/// Idle RSS target (bytes per connection).
pub const IDLE_TARGET_BYTES: f64 = 8.0 * 1024.0;
/// Late-joiner target (ms).
pub const SNAPSHOT_TARGET_MS: f64 = 5.0;

/// Everything measured.
#[derive(Default)]
pub struct Report {
    /// CLASP fan-out per subscriber count.
    pub fanout: Vec<SearchOutcome>,
    /// mosquitto fan-out per subscriber count.
    pub mosquitto: Vec<SearchOutcome>,
    /// Latency.
    pub latency: Option<LatencyResult>,
    /// The same latency measurement against mosquitto.
    pub mosquitto_latency: Option<LatencyResult>,
    /// Idle connections.
    pub idle: Option<IdleResult>,
    /// Late joiner.
    pub snapshot: Option<SnapshotResult>,
    /// Relay problems and section failures.
    pub problems: Vec<String>,
}

/// 1234567 → "1,234,567".
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// One fan-out figure: "delivered/s (offered/s × N)", with a mark when the search was cut
/// short or never found a loss-free rate.
fn fanout_cell(o: Option<&SearchOutcome>) -> (String, Option<u64>) {
    match o {
        None => ("not run".to_owned(), None),
        Some(o) => match &o.best {
            None => ("no loss-free rate".to_owned(), Some(0)),
            Some(b) => {
                let mut s = format!(
                    "{} ({}/s x{})",
                    thousands(b.delivered()),
                    thousands(b.offered),
                    o.subscribers
                );
                if o.first_fail.is_none() {
                    s.push_str(" >=");
                }
                if o.capped {
                    s.push('*');
                }
                if !o.confirmed {
                    s.push('?');
                }
                (s, Some(b.delivered()))
            }
        },
    }
}

/// Prints the table and the problem list.
pub fn print(r: &Report, connections: usize) {
    let line = "=".repeat(118);
    println!("\n{line}\nCLASP relay benchmark: summary\n{line}");
    println!(
        "{:<34} {:<30} {:<28} {:>7}  {:<12} status",
        "metric", "CLASP", "mosquitto", "ratio", "target"
    );
    println!("{}", "-".repeat(118));
    for (subs, reference) in REFERENCE_DELIVERED {
        let (clasp, c) = fanout_cell(r.fanout.iter().find(|o| o.subscribers == subs));
        let (mosq, m) = fanout_cell(r.mosquitto.iter().find(|o| o.subscribers == subs));
        let ratio = match (c, m) {
            (Some(c), Some(m)) if m > 0 => format!("{:.2}x", c as f64 / m as f64),
            _ => "n/a".to_owned(),
        };
        let target = reference * 2;
        let status = c.map_or("n/a", |c| verdict(c >= target));
        println!(
            "{:<34} {:<30} {:<28} {:>7}  {:<12} {}",
            format!("fan-out {subs} sub (delivered msg/s)"),
            clasp,
            mosq,
            ratio,
            format!(">= {}", thousands(target)),
            status
        );
    }
    match &r.latency {
        Some(l) => println!(
            "{:<34} {:<30} {:<28} {:>7}  {:<12} {}",
            format!("latency @{}/s p50/p99/p99.9 (us)", l.rate),
            format!("{:.0} / {:.0} / {:.0}", l.p50, l.p99, l.p999),
            r.mosquitto_latency.as_ref().map_or_else(
                || "-".to_owned(),
                |m| format!("{:.0} / {:.0} / {:.0}", m.p50, m.p99, m.p999)
            ),
            "",
            format!("p99 < {LATENCY_P99_TARGET_US:.0}"),
            verdict(l.p99 < LATENCY_P99_TARGET_US && l.received == l.sent)
        ),
        None => println!("{:<34} not run / failed", "latency"),
    }
    match &r.idle {
        Some(i) => println!(
            "{:<34} {:<30} {:<28} {:>7}  {:<12} {}",
            format!("RSS per idle connection (N={})", i.connected),
            format!("{:.2} KiB", i.bytes_per_connection() / 1024.0),
            "-",
            "",
            "< 8 KiB",
            verdict(i.bytes_per_connection() < IDLE_TARGET_BYTES && i.connected == connections)
        ),
        None => println!("{:<34} not run / failed", "RSS per idle connection"),
    }
    match &r.snapshot {
        Some(s) => println!(
            "{:<34} {:<30} {:<28} {:>7}  {:<12} {}",
            format!(
                "late joiner, {} params (median)",
                thousands(s.params as u64)
            ),
            format!("{:.2} ms", s.median_ms()),
            "-",
            "",
            format!("< {SNAPSHOT_TARGET_MS:.0} ms"),
            verdict(s.median_ms() < SNAPSHOT_TARGET_MS)
        ),
        None => println!("{:<34} not run / failed", "late joiner snapshot"),
    }
    println!("{}", "-".repeat(118));
    println!("fan-out: highest offered rate at which every subscriber got every message, as delivered msg/s (offered x subscribers);");
    println!(
        "         each figure passed {} repeats on fresh connections unless marked '?' (unconfirmed);",
        crate::harness::CONFIRMATIONS
    );
    println!(
        "         '>=' = no loss at the highest rate tried, '*' = search stopped by its time cap."
    );
    if r.problems.is_empty() {
        println!("relay problems: none observed");
    } else {
        println!("relay problems / failures ({}):", r.problems.len());
        for p in &r.problems {
            println!("  - {p}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_680_000), "1,680,000");
    }
}
