//! The broker's shared state: sessions by client id (clean and persistent), their
//! subscriptions, QoS 1/2 messages in flight to each client, and the queues of clients that
//! are away or behind. Everything runs on the bridge's one thread, so the connections share
//! it through an `Rc<RefCell<_>>` and never hold it across an await.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use super::codec::{ConnCode, Out, OutPublish, SubRequest};
use super::mapping::topic_matches;
use crate::BridgeStats;

/// Identifies one session instance (a clean reconnect gets a new one).
pub type SessionKey = u64;

/// A message on its way to subscribers.
#[derive(Debug, Clone)]
pub struct Msg {
    /// MQTT topic.
    pub topic: Arc<str>,
    /// Payload.
    pub payload: Bytes,
    /// QoS it was published with (the ceiling for every subscriber).
    pub qos: u8,
    /// Whether it was published retained (forwarded as such only to retain-as-published
    /// subscriptions; retained messages sent at SUBSCRIBE always carry the flag).
    pub retain: bool,
}

/// Asks a connection to close, with a v5 reason code and whether its will is published.
#[derive(Debug, Default)]
pub struct Kick {
    notify: Notify,
    reason: Cell<Option<(u8, &'static str, bool)>>,
}

impl Kick {
    /// Asks the connection to close.
    pub fn kick(&self, code: u8, why: &'static str, publish_will: bool) {
        if self.reason.get().is_none() {
            self.reason.set(Some((code, why, publish_will)));
        }
        self.notify.notify_one();
    }

    /// Whether a close was asked for already.
    pub fn is_set(&self) -> bool {
        self.reason.get().is_some()
    }

    /// Resolves once [`Kick::kick`] was called: (reason code, why, publish the will).
    pub async fn wait(&self) -> (u8, &'static str, bool) {
        loop {
            if let Some(r) = self.reason.get() {
                return r;
            }
            self.notify.notified().await;
        }
    }
}

struct Sub {
    filter: String,
    qos: u8,
    no_local: bool,
    retain_as_published: bool,
}

struct Conn {
    id: u64,
    tx: mpsc::Sender<Out>,
    kick: Rc<Kick>,
}

struct Inflight {
    publish: OutPublish,
    /// PUBREC received and PUBREL sent: waiting for PUBCOMP.
    released: bool,
}

struct Session {
    key: SessionKey,
    /// Kept after the connection ends.
    persistent: bool,
    /// v5 session expiry interval (seconds); `u32::MAX` never.
    expiry: u32,
    gone_at: Option<Instant>,
    subs: Vec<Sub>,
    conn: Option<Conn>,
    next_pkid: u16,
    inflight: BTreeMap<u16, Inflight>,
    pending: VecDeque<OutPublish>,
    window: usize,
}

/// What a connection got from [`Broker::attach`].
pub struct Attached {
    /// Its session.
    pub key: SessionKey,
    /// CONNACK session-present flag.
    pub session_present: bool,
    /// Id to detach with (a takeover replaces it).
    pub conn_id: u64,
    /// Packets routed to this client.
    pub rx: mpsc::Receiver<Out>,
    /// Set when the broker wants this connection closed.
    pub kick: Rc<Kick>,
}

/// Broker limits, from the bridge's settings.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connected clients at most.
    pub max_clients: usize,
    /// Per-client outbound packets queued (channel) and QoS 1/2 messages kept for a client
    /// that is away or behind.
    pub queue: usize,
    /// QoS 1/2 messages in flight to one client when it does not say (v5 receive maximum).
    pub inflight: usize,
    /// Offline persistent sessions kept at most (oldest dropped first).
    pub max_stored_sessions: usize,
}

/// Sessions and routing.
pub struct Broker {
    limits: Limits,
    stats: Arc<BridgeStats>,
    sessions: HashMap<String, Session>,
    next_id: u64,
    connected: usize,
}

