//! `FederationPeer`: one link to another router, whichever end dialled. To the shards it
//! looks like a session: it subscribes to what the other side should mirror, and it writes
//! what the other side owns and sends. To the other router it speaks the CLASP protocol:
//! FEDERATION_SYNC for the handshake, SNAPSHOT for param changes (owner revision kept),
//! PUBLISH for events, SET + ACK/ERROR for writes forwarded to an owner.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use clasp_proto::{
    decode_frame, encode_frame, encode_snapshot_frames, Ack, Address, ErrorMessage, FederationOp,
    FederationSync, FrameHeader, Message, ParamState, Pattern, Set, Snapshot, TypeMask,
};
use futures_util::future::join_all;
use tokio::sync::mpsc;

use super::registry::{unix_ms, Federation, LinkKey, LinkState, Role};
use super::{MAX_PATTERNS, MAX_VECTOR};
use crate::auth::{Action, Grant};
use crate::messages::*;
use crate::router::Router;
use crate::shard::{ShardReplicate, REPLY_HEADER, SET_HEADER};

/// How often each end measures the link's round trip.
const PING_EVERY: Duration = Duration::from_secs(2);
/// A link with nothing heard for this long is dead (a cut cable sends no FIN): it is
/// closed, so writes get 502 at once and the uplink redials.
const SILENCE: Duration = Duration::from_secs(6);
/// Param changes sent in one SNAPSHOT frame at most.
const BATCH: usize = 256;
/// Signal types other than Param: events crossing towards an owner's side.
const EVENTS_ONLY: TypeMask = TypeMask(0x1E);

/// How frames reach the other router.
pub enum Wire {
    /// Through the session of a leaf that dialled us (its outbound queue).
    Session(Recipient<Deliver>),
    /// Through our own WebSocket to a hub (bounded: a link that falls this far behind is
    /// dropped and resyncs on reconnect).
    Socket(mpsc::Sender<Bytes>),
}

impl Wire {
    fn send(&self, frame: Bytes) -> bool {
        match self {
            Wire::Session(r) => {
                r.do_send(Deliver::direct(frame, DeliveryClass::Reliable, None));
                true
            }
            Wire::Socket(tx) => tx.try_send(frame).is_ok(),
        }
    }
}

/// A message the other router sent over the link.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct FromRemote(pub Message);

/// A write to an address owned through this link (from a shard): send it to the owner and
/// answer `origin` with the owner's ACK or ERROR, or ERROR 502.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ForwardSet {
    /// Who wrote it (gets the answer).
    pub origin: SessionRef,
    /// The write.
    pub set: Set,
    /// Whether `origin` asked for an ACK.
    pub ack: bool,
}

/// The route table changed: declare again and resubscribe.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct RoutesChanged;

/// Sends the param changes gathered while the mailbox drained. A message to self, not a
/// zero timer: a timer waits for the runtime's next 1 ms tick, which is latency on every hop.
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct Flush;

impl Handler<Flush> for FederationPeer {
    type Result = ();
    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) {
        self.flush(ctx);
    }
}

/// Ends the link (its transport is gone).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct CloseLink(pub Option<String>);

struct Pending {
    origin: Recipient<Deliver>,
    value: clasp_proto::Value,
    ack: bool,
    deadline: Instant,
}

/// The link actor.
pub struct FederationPeer {
    router: Router,
    fed: Federation,
    key: LinkKey,
    role: Role,
    wire: Wire,
    /// Who the other side is, once known (HELLO name or DeclareNamespaces origin).
    remote: Option<Arc<str>>,
    /// What the other side's token allows; `None`: everything (open relay, shared secret).
    grant: Option<Arc<Grant>>,
    me: Option<SessionRef>,
    /// What we declared last.
    declared: Vec<Pattern>,
    /// Our shard subscriptions: (id, pattern).
    subs: Vec<(u32, Pattern)>,
    next_sub: u32,
    outgoing: Vec<ParamState>,
    flush_pending: bool,
    /// Events sent and received since the last flush, added to the link's counters there
    /// (one lock of the shared table per mailbox drain, not per event).
    events_sent: u64,
    events_received: u64,
    pending: HashMap<Address, VecDeque<Pending>>,
    ping_sent: Option<Instant>,
    last_heard: Instant,
    close_reason: Option<String>,
}

