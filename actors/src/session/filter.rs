//! Per-subscription delivery options (WIRE §5.5, FEATURES ST-21), applied per address:
//! `max_rate` and `window` space deliveries out (the latest value is held and sent when the
//! interval has passed), `epsilon` suppresses numeric changes smaller than it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clasp_proto::{Address, Pattern, SubscribeOptions, TypeMask};

use crate::messages::{Delivery, DeliveryClass};

/// What to do with one delivery for one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send now.
    Send,
    /// Hold as the address's pending value; flush after the returned delay.
    Hold(Duration),
    /// Held already; a flush is scheduled.
    Replaced,
    /// Drop (below epsilon).
    Suppress,
}

#[derive(Default)]
struct AddressState {
    last_sent: Option<Instant>,
    last_value: Option<f64>,
    pending: Option<Arc<Delivery>>,
}

/// A subscription as its session keeps it.
pub struct SubState {
    /// Pattern (to unsubscribe from the right shards).
    pub pattern: Pattern,
    /// Type filter.
    pub types: TypeMask,
    options: SubscribeOptions,
    interval: Option<Duration>,
    per_address: HashMap<Address, AddressState>,
}

impl SubState {
    /// A subscription with its options.
    pub fn new(pattern: Pattern, types: TypeMask, options: SubscribeOptions) -> Self {
        let rate = options
            .max_rate
            .filter(|r| *r > 0)
            .map(|r| Duration::from_secs_f64(1.0 / f64::from(r)));
        let window = options
            .window
            .filter(|w| *w > 0)
            .map(|w| Duration::from_millis(u64::from(w)));
        let interval = match (rate, window) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Self {
            pattern,
            types,
            options,
            interval,
            per_address: HashMap::new(),
        }
    }

    /// Whether any option needs per-delivery work.
    pub fn filters(&self) -> bool {
        self.interval.is_some() || self.options.epsilon.is_some()
    }

    /// Decides about one delivery. Events, timelines and replies are never filtered.
    pub fn consider(&mut self, d: &Arc<Delivery>, now: Instant) -> Verdict {
        if !self.filters() || d.class == DeliveryClass::Reliable {
            return Verdict::Send;
        }
        let Some(address) = &d.address else {
            return Verdict::Send;
        };
        let st = self.per_address.entry(address.clone()).or_default();
        if let (Some(eps), Some(new), Some(old)) = (self.options.epsilon, d.numeric, st.last_value)
        {
            if (new - old).abs() < eps {
                return Verdict::Suppress;
            }
        }
        if let (Some(interval), Some(last)) = (self.interval, st.last_sent) {
            let since = now.duration_since(last);
            if since < interval {
                let was_pending = st.pending.replace(d.clone()).is_some();
                return if was_pending {
                    Verdict::Replaced
                } else {
                    Verdict::Hold(interval - since)
                };
            }
        }
        st.last_sent = Some(now);
        if d.numeric.is_some() {
            st.last_value = d.numeric;
        }
        Verdict::Send
    }

    /// Takes the held delivery for `address` (its flush time came), marking it sent.
    pub fn take_pending(&mut self, address: &Address, now: Instant) -> Option<Arc<Delivery>> {
        let st = self.per_address.get_mut(address)?;
        let d = st.pending.take()?;
        st.last_sent = Some(now);
        if d.numeric.is_some() {
            st.last_value = d.numeric;
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn d(v: f64) -> Arc<Delivery> {
        Arc::new(Delivery {
            frame: Bytes::new(),
            class: DeliveryClass::Lossy,
            address: Some(Address::parse("/x").expect("valid")),
            numeric: Some(v),
            created: std::time::Instant::now(),
        })
    }

    fn sub(options: SubscribeOptions) -> SubState {
        SubState::new(
            Pattern::compile("/x").expect("valid"),
            TypeMask::ALL,
            options,
        )
    }

    #[test]
    fn epsilon_suppresses_small_changes() {
        let mut s = sub(SubscribeOptions {
            epsilon: Some(0.01),
            ..Default::default()
        });
        let t = Instant::now();
        assert_eq!(s.consider(&d(0.5), t), Verdict::Send);
        assert_eq!(s.consider(&d(0.501), t), Verdict::Suppress);
        assert_eq!(s.consider(&d(0.52), t), Verdict::Send);
    }

    #[test]
    fn max_rate_holds_the_latest_until_the_interval_passes() {
        let mut s = sub(SubscribeOptions {
            max_rate: Some(10),
            ..Default::default()
        });
        let t = Instant::now();
        assert_eq!(s.consider(&d(1.0), t), Verdict::Send);
        assert!(matches!(
            s.consider(&d(2.0), t + Duration::from_millis(10)),
            Verdict::Hold(_)
        ));
        assert_eq!(
            s.consider(&d(3.0), t + Duration::from_millis(20)),
            Verdict::Replaced
        );
        let addr = Address::parse("/x").expect("valid");
        let held = s
            .take_pending(&addr, t + Duration::from_millis(100))
            .expect("held");
        assert_eq!(held.numeric, Some(3.0));
        assert!(s
            .take_pending(&addr, t + Duration::from_millis(100))
            .is_none());
    }
}
