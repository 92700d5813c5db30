//! Echo suppression (FEATURES BR-5): a value a peer sent us comes back through the bridge's
//! own subscription; it must go to every other destination but not back to that peer.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use clasp_proto::Value;

/// How long an inbound value is remembered: its echo arrives within milliseconds, and a
/// later identical write from elsewhere must still reach the peer.
const WINDOW: Duration = Duration::from_secs(2);
/// Entries kept before old ones are swept, so a peer spraying addresses cannot grow it.
const MAX_ENTRIES: usize = 16_384;

/// Writes remembered per address: a fader sends many values before the first echo is back.
const PER_ADDRESS: usize = 64;

/// The recent values each address received from peers, oldest first.
#[derive(Debug)]
pub struct EchoFilter<P> {
    last: HashMap<String, VecDeque<(P, Value, Instant)>>,
    entries: usize,
}

impl<P> Default for EchoFilter<P> {
    fn default() -> Self {
        Self {
            last: HashMap::new(),
            entries: 0,
        }
    }
}

impl<P: Eq + Hash + Clone> EchoFilter<P> {
    /// Records that `peer` wrote `value` to `address` (a CLASP address).
    pub fn inbound(&mut self, address: &str, peer: P, value: &Value) {
        let now = Instant::now();
        if self.entries >= MAX_ENTRIES {
            self.last.retain(|_, recent| {
                recent.retain(|(_, _, at)| now.duration_since(*at) < WINDOW);
                !recent.is_empty()
            });
            self.entries = self.last.values().map(VecDeque::len).sum();
            if self.entries >= MAX_ENTRIES {
                self.last.clear();
                self.entries = 0;
            }
        }
        let recent = self.last.entry(address.to_string()).or_default();
        if recent.len() >= PER_ADDRESS {
            recent.pop_front();
            self.entries -= 1;
        }
        recent.push_back((peer, value.clone(), now));
        self.entries += 1;
    }

    /// The peer the update at `address` with `value` came from, if it is the echo of one of
    /// its writes; the entry is consumed, so the next identical write from elsewhere passes.
    /// Echoes come back in write order, so older entries of the address are dropped with it.
    pub fn origin(&mut self, address: &str, value: &Value) -> Option<P> {
        let recent = self.last.get_mut(address)?;
        let i = recent
            .iter()
            .position(|(_, v, at)| v == value && at.elapsed() < WINDOW)?;
        let (peer, _, _) = recent.drain(..=i).last()?;
        self.entries -= i + 1;
        if recent.is_empty() {
            self.last.remove(address);
        }
        Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_is_recognised_once() {
        let mut f = EchoFilter::default();
        f.inbound("/osc/a", 7u32, &Value::Float(0.5));
        assert_eq!(f.origin("/osc/a", &Value::Float(0.25)), None);
        assert_eq!(f.origin("/osc/a", &Value::Float(0.5)), Some(7));
        assert_eq!(f.origin("/osc/a", &Value::Float(0.5)), None);
        assert_eq!(f.origin("/osc/b", &Value::Float(0.5)), None);
    }

    #[test]
    fn a_burst_of_writes_is_recognised_in_order() {
        let mut f = EchoFilter::default();
        for i in 0..10 {
            f.inbound("/osc/fader", 1u32, &Value::Int(i));
        }
        f.inbound("/osc/fader", 2u32, &Value::Int(3));
        for i in 0..10 {
            assert_eq!(
                f.origin("/osc/fader", &Value::Int(i)),
                Some(1),
                "echo of {i}"
            );
        }
        assert_eq!(f.origin("/osc/fader", &Value::Int(3)), Some(2));
        assert_eq!(f.entries, 0);
    }
}
