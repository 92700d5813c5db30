//! What the bridge could not hand to the broker (disconnected, or paho's in-flight window
//! full): the latest value per retained topic and the events in order, bounded, sent as soon
//! as the broker takes them again. Drops are counted, never silent.

use std::collections::{HashMap, VecDeque};

/// One publish waiting for the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// MQTT topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Retained (a param) or not (an event).
    pub retained: bool,
}

/// Bounded store of pending publishes.
#[derive(Debug)]
pub struct Outbox {
    capacity: usize,
    /// Latest payload per retained topic; older values of a topic are superseded, not lost.
    retained: HashMap<String, Vec<u8>>,
    /// Retained topics in first-queued order, so replay keeps the order of first change.
    order: VecDeque<String>,
    events: VecDeque<Pending>,
    dropped: u64,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` retained topics and `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            retained: HashMap::new(),
            order: VecDeque::new(),
            events: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Keeps one publish: a retained one replaces the topic's earlier value; an event beyond
    /// the capacity pushes out the oldest event; a new retained topic beyond it is dropped.
    pub fn push(&mut self, p: Pending) {
        if p.retained {
            if let Some(slot) = self.retained.get_mut(&p.topic) {
                *slot = p.payload;
            } else if self.retained.len() < self.capacity {
                self.order.push_back(p.topic.clone());
                self.retained.insert(p.topic, p.payload);
            } else {
                self.dropped += 1;
            }
        } else {
            if self.events.len() >= self.capacity {
                self.events.pop_front();
                self.dropped += 1;
            }
            self.events.push_back(p);
        }
    }

    /// Puts back a publish that could not be sent, ahead of the rest.
    pub fn unpop(&mut self, p: Pending) {
        if p.retained {
            if !self.retained.contains_key(&p.topic) {
                self.order.push_front(p.topic.clone());
                self.retained.insert(p.topic, p.payload);
            }
        } else {
            self.events.push_front(p);
        }
    }

    /// The next publish to send: retained values first, then events in order.
    pub fn pop(&mut self) -> Option<Pending> {
        while let Some(topic) = self.order.pop_front() {
            if let Some(payload) = self.retained.remove(&topic) {
                return Some(Pending {
                    topic,
                    payload,
                    retained: true,
                });
            }
        }
        self.events.pop_front()
    }

    /// Number of publishes waiting.
    pub fn len(&self) -> usize {
        self.retained.len() + self.events.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Publishes dropped since the last call (the caller logs them).
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(topic: &str, payload: &str, retained: bool) -> Pending {
        Pending {
            topic: topic.into(),
            payload: payload.into(),
            retained,
        }
    }

    #[test]
    fn latest_value_per_topic_then_events() {
        let mut o = Outbox::new(2);
        o.push(p("a", "1", true));
        o.push(p("e", "x", false));
        o.push(p("a", "2", true));
        o.push(p("b", "3", true));
        o.push(p("c", "4", true));
        o.push(p("e", "y", false));
        o.push(p("e", "z", false));
        assert_eq!(o.take_dropped(), 2);
        assert_eq!(o.pop(), Some(p("a", "2", true)));
        assert_eq!(o.pop(), Some(p("b", "3", true)));
        assert_eq!(o.pop(), Some(p("e", "y", false)));
        o.unpop(p("e", "y", false));
        assert_eq!(o.len(), 2);
        assert_eq!(o.pop(), Some(p("e", "y", false)));
        assert_eq!(o.pop(), Some(p("e", "z", false)));
        assert!(o.is_empty());
    }
}