impl Broker {
    /// An empty broker.
    pub fn new(limits: Limits, stats: Arc<BridgeStats>) -> Self {
        Self {
            limits,
            stats,
            sessions: HashMap::new(),
            next_id: 1,
            connected: 0,
        }
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A generated client id for a CONNECT without one.
    pub fn assign_id(&mut self) -> String {
        format!("clasp-mqtt-{}", self.fresh_id())
    }

    /// Attaches a connection to the session of `client_id`: resumes a persistent one unless
    /// `clean`, closes a connection that already holds the id (takeover), and refuses when
    /// the broker is full.
    pub fn attach(
        &mut self,
        client_id: &str,
        clean: bool,
        expiry: u32,
        receive_max: Option<u16>,
    ) -> Result<Attached, ConnCode> {
        let taking_over = self
            .sessions
            .get(client_id)
            .is_some_and(|s| s.conn.is_some());
        if !taking_over && self.connected >= self.limits.max_clients {
            return Err(ConnCode::Unavailable);
        }
        if let Some(old) = self.sessions.get_mut(client_id).and_then(|s| s.conn.take()) {
            tracing::info!(bridge = %self.stats.name, client = client_id, "client id taken over by a new connection");
            old.kick.kick(0x8E, "session taken over", false);
            self.connected = self.connected.saturating_sub(1);
        }
        let resumable = !clean && self.sessions.get(client_id).is_some_and(|s| s.persistent);
        if !resumable {
            self.sessions.remove(client_id);
        }
        let session_present = resumable;
        let (key, conn_id) = (self.fresh_id(), self.fresh_id());
        let (tx, rx) = mpsc::channel(self.limits.queue.max(1));
        let kick = Rc::new(Kick::default());
        let window = receive_max
            .map(usize::from)
            .unwrap_or(self.limits.inflight)
            .clamp(1, self.limits.inflight.max(1));
        let session = self
            .sessions
            .entry(client_id.to_string())
            .or_insert_with(|| Session {
                key,
                persistent: false,
                expiry: 0,
                gone_at: None,
                subs: Vec::new(),
                conn: None,
                next_pkid: 1,
                inflight: BTreeMap::new(),
                pending: VecDeque::new(),
                window,
            });
        session.persistent = expiry > 0;
        session.expiry = expiry;
        session.gone_at = None;
        session.window = window;
        session.conn = Some(Conn {
            id: conn_id,
            tx,
            kick: kick.clone(),
        });
        let key = session.key;
        self.connected += 1;
        // A resumed session: what was in flight goes again (DUP), then what waited.
        if let Some(session) = self.sessions.get_mut(client_id) {
            let resend: Vec<Out> = session
                .inflight
                .iter()
                .map(|(pkid, f)| {
                    if f.released {
                        Out::PubRel(*pkid)
                    } else {
                        Out::Publish(OutPublish {
                            dup: true,
                            ..f.publish.clone()
                        })
                    }
                })
                .collect();
            for out in resend {
                push(&self.stats, session, out);
            }
            fill_window(&self.stats, session);
        }
        Ok(Attached {
            key,
            session_present,
            conn_id,
            rx,
            kick,
        })
    }

    /// The connection `conn_id` of `client_id` ended: a clean session goes, a persistent one
    /// waits for its client (and queues its QoS 1/2 messages) until it expires.
    pub fn detach(&mut self, client_id: &str, conn_id: u64) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        if session.conn.as_ref().is_none_or(|c| c.id != conn_id) {
            return;
        }
        session.conn = None;
        self.connected = self.connected.saturating_sub(1);
        if session.persistent {
            session.gone_at = Some(Instant::now());
        } else {
            self.sessions.remove(client_id);
        }
    }

    /// Drops persistent sessions whose expiry passed, and the oldest offline ones beyond
    /// the limit.
    pub fn sweep(&mut self) {
        let now = Instant::now();
        self.sessions.retain(|_, s| match s.gone_at {
            Some(at) if s.expiry != u32::MAX => {
                now.duration_since(at) < Duration::from_secs(u64::from(s.expiry))
            }
            _ => true,
        });
        let mut offline: Vec<(Instant, String)> = self
            .sessions
            .iter()
            .filter_map(|(id, s)| s.gone_at.map(|at| (at, id.clone())))
            .collect();
        if offline.len() > self.limits.max_stored_sessions {
            offline.sort();
            let excess = offline.len() - self.limits.max_stored_sessions;
            for (_, id) in offline.into_iter().take(excess) {
                self.sessions.remove(&id);
            }
        }
    }

