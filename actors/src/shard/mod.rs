//! A shard: the actor that owns one address subtree's params, subscriptions, open gestures,
//! stored timelines and announced signals. An address belongs to the shard chosen by its
//! first segment, so all writes to it are applied by one actor, in order.

mod store;
mod subs;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use clasp_proto::{
    encode_frame, encode_snapshot_frames, Ack, Address, ErrorMessage, FrameHeader, GesturePhase,
    Message, Payload, Publish, QoS, QueryResult, Set, SignalDef, SignalInfo, SignalType,
};

pub use store::{Applied, ParamStore, PersistedParam, PersistedTtl, SetError, StoreLimits};
pub use subs::{SubKey, Subscriptions};

use crate::clock::now_micros;
use crate::config::RelayConfig;
use crate::federation::{Federation, ForwardSet, Route};
use crate::health::{ActorState, ActorTable};
use crate::journal::encoded::journaled;
use crate::journal::{AppendEncoded, EncodedEntries, Journal};
use crate::messages::*;

/// Frame header the router uses for SET broadcasts (§3.6: `0x41`).
/// Header of SET broadcasts (QoS Confirm, as the official clients send them).
pub const SET_HEADER: FrameHeader = FrameHeader::new(QoS::Confirm);
/// Header for replies (WELCOME, SNAPSHOT, ACK, ERROR, ...: `0x01`).
pub const REPLY_HEADER: FrameHeader = FrameHeader::new(QoS::Fire);
/// Open gestures with no traffic for this long are forgotten.
const GESTURE_IDLE: Duration = Duration::from_secs(300);
/// A prepared bundle not committed within this time is aborted (its session died).
const PREPARE_TIMEOUT: Duration = Duration::from_secs(5);

/// Frame QoS the router uses when forwarding a PUBLISH of this type (§3.3).
pub fn publish_qos(signal: SignalType) -> QoS {
    match signal {
        SignalType::Param | SignalType::Event => QoS::Confirm,
        SignalType::Stream | SignalType::Gesture => QoS::Fire,
        SignalType::Timeline => QoS::Commit,
    }
}

/// Encodes a reply frame; our replies always fit, a failure is logged and yields nothing.
pub fn reply_frame(message: &Message) -> Option<Bytes> {
    match encode_frame(&REPLY_HEADER, message) {
        Ok(f) => Some(Bytes::from(f)),
        Err(e) => {
            tracing::error!(error = %e, kind = message.name(), "reply does not encode");
            None
        }
    }
}

/// Sends a reply frame straight to one session.
pub fn reply(to: &Recipient<Deliver>, message: &Message) {
    if let Some(frame) = reply_frame(message) {
        to.do_send(Deliver::direct(frame, DeliveryClass::Reliable, None));
    }
}

struct OpenGesture {
    pending: Option<(Publish, SessionKey)>,
    last_seen: Instant,
}

struct Prepared {
    origin: SessionRef,
    sets: Vec<Set>,
    addresses: HashSet<Address>,
}

/// The shard actor.
pub struct Shard {
    name: String,
    config: Arc<RelayConfig>,
    store: ParamStore,
    subs: Subscriptions,
    gestures: HashMap<(Address, u32), OpenGesture>,
    timelines: HashMap<Address, Publish>,
    signals: HashMap<String, SignalDef>,
    prepared: HashMap<u64, Prepared>,
    parked: VecDeque<ShardSet>,
    actors: ActorTable,
    /// Where accepted changes are logged, when the relay has a journal.
    journal: Option<Addr<Journal>>,
    /// State recovered at start, loaded when the actor starts.
    restored: Vec<PersistedParam>,
    /// Journal entries of the messages being handled now, encoded here and sent as one
    /// batch once the mailbox is drained (one cross-thread wake-up per burst, not per SET).
    journal_buf: EncodedEntries,
    /// Signal types the journal keeps (`--journal-types`).
    journal_types: clasp_proto::TypeMask,
    journal_flush_pending: bool,
    /// Who owns which namespaces, when the relay is federated.
    federation: Option<Federation>,
}

