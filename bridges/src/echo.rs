//! Echo suppression (FEATURES BR-5): a value a peer sent us comes back through the bridge's
//! own subscription; it must go to every other destination but not back to that peer.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use clasp_proto::Value;

/// How long an inbound value is remembered: its echo arrives within milliseconds, and a
/// later identical write from elsewhere must still reach the peer.
const WINDOW: Duration = Duration::from_secs(2);
/// Entries kept before old ones are swept, so a peer spraying addresses cannot grow it.
const MAX_ENTRIES: usize = 16_384;

/// The last value each address received from a peer.
#[derive(Debug)]
pub struct EchoFilter<P> {
    last: HashMap<String, (P, Value, Instant)>,
}

impl<P> Default for EchoFilter<P> {
    fn default() -> Self {
        Self {
            last: HashMap::new(),
        }
    }
}

impl<P: Eq + Hash + Clone> EchoFilter<P> {
    /// Records that `peer` wrote `value` to `address` (a CLASP address).
    pub fn inbound(&mut self, address: &str, peer: P, value: &Value) {
        if self.last.len() >= MAX_ENTRIES {
            let now = Instant::now();
            self.last
                .retain(|_, (_, _, at)| now.duration_since(*at) < WINDOW);
            if self.last.len() >= MAX_ENTRIES {
                self.last.clear();
            }
        }
        self.last
            .insert(address.to_string(), (peer, value.clone(), Instant::now()));
    }

    /// The peer the update at `address` with `value` came from, if it is the echo of one of
    /// its writes; the entry is consumed, so the next identical write from elsewhere passes.
    pub fn origin(&mut self, address: &str, value: &Value) -> Option<P> {
        let (peer, last, at) = self.last.get(address)?;
        if last == value && at.elapsed() < WINDOW {
            let peer = peer.clone();
            self.last.remove(address);
            Some(peer)
        } else {
            None
        }
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
}