    /// Adds or replaces subscriptions; for each, whether it is new (v5 retain handling 1).
    pub fn subscribe(&mut self, client_id: &str, reqs: &[(SubRequest, u8)]) -> Vec<bool> {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return vec![false; reqs.len()];
        };
        reqs.iter()
            .map(|(r, granted)| {
                let sub = Sub {
                    filter: r.filter.clone(),
                    qos: *granted,
                    no_local: r.no_local,
                    retain_as_published: r.retain_as_published,
                };
                match session.subs.iter_mut().find(|s| s.filter == r.filter) {
                    Some(existing) => {
                        *existing = sub;
                        false
                    }
                    None => {
                        session.subs.push(sub);
                        true
                    }
                }
            })
            .collect()
    }

    /// Removes subscriptions: delivery for them stops at once.
    pub fn unsubscribe(&mut self, client_id: &str, filters: &[String]) {
        if let Some(session) = self.sessions.get_mut(client_id) {
            session.subs.retain(|s| !filters.contains(&s.filter));
        }
    }

    /// Sends `msg` to every session with a matching subscription, once per session at the
    /// highest QoS granted (capped by the message's), skipping `origin` where its matching
    /// subscriptions are no-local.
    pub fn route(&mut self, msg: &Msg, origin: Option<SessionKey>) {
        for session in self.sessions.values_mut() {
            let mut best: Option<(u8, bool)> = None;
            for sub in &session.subs {
                if (sub.no_local && origin == Some(session.key))
                    || !topic_matches(&sub.filter, &msg.topic)
                {
                    continue;
                }
                let (q, rap) = best.unwrap_or((0, false));
                best = Some((q.max(sub.qos), rap || sub.retain_as_published));
            }
            if let Some((qos, rap)) = best {
                let publish = OutPublish {
                    topic: msg.topic.clone(),
                    payload: msg.payload.clone(),
                    qos: qos.min(msg.qos),
                    retain: msg.retain && rap,
                    pkid: 0,
                    dup: false,
                };
                deliver(&self.stats, self.limits.queue, session, publish);
            }
        }
    }

    /// Sends retained messages (current params) to one client after it subscribed.
    pub fn send_retained(&mut self, client_id: &str, msgs: Vec<Msg>) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        for msg in msgs {
            let publish = OutPublish {
                topic: msg.topic,
                payload: msg.payload,
                qos: msg.qos,
                retain: true,
                pkid: 0,
                dup: false,
            };
            deliver(&self.stats, self.limits.queue, session, publish);
        }
    }

    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) from the client: the message is done.
    pub fn acked(&mut self, client_id: &str, pkid: u16) {
        if let Some(session) = self.sessions.get_mut(client_id) {
            session.inflight.remove(&pkid);
            fill_window(&self.stats, session);
        }
    }

    /// PUBREC from the client: answer PUBREL, then wait for PUBCOMP.
    pub fn received(&mut self, client_id: &str, pkid: u16) -> bool {
        match self
            .sessions
            .get_mut(client_id)
            .and_then(|s| s.inflight.get_mut(&pkid))
        {
            Some(f) => {
                f.released = true;
                true
            }
            None => false,
        }
    }
}

/// Queues one publish for a session: QoS 0 only to a connected client; QoS 1/2 into the
/// in-flight window, or the bounded pending queue.
fn deliver(stats: &BridgeStats, limit: usize, session: &mut Session, publish: OutPublish) {
    if publish.qos == 0 {
        if session.conn.is_some() {
            push(stats, session, Out::Publish(publish));
        }
        return;
    }
    if session.pending.len() >= limit.max(1) {
        match &session.conn {
            Some(conn) if conn.kick.is_set() => return,
            Some(conn) => {
                tracing::warn!(bridge = %stats.name, queued = session.pending.len(),
                    "MQTT client too slow: its queue is full; disconnecting it");
                conn.kick.kick(0x97, "slow client: queue full", true);
                return;
            }
            None => {
                session.pending.pop_front();
                BridgeStats::bump(&stats.refused);
            }
        }
    }
    session.pending.push_back(publish);
    fill_window(stats, session);
}

/// Moves pending QoS 1/2 messages into flight while the client's window has room.
fn fill_window(stats: &BridgeStats, session: &mut Session) {
    while session.conn.is_some() && session.inflight.len() < session.window {
        let Some(mut publish) = session.pending.pop_front() else {
            break;
        };
        let Some(pkid) = free_pkid(session) else {
            session.pending.push_front(publish);
            break;
        };
        publish.pkid = pkid;
        session.inflight.insert(
            pkid,
            Inflight {
                publish: publish.clone(),
                released: false,
            },
        );
        push(stats, session, Out::Publish(publish));
    }
}