impl Shard {
    /// A shard with an empty store; `limits` is shared by all shards.
    pub fn new(
        index: usize,
        config: Arc<RelayConfig>,
        limits: StoreLimits,
        actors: ActorTable,
    ) -> Self {
        let journal_types = config
            .journal
            .as_ref()
            .map_or(clasp_proto::TypeMask::ALL, |j| j.types);
        Self {
            name: format!("shard-{index}"),
            config,
            store: ParamStore::new(limits),
            subs: Subscriptions::default(),
            gestures: HashMap::new(),
            timelines: HashMap::new(),
            signals: HashMap::new(),
            prepared: HashMap::new(),
            parked: VecDeque::new(),
            actors,
            journal: None,
            restored: Vec::new(),
            journal_buf: EncodedEntries::default(),
            journal_types,
            journal_flush_pending: false,
            federation: None,
        }
    }

    /// Consults `federation`'s routes on every SET: writes to another router's namespace
    /// are forwarded to it.
    pub fn with_federation(mut self, federation: Federation) -> Self {
        self.federation = Some(federation);
        self
    }

    /// Logs accepted changes to `journal`; ACKs then wait until their entry is durable.
    pub fn with_journal(mut self, journal: Option<Addr<Journal>>) -> Self {
        self.journal = journal;
        self
    }

    /// State to load when the shard starts (recovered from a snapshot and the journal).
    pub fn with_restored(mut self, params: Vec<PersistedParam>) -> Self {
        self.restored = params;
        self
    }

    /// Hands an accepted SET to the journal, or, without one, sends its ACK at once.
    /// `timestamp` is the one the store gave the write (router-clock µs).
    fn record_set(
        &mut self,
        echo: &Set,
        writer: &Arc<str>,
        timestamp: u64,
        ack: Option<(&Recipient<Deliver>, Message)>,
    ) {
        if self.journal.is_none() {
            if let Some((to, message)) = ack {
                reply(to, &message);
            }
            return;
        }
        if journaled(self.journal_types, 0) {
            if let Err(e) = self.journal_buf.push_set(
                timestamp,
                writer,
                echo.address.as_str(),
                &echo.value,
                echo.revision.unwrap_or(0),
            ) {
                // Not durable, so never acknowledged as if it were.
                tracing::error!(error = %e, address = %echo.address, "SET for the journal does not encode");
                if let Some((to, _)) = ack {
                    reply(
                        to,
                        &Message::Error(ErrorMessage::new(
                            500,
                            format!("Journal encode failed: {e}"),
                            Some(echo.address.to_string()),
                        )),
                    );
                }
                return;
            }
        }
        if let Some((to, frame)) = ack.and_then(|(to, m)| reply_frame(&m).map(|f| (to, f))) {
            self.journal_buf.push_ack(to.clone(), frame);
        }
    }

    /// Sends the buffered entries once the messages queued now are handled.
    fn schedule_journal(&mut self, ctx: &mut Context<Self>) {
        if self.journal_buf.is_empty() || self.journal_flush_pending {
            return;
        }
        self.journal_flush_pending = true;
        ctx.run_later(Duration::ZERO, |shard, _| shard.flush_journal());
    }

    /// Sends the buffered entries now (before a reply that a durability barrier may follow).
    fn flush_journal(&mut self) {
        self.journal_flush_pending = false;
        if let (Some(journal), false) = (&self.journal, self.journal_buf.is_empty()) {
            journal.do_send(AppendEncoded(std::mem::take(&mut self.journal_buf)));
        }
    }

