//! The UDP peers that sent us something: with `--reply` they receive the namespace's
//! changes too, until they have been silent for the peer timeout (FEATURES OSC-6). The
//! table is bounded: a new peer beyond the limit replaces the one silent longest.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Recently heard peers.
#[derive(Debug)]
pub struct Peers {
    seen: HashMap<SocketAddr, Instant>,
    timeout: Duration,
    max: usize,
}

impl Peers {
    /// A table forgetting peers after `timeout` of silence, holding at most `max`.
    pub fn new(timeout: Duration, max: usize) -> Self {
        Self {
            seen: HashMap::new(),
            timeout,
            max,
        }
    }

    /// `peer` was just heard from.
    pub fn heard(&mut self, peer: SocketAddr, now: Instant) {
        if self.max == 0 {
            return;
        }
        if !self.seen.contains_key(&peer) && self.seen.len() >= self.max {
            self.expire(now);
            if self.seen.len() >= self.max {
                if let Some(oldest) = self.seen.iter().min_by_key(|(_, at)| **at).map(|(p, _)| *p) {
                    self.seen.remove(&oldest);
                }
            }
        }
        self.seen.insert(peer, now);
    }

    /// Forgets the peers silent for longer than the timeout.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.timeout;
        self.seen
            .retain(|_, at| now.saturating_duration_since(*at) < timeout);
    }

    /// The peers to send to.
    pub fn iter(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.seen.keys().copied()
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn forgets_the_silent_and_stays_bounded() {
        let t0 = Instant::now();
        let mut p = Peers::new(Duration::from_secs(30), 2);
        p.heard(addr(1), t0);
        p.heard(addr(2), t0 + Duration::from_secs(1));
        p.heard(addr(3), t0 + Duration::from_secs(2));
        let mut now: Vec<_> = p.iter().map(|a| a.port()).collect();
        now.sort();
        assert_eq!(now, [2, 3]);
        p.expire(t0 + Duration::from_secs(31));
        assert_eq!(p.iter().map(|a| a.port()).collect::<Vec<_>>(), [3]);
    }
}