fn free_pkid(session: &mut Session) -> Option<u16> {
    for _ in 0..u16::MAX {
        let id = session.next_pkid;
        session.next_pkid = session.next_pkid.checked_add(1).unwrap_or(1);
        if !session.inflight.contains_key(&id) {
            return Some(id);
        }
    }
    None
}

/// Hands a packet to the client's connection; a full channel means the client does not
/// keep up: it is disconnected (one log line), never waited for.
fn push(stats: &BridgeStats, session: &mut Session, out: Out) {
    let Some(conn) = &session.conn else { return };
    let is_publish = matches!(out, Out::Publish(_));
    match conn.tx.try_send(out) {
        Ok(()) => {
            if is_publish {
                BridgeStats::bump(&stats.sent);
            }
        }
        Err(mpsc::error::TrySendError::Full(_)) if !conn.kick.is_set() => {
            tracing::warn!(bridge = %stats.name, "MQTT client too slow: outbound queue full; disconnecting it");
            conn.kick
                .kick(0x97, "slow client: outbound queue full", true);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(queue: usize) -> Broker {
        Broker::new(
            Limits {
                max_clients: 2,
                queue,
                inflight: 2,
                max_stored_sessions: 10,
            },
            Arc::new(BridgeStats::new("mqtt-server", "test")),
        )
    }

    fn req(filter: &str, no_local: bool) -> SubRequest {
        SubRequest {
            filter: filter.into(),
            qos: 1,
            no_local,
            retain_as_published: false,
            retain_handling: 0,
        }
    }

    fn msg(topic: &str, qos: u8) -> Msg {
        Msg {
            topic: Arc::from(topic),
            payload: Bytes::from_static(b"x"),
            qos,
            retain: false,
        }
    }

    fn publishes(rx: &mut mpsc::Receiver<Out>) -> Vec<(u16, u8)> {
        let mut out = Vec::new();
        while let Ok(o) = rx.try_recv() {
            if let Out::Publish(p) = o {
                out.push((p.pkid, p.qos));
            }
        }
        out
    }

    #[test]
    fn routes_once_per_client_and_honours_no_local() {
        let mut b = broker(10);
        let mut a = b.attach("a", true, 0, None).unwrap();
        b.subscribe("a", &[(req("x/#", false), 1), (req("x/+", false), 0)]);
        b.route(&msg("x/1", 1), None);
        assert_eq!(publishes(&mut a.rx), vec![(1, 1)], "once, at the best QoS");
        b.subscribe("a", &[(req("x/#", true), 1)]);
        b.unsubscribe("a", &["x/+".into()]);
        b.route(&msg("x/2", 1), Some(a.key));
        assert!(publishes(&mut a.rx).is_empty(), "no-local");
        b.unsubscribe("a", &["x/#".into()]);
        b.route(&msg("x/3", 1), None);
        assert!(publishes(&mut a.rx).is_empty(), "unsubscribed");
    }

    #[test]
    fn window_then_queue_and_persistent_sessions_resume() {
        let mut b = broker(10);
        let mut a = b.attach("p", false, u32::MAX, None).unwrap();
        assert!(!a.session_present);
        b.subscribe("p", &[(req("t", false), 1)]);
        for _ in 0..3 {
            b.route(&msg("t", 1), None);
        }
        assert_eq!(publishes(&mut a.rx).len(), 2, "inflight window of 2");
        b.acked("p", 1);
        assert_eq!(publishes(&mut a.rx), vec![(3, 1)]);
        b.detach("p", a.conn_id);
        b.route(&msg("t", 1), None);
        let mut again = b.attach("p", false, u32::MAX, None).unwrap();
        assert!(again.session_present);
        // Unacknowledged 2 and 3 again, then the one queued while away.
        let got = publishes(&mut again.rx);
        assert_eq!(got.len(), 2, "{got:?}");
        b.acked("p", 2);
        assert_eq!(publishes(&mut again.rx).len(), 1);
        // A clean connect drops the session.
        let fresh = b.attach("p", true, 0, None).unwrap();
        assert!(!fresh.session_present);
    }

    #[test]
    fn takeover_kicks_and_limits_refuse() {
        let mut b = broker(10);
        let first = b.attach("same", true, 0, None).unwrap();
        let _second = b.attach("same", true, 0, None).unwrap();
        assert!(first.kick.is_set());
        let _other = b.attach("other", true, 0, None).unwrap();
        assert!(matches!(
            b.attach("third", true, 0, None),
            Err(ConnCode::Unavailable)
        ));
    }
}
