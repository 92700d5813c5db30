//! Bad input from peers (malformed packets, unknown tags, unmappable topics) is counted and
//! logged at most once per peer per minute: never fatal, never a log line per packet.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::BridgeStats;

const QUIET: Duration = Duration::from_secs(60);
const MAX_PEERS: usize = 4096;

/// Rate-limited reporter of bad input, one per bridge task.
#[derive(Debug, Default)]
pub struct BadInput {
    logged: HashMap<String, (Instant, u64)>,
}

impl BadInput {
    /// Counts one bad input from `peer`, and logs it unless that peer was logged in the last
    /// minute (the next line says how many were muted).
    pub fn report(&mut self, stats: &BridgeStats, peer: &str, error: &dyn Display) {
        stats.bad_input.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if self.logged.len() >= MAX_PEERS {
            self.logged
                .retain(|_, (at, _)| now.duration_since(*at) < QUIET);
        }
        match self.logged.get_mut(peer) {
            Some((at, muted)) if now.duration_since(*at) < QUIET => *muted += 1,
            Some((at, muted)) => {
                tracing::warn!(bridge = %stats.name, peer, error = %error, muted = *muted,
                    "bad input (further reports from this peer muted for a minute)");
                *at = now;
                *muted = 0;
            }
            None => {
                tracing::warn!(bridge = %stats.name, peer, error = %error,
                    "bad input (further reports from this peer muted for a minute)");
                self.logged.insert(peer.to_string(), (now, 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_report() {
        let stats = BridgeStats::new("osc", "osc");
        let mut bad = BadInput::default();
        for _ in 0..5 {
            bad.report(&stats, "127.0.0.1:9", &"short packet");
        }
        assert_eq!(stats.bad_input.load(Ordering::Relaxed), 5);
        assert_eq!(bad.logged["127.0.0.1:9"].1, 4);
    }
}
