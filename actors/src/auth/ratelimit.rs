//! Per-key attempt limits for the auth endpoints (FEATURES AU-6): a sliding window of attempt
//! times per client address or username, so brute force is slowed without locking anyone out
//! for longer than the window.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// At most `max` attempts per `window` for each key.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    attempts: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// A limiter allowing `max` attempts per `window` (max 0 = unlimited).
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            attempts: HashMap::new(),
        }
    }

    fn prune(&mut self, key: &str, now: Instant) -> usize {
        let window = self.window;
        match self.attempts.get_mut(key) {
            Some(q) => {
                while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                    q.pop_front();
                }
                q.len()
            }
            None => 0,
        }
    }

    /// Is `key` over its limit now (without counting a new attempt)?
    pub fn is_limited(&mut self, key: &str, now: Instant) -> bool {
        self.max > 0 && self.prune(key, now) >= self.max
    }

    /// Counts an attempt for `key`.
    pub fn record(&mut self, key: &str, now: Instant) {
        if self.max == 0 {
            return;
        }
        self.prune(key, now);
        self.attempts
            .entry(key.to_owned())
            .or_default()
            .push_back(now);
        // Keep the table bounded: forget keys whose attempts have all aged out.
        if self.attempts.len() > 10_000 {
            let window = self.window;
            self.attempts
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
    }

    /// Forgets `key`'s attempts (a successful login clears its failures).
    pub fn clear(&mut self, key: &str) {
        self.attempts.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_within_the_window_only() {
        let mut rl = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(!rl.is_limited("ip", t0));
        rl.record("ip", t0);
        rl.record("ip", t0);
        assert!(rl.is_limited("ip", t0));
        assert!(!rl.is_limited("other", t0));
        assert!(!rl.is_limited("ip", t0 + Duration::from_secs(61)));
        rl.record("ip", t0);
        rl.clear("ip");
        assert!(!rl.is_limited("ip", t0));
        let mut off = RateLimiter::new(0, Duration::from_secs(60));
        off.record("ip", t0);
        assert!(!off.is_limited("ip", t0));
    }
}
