//! Per-bridge counters and last error: what /health and /metrics show for each bridge, and
//! what an operator reads first when a fader "does nothing".

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Counters of one bridge instance, shared between its task and the relay's reports.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Protocol kind (`osc`, `mqtt-client`, ...).
    pub kind: String,
    /// Instance name (unique within the relay; the /health row).
    pub name: String,
    /// Messages received from the protocol side and written to the router.
    pub received: AtomicU64,
    /// Messages sent to the protocol side.
    pub sent: AtomicU64,
    /// Malformed or unmappable input, dropped.
    pub bad_input: AtomicU64,
    /// Writes the router refused (scope, app config, lock).
    pub refused: AtomicU64,
    /// Times the bridge task failed and was restarted.
    pub restarts: AtomicU64,
    /// Whether the bridge is connected to its peer or device (1) or not (0).
    pub up: AtomicU64,
    /// Whether it was ever up: a relay is ready once each bridge that gates readiness was.
    pub ever_up: AtomicBool,
    /// Whether the relay waits for this bridge before it reports ready.
    pub gates_readiness: bool,
    last_error: Mutex<Option<String>>,
}

/// A copy of the counters, for JSON.
#[derive(Debug, Clone, Serialize)]
pub struct BridgeReport {
    /// Protocol kind.
    pub kind: String,
    /// Instance name.
    pub name: String,
    /// Connected to its peer or device.
    pub up: bool,
    /// Received from the protocol side.
    pub received: u64,
    /// Sent to the protocol side.
    pub sent: u64,
    /// Bad input dropped.
    pub bad_input: u64,
    /// Writes refused by the router.
    pub refused: u64,
    /// Restarts.
    pub restarts: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

impl BridgeStats {
    /// Fresh counters.
    pub fn new(kind: &str, name: &str) -> Self {
        Self {
            kind: kind.to_string(),
            name: name.to_string(),
            ..Self::default()
        }
    }

    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks the bridge connected or not.
    pub fn set_up(&self, up: bool) {
        self.up.store(u64::from(up), Ordering::Relaxed);
        if up {
            self.ever_up.store(true, Ordering::Relaxed);
        }
    }

    /// Records the last failure.
    pub fn set_error(&self, error: impl Into<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.into());
    }

    /// A copy for reports.
    pub fn report(&self) -> BridgeReport {
        BridgeReport {
            kind: self.kind.clone(),
            name: self.name.clone(),
            up: self.up.load(Ordering::Relaxed) != 0,
            received: self.received.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            bad_input: self.bad_input.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}
