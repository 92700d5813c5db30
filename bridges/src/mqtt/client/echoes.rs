//! Echo recognition for the client bridge. Unlike [`crate::echo::EchoFilter`], which keeps
//! the last value per address, this keeps every value still awaiting its echo: a broker
//! burst `a=1, a=2` may have its echoes arrive after both writes, and the echo of `1` must
//! still be recognised, or a stale value would be published back over the newer one.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use clasp_proto::Value;

/// How long a value awaits its echo (it comes back within milliseconds).
const WINDOW: Duration = Duration::from_secs(2);
/// Values kept per key; older ones are forgotten first.
const PER_KEY: usize = 256;
/// Keys kept before expired ones are swept (and, failing that, all are forgotten).
const MAX_KEYS: usize = 16_384;

/// Values written somewhere whose echo is expected back, per key (address or topic).
#[derive(Debug, Default)]
pub struct Echoes {
    pending: HashMap<String, VecDeque<(Value, Instant)>>,
}

impl Echoes {
    /// Records that `value` was written at `key`; its echo is expected.
    pub fn expect(&mut self, key: &str, value: &Value) {
        if self.pending.len() >= MAX_KEYS && !self.pending.contains_key(key) {
            let now = Instant::now();
            self.pending.retain(|_, q| {
                q.retain(|(_, at)| now.duration_since(*at) < WINDOW);
                !q.is_empty()
            });
            if self.pending.len() >= MAX_KEYS {
                self.pending.clear();
            }
        }
        let queue = self.pending.entry(key.to_string()).or_default();
        if queue.len() >= PER_KEY {
            queue.pop_front();
        }
        queue.push_back((value.clone(), Instant::now()));
    }

    /// Whether `value` at `key` is an expected echo; it is consumed, so a later identical
    /// write from elsewhere passes.
    pub fn take(&mut self, key: &str, value: &Value) -> bool {
        let Some(queue) = self.pending.get_mut(key) else {
            return false;
        };
        let now = Instant::now();
        queue.retain(|(_, at)| now.duration_since(*at) < WINDOW);
        let found = queue.iter().position(|(v, _)| v == value);
        if let Some(i) = found {
            queue.remove(i);
        }
        if queue.is_empty() {
            self.pending.remove(key);
        }
        found.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pending_value_is_recognised_once() {
        let mut e = Echoes::default();
        e.expect("/a", &Value::Int(1));
        e.expect("/a", &Value::Int(2));
        assert!(e.take("/a", &Value::Int(1)), "the older one too");
        assert!(!e.take("/a", &Value::Int(1)), "consumed");
        assert!(!e.take("/b", &Value::Int(2)));
        assert!(e.take("/a", &Value::Int(2)));
        assert!(e.pending.is_empty());
    }
}