    /// Hands an accepted PUBLISH to the journal, as the frame subscribers receive.
    fn record_publish(&mut self, publish: &Publish, writer: &Arc<str>) {
        let signal = publish.signal as u8;
        if self.journal.is_none() || !journaled(self.journal_types, signal) {
            return;
        }
        let header = FrameHeader::new(publish_qos(publish.signal));
        let written = encode_frame(&header, &Message::Publish(publish.clone()))
            .map_err(|e| e.to_string())
            .and_then(|frame| {
                self.journal_buf
                    .push_publish(
                        now_micros(),
                        writer,
                        publish.address.as_str(),
                        signal,
                        &frame,
                    )
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            tracing::error!(error = %e, "PUBLISH for the journal does not encode");
        }
    }

    fn reserved(&self, address: &Address) -> bool {
        self.prepared
            .values()
            .any(|p| p.addresses.contains(address))
    }

    /// Where a write to `address` goes when another router owns it.
    fn remote_owner(&self, address: &Address) -> Option<Route> {
        let fed = self.federation.as_ref()?;
        let routes = fed.routes();
        if routes.is_empty() {
            return None;
        }
        match routes.route(address.as_str()) {
            None | Some(Route::Local) => None,
            Some(r) => Some(r.clone()),
        }
    }

    /// Applies one SET and broadcasts it; errors go to the writer. A write to another
    /// router's namespace goes to that router instead, which answers the writer.
    fn set(&mut self, msg: ShardSet) {
        match self.remote_owner(&msg.set.address) {
            Some(Route::Link { peer, .. }) => {
                peer.do_send(ForwardSet {
                    origin: msg.origin,
                    set: msg.set,
                    ack: msg.ack,
                });
                return;
            }
            Some(Route::Unreachable { owner }) => {
                let text = format!(
                    "owner router '{owner}' of {} is unreachable",
                    msg.set.address
                );
                reply(
                    &msg.origin.recipient,
                    &Message::Error(ErrorMessage::new(
                        502,
                        text,
                        Some(msg.set.address.to_string()),
                    )),
                );
                return;
            }
            _ => {}
        }
        if self.reserved(&msg.set.address) {
            // A bundle holds this address: apply after it commits or aborts, in order.
            self.parked.push_back(msg);
            return;
        }
        let strategy = self.config.strategy_for(msg.set.address.as_str());
        let now_us = now_micros();
        match self
            .store
            .apply(&msg.set, &msg.origin.id, strategy, now_us, Instant::now())
        {
            Ok(applied) => {
                let revision = applied.echo.revision;
                let ack = msg.ack.then(|| {
                    let ack = Ack {
                        address: Some(msg.set.address.to_string()),
                        revision,
                        ..Ack::default()
                    };
                    (&msg.origin.recipient, Message::Ack(ack))
                });
                self.record_set(&applied.echo, &msg.origin.id, now_us, ack);
                self.broadcast_set(applied.echo);
            }
            Err(e) => {
                reply(
                    &msg.origin.recipient,
                    &Message::Error(ErrorMessage::new(
                        e.code(),
                        e.to_string(),
                        Some(msg.set.address.to_string()),
                    )),
                );
            }
        }
    }

    fn broadcast_set(&mut self, echo: Set) {
        let targets = self.subs.targets(echo.address.as_str(), SignalType::Param);
        if targets.is_empty() {
            return;
        }
        let numeric = echo.value.as_f64();
        let address = echo.address.clone();
        let frame = match encode_frame(&SET_HEADER, &Message::Set(echo)) {
            Ok(f) => Bytes::from(f),
            Err(e) => {
                tracing::error!(error = %e, %address, "SET broadcast does not encode");
                return;
            }
        };
        let delivery = Arc::new(Delivery {
            frame,
            class: DeliveryClass::Param,
            address: Some(address),
            numeric,
            created: std::time::Instant::now(),
        });
        for t in targets {
            t.recipient.do_send(Deliver {
                delivery: delivery.clone(),
                subs: t.subs,
            });
        }
    }

    fn forward(&mut self, publish: Publish, skip: Option<SessionKey>) {
        let targets = self.subs.targets(publish.address.as_str(), publish.signal);
        if targets.iter().all(|t| Some(t.session) == skip) {
            return;
        }
        let class = match publish.signal {
            SignalType::Stream | SignalType::Gesture => DeliveryClass::Lossy,
            _ => DeliveryClass::Reliable,
        };
        let numeric = match &publish.payload {
            Payload::Value(v) => v.as_f64(),
            _ => None,
        };
        let signal = publish.signal;
        let address = publish.address.clone();
        let frame = match encode_frame(
            &FrameHeader::new(publish_qos(signal)),
            &Message::Publish(publish),
        ) {
            Ok(f) => Bytes::from(f),
            Err(e) => {
                tracing::error!(error = %e, %address, "PUBLISH does not encode");
                return;
            }
        };
        let delivery = Arc::new(Delivery {
            frame,
            class,
            address: Some(address),
            numeric,
            created: std::time::Instant::now(),
        });
        for t in targets {
            if Some(t.session) != skip {
                t.recipient.do_send(Deliver {
                    delivery: delivery.clone(),
                    subs: t.subs,
                });
            }
        }
    }

    /// Gestures: `start` at once; `move` buffered (latest wins) while the gesture is open;
    /// `end`/`cancel` flush the buffered move first (FEATURES ST-9).
    fn publish(&mut self, origin: SessionKey, publish: Publish) {
        match publish.signal {
            SignalType::Gesture => {
                let key = (publish.address.clone(), publish.id.unwrap_or(0));
                let now = Instant::now();
                match publish.phase {
                    GesturePhase::Start => {
                        self.gestures.insert(
                            key,
                            OpenGesture {
                                pending: None,
                                last_seen: now,
                            },
                        );
                        self.forward(publish, Some(origin));
                    }
                    GesturePhase::Move => match self.gestures.get_mut(&key) {
                        Some(open) => {
                            open.pending = Some((publish, origin));
                            open.last_seen = now;
                        }
                        None => self.forward(publish, Some(origin)),
                    },
                    GesturePhase::End | GesturePhase::Cancel => {
                        if let Some(OpenGesture {
                            pending: Some((m, o)),
                            ..
                        }) = self.gestures.remove(&key)
                        {
                            self.forward(m, Some(o));
                        }
                        self.forward(publish, Some(origin));
                    }
                }
            }
            SignalType::Timeline => {
                // Stored so late joiners get the running timeline (ST-10); replaces the last.
                self.timelines
                    .insert(publish.address.clone(), publish.clone());
                self.forward(publish, Some(origin));
            }
            _ => self.forward(publish, Some(origin)),
        }
    }

    fn flush_gestures(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        self.gestures.retain(|_, g| {
            if let Some(p) = g.pending.take() {
                due.push(p);
            }
            now.duration_since(g.last_seen) < GESTURE_IDLE
        });
        for (m, origin) in due {
            self.forward(m, Some(origin));
        }
    }

    fn expire(&mut self) {
        let gone = self.store.expire(Instant::now());
        if !gone.is_empty() {
            tracing::debug!(shard = %self.name, count = gone.len(), "params expired");
        }
    }

    /// Applies a prepared bundle's SETs and broadcasts them; the last revision.
    fn commit(&mut self, bundle: u64) -> Option<u64> {
        let prepared = self.prepared.remove(&bundle)?;
        let mut last = None;
        for set in prepared.sets {
            // Without the revision check: it was done at prepare, against this same state.
            let set = Set {
                revision: None,
                ..set
            };
            let strategy = self.config.strategy_for(set.address.as_str());
            let now_us = now_micros();
            match self
                .store
                .apply(&set, &prepared.origin.id, strategy, now_us, Instant::now())
            {
                Ok(applied) => {
                    last = applied.echo.revision;
                    self.record_set(&applied.echo, &prepared.origin.id, now_us, None);
                    self.broadcast_set(applied.echo);
                }
                Err(e) => tracing::error!(error = %e, "prepared SET failed at commit"),
            }
        }
        self.unpark();
        last
    }

    fn unpark(&mut self) {
        let parked: Vec<ShardSet> = self.parked.drain(..).collect();
        for m in parked {
            self.set(m);
        }
        // Called outside the SET handler's scheduling: send what the parked SETs produced.
        self.flush_journal();
    }
}

impl Actor for Shard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        if !self.restored.is_empty() {
            let params = std::mem::take(&mut self.restored);
            let n = self.store.restore(params, now_micros(), Instant::now());
            tracing::debug!(shard = %self.name, params = n, "state restored");
        }
        ctx.run_interval(Duration::from_secs(1), |shard, _| shard.expire());
        ctx.run_interval(self.config.gesture_flush, |shard, _| shard.flush_gestures());
        self.actors.set(&self.name, ActorState::Running);
        tracing::debug!(shard = %self.name, "started");
    }
}

