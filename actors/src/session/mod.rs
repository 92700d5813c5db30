//! A session: one client connection. It decodes frames, answers what it can itself (PING,
//! SYNC, GET, QUERY, ...), sends writes and publishes to the owning shard, applies its
//! subscriptions' delivery options to what shards deliver, and feeds the bounded outbound
//! queue its socket writer drains (WIRE §7).

mod appcheck;
pub mod bundle;
mod filter;
pub mod info;
pub mod outbound;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_ws::{CloseCode, CloseReason};
use bytes::Bytes;
use clasp_proto::{
    decode_frame, encode_frame, encode_snapshot_frames, Ack, Announce, Bundle, ClockSync, Decoded,
    ErrorMessage, FeatureSet, FrameHeader, Message, Pattern, Publish, QoS, QueryResult, Set,
    Subscribe, Welcome, PROTOCOL_VERSION,
};
use futures_util::future::join_all;

use crate::auth::grant::unix_now;
use crate::auth::{Action, Grant};
use crate::clock::now_micros;
use crate::health::Counters;
use crate::messages::*;
use crate::router::{CloseSession, Router, SessionEntry};
use crate::shard::{publish_qos, reply_frame, REPLY_HEADER};
pub use filter::{SubState, Verdict};
pub use info::{SessionInfo, SessionRow};
pub use outbound::{OutboundQueue, Outgoing, Pushed};

/// Prefix of P2P signalling addresses (WIRE §7.6).
const P2P_SIGNAL: &str = "/clasp/p2p/signal/";

/// A binary WebSocket message from the client, with its arrival time.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Inbound {
    /// The bytes.
    pub data: Bytes,
    /// Arrival (router clock, µs).
    pub received_us: u64,
}

/// Traffic that proves the peer alive (WS ping/pong, text messages).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Alive;

/// The socket is gone.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Disconnected;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingHello,
    Open,
    Closing,
}

/// The session actor.
pub struct Session {
    router: Router,
    key: SessionKey,
    id: Arc<str>,
    queue: Arc<OutboundQueue>,
    phase: Phase,
    features: FeatureSet,
    subs: HashMap<u32, SubState>,
    last_inbound: Instant,
    behind_since: Option<Instant>,
    me: Option<SessionRef>,
    /// What the token allows; `None` when the relay runs open (everything allowed).
    grant: Option<Arc<Grant>>,
    /// The HELLO name (a federation peer's router id).
    hello_name: String,
    /// When the peer is another router: the link actor that handles its federation traffic.
    federation: Option<Addr<crate::federation::FederationPeer>>,
    /// Name, transport and activity for the session listing; set at HELLO.
    info: Option<Arc<SessionInfo>>,
}

impl Session {
    /// A session for a connection whose writer drains `queue`.
    pub fn new(router: Router, queue: Arc<OutboundQueue>) -> Self {
        let key = router.next_session_key();
        Self {
            router,
            key,
            id: Arc::from(uuid::Uuid::new_v4().to_string()),
            queue,
            phase: Phase::AwaitingHello,
            features: FeatureSet::default(),
            subs: HashMap::new(),
            last_inbound: Instant::now(),
            behind_since: None,
            me: None,
            grant: None,
            hello_name: String::new(),
            federation: None,
            info: None,
        }
    }

    /// May this session do `action` on `address`? Always, when the relay runs open.
    fn may(&self, action: Action, address: &str) -> bool {
        self.grant
            .as_ref()
            .is_none_or(|g| g.scopes.allows(action, address))
    }

    /// Refuses an operation the session's scopes do not allow (ERROR 301, session kept).
    fn deny(&mut self, ctx: &mut Context<Self>, action: Action, address: &str) {
        let text = format!(
            "Permission denied: {} access to {address} not granted",
            action.as_str()
        );
        self.error(ctx, 301, text, Some(address.to_string()));
    }

    fn me(&self) -> Option<SessionRef> {
        self.me.clone()
    }

    fn close(&mut self, ctx: &mut Context<Self>, code: CloseCode, why: &str) {
        if self.phase == Phase::Closing {
            return;
        }
        tracing::debug!(session = %self.id, ?code, why, "closing");
        self.phase = Phase::Closing;
        self.queue.push_control(Outgoing::Close(Some(CloseReason {
            code,
            description: Some(why.to_string()),
        })));
        // The reader ends when the socket closes; stop anyway if the peer never answers.
        ctx.run_later(Duration::from_secs(5), |_, ctx| ctx.stop());
    }

