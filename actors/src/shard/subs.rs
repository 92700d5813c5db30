//! Who receives what: the shard's subscription index (a pattern trie with a result cache,
//! `clasp_proto::PatternIndex`) plus each subscription's type mask and its session's mailbox.

use std::collections::HashMap;

use actix::Recipient;
use clasp_proto::{Pattern, PatternIndex, SignalType, TypeMask};

use crate::messages::{Deliver, SessionKey, SessionRef};

/// Index entry: one subscription of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubKey {
    /// Session.
    pub session: SessionKey,
    /// Subscription id within the session.
    pub id: u32,
}

struct SessionSubs {
    recipient: Recipient<Deliver>,
    subs: HashMap<u32, (Pattern, TypeMask)>,
}

/// The subscriptions held by one shard.
#[derive(Default)]
pub struct Subscriptions {
    index: PatternIndex<SubKey>,
    sessions: HashMap<SessionKey, SessionSubs>,
}

/// One session to deliver to, with the ids of its subscriptions that matched.
pub struct Target {
    /// The session's mailbox.
    pub recipient: Recipient<Deliver>,
    /// Session key (to skip the sender of a PUBLISH).
    pub session: SessionKey,
    /// Matched subscription ids.
    pub subs: Box<[u32]>,
}

impl Subscriptions {
    /// Registers (or replaces: same id ⇒ replace, RECOMMENDED §7.3) a subscription.
    pub fn subscribe(&mut self, session: &SessionRef, id: u32, pattern: Pattern, types: TypeMask) {
        let entry = self
            .sessions
            .entry(session.key)
            .or_insert_with(|| SessionSubs {
                recipient: session.recipient.clone(),
                subs: HashMap::new(),
            });
        let key = SubKey {
            session: session.key,
            id,
        };
        if let Some((old, _)) = entry.subs.insert(id, (pattern.clone(), types)) {
            self.index.remove(&old, &key);
        }
        self.index.insert(&pattern, key);
    }

    /// Removes one subscription; unknown ids are a no-op.
    pub fn unsubscribe(&mut self, session: SessionKey, id: u32) {
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        if let Some((pattern, _)) = entry.subs.remove(&id) {
            self.index.remove(&pattern, &SubKey { session, id });
        }
        if entry.subs.is_empty() {
            self.sessions.remove(&session);
        }
    }

    /// Removes every subscription of a session.
    pub fn remove_session(&mut self, session: SessionKey) {
        if let Some(entry) = self.sessions.remove(&session) {
            for (id, (pattern, _)) in entry.subs {
                self.index.remove(&pattern, &SubKey { session, id });
            }
        }
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Sessions whose subscriptions match `address` and accept `signal`, each once.
    pub fn targets(&mut self, address: &str, signal: SignalType) -> Vec<Target> {
        let keys = self.index.lookup(address);
        let mut out: Vec<Target> = Vec::new();
        let mut i = 0;
        while i < keys.len() {
            let session = keys[i].session;
            let mut ids = Vec::new();
            while i < keys.len() && keys[i].session == session {
                let id = keys[i].id;
                if let Some((_, types)) = self.sessions.get(&session).and_then(|s| s.subs.get(&id))
                {
                    if types.includes(signal) {
                        ids.push(id);
                    }
                }
                i += 1;
            }
            if ids.is_empty() {
                continue;
            }
            if let Some(s) = self.sessions.get(&session) {
                out.push(Target {
                    recipient: s.recipient.clone(),
                    session,
                    subs: ids.into_boxed_slice(),
                });
            }
        }
        out
    }
}