/// Every param of the shard, for a snapshot.
#[derive(Message, Debug)]
#[rtype(result = "Vec<PersistedParam>")]
pub struct ExportParams;

impl Handler<ExportParams> for Shard {
    type Result = MessageResult<ExportParams>;
    fn handle(&mut self, _: ExportParams, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.store.export(now_micros(), Instant::now()))
    }
}

impl Supervised for Shard {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // State lives in `self` and survives the restart.
        tracing::warn!(shard = %self.name, params = self.store.len(), "restarting");
        self.actors.set(&self.name, ActorState::Restarting);
    }
}

impl Handler<ShardSet> for Shard {
    type Result = ();
    fn handle(&mut self, msg: ShardSet, ctx: &mut Context<Self>) {
        self.set(msg);
        self.schedule_journal(ctx);
    }
}

/// Param changes from their owner on another router, with the owner's revisions (one
/// message per shard per batch). Applied only when newer than what this shard holds, then
/// journaled and broadcast like any write.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ShardReplicate {
    /// The federation link they came over.
    pub origin: SessionRef,
    /// The params.
    pub params: Vec<clasp_proto::ParamState>,
}

impl Handler<ShardReplicate> for Shard {
    type Result = ();
    fn handle(&mut self, msg: ShardReplicate, ctx: &mut Context<Self>) {
        let (now_us, now) = (now_micros(), Instant::now());
        for state in &msg.params {
            if self.reserved(&state.address) {
                continue;
            }
            if let Some(echo) = self.store.apply_replica(state, now_us, now) {
                self.record_set(&echo, &msg.origin.id, now_us, None);
                self.broadcast_set(echo);
            }
        }
        self.schedule_journal(ctx);
    }
}