    /// Queues a frame, applying back-pressure outcomes.
    fn push(
        &mut self,
        ctx: &mut Context<Self>,
        frame: Bytes,
        class: DeliveryClass,
        address: Option<clasp_proto::Address>,
    ) {
        let counters = &self.router.counters;
        Counters::bump(&counters.frames_out);
        counters
            .bytes_out
            .fetch_add(frame.len() as u64, std::sync::atomic::Ordering::Relaxed);
        counters.messages_out.bump_frame(&frame);
        match self.queue.push(frame, class, address) {
            Pushed::Queued => {
                if self.behind_since.is_some()
                    && self.queue.len() < self.router.config.session_queue / 2
                {
                    self.behind_since = None;
                }
            }
            Pushed::Conflated => {
                Counters::bump(&counters.dropped);
                Counters::bump(&counters.dropped_conflated);
            }
            Pushed::Shed => {
                Counters::bump(&counters.dropped);
                Counters::bump(&counters.dropped_shed);
            }
            Pushed::Overflow => {
                if self.behind_since.is_none() {
                    self.behind_since = Some(Instant::now());
                    let msg = format!(
                        "Buffer overflow: client is not reading; {} messages queued",
                        self.queue.len()
                    );
                    if let Some(f) = reply_frame(&Message::Error(ErrorMessage::new(503, msg, None)))
                    {
                        self.queue.push_control(Outgoing::Frame {
                            frame: f,
                            class: DeliveryClass::Reliable,
                            address: None,
                        });
                    }
                    Counters::bump(&counters.errors);
                }
            }
            Pushed::Disconnect => {
                Counters::bump(&counters.slow_disconnects);
                tracing::warn!(session = %self.id, "slow consumer disconnected");
                self.close(ctx, CloseCode::Again, "slow consumer: outbound queue full");
            }
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, message: &Message) {
        if let Some(frame) = reply_frame(message) {
            self.push(ctx, frame, DeliveryClass::Reliable, None);
        }
    }

    fn error(
        &mut self,
        ctx: &mut Context<Self>,
        code: u16,
        text: impl Into<String>,
        address: Option<String>,
    ) {
        Counters::bump(&self.router.counters.errors);
        self.send(ctx, &Message::Error(ErrorMessage::new(code, text, address)));
    }

    fn on_frame(&mut self, decoded: Decoded, received_us: u64, ctx: &mut Context<Self>) {
        let qos = decoded.header.qos;
        let decoded = match self.federation_frame(decoded, ctx) {
            Some(d) => d,
            None => return,
        };
        match decoded.message {
            Message::Hello(_) => {
                self.error(ctx, 101, "HELLO on an open session is ignored", None);
            }
            Message::Subscribe(s) => self.subscribe(s, ctx),
            Message::Unsubscribe(u) => {
                if let Some(sub) = self.subs.remove(&u.id) {
                    for shard in self.router.shards_for(&sub.pattern) {
                        shard.do_send(ShardUnsubscribe {
                            session: self.key,
                            id: u.id,
                        });
                    }
                }
                self.note_subscriptions();
            }
            Message::Set(set) if !self.may(Action::Write, set.address.as_str()) => {
                self.deny(ctx, Action::Write, set.address.as_str());
            }
            Message::Publish(p) if !self.may(Action::Write, p.address.as_str()) => {
                self.deny(ctx, Action::Write, p.address.as_str());
            }
            Message::Get(g) if !self.may(Action::Read, g.address.as_str()) => {
                self.deny(ctx, Action::Read, g.address.as_str());
            }
            Message::Set(set) => self.app_set(set, qos, ctx),
            Message::Publish(p) => self.app_publish(p, ctx),
            Message::Get(g) => {
                let shard = self.router.shard_for(g.address.as_str()).clone();
                let view = self.app_view();
                let fut = async move {
                    let param = shard
                        .send(ShardGet { address: g.address })
                        .await
                        .ok()
                        .flatten();
                    // A hidden param answers as an unknown one.
                    appcheck::view_params(view, param.into_iter().collect())
                        .await
                        .pop()
                };
                ctx.spawn(fut.into_actor(self).map(|param, act, ctx| {
                    // Unknown address: no reply at all, as the clients expect (§7.7).
                    if let Some(p) = param {
                        act.send(ctx, &clasp_proto::codec::snapshot_of(p));
                    }
                }));
            }
            Message::Bundle(b) => self.bundle(b, qos, ctx),
            Message::Sync(s) => {
                let reply = ClockSync {
                    t1: s.t1,
                    t2: Some(received_us),
                    t3: Some(now_micros()),
                };
                self.send(ctx, &Message::Sync(reply));
            }
            Message::Ping => self.send(ctx, &Message::Pong),
            Message::Announce(a) => self.announce(a, qos, ctx),
            Message::Query(q) => self.query(q.pattern, ctx),
            Message::Replay(r) if !self.may_pattern(&r.pattern) => {
                self.deny(ctx, Action::Read, r.pattern.as_str());
            }
            Message::Replay(r) => self.replay(r, ctx),
            // Reached only without the federation feature (see `federation_frame`).
            Message::FederationSync(_) => {
                self.error(ctx, 403, "FederationSync requires federation feature", None);
            }
            // Router-to-client messages and PONG: nothing to do.
            Message::Pong
            | Message::Welcome(_)
            | Message::Snapshot(_)
            | Message::Ack(_)
            | Message::Error(_)
            | Message::Result(_) => {}
        }
    }

    /// A federation peer's traffic goes to its link actor (started by its first
    /// FEDERATION_SYNC): handshake, param changes (SNAPSHOT), events, answers to forwarded
    /// writes and PONGs. Everything else (its SETs to namespaces owned here or beyond,
    /// PING, GET) is handled as for any session. `None`: consumed.
    fn federation_frame(&mut self, decoded: Decoded, ctx: &mut Context<Self>) -> Option<Decoded> {
        use crate::federation::{FederationPeer, FromRemote, Role, Wire};
        if !self.features.has(FeatureSet::FEDERATION) {
            return Some(decoded);
        }
        let to_peer = match &decoded.message {
            Message::FederationSync(_) => {
                if self.federation.is_none() {
                    let me = self.me()?;
                    let fed = &self.router.federation;
                    let key = fed.open_link(Role::Downlink, &self.id);
                    let name = (!self.hello_name.is_empty()).then(|| self.hello_name.clone());
                    let peer = FederationPeer::new(
                        self.router.clone(),
                        key,
                        Role::Downlink,
                        Wire::Session(me.recipient),
                        name,
                        self.grant.clone(),
                    )
                    .start();
                    self.federation = Some(peer);
                }
                true
            }
            Message::Publish(p) if !self.may(Action::Write, p.address.as_str()) => {
                let address = p.address.to_string();
                self.deny(ctx, Action::Write, &address);
                return None;
            }
            Message::Publish(_)
            | Message::Snapshot(_)
            | Message::Ack(_)
            | Message::Error(_)
            | Message::Pong => self.federation.is_some(),
            _ => false,
        };
        match (to_peer, &self.federation) {
            (true, Some(peer)) => {
                peer.do_send(FromRemote(decoded.message));
                None
            }
            _ => Some(decoded),
        }
    }

    /// May this session subscribe to (or replay) `pattern`? One scope must cover it all.
    fn may_pattern(&self, pattern: &Pattern) -> bool {
        self.grant
            .as_ref()
            .is_none_or(|g| g.scopes.allows_pattern(Action::Read, pattern))
    }

    fn subscribe(&mut self, s: Subscribe, ctx: &mut Context<Self>) {
        let Some(me) = self.me() else { return };
        if !self.may_pattern(&s.pattern) {
            self.deny(ctx, Action::Read, s.pattern.as_str());
            return;
        }
        let max = self.router.config.max_subscriptions;
        if !self.subs.contains_key(&s.id) && self.subs.len() >= max {
            let text = format!("Subscription limit reached (max {max})");
            self.error(ctx, 429, text, Some(s.pattern.to_string()));
            return;
        }
        // Same id ⇒ replace (RECOMMENDED §7.3).
        if let Some(old) = self.subs.remove(&s.id) {
            for shard in self.router.shards_for(&old.pattern) {
                shard.do_send(ShardUnsubscribe {
                    session: self.key,
                    id: s.id,
                });
            }
        }
        for shard in self.router.shards_for(&s.pattern) {
            shard.do_send(ShardSubscribe {
                session: me.clone(),
                id: s.id,
                pattern: s.pattern.clone(),
                types: s.types,
                snapshot: true,
                history: s.options.history,
            });
        }
        self.subs
            .insert(s.id, SubState::new(s.pattern, s.types, s.options));
        self.note_subscriptions();
    }

    /// Publishes the subscription count to the session listing.
    fn note_subscriptions(&self) {
        if let Some(info) = &self.info {
            info.subscriptions
                .store(self.subs.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn set(&mut self, set: Set, qos: QoS) {
        let Some(me) = self.me() else { return };
        let shard = self.router.shard_for(set.address.as_str());
        shard.do_send(ShardSet {
            origin: me,
            set,
            ack: qos >= QoS::Confirm,
        });
    }

    fn publish(&mut self, p: Publish, ctx: &mut Context<Self>) {
        let Some(me) = self.me() else { return };
        if let Some(target) = p
            .address
            .as_str()
            .strip_prefix(P2P_SIGNAL)
            .filter(|t| !t.contains('/'))
        {
            match self.router.session(target) {
                Some(entry) => {
                    let header = FrameHeader::new(publish_qos(p.signal));
                    if let Ok(frame) = encode_frame(&header, &Message::Publish(p)) {
                        entry.deliver.do_send(Deliver::direct(
                            Bytes::from(frame),
                            DeliveryClass::Reliable,
                            None,
                        ));
                    }
                }
                None => {
                    let text = format!("Target session not found: {target}");
                    self.error(ctx, 404, text, Some(p.address.to_string()));
                }
            }
            return;
        }
        self.router
            .shard_for(p.address.as_str())
            .do_send(ShardPublish {
                origin: me,
                publish: p,
            });
    }

    fn announce(&mut self, a: Announce, qos: QoS, ctx: &mut Context<Self>) {
        if let Some(def) = a
            .signals
            .iter()
            .find(|d| !self.may(Action::Write, &d.address))
        {
            let address = def.address.clone();
            self.deny(ctx, Action::Write, &address);
            return;
        }
        let mut by_shard: HashMap<usize, (Addr<crate::shard::Shard>, Vec<clasp_proto::SignalDef>)> =
            HashMap::new();
        for def in a.signals {
            let index = self.router.shard_index(&def.address);
            let addr = self.router.shards()[index].clone();
            by_shard
                .entry(index)
                .or_insert_with(|| (addr, Vec::new()))
                .1
                .push(def);
        }
        for (_, (shard, signals)) in by_shard {
            shard.do_send(ShardAnnounce { signals });
        }
        if qos >= QoS::Confirm {
            self.send(
                ctx,
                &Message::Ack(Ack {
                    address: Some(a.namespace),
                    ..Ack::default()
                }),
            );
        }
    }

    fn query(&mut self, pattern: Pattern, ctx: &mut Context<Self>) {
        let shards = self.router.shards_for(&pattern);
        let grant = self.grant.clone();
        let fut = async move {
            let answers = join_all(shards.iter().map(|s| {
                s.send(ShardQuery {
                    pattern: pattern.clone(),
                })
            }))
            .await;
            let mut signals: Vec<_> = answers
                .into_iter()
                .filter_map(Result::ok)
                .flat_map(|r| r.signals)
                .filter(|s| {
                    grant
                        .as_ref()
                        .is_none_or(|g| g.scopes.allows(Action::Read, &s.address))
                })
                .collect();
            signals.sort_by(|a, b| a.address.cmp(&b.address));
            QueryResult { signals }
        };
        ctx.wait(
            fut.into_actor(self)
                .map(|result, act, ctx| act.send(ctx, &Message::Result(result))),
        );
    }

    /// Sends an ACK once everything written so far is in the journal (at once without one).
    fn ack_when_durable(&mut self, ctx: &mut Context<Self>, ack: Ack) {
        let Some(journal) = self.router.journal.clone() else {
            self.send(ctx, &Message::Ack(ack));
            return;
        };
        let (done, durable) = tokio::sync::oneshot::channel();
        journal.do_send(crate::journal::Barrier(done));
        ctx.wait(
            async move { durable.await.is_ok() }
                .into_actor(self)
                .map(move |ok, act, ctx| {
                    if ok {
                        act.send(ctx, &Message::Ack(ack));
                    } else {
                        act.error(ctx, 500, "Journal unavailable: write not confirmed", None);
                    }
                }),
        );
    }

    /// REPLAY (WIRE §7.11, FEATURES PJ-3): journal entries the session may read, oldest first,
    /// each as the SET or PUBLISH it was, then an ACK naming the pattern (revision = the last
    /// entry's seq, 0 for none) so a client knows the replay is complete.
    fn replay(&mut self, r: clasp_proto::Replay, ctx: &mut Context<Self>) {
        let Some(journal) = self.router.journal.clone() else {
            let pattern = r.pattern.to_string();
            self.error(
                ctx,
                501,
                "Journal not configured on this router",
                Some(pattern),
            );
            return;
        };
        let pattern = r.pattern.to_string();
        let query = crate::journal::ReplayQuery {
            pattern: r.pattern,
            from: r.from,
            to: r.to,
            limit: r.limit,
            types: r.types,
        };
        ctx.wait(
            async move { journal.send(query).await }
                .into_actor(self)
                .map(move |answer, act, ctx| {
                    let entries = match answer {
                        Ok(Ok(entries)) => entries,
                        Ok(Err(e)) => {
                            act.error(
                                ctx,
                                500,
                                format!("Journal query failed: {e}"),
                                Some(pattern),
                            );
                            return;
                        }
                        Err(e) => {
                            act.error(ctx, 500, format!("Journal unavailable: {e}"), Some(pattern));
                            return;
                        }
                    };
                    let mut last = 0;
                    let mut frames = Vec::new();
                    for (seq, entry) in entries {
                        if !act.may(Action::Read, &entry.address) {
                            continue;
                        }
                        last = seq;
                        let frame = match entry.body {
                            crate::journal::Body::Set { value, revision } => {
                                match clasp_proto::Address::parse(&entry.address) {
                                    Ok(address) => {
                                        let set = Set {
                                            revision: Some(revision),
                                            ..Set::new(address, value)
                                        };
                                        encode_frame(&crate::shard::SET_HEADER, &Message::Set(set))
                                            .ok()
                                            .map(Bytes::from)
                                    }
                                    Err(_) => None,
                                }
                            }
                            crate::journal::Body::Publish { frame, .. } => Some(Bytes::from(frame)),
                        };
                        // The app config's visibility and redaction apply to replays too.
                        if let Some(f) =
                            frame.and_then(|f| act.app_view_replayed(&entry.address, f))
                        {
                            frames.push(f);
                        }
                    }
                    let done = Ack {
                        address: Some(pattern),
                        revision: Some(last),
                        ..Ack::default()
                    };
                    act.send_paced(ctx, frames, Message::Ack(done));
                }),
        );
    }

    /// Queues `frames` no faster than the client takes them (a replay may hold far more
    /// than the outbound queue), then `then`. Nothing is shed and the client is never cut off
    /// for being "slow" at a burst it asked for.
    fn send_paced(&mut self, ctx: &mut Context<Self>, frames: Vec<Bytes>, then: Message) {
        let queue = self.queue.clone();
        let limit = self.router.config.session_queue.max(1);
        let paced = async move {
            let mut frames = frames.into_iter().peekable();
            while frames.peek().is_some() {
                queue.wait_until_drained().await;
                let room = limit.saturating_sub(queue.len()).max(1);
                for frame in frames.by_ref().take(room) {
                    queue.push(frame, DeliveryClass::Reliable, None);
                }
            }
        };
        ctx.wait(
            paced
                .into_actor(self)
                .map(move |_, act, ctx| act.send(ctx, &then)),
        );
    }

    /// BUNDLE (FEATURES ST-18/19): all SETs are checked on their shards first and applied
    /// only if every one passes (two-phase across shards); PUBLISHes follow. A future
    /// timestamp holds the bundle until that router time.
    fn bundle(&mut self, b: Bundle, qos: QoS, ctx: &mut Context<Self>) {
        // All or nothing: one message the session may not write refuses the whole bundle.
        let denied = b.messages.iter().find_map(|m| match m {
            Message::Set(s) if !self.may(Action::Write, s.address.as_str()) => {
                Some(s.address.to_string())
            }
            Message::Publish(p) if !self.may(Action::Write, p.address.as_str()) => {
                Some(p.address.to_string())
            }
            _ => None,
        });
        if let Some(address) = denied {
            let text = format!(
                "Bundle rejected: Permission denied: write access to {address} not granted"
            );
            self.error(ctx, 301, text, Some(address));
            return;
        }
        self.app_bundle(b, qos, ctx);
    }

    /// BUNDLE after its scope and app-config checks: now, or at its timestamp.
    fn bundle_checked(&mut self, b: Bundle, qos: QoS, ctx: &mut Context<Self>) {
        bundle::at_time(ctx, self, b.timestamp, move |act, ctx| {
            act.run_bundle(b.messages, qos, ctx)
        });
    }

    fn run_bundle(&mut self, messages: Vec<Message>, qos: QoS, ctx: &mut Context<Self>) {
        let Some(me) = self.me() else { return };
        let fut = bundle::apply(self.router.clone(), me, messages);
        ctx.wait(
            fut.into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok(revision) => {
                        if qos >= QoS::Confirm {
                            act.ack_when_durable(
                                ctx,
                                Ack {
                                    revision,
                                    ..Ack::default()
                                },
                            );
                        }
                    }
                    Err((code, text, address)) => {
                        let code = if code == 401 { 401 } else { 400.max(code) };
                        act.error(ctx, code, format!("Bundle rejected: {text}"), address);
                    }
                }),
        );
    }

    /// HELLO on a relay that requires tokens: the session opens only with a valid one; a
    /// refusal is told (ERROR 300/302) and the connection closed, so clients never hang.
    fn authenticate(&mut self, h: clasp_proto::Hello, ctx: &mut Context<Self>) {
        self.hello_name = h.name.clone();
        if h.features.has(FeatureSet::FEDERATION) {
            if let Some(secret) = self.router.federation.config().token.clone() {
                let given = h.token.as_deref().unwrap_or("");
                if same_secret(given, &secret) {
                    // The shared federation secret: a trusted router, everything allowed.
                    self.hello(h.features, h.name.clone(), ctx);
                    return;
                }
                if self.router.auth.is_none() {
                    self.error(ctx, 300, "Invalid token: wrong federation token", None);
                    self.close(ctx, CloseCode::Policy, "authentication failed");
                    return;
                }
            }
        }
        let Some(auth) = self.router.auth.clone() else {
            self.hello(h.features, h.name, ctx);
            return;
        };
        let token = h.token.unwrap_or_default();
        // `wait` holds the mailbox: frames sent right after HELLO queue until this answers.
        ctx.wait(
            async move { auth.send(crate::auth::actor::Validate { token }).await }
                .into_actor(self)
                .map(move |answer, act, ctx| {
                    let answer = answer.unwrap_or_else(|_| {
                        Err(crate::auth::Denial::Unavailable(
                            "auth service not running".into(),
                        ))
                    });
                    match answer {
                        Ok(grant) => {
                            tracing::debug!(session = %act.id, subject = %grant.subject, "authenticated");
                            act.grant = Some(grant);
                            act.hello(h.features, h.name, ctx);
                        }
                        Err(denial) => {
                            act.error(ctx, denial.code(), denial.to_string(), None);
                            act.close(ctx, CloseCode::Policy, "authentication failed");
                        }
                    }
                }),
        );
    }

    /// Ends the session when its grant was revoked or has expired (checked every 500 ms).
    fn check_grant(&mut self, ctx: &mut Context<Self>) {
        let Some(grant) = self.grant.clone() else {
            return;
        };
        if self.phase != Phase::Open {
            return;
        }
        if grant.is_revoked() {
            self.error(ctx, 300, "Invalid token: revoked", None);
            self.close(ctx, CloseCode::Policy, "token revoked");
        } else if grant.is_expired(unix_now()) {
            self.error(ctx, 302, "Token expired", None);
            self.close(ctx, CloseCode::Policy, "token expired");
        }
    }

    fn hello(&mut self, features: FeatureSet, name: String, ctx: &mut Context<Self>) {
        self.phase = Phase::Open;
        self.features = features;
        let transport = if self.router.config.tls.is_some() {
            "websocket+tls"
        } else {
            "websocket"
        };
        let info = Arc::new(SessionInfo::new(
            name,
            transport,
            self.grant.as_ref().map(|g| g.subject.clone()),
            self.grant
                .as_ref()
                .map(|g| g.scopes.iter().map(ToString::to_string).collect()),
        ));
        self.info = Some(info.clone());
        let me = SessionRef {
            key: self.key,
            id: self.id.clone(),
            recipient: ctx.address().recipient(),
        };
        self.router.register(
            self.id.clone(),
            SessionEntry {
                key: self.key,
                close: ctx.address().recipient(),
                deliver: me.recipient.clone(),
                queue: self.queue.clone(),
                info,
            },
        );
        self.me = Some(me);
        let welcome = Welcome {
            version: PROTOCOL_VERSION,
            features: FeatureSet::ROUTER_DEFAULT,
            time: now_micros(),
            session: self.id.to_string(),
            name: self.router.config.name.clone(),
            token: None,
        };
        self.send(ctx, &Message::Welcome(welcome));
        if features.has(FeatureSet::FEDERATION) {
            // Routers sync what they declare (RequestSync), not the whole store.
            if self.grant.is_some() {
                ctx.run_interval(Duration::from_millis(500), |act, ctx| act.check_grant(ctx));
            }
            return;
        }
        // The whole store, chunked by size; one empty SNAPSHOT if there is nothing (§7.1).
        // With auth, only what the session may read (WIRE §10.4 RECOMMENDED).
        let shards = self.router.shards().to_vec();
        let grant = self.grant.clone();
        let view = self.app_view();
        if grant.is_some() {
            ctx.run_interval(Duration::from_millis(500), |act, ctx| act.check_grant(ctx));
        }
        let fut = async move {
            let everything = match Pattern::compile("/**") {
                Ok(p) => p,
                Err(_) => return Vec::new(),
            };
            let parts = join_all(shards.iter().map(|s| {
                s.send(ShardSnapshot {
                    pattern: everything.clone(),
                })
            }))
            .await;
            let params = parts
                .into_iter()
                .filter_map(Result::ok)
                .flatten()
                .filter(|p| {
                    grant
                        .as_ref()
                        .is_none_or(|g| g.scopes.allows(Action::Read, p.address.as_str()))
                })
                .collect::<Vec<_>>();
            appcheck::view_params(view, params).await
        };
        ctx.wait(fut.into_actor(self).map(|params, act, ctx| {
            match encode_snapshot_frames(&REPLY_HEADER, &params) {
                Ok(frames) => {
                    for f in frames {
                        act.push(ctx, Bytes::from(f), DeliveryClass::Reliable, None);
                    }
                }
                Err(e) => tracing::error!(error = %e, "initial snapshot does not encode"),
            }
        }));
    }

    fn deliver(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        if self.phase != Phase::Open {
            return;
        }
        // Defence in depth: subscriptions are checked when made, but a grant never lets a
        // value through to a session that may not read its address.
        if let (Some(grant), Some(address)) = (&self.grant, &msg.delivery.address) {
            if !grant.scopes.allows(Action::Read, address.as_str()) {
                return;
            }
        }
        // App-config visibility and redaction (may re-encode, hide, or defer the delivery).
        if let Some(msg) = self.app_view_delivery(msg, ctx) {
            self.deliver_viewed(msg, ctx);
        }
    }

    /// A delivery this session may see: its subscriptions' options, then the queue.
    fn deliver_viewed(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        let d = msg.delivery;
        if !msg.subs.is_empty() {
            let now = Instant::now();
            let mut send = false;
            let mut hold: Option<(u32, Duration)> = None;
            let mut any_known = false;
            for id in msg.subs.iter() {
                let Some(sub) = self.subs.get_mut(id) else {
                    continue;
                };
                any_known = true;
                match sub.consider(&d, now) {
                    Verdict::Send => send = true,
                    Verdict::Hold(delay) => hold = hold.or(Some((*id, delay))),
                    Verdict::Replaced | Verdict::Suppress => {}
                }
            }
            if !any_known {
                // Unsubscribed while the delivery was in flight.
                return;
            }
            if !send {
                if let (Some((id, delay)), Some(address)) = (hold, d.address.clone()) {
                    ctx.run_later(delay, move |act, ctx| {
                        let now = Instant::now();
                        if let Some(held) = act
                            .subs
                            .get_mut(&id)
                            .and_then(|s| s.take_pending(&address, now))
                        {
                            act.push(ctx, held.frame.clone(), held.class, held.address.clone());
                        }
                    });
                }
                return;
            }
            self.router
                .counters
                .delivery_latency
                .observe(d.created.elapsed());
        }
        self.push(ctx, d.frame.clone(), d.class, d.address.clone());
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(64);
        let hello_timeout = self.router.config.hello_timeout;
        ctx.run_later(hello_timeout, |act, ctx| {
            if act.phase == Phase::AwaitingHello {
                act.close(ctx, CloseCode::Policy, "no HELLO received in time");
            }
        });
        let timeout = self.router.config.session_timeout;
        let every = (timeout / 3).max(Duration::from_millis(100));
        ctx.run_interval(every, move |act, ctx| {
            if act.last_inbound.elapsed() > timeout {
                act.close(ctx, CloseCode::Away, "session timed out");
            } else {
                act.queue.push_control(Outgoing::Ping);
            }
            if let Some(since) = act.behind_since {
                if since.elapsed() > Duration::from_secs(10) {
                    Counters::bump(&act.router.counters.slow_disconnects);
                    act.close(ctx, CloseCode::Again, "slow consumer: behind for 10 s");
                }
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(peer) = self.federation.take() {
            peer.do_send(crate::federation::CloseLink(Some(
                "leaf disconnected".into(),
            )));
        }
        self.queue.close();
        self.router.unregister(&self.id);
        for shard in self.router.shards() {
            shard.do_send(SessionGone {
                key: self.key,
                id: self.id.clone(),
            });
        }
        self.router.release();
        tracing::debug!(session = %self.id, "ended");
    }
}

impl Handler<Inbound> for Session {
    type Result = ();
    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        self.last_inbound = Instant::now();
        let counters = &self.router.counters;
        Counters::bump(&counters.frames_in);
        if let Some(info) = &self.info {
            Counters::bump(&info.frames_in);
        }
        counters
            .bytes_in
            .fetch_add(msg.data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        match self.phase {
            Phase::Closing => {}
            Phase::AwaitingHello => match decode_frame(&msg.data) {
                Ok(Decoded {
                    message: Message::Hello(h),
                    ..
                }) => self.authenticate(h, ctx),
                Ok(other) => {
                    let why = format!("expected HELLO, got {}", other.message.name());
                    self.close(ctx, CloseCode::Policy, &why);
                }
                Err(e) => {
                    let why = format!("expected HELLO: {e}");
                    self.close(ctx, CloseCode::Protocol, &why);
                }
            },
            Phase::Open => match decode_frame(&msg.data) {
                Ok(decoded) => {
                    counters.messages_in.bump_name(decoded.message.name());
                    self.on_frame(decoded, msg.received_us, ctx)
                }
                Err(e) => {
                    tracing::debug!(session = %self.id, error = %e, "undecodable frame");
                    let subject = e.subject().map(str::to_string);
                    self.error(ctx, e.error_code(), e.to_string(), subject);
                }
            },
        }
    }
}

impl Handler<Alive> for Session {
    type Result = ();
    fn handle(&mut self, _: Alive, _: &mut Context<Self>) {
        self.last_inbound = Instant::now();
    }
}

impl Handler<Disconnected> for Session {
    type Result = ();
    fn handle(&mut self, _: Disconnected, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<CloseSession> for Session {
    type Result = ();
    fn handle(&mut self, _: CloseSession, ctx: &mut Context<Self>) {
        self.close(ctx, CloseCode::Away, "relay shutting down");
    }
}

impl Handler<Deliver> for Session {
    type Result = ();
    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        self.deliver(msg, ctx);
    }
}

/// Compares a presented federation token with the secret in constant time.
fn same_secret(given: &str, secret: &str) -> bool {
    use ring::digest::{digest, SHA256};
    use subtle::ConstantTimeEq as _;
    // Hash first so the comparison does not leak the secret's length either.
    let (a, b) = (
        digest(&SHA256, given.as_bytes()),
        digest(&SHA256, secret.as_bytes()),
    );
    a.as_ref().ct_eq(b.as_ref()).into()
}
