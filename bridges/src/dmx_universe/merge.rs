//! Merging several sources of one universe, as a lighting node does: the highest priority
//! present wins (sACN; Art-Net sources all have one priority), and sources at that priority
//! are merged HTP (highest level per channel) or LTP (the source that last changed a
//! channel owns it, so two steady sources never make it flicker). A source silent for the
//! timeout, or one that said it stopped, leaves the merge; sequence numbers drop late frames.

use std::time::{Duration, Instant};

/// Channels in a DMX universe.
pub const CHANNELS: usize = 512;

/// One universe's levels, channel 1 at index 0.
pub type Frame = [u8; CHANNELS];

/// Most sources kept per universe: a peer spraying source ids cannot grow memory.
pub const MAX_SOURCES: usize = 16;

/// How sources of equal priority are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// Highest takes precedence: each channel is the highest level any source sends.
    #[default]
    Htp,
    /// Latest takes precedence: each channel follows the source that last changed it.
    Ltp,
}

/// What became of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Merged.
    Taken,
    /// Older than the source's last frame (sequence number): dropped.
    OutOfOrder,
    /// A new source while [`MAX_SOURCES`] are live: dropped.
    TooManySources,
}

/// Whether sequence number `new` may follow `last`: E1.31 6.7.2 (also used for Art-Net,
/// whose sequence 0 means "not sequenced"): a step back of up to 20, or a repeat, is late.
pub fn in_sequence(last: u8, new: u8) -> bool {
    let diff = new.wrapping_sub(last) as i8;
    !(-20 < diff && diff <= 0)
}

#[derive(Debug)]
struct Source<S> {
    key: S,
    /// Stable id within this merger (LTP channel owners).
    id: u32,
    data: Frame,
    len: usize,
    priority: u8,
    seen: Instant,
    seq: Option<u8>,
}

/// The sources of one universe and how they merge.
#[derive(Debug)]
pub struct Merger<S> {
    mode: MergeMode,
    timeout: Duration,
    sources: Vec<Source<S>>,
    /// LTP: the id of the source that last changed each channel.
    owner: Vec<Option<u32>>,
    next_id: u32,
}

impl<S: PartialEq + Clone> Merger<S> {
    /// An empty universe.
    pub fn new(mode: MergeMode, timeout: Duration) -> Self {
        Self {
            mode,
            timeout,
            sources: Vec::new(),
            owner: vec![None; CHANNELS],
            next_id: 0,
        }
    }

    /// Live sources.
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// Takes a frame from `key` (levels from channel 1; more than 512 are ignored).
    pub fn receive(
        &mut self,
        key: &S,
        priority: u8,
        seq: Option<u8>,
        data: &[u8],
        now: Instant,
    ) -> Received {
        let data = data.get(..CHANNELS).unwrap_or(data);
        let index = match self.sources.iter().position(|s| &s.key == key) {
            Some(i) => i,
            None if self.sources.len() >= MAX_SOURCES => return Received::TooManySources,
            None => {
                self.next_id = self.next_id.wrapping_add(1);
                self.sources.push(Source {
                    key: key.clone(),
                    id: self.next_id,
                    data: [0; CHANNELS],
                    len: 0,
                    priority,
                    seen: now,
                    seq: None,
                });
                self.sources.len() - 1
            }
        };
        let Some(source) = self.sources.get_mut(index) else {
            return Received::TooManySources;
        };
        if let (Some(last), Some(new)) = (source.seq, seq) {
            if !in_sequence(last, new) {
                return Received::OutOfOrder;
            }
        }
        let fresh = source.len == 0;
        for (c, owner) in self.owner.iter_mut().enumerate() {
            let level = data.get(c).copied().unwrap_or(0);
            let old = source.data.get_mut(c);
            if let Some(old) = old {
                if fresh || *old != level {
                    *owner = Some(source.id);
                }
                *old = level;
            }
        }
        source.len = data.len().max(1);
        source.priority = priority;
        source.seen = now;
        source.seq = seq;
        Received::Taken
    }

    /// Drops `key` from the merge (stream terminated). True if it was there.
    pub fn remove(&mut self, key: &S) -> bool {
        let before = self.sources.len();
        self.sources.retain(|s| &s.key != key);
        self.forget_owners();
        before != self.sources.len()
    }