impl FederationPeer {
    /// A link `key` over `wire`. `remote` is the other router's id when already known;
    /// `grant` what its token allows.
    pub fn new(
        router: Router,
        key: LinkKey,
        role: Role,
        wire: Wire,
        remote: Option<String>,
        grant: Option<Arc<Grant>>,
    ) -> Self {
        Self {
            fed: router.federation.clone(),
            router,
            key,
            role,
            wire,
            remote: remote.map(Arc::from),
            grant,
            me: None,
            declared: Vec::new(),
            subs: Vec::new(),
            next_sub: 1,
            outgoing: Vec::new(),
            flush_pending: false,
            events_sent: 0,
            events_received: 0,
            pending: HashMap::new(),
            ping_sent: None,
            last_heard: Instant::now(),
            close_reason: None,
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, message: &Message, header: FrameHeader) {
        match encode_frame(&header, message) {
            Ok(f) => {
                if !self.wire.send(Bytes::from(f)) {
                    self.close_reason = Some("link fell behind (send queue full)".into());
                    ctx.stop();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, kind = message.name(), "federation frame does not encode")
            }
        }
    }

    fn reply(&mut self, ctx: &mut Context<Self>, message: &Message) {
        self.send(ctx, message, REPLY_HEADER);
    }

    fn sync_message(&self, op: FederationOp, patterns: Vec<Pattern>) -> Message {
        Message::FederationSync(FederationSync {
            op,
            patterns,
            revisions: Vec::new(),
            since_revision: None,
            origin: Some(self.fed.id().to_string()),
        })
    }

    /// Declares what is reachable through us (when it changed) and subscribes to it.
    fn declare(&mut self, ctx: &mut Context<Self>) {
        let mut patterns = self.fed.declared_to(self.key, self.remote.as_deref());
        if let Some(grant) = &self.grant {
            // The other side sees only what its token may read.
            patterns.retain(|p| grant.scopes.allows_pattern(Action::Read, p));
        }
        let strs = |v: &[Pattern]| v.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>();
        if strs(&patterns) != strs(&self.declared) || self.subs.is_empty() {
            self.declared = patterns.clone();
            let msg = self.sync_message(FederationOp::DeclareNamespaces, patterns);
            self.reply(ctx, &msg);
        }
        self.resubscribe();
    }

    /// Subscribes to every param change the other side mirrors (all types), and to events
    /// in the namespaces owned through this link (they must reach the owner's side too).
    fn resubscribe(&mut self) {
        let Some(me) = self.me.clone() else { return };
        for (id, pattern) in self.subs.drain(..) {
            for shard in self.router.shards_for(&pattern) {
                shard.do_send(ShardUnsubscribe {
                    session: me.key,
                    id,
                });
            }
        }
        let all = self.declared.iter().map(|p| (p.clone(), TypeMask::ALL));
        let events = self
            .fed
            .claimed_via(self.key)
            .into_iter()
            .map(|p| (p, EVENTS_ONLY));
        let wanted: Vec<(Pattern, TypeMask)> = all.chain(events).collect();
        for (pattern, types) in wanted {
            let id = self.next_sub;
            self.next_sub += 1;
            for shard in self.router.shards_for(&pattern) {
                shard.do_send(ShardSubscribe {
                    session: me.clone(),
                    id,
                    pattern: pattern.clone(),
                    types,
                    snapshot: false,
                    history: None,
                });
            }
            self.subs.push((id, pattern));
        }
    }

    fn on_remote(&mut self, message: Message, ctx: &mut Context<Self>) {
        match message {
            Message::FederationSync(sync) => self.on_sync(sync, ctx),
            Message::Snapshot(s) => self.on_params(s.params),
            Message::Publish(p) => {
                if self.fed.routes().is_federated(p.address.as_str()) {
                    self.events_received += 1;
                    self.schedule_flush(ctx);
                    if let Some(me) = self.me.clone() {
                        self.router
                            .shard_for(p.address.as_str())
                            .do_send(ShardPublish {
                                origin: me,
                                publish: p,
                            });
                    }
                }
            }
            // A hub forwarding a write to us (or to a router beyond us) as the owner's side.
            Message::Set(set) => {
                if let Some(me) = self.me.clone() {
                    self.router
                        .shard_for(set.address.as_str())
                        .do_send(ShardSet {
                            origin: me,
                            set,
                            ack: true,
                        });
                }
            }
            Message::Ack(a) => match a.address.clone() {
                Some(address) => self.answer(&address, Ok(a)),
                // Our declaration was accepted.
                None => {
                    self.fed.update(self.key, |l| {
                        if l.state == LinkState::Declaring {
                            l.state = LinkState::Syncing;
                        }
                    });
                }
            },
            Message::Error(e) => match e.address.clone() {
                Some(address) => self.answer(&address, Err(e)),
                None => {
                    tracing::error!(link = self.key, code = e.code, message = %e.message, "federation peer refused");
                    let text = format!("{} {}", e.code, e.message);
                    self.fed.update(self.key, |l| {
                        l.last_error = Some(text.clone());
                        if matches!(l.state, LinkState::Declaring | LinkState::Syncing) {
                            l.state = LinkState::Refused;
                        }
                    });
                    if e.code == 409 || e.code == 403 || e.code == 401 || e.code == 300 {
                        self.close_reason = Some(text);
                        ctx.stop();
                    }
                }
            },
            Message::Ping => self.reply(ctx, &Message::Pong),
            Message::Pong => {
                if let Some(sent) = self.ping_sent.take() {
                    let ms = sent.elapsed().as_secs_f64() * 1000.0;
                    self.fed.update(self.key, |l| l.lag_ms = Some(ms));
                }
            }
            other => tracing::debug!(kind = other.name(), "federation link ignores message"),
        }
    }

    fn on_sync(&mut self, sync: FederationSync, ctx: &mut Context<Self>) {
        match sync.op {
            FederationOp::DeclareNamespaces => {
                if sync.patterns.len() > MAX_PATTERNS {
                    let text = format!("too many namespaces (max {MAX_PATTERNS})");
                    self.reply(ctx, &Message::Error(ErrorMessage::new(400, text, None)));
                    return;
                }
                if let Some(grant) = &self.grant {
                    let bad = sync.patterns.iter().find(|p| {
                        !grant.scopes.allows_pattern(Action::Read, p)
                            || !grant.scopes.allows_pattern(Action::Write, p)
                    });
                    if let Some(p) = bad {
                        let text = format!("insufficient scope for namespace: {p}");
                        self.reply(ctx, &Message::Error(ErrorMessage::new(403, text, None)));
                        return;
                    }
                }
                let remote: Arc<str> = match (&sync.origin, &self.remote) {
                    (Some(o), _) if !o.is_empty() => Arc::from(o.as_str()),
                    (_, Some(r)) => r.clone(),
                    _ => Arc::from(format!("link-{}", self.key)),
                };
                self.remote = Some(remote.clone());
                if let Some(me) = &mut self.me {
                    // Writes this link makes are recorded under the other router's id.
                    me.id = Arc::from(format!("fed:{remote}"));
                }
                let patterns = sync.patterns.clone();
                match self
                    .fed
                    .claim(self.key, self.role, &remote, patterns.clone())
                {
                    Ok(()) => {
                        self.reply(ctx, &Message::Ack(Ack::default()));
                        tracing::info!(link = self.key, peer = %remote, namespaces = patterns.len(), "federation namespaces declared");
                        // Catch up on what they own: send what we hold, they answer newer.
                        let fut = revision_vector(self.router.clone(), patterns.clone());
                        ctx.wait(fut.into_actor(self).map(move |revisions, act, ctx| {
                            let msg = Message::FederationSync(FederationSync {
                                op: FederationOp::RequestSync,
                                patterns,
                                revisions,
                                since_revision: None,
                                origin: Some(act.fed.id().to_string()),
                            });
                            act.reply(ctx, &msg);
                            act.fed.update(act.key, |l| {
                                if l.state != LinkState::Up {
                                    l.state = LinkState::Syncing;
                                }
                            });
                        }));
                    }
                    Err(e) => {
                        tracing::warn!(link = self.key, peer = %remote, error = %e, "federation claim refused");
                        let text = e.to_string();
                        self.fed
                            .update(self.key, |l| l.last_error = Some(text.clone()));
                        self.reply(ctx, &Message::Error(ErrorMessage::new(409, text, None)));
                    }
                }
            }
            FederationOp::RequestSync | FederationOp::RevisionVector => {
                let complete = sync.op == FederationOp::RequestSync;
                if sync.patterns.len() > MAX_PATTERNS || sync.revisions.len() > 10 * MAX_VECTOR {
                    let text = "too many patterns or revisions in sync request".to_string();
                    self.reply(ctx, &Message::Error(ErrorMessage::new(400, text, None)));
                    return;
                }
                if let Some(p) = sync
                    .patterns
                    .iter()
                    .find(|p| !self.declared.iter().any(|d| d.covers(p)))
                {
                    let text = format!("pattern '{p}' not covered by declared namespaces");
                    self.reply(ctx, &Message::Error(ErrorMessage::new(403, text, None)));
                    return;
                }
                let theirs: HashMap<Address, u64> = sync.revisions.into_iter().collect();
                let router = self.router.clone();
                let patterns = sync.patterns.clone();
                let fut = async move { newer_params(router, &patterns, &theirs).await };
                ctx.wait(fut.into_actor(self).map(move |params, act, ctx| {
                    let routes = act.fed.routes();
                    let params: Vec<ParamState> = params
                        .into_iter()
                        .filter(|p| !routes.is_via(p.address.as_str(), act.key))
                        .collect();
                    let n = params.len() as u64;
                    if !params.is_empty() {
                        match encode_snapshot_frames(&REPLY_HEADER, &params) {
                            Ok(frames) => {
                                for f in frames {
                                    if !act.wire.send(Bytes::from(f)) {
                                        act.close_reason = Some("link fell behind".into());
                                        ctx.stop();
                                        return;
                                    }
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "sync snapshot does not encode"),
                        }
                    }
                    act.fed.update(act.key, |l| l.sent += n);
                    if complete {
                        let msg = act.sync_message(FederationOp::SyncComplete, sync.patterns);
                        act.reply(ctx, &msg);
                    }
                }));
            }
            FederationOp::SyncComplete => {
                tracing::info!(link = self.key, peer = ?self.remote, "federation sync complete");
                self.fed.update(self.key, |l| {
                    l.state = LinkState::Up;
                    l.last_sync_ms = Some(unix_ms());
                    l.last_error = None;
                });
            }
        }
    }

    /// Param changes from the owner's side: applied with the owner's revision.
    fn on_params(&mut self, params: Vec<ParamState>) {
        let Some(me) = self.me.clone() else { return };
        let routes = self.fed.routes();
        let mut by_shard: HashMap<usize, Vec<ParamState>> = HashMap::new();
        let mut n = 0;
        for p in params {
            // Only what is owned through this link; anything else is not theirs to tell.
            if routes.is_via(p.address.as_str(), self.key) {
                n += 1;
                by_shard
                    .entry(self.router.shard_index(p.address.as_str()))
                    .or_default()
                    .push(p);
            }
        }
        self.fed.update(self.key, |l| l.received += n);
        for (i, params) in by_shard {
            if let Some(shard) = self.router.shards().get(i) {
                shard.do_send(ShardReplicate {
                    origin: me.clone(),
                    params,
                });
            }
        }
    }

    /// The owner answered a forwarded write: pass it on to whoever wrote it.
    fn answer(&mut self, address: &str, outcome: Result<Ack, ErrorMessage>) {
        let Ok(addr) = Address::parse(address) else {
            return;
        };
        let Some(p) = self.pending.get_mut(&addr).and_then(VecDeque::pop_front) else {
            // Not ours: an answer to a SET the other side made through us (relay it back).
            return;
        };
        if self.pending.get(&addr).is_some_and(VecDeque::is_empty) {
            self.pending.remove(&addr);
        }
        match outcome {
            Ok(ack) => {
                // Read-your-writes: the mirror has the owner's value before the writer hears.
                if let (Some(revision), Some(me)) = (ack.revision, self.me.clone()) {
                    self.router.shard_for(address).do_send(ShardReplicate {
                        origin: me,
                        params: vec![ParamState {
                            address: addr.clone(),
                            value: p.value,
                            revision,
                            writer: self.remote.as_ref().map(|r| r.to_string()),
                            timestamp: Some(crate::clock::now_micros()),
                        }],
                    });
                }
                if p.ack {
                    crate::shard::reply(&p.origin, &Message::Ack(ack));
                }
            }
            Err(e) => {
                self.fed.update(self.key, |l| l.forward_errors += 1);
                crate::shard::reply(&p.origin, &Message::Error(e));
            }
        }
    }

    fn expire_pending(&mut self) {
        let now = Instant::now();
        let owner = self.remote.clone().unwrap_or_else(|| Arc::from("?"));
        let timeout = self.fed.config().forward_timeout;
        let mut failed = 0;
        self.pending.retain(|address, queue| {
            while queue.front().is_some_and(|p| p.deadline <= now) {
                if let Some(p) = queue.pop_front() {
                    failed += 1;
                    let text = format!(
                        "owner router '{owner}' did not answer within {} ms",
                        timeout.as_millis()
                    );
                    crate::shard::reply(
                        &p.origin,
                        &Message::Error(ErrorMessage::new(502, text, Some(address.to_string()))),
                    );
                }
            }
            !queue.is_empty()
        });
        if failed > 0 {
            self.fed.update(self.key, |l| l.forward_errors += failed);
        }
    }

    fn schedule_flush(&mut self, ctx: &mut Context<Self>) {
        if !self.flush_pending {
            self.flush_pending = true;
            ctx.notify(Flush);
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.flush_pending = false;
        let params = std::mem::take(&mut self.outgoing);
        let n = params.len() as u64 + std::mem::take(&mut self.events_sent);
        let received = std::mem::take(&mut self.events_received);
        if received > 0 {
            self.fed.update(self.key, |l| l.received += received);
        }
        for chunk in params.chunks(BATCH) {
            let msg = Message::Snapshot(Snapshot {
                params: chunk.to_vec(),
            });
            self.reply(ctx, &msg);
        }
        if n > 0 {
            self.fed.update(self.key, |l| l.sent += n);
        }
    }
}

/// (address, revision) of every param matching `patterns` here (capped: without it the
/// other side sends everything).
async fn revision_vector(router: Router, patterns: Vec<Pattern>) -> Vec<(Address, u64)> {
    let mut out = Vec::new();
    for pattern in &patterns {
        let parts = join_all(router.shards_for(pattern).iter().map(|s| {
            s.send(ShardSnapshot {
                pattern: pattern.clone(),
            })
        }))
        .await;
        out.extend(
            parts
                .into_iter()
                .filter_map(Result::ok)
                .flatten()
                .map(|p| (p.address, p.revision)),
        );
        if out.len() > MAX_VECTOR {
            return Vec::new();
        }
    }
    out
}

/// Params matching `patterns` that are newer here than in `theirs`.
async fn newer_params(
    router: Router,
    patterns: &[Pattern],
    theirs: &HashMap<Address, u64>,
) -> Vec<ParamState> {
    let mut out: Vec<ParamState> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for pattern in patterns {
        let parts = join_all(router.shards_for(pattern).iter().map(|s| {
            s.send(ShardSnapshot {
                pattern: pattern.clone(),
            })
        }))
        .await;
        for p in parts.into_iter().filter_map(Result::ok).flatten() {
            if p.revision > theirs.get(&p.address).copied().unwrap_or(0)
                && seen.insert(p.address.clone())
            {
                out.push(p);
            }
        }
    }
    out
}

impl Actor for FederationPeer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(65_536);
        let id = match &self.remote {
            Some(r) => format!("fed:{r}"),
            None => format!("fed:link-{}", self.key),
        };
        self.me = Some(SessionRef {
            key: self.router.next_session_key(),
            id: Arc::from(id),
            recipient: ctx.address().recipient(),
        });
        self.fed.attach(self.key, ctx.address());
        self.declare(ctx);
        ctx.run_interval(PING_EVERY, |act, ctx| {
            if act.last_heard.elapsed() > SILENCE {
                act.close_reason = Some(format!(
                    "nothing heard from the other router for {} s",
                    SILENCE.as_secs()
                ));
                ctx.stop();
                return;
            }
            act.ping_sent = Some(Instant::now());
            act.reply(ctx, &Message::Ping);
        });
        ctx.run_interval(Duration::from_millis(100), |act, _| act.expire_pending());
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        let owner = self.remote.clone().unwrap_or_else(|| Arc::from("?"));
        for (address, queue) in self.pending.drain() {
            for p in queue {
                let text = format!("link to owner router '{owner}' lost");
                crate::shard::reply(
                    &p.origin,
                    &Message::Error(ErrorMessage::new(502, text, Some(address.to_string()))),
                );
            }
        }
        if let Some(me) = &self.me {
            for shard in self.router.shards() {
                shard.do_send(SessionGone {
                    key: me.key,
                    id: me.id.clone(),
                });
            }
        }
        self.fed.detach(self.key, self.close_reason.take());
        tracing::info!(link = self.key, peer = ?self.remote, "federation link closed");
    }
}

impl Handler<FromRemote> for FederationPeer {
    type Result = ();
    fn handle(&mut self, msg: FromRemote, ctx: &mut Context<Self>) {
        self.last_heard = Instant::now();
        self.on_remote(msg.0, ctx);
    }
}

impl Handler<RoutesChanged> for FederationPeer {
    type Result = ();
    fn handle(&mut self, _: RoutesChanged, ctx: &mut Context<Self>) {
        self.declare(ctx);
    }
}

impl Handler<CloseLink> for FederationPeer {
    type Result = ();
    fn handle(&mut self, msg: CloseLink, ctx: &mut Context<Self>) {
        self.close_reason = msg.0;
        ctx.stop();
    }
}

impl Handler<ForwardSet> for FederationPeer {
    type Result = ();
    fn handle(&mut self, msg: ForwardSet, ctx: &mut Context<Self>) {
        let owner = self.remote.clone().unwrap_or_else(|| Arc::from("?"));
        let address = msg.set.address.clone();
        let frame = match encode_frame(&SET_HEADER, &Message::Set(msg.set.clone())) {
            Ok(f) => Bytes::from(f),
            Err(e) => {
                let text = format!("write does not encode: {e}");
                crate::shard::reply(
                    &msg.origin.recipient,
                    &Message::Error(ErrorMessage::new(400, text, Some(address.to_string()))),
                );
                return;
            }
        };
        if !self.wire.send(frame) {
            let text = format!("link to owner router '{owner}' is congested");
            crate::shard::reply(
                &msg.origin.recipient,
                &Message::Error(ErrorMessage::new(502, text, Some(address.to_string()))),
            );
            self.close_reason = Some("link fell behind".into());
            ctx.stop();
            return;
        }
        self.fed.update(self.key, |l| l.forwarded += 1);
        self.pending.entry(address).or_default().push_back(Pending {
            origin: msg.origin.recipient,
            value: msg.set.value,
            ack: msg.ack,
            deadline: Instant::now() + self.fed.config().forward_timeout,
        });
    }
}

impl Handler<Deliver> for FederationPeer {
    type Result = ();
    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        if msg.subs.is_empty() {
            // An answer to a SET the other side sent us: it goes back as it is.
            if !self.wire.send(msg.delivery.frame.clone()) {
                self.close_reason = Some("link fell behind".into());
                ctx.stop();
            }
            return;
        }
        let Ok(decoded) = decode_frame(&msg.delivery.frame) else {
            return;
        };
        match decoded.message {
            Message::Set(s) => {
                if self.fed.routes().is_via(s.address.as_str(), self.key) {
                    return;
                }
                self.outgoing.push(ParamState {
                    address: s.address,
                    value: s.value,
                    revision: s.revision.unwrap_or(0),
                    writer: Some(self.fed.id().to_string()),
                    timestamp: Some(crate::clock::now_micros()),
                });
                self.schedule_flush(ctx);
            }
            Message::Publish(_) => {
                self.events_sent += 1;
                self.schedule_flush(ctx);
                if !self.wire.send(msg.delivery.frame.clone()) {
                    self.close_reason = Some("link fell behind".into());
                    ctx.stop();
                }
            }
            _ => {}
        }
    }
}