impl Handler<ShardPublish> for Shard {
    type Result = ();
    fn handle(&mut self, msg: ShardPublish, ctx: &mut Context<Self>) {
        self.record_publish(&msg.publish, &msg.origin.id);
        self.schedule_journal(ctx);
        self.publish(msg.origin.key, msg.publish);
    }
}

impl Handler<ShardSubscribe> for Shard {
    type Result = ();
    fn handle(&mut self, msg: ShardSubscribe, _: &mut Context<Self>) {
        let history = match msg.history.filter(|n| *n > 0) {
            Some(n) => {
                self.store.keep_history(n as usize);
                self.store.history(&msg.pattern, n as usize)
            }
            None => Vec::new(),
        };
        let snapshot = msg.snapshot.then(|| self.store.matching(&msg.pattern));
        let timelines: Vec<Publish> = if msg.snapshot && msg.types.includes(SignalType::Timeline) {
            self.timelines
                .values()
                .filter(|t| msg.pattern.matches(t.address.as_str()))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        self.subs
            .subscribe(&msg.session, msg.id, msg.pattern, msg.types);
        for set in history {
            let address = set.address.clone();
            match encode_frame(&SET_HEADER, &Message::Set(set)) {
                Ok(frame) => msg.session.recipient.do_send(Deliver::direct(
                    Bytes::from(frame),
                    DeliveryClass::Reliable,
                    Some(address),
                )),
                Err(e) => tracing::error!(error = %e, "history SET does not encode"),
            }
        }
        if let Some(params) = snapshot.filter(|p| !p.is_empty()) {
            match encode_snapshot_frames(&REPLY_HEADER, &params) {
                Ok(frames) => {
                    for frame in frames {
                        msg.session.recipient.do_send(Deliver::direct(
                            Bytes::from(frame),
                            DeliveryClass::Reliable,
                            None,
                        ));
                    }
                }
                Err(e) => tracing::error!(error = %e, "subscribe snapshot does not encode"),
            }
        }
        for t in timelines {
            let address = t.address.clone();
            if let Ok(frame) = encode_frame(&FrameHeader::new(QoS::Commit), &Message::Publish(t)) {
                msg.session.recipient.do_send(Deliver {
                    delivery: Arc::new(Delivery {
                        frame: Bytes::from(frame),
                        class: DeliveryClass::Reliable,
                        address: Some(address),
                        numeric: None,
                        created: std::time::Instant::now(),
                    }),
                    subs: Box::new([msg.id]),
                });
            }
        }
    }
}

impl Handler<ShardUnsubscribe> for Shard {
    type Result = ();
    fn handle(&mut self, msg: ShardUnsubscribe, _: &mut Context<Self>) {
        self.subs.unsubscribe(msg.session, msg.id);
    }
}

impl Handler<SessionGone> for Shard {
    type Result = ();
    fn handle(&mut self, msg: SessionGone, _: &mut Context<Self>) {
        self.subs.remove_session(msg.key);
        self.store.release_locks(&msg.id);
        let gone: Vec<u64> = self
            .prepared
            .iter()
            .filter(|(_, p)| p.origin.key == msg.key)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.prepared.remove(&id);
        }
        self.unpark();
    }
}

impl Handler<ShardGet> for Shard {
    type Result = Option<clasp_proto::ParamState>;
    fn handle(&mut self, msg: ShardGet, _: &mut Context<Self>) -> Self::Result {
        self.store.get(&msg.address, Instant::now())
    }
}

