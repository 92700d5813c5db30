//! The bridges a relay runs, as one source of `/metrics` families and `/ready` checks: the
//! relay reports them without knowing what a bridge is.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use clasp_actors::metrics::{family, label, MetricsSource};

use crate::BridgeStats;

/// Every bridge's counters, shared with the relay's metrics page.
#[derive(Debug, Clone, Default)]
pub struct BridgeRegistry(Arc<Mutex<Vec<Arc<BridgeStats>>>>);

impl BridgeRegistry {
    /// Adds a bridge.
    pub fn add(&self, stats: Arc<BridgeStats>) {
        self.lock().push(stats);
    }

    /// Each bridge's counters and last error (the console's bridges panel).
    pub fn reports(&self) -> Vec<crate::stats::BridgeReport> {
        self.lock().iter().map(|b| b.report()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<BridgeStats>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One metric family: name, type, help, and how to read it from a bridge's counters.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&BridgeStats) -> u64,
);

impl MetricsSource for BridgeRegistry {
    fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let bridges = self.lock().clone();
        let families: [Family; 6] = [
            (
                "clasp_bridge_up",
                "gauge",
                "1 while a bridge is connected to its peer or device.",
                |s| s.up.load(Ordering::Relaxed),
            ),
            (
                "clasp_bridge_received_total",
                "counter",
                "Messages a bridge received from its protocol side.",
                |s| s.received.load(Ordering::Relaxed),
            ),
            (
                "clasp_bridge_sent_total",
                "counter",
                "Messages a bridge sent to its protocol side.",
                |s| s.sent.load(Ordering::Relaxed),
            ),
            (
                "clasp_bridge_bad_input_total",
                "counter",
                "Malformed or unmappable input a bridge dropped.",
                |s| s.bad_input.load(Ordering::Relaxed),
            ),
            (
                "clasp_bridge_refused_total",
                "counter",
                "Bridge writes the router refused.",
                |s| s.refused.load(Ordering::Relaxed),
            ),
            (
                "clasp_bridge_restarts_total",
                "counter",
                "Times a bridge failed and was restarted.",
                |s| s.restarts.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in families {
            family(out, name, kind, help);
            for b in &bridges {
                let _ = writeln!(
                    out,
                    "{name}{{bridge=\"{}\",kind=\"{}\"}} {}",
                    label(&b.name),
                    label(&b.kind),
                    value(b)
                );
            }
        }
    }

    fn not_ready(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|b| b.gates_readiness && !b.ever_up.load(Ordering::Relaxed))
            .map(|b| format!("bridge {}", b.name))
            .collect()
    }
}
