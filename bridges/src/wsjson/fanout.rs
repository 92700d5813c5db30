//! Events between the web clients of one standalone bridge. They share its one connection to
//! the relay, and the relay never sends a PUBLISH back to its sender, so an `emit` by one
//! client would not reach the others; the bridge hands it to them itself. (Embedded, each
//! client has its own endpoint and the relay does this.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use clasp_actors::auth::{Action, Grant};
use clasp_proto::Pattern;

use crate::Namespace;

/// Where to deliver one client's messages, and what it may read.
pub(crate) trait Sink: Send + Sync {
    /// Queues a message; `false` when the client is gone or too slow.
    fn deliver(&self, text: String) -> bool;
}

struct Member {
    patterns: Vec<Pattern>,
    sink: Arc<dyn Sink>,
    grant: Option<Arc<Grant>>,
}

/// The clients of one bridge and their subscription patterns (full CLASP patterns).
#[derive(Default)]
pub(crate) struct Fanout {
    members: Mutex<HashMap<u64, Member>>,
}

impl Fanout {
    fn members(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Member>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a client.
    pub fn join(&self, id: u64, sink: Arc<dyn Sink>, grant: Option<Arc<Grant>>) {
        self.members().insert(
            id,
            Member {
                patterns: Vec::new(),
                sink,
                grant,
            },
        );
    }

    /// Forgets a client.
    pub fn leave(&self, id: u64) {
        self.members().remove(&id);
    }

    /// Replaces a client's patterns.
    pub fn patterns(&self, id: u64, patterns: Vec<Pattern>) {
        if let Some(m) = self.members().get_mut(&id) {
            m.patterns = patterns;
        }
    }

    /// Hands a PUBLISH by client `from` at `address` (a CLASP address) to every other client
    /// subscribed to it and allowed to read it; `message` builds its text from the address
    /// without the namespace.
    pub fn publish(
        &self,
        from: u64,
        address: &str,
        namespace: &Namespace,
        message: impl Fn(&str) -> String,
    ) {
        let Some(path) = namespace.strip(address) else {
            return;
        };
        let mut text = None;
        for (id, m) in self.members().iter() {
            if *id == from
                || !m.patterns.iter().any(|p| p.matches(address))
                || !m
                    .grant
                    .as_ref()
                    .is_none_or(|g| g.scopes.allows(Action::Read, address))
            {
                continue;
            }
            let t = text.get_or_insert_with(|| message(path)).clone();
            m.sink.deliver(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Sink for Recorder {
        fn deliver(&self, text: String) -> bool {
            self.0.lock().unwrap().push(text);
            true
        }
    }

    #[test]
    fn reaches_other_subscribed_members_only() {
        let f = Fanout::default();
        let (a, b, c) = (
            Arc::new(Recorder::default()),
            Arc::new(Recorder::default()),
            Arc::new(Recorder::default()),
        );
        f.join(1, a.clone(), None);
        f.join(2, b.clone(), None);
        f.join(3, c.clone(), None);
        let p = |s: &str| Pattern::compile(s).unwrap();
        f.patterns(1, vec![p("/fx/*")]);
        f.patterns(2, vec![p("/fx/*")]);
        f.patterns(3, vec![p("/other/*")]);
        f.publish(1, "/fx/boom", &Namespace::none(), |a| format!("e {a}"));
        assert!(a.0.lock().unwrap().is_empty());
        assert_eq!(*b.0.lock().unwrap(), vec!["e /fx/boom".to_string()]);
        assert!(c.0.lock().unwrap().is_empty());
        f.leave(2);
        f.publish(1, "/fx/boom", &Namespace::none(), |a| a.to_string());
        assert_eq!(b.0.lock().unwrap().len(), 1);
    }
}