impl Handler<ShardSnapshot> for Shard {
    type Result = Vec<clasp_proto::ParamState>;
    fn handle(&mut self, msg: ShardSnapshot, _: &mut Context<Self>) -> Self::Result {
        self.store.matching(&msg.pattern)
    }
}

impl Handler<ShardAnnounce> for Shard {
    type Result = ();
    fn handle(&mut self, msg: ShardAnnounce, _: &mut Context<Self>) {
        for def in msg.signals {
            self.signals.insert(def.address.clone(), def);
        }
    }
}

impl Handler<ShardQuery> for Shard {
    type Result = MessageResult<ShardQuery>;
    fn handle(&mut self, msg: ShardQuery, _: &mut Context<Self>) -> Self::Result {
        let mut signals: Vec<SignalInfo> = self
            .signals
            .values()
            .filter(|d| msg.pattern.matches(&d.address))
            .map(|d| SignalInfo {
                address: d.address.clone(),
                signal: d.signal,
                datatype: d.datatype.clone(),
                access: d.access.clone(),
            })
            .collect();
        signals.sort_by(|a, b| a.address.cmp(&b.address));
        MessageResult(QueryResult { signals })
    }
}

impl Handler<BundlePrepare> for Shard {
    type Result = Result<Option<u64>, (SetError, String)>;
    fn handle(&mut self, msg: BundlePrepare, ctx: &mut Context<Self>) -> Self::Result {
        // Every SET is checked against the state it would see: a later SET may expect the
        // revision an earlier one in the same bundle produces.
        let mut revisions: HashMap<&Address, u64> = HashMap::new();
        for set in &msg.sets {
            let refuse = |e: SetError| (e, set.address.to_string());
            if let Some(Route::Link { owner, .. } | Route::Unreachable { owner }) =
                self.remote_owner(&set.address)
            {
                return Err(refuse(SetError::RemoteOwner {
                    address: set.address.to_string(),
                    owner: owner.to_string(),
                }));
            }
            if self.reserved(&set.address) {
                return Err(refuse(SetError::Busy {
                    address: set.address.to_string(),
                }));
            }
            let strategy = self.config.strategy_for(set.address.as_str());
            self.store
                .check(
                    &Set {
                        revision: None,
                        ..set.clone()
                    },
                    &msg.origin.id,
                    strategy,
                )
                .map_err(refuse)?;
            let current = revisions
                .get(&set.address)
                .copied()
                .or_else(|| self.store.revision(&set.address));
            if let (Some(expected), Some(actual)) = (set.revision, current) {
                if expected != actual {
                    return Err(refuse(SetError::RevisionConflict { expected, actual }));
                }
            }
            revisions.insert(&set.address, current.map_or(1, |r| r + 1));
        }
        let addresses = msg.sets.iter().map(|s| s.address.clone()).collect();
        let bundle = msg.bundle;
        self.prepared.insert(
            bundle,
            Prepared {
                origin: msg.origin,
                sets: msg.sets,
                addresses,
            },
        );
        if msg.commit_now {
            let last = self.commit(bundle);
            self.flush_journal();
            return Ok(last);
        }
        ctx.run_later(PREPARE_TIMEOUT, move |shard, _| {
            if shard.prepared.remove(&bundle).is_some() {
                tracing::warn!(bundle, "prepared bundle never committed; aborted");
                shard.unpark();
                shard.flush_journal();
            }
        });
        Ok(None)
    }
}

impl Handler<BundleCommit> for Shard {
    type Result = Option<u64>;
    fn handle(&mut self, msg: BundleCommit, _: &mut Context<Self>) -> Self::Result {
        let last = self.commit(msg.bundle);
        // The session's durability barrier follows this reply: the entries must be ahead of it.
        self.flush_journal();
        last
    }
}

impl Handler<BundleAbort> for Shard {
    type Result = ();
    fn handle(&mut self, msg: BundleAbort, _: &mut Context<Self>) {
        self.prepared.remove(&msg.bundle);
        self.unpark();
    }
}

impl Handler<GetShardStats> for Shard {
    type Result = MessageResult<GetShardStats>;
    fn handle(&mut self, _: GetShardStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(ShardStats {
            params: self.store.len(),
            subscriptions: self.subs.len(),
        })
    }
}

impl Handler<StopShard> for Shard {
    type Result = ();
    fn handle(&mut self, _: StopShard, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
