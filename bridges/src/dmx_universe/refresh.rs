//! Outbound universes and when each is sent: a change goes out at once unless the universe
//! was sent less than one refresh period ago (then at the end of it), and an unchanged
//! universe is re-sent every keep-alive interval, so receivers never time it out. Protocol
//! neutral: the Art-Net and sACN bridges use it, and a DMX-serial port could.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::merge::{Frame, CHANNELS};

/// Longest gap between two frames of a universe when nothing changes (E1.31 receivers time
/// out after 2.5 s; Art-Net recommends 0.8–1 s).
pub const KEEPALIVE: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Universe {
    levels: Frame,
    dirty: bool,
    last_sent: Option<Instant>,
}

/// The universes a bridge sends, with their levels and send times.
#[derive(Debug)]
pub struct Outputs {
    period: Duration,
    keepalive: Duration,
    universes: BTreeMap<u16, Universe>,
}

impl Outputs {
    /// Sends at most `rate_hz` frames per second per universe, and at least one per
    /// `keepalive`.
    pub fn new(rate_hz: f64, keepalive: Duration) -> Self {
        let rate = if rate_hz.is_finite() && rate_hz > 0.0 {
            rate_hz
        } else {
            44.0
        };
        Self {
            period: Duration::from_secs_f64(1.0 / rate),
            keepalive,
            universes: BTreeMap::new(),
        }
    }

    fn universe(&mut self, universe: u16) -> &mut Universe {
        self.universes.entry(universe).or_insert(Universe {
            levels: [0; CHANNELS],
            dirty: true,
            last_sent: None,
        })
    }

    /// Sets one channel (1-based; others are ignored).
    pub fn set_channel(&mut self, universe: u16, channel: u16, level: u8) {
        let u = self.universe(universe);
        if let Some(slot) = u.levels.get_mut(usize::from(channel).wrapping_sub(1)) {
            if *slot != level || u.last_sent.is_none() {
                *slot = level;
                u.dirty = true;
            }
        }
    }

    /// Sets a universe from channel 1 on; channels past `levels` keep their values.
    pub fn set_frame(&mut self, universe: u16, levels: &[u8]) {
        let u = self.universe(universe);
        for (slot, level) in u.levels.iter_mut().zip(levels) {
            if *slot != *level {
                *slot = *level;
                u.dirty = true;
            }
        }
    }

    /// The levels of a universe (all 512 channels), if it is sent at all.
    pub fn levels(&self, universe: u16) -> Option<&Frame> {
        self.universes.get(&universe).map(|u| &u.levels)
    }

    /// The universes sent.
    pub fn universes(&self) -> impl Iterator<Item = u16> + '_ {
        self.universes.keys().copied()
    }

    fn is_due(&self, u: &Universe, now: Instant) -> bool {
        match u.last_sent {
            None => true,
            Some(at) => {
                let since = now.saturating_duration_since(at);
                (u.dirty && since >= self.period) || since >= self.keepalive
            }
        }
    }

    /// The universes to send now.
    pub fn due(&self, now: Instant) -> Vec<u16> {
        self.universes
            .iter()
            .filter(|(_, u)| self.is_due(u, now))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Records that `universe` was sent at `now`.
    pub fn sent(&mut self, universe: u16, now: Instant) {
        if let Some(u) = self.universes.get_mut(&universe) {
            u.dirty = false;
            u.last_sent = Some(now);
        }
    }

    /// When the next universe falls due (`None`: nothing to send).
    pub fn next_due(&self) -> Option<Instant> {
        self.universes
            .values()
            .map(|u| {
                u.last_sent
                    .map(|at| at + if u.dirty { self.period } else { self.keepalive })
            })
            .min_by(|a, b| match (a, b) {
                (None, _) => std::cmp::Ordering::Less,
                (_, None) => std::cmp::Ordering::Greater,
                (Some(a), Some(b)) => a.cmp(b),
            })
            .map(|at| at.unwrap_or_else(Instant::now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_rate_limited_and_idle_universes_kept_alive() {
        let t0 = Instant::now();
        let mut out = Outputs::new(40.0, KEEPALIVE);
        assert_eq!(out.next_due(), None);
        out.set_channel(1, 1, 255);
        assert_eq!(out.due(t0), vec![1]);
        out.sent(1, t0);
        assert_eq!(out.levels(1).map(|l| l[0]), Some(255));
        // A change 10 ms later waits for the 25 ms period.
        out.set_channel(1, 2, 9);
        assert!(out.due(t0 + Duration::from_millis(10)).is_empty());
        assert_eq!(out.next_due(), Some(t0 + Duration::from_millis(25)));
        assert_eq!(out.due(t0 + Duration::from_millis(25)), vec![1]);
        out.sent(1, t0 + Duration::from_millis(25));
        // Idle: due again after the keep-alive, not before.
        assert!(out.due(t0 + Duration::from_millis(900)).is_empty());
        assert_eq!(out.due(t0 + Duration::from_millis(1025)), vec![1]);
        // Setting an unchanged level does not make it dirty; channel 0 and 513 are ignored.
        out.set_channel(1, 2, 9);
        out.set_channel(1, 0, 9);
        out.set_channel(1, 513, 9);
        assert!(out.due(t0 + Duration::from_millis(100)).is_empty());
        out.set_frame(2, &[1, 2, 3]);
        assert_eq!(out.universes().collect::<Vec<_>>(), vec![1, 2]);
    }
}
