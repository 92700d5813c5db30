//! What /health reports: each supervised actor's state and restart count, plus counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

/// Lifecycle state of a supervised actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorState {
    /// Started and serving.
    Running,
    /// Stopped; its supervisor is restarting it.
    Restarting,
    /// Stopped for good (shutdown).
    Stopped,
}

/// One actor's row in /health.
#[derive(Debug, Clone, Serialize)]
pub struct ActorStatus {
    /// Current state.
    pub state: ActorState,
    /// Restarts since the relay started.
    pub restarts: u64,
}

/// Shared table of supervised actors, written by the actors themselves.
#[derive(Debug, Clone, Default)]
pub struct ActorTable(Arc<Mutex<BTreeMap<String, ActorStatus>>>);

impl ActorTable {
    /// Records a state change; `Running` after `Restarting` counts a restart.
    pub fn set(&self, name: &str, state: ActorState) {
        let mut table = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let row = table
            .entry(name.to_string())
            .or_insert(ActorStatus { state, restarts: 0 });
        if state == ActorState::Restarting && row.state != ActorState::Restarting {
            row.restarts += 1;
        }
        row.state = state;
    }

    /// A copy of the table.
    pub fn snapshot(&self) -> BTreeMap<String, ActorStatus> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Relay-wide counters, cheap to bump from any actor.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames received from clients.
    pub frames_in: AtomicU64,
    /// Frames queued to clients.
    pub frames_out: AtomicU64,
    /// Frames dropped by back-pressure (conflated or shed).
    pub dropped: AtomicU64,
    /// ERRORs sent.
    pub errors: AtomicU64,
    /// Slow consumers disconnected.
    pub slow_disconnects: AtomicU64,
    /// Param frames replaced in a full queue by a newer value for the same address.
    pub dropped_conflated: AtomicU64,
    /// Stream/gesture frames dropped from a full queue.
    pub dropped_shed: AtomicU64,
    /// Frame bytes received.
    pub bytes_in: AtomicU64,
    /// Frame bytes queued to clients.
    pub bytes_out: AtomicU64,
    /// Messages received, by type.
    pub messages_in: crate::metrics::TypeCounts,
    /// Messages queued to clients, by type.
    pub messages_out: crate::metrics::TypeCounts,
    /// Shard fan-out to subscriber queue.
    pub delivery_latency: crate::metrics::LatencyHistogram,
}

impl Counters {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Start time, for uptime.
#[derive(Debug, Clone, Copy)]
pub struct Started(pub Instant);