    /// Drops the sources silent for the timeout. True if any was dropped.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.sources.len();
        let timeout = self.timeout;
        self.sources
            .retain(|s| now.saturating_duration_since(s.seen) < timeout);
        self.forget_owners();
        before != self.sources.len()
    }

    fn forget_owners(&mut self) {
        let sources = &self.sources;
        for owner in &mut self.owner {
            if owner.is_some_and(|id| !sources.iter().any(|s| s.id == id)) {
                *owner = None;
            }
        }
    }

    /// The merged levels and how many channels the sources send (0: no source left).
    pub fn merged(&self) -> (Frame, usize) {
        let mut out = [0u8; CHANNELS];
        let Some(top) = self.sources.iter().map(|s| s.priority).max() else {
            return (out, 0);
        };
        let live = || self.sources.iter().filter(move |s| s.priority == top);
        let len = live().map(|s| s.len).max().unwrap_or(0);
        match self.mode {
            MergeMode::Htp => {
                for s in live() {
                    for (o, l) in out.iter_mut().zip(s.data.iter()) {
                        *o = (*o).max(*l);
                    }
                }
            }
            MergeMode::Ltp => {
                let newest = live().max_by_key(|s| s.seen);
                for (c, (o, owner)) in out.iter_mut().zip(self.owner.iter()).enumerate() {
                    let from = owner.and_then(|id| live().find(|s| s.id == id)).or(newest);
                    *o = from.and_then(|s| s.data.get(c)).copied().unwrap_or(0);
                }
            }
        }
        (out, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(levels: &[u8]) -> Vec<u8> {
        levels.to_vec()
    }

    #[test]
    fn htp_takes_the_highest_level_per_channel() {
        let now = Instant::now();
        let mut m = Merger::new(MergeMode::Htp, Duration::from_secs(4));
        m.receive(&1, 100, None, &frame(&[10, 200, 0]), now);
        m.receive(&2, 100, None, &frame(&[50, 100]), now);
        let (out, len) = m.merged();
        assert_eq!((&out[..3], len), (&[50, 200, 0][..], 3));
    }

    #[test]
    fn ltp_follows_the_last_change_and_does_not_flicker() {
        let t0 = Instant::now();
        let mut m = Merger::new(MergeMode::Ltp, Duration::from_secs(4));
        m.receive(&1, 100, None, &frame(&[10, 10]), t0);
        m.receive(&2, 100, None, &frame(&[20, 20]), t0);
        assert_eq!(&m.merged().0[..2], &[20, 20]);
        // Source 1 resends the same frame: nothing changes hands.
        m.receive(&1, 100, None, &frame(&[10, 10]), t0);
        assert_eq!(&m.merged().0[..2], &[20, 20]);
        // Source 1 moves channel 2 only: it owns channel 2 now.
        m.receive(&1, 100, None, &frame(&[10, 99]), t0);
        assert_eq!(&m.merged().0[..2], &[20, 99]);
        // Source 2 goes: its channel falls back to the remaining source.
        assert!(m.remove(&2));
        assert_eq!(&m.merged().0[..2], &[10, 99]);
    }

    #[test]
    fn the_highest_priority_wins_and_timeouts_drop_sources() {
        let t0 = Instant::now();
        let mut m = Merger::new(MergeMode::Htp, Duration::from_millis(2500));
        m.receive(&"low", 50, None, &frame(&[255]), t0);
        m.receive(
            &"high",
            150,
            None,
            &frame(&[7]),
            t0 + Duration::from_secs(1),
        );
        assert_eq!(m.merged().0[0], 7);
        assert!(m.expire(t0 + Duration::from_millis(2600)));
        assert_eq!(m.source_count(), 1);
        assert_eq!(m.merged().0[0], 7);
        assert!(m.expire(t0 + Duration::from_secs(4)));
        assert_eq!(m.merged().1, 0);
    }

    #[test]
    fn late_frames_are_dropped() {
        let now = Instant::now();
        let mut m = Merger::new(MergeMode::Htp, Duration::from_secs(4));
        assert_eq!(m.receive(&1, 100, Some(10), &[1], now), Received::Taken);
        assert_eq!(m.receive(&1, 100, Some(9), &[2], now), Received::OutOfOrder);
        assert_eq!(
            m.receive(&1, 100, Some(10), &[2], now),
            Received::OutOfOrder
        );
        assert_eq!(m.receive(&1, 100, Some(11), &[3], now), Received::Taken);
        assert_eq!(m.merged().0[0], 3);
        // Wrap-around and a long jump back (a restarted sender) are accepted.
        assert!(in_sequence(255, 0));
        assert!(in_sequence(100, 70));
        assert!(!in_sequence(0, 250));
    }

    #[test]
    fn sources_are_bounded() {
        let now = Instant::now();
        let mut m = Merger::new(MergeMode::Htp, Duration::from_secs(4));
        for i in 0..MAX_SOURCES {
            assert_eq!(m.receive(&i, 100, None, &[1], now), Received::Taken);
        }
        assert_eq!(
            m.receive(&MAX_SOURCES, 100, None, &[1], now),
            Received::TooManySources
        );
    }
}
