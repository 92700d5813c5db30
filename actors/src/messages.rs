//! Typed messages between sessions and shards. Sessions talk to shards in requests; shards
//! talk to sessions only by [`Deliver`], so each session's mailbox carries its traffic in the
//! order each shard produced it.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use clasp_proto::{Address, ParamState, Pattern, Publish, QueryResult, Set, SignalDef, TypeMask};

/// Internal session number: orders subscriptions in the index.
pub type SessionKey = u64;

/// Who sent a request, and how to reach it.
#[derive(Clone)]
pub struct SessionRef {
    /// Index key.
    pub key: SessionKey,
    /// Session id as on the wire (WELCOME, SNAPSHOT writer, lock holder).
    pub id: Arc<str>,
    /// The session's mailbox.
    pub recipient: Recipient<Deliver>,
}

impl std::fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionRef({})", self.id)
    }
}

/// How a queued frame may be treated under back-pressure (ARCHITECTURE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryClass {
    /// A param update: a newer one for the same address replaces it.
    Param,
    /// Stream or gesture: may be dropped oldest-first, counted.
    Lossy,
    /// Event, timeline, snapshot, reply: never dropped silently.
    Reliable,
}

/// One encoded frame on its way to sessions. Encoded once, shared by every recipient.
#[derive(Debug)]
pub struct Delivery {
    /// The complete frame.
    pub frame: Bytes,
    /// Back-pressure class.
    pub class: DeliveryClass,
    /// Address for conflation and per-subscription filters.
    pub address: Option<Address>,
    /// Numeric value, for epsilon filtering.
    pub numeric: Option<f64>,
    /// When it was made: the delivery-latency histogram measures from here.
    pub created: std::time::Instant,
}

/// A frame for one session, with the ids of its subscriptions that matched (empty for
/// replies, which bypass subscription filters).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The frame.
    pub delivery: Arc<Delivery>,
    /// Matched subscription ids of the receiving session.
    pub subs: Box<[u32]>,
}

impl Deliver {
    /// A frame for one session outside subscription filtering: replies, snapshots, history,
    /// P2P signals.
    pub fn direct(frame: Bytes, class: DeliveryClass, address: Option<Address>) -> Self {
        Deliver {
            delivery: Arc::new(Delivery {
                frame,
                class,
                address,
                numeric: None,
                created: std::time::Instant::now(),
            }),
            subs: Box::new([]),
        }
    }
}

/// Write a param (WIRE §7.5). The shard answers the writer with ACK or ERROR via `Deliver`.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ShardSet {
    /// Writer.
    pub origin: SessionRef,
    /// The write.
    pub set: Set,
    /// Whether the writer wants an ACK (frame QoS >= 1).
    pub ack: bool,
}

/// Forward a PUBLISH to matching subscribers except the sender (§7.6).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ShardPublish {
    /// Sender.
    pub origin: SessionRef,
    /// The signal.
    pub publish: Publish,
}

/// Register a subscription; the shard then delivers matching params (and stored timelines)
/// to the session, before any later update.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ShardSubscribe {
    /// Subscriber.
    pub session: SessionRef,
    /// Subscription id.
    pub id: u32,
    /// Pattern.
    pub pattern: Pattern,
    /// Type filter.
    pub types: TypeMask,
    /// Whether to deliver the current state (false on re-registration after restart).
    pub snapshot: bool,
    /// Earlier values wanted per param (subscription option `history`).
    pub history: Option<u32>,
}

/// Remove one subscription.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ShardUnsubscribe {
    /// Subscriber.
    pub session: SessionKey,
    /// Subscription id.
    pub id: u32,
}

/// A session ended: drop its subscriptions and release its locks.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SessionGone {
    /// The session.
    pub key: SessionKey,
    /// Its wire id (lock holder).
    pub id: Arc<str>,
}

/// Read one param (GET), refreshing its sliding TTL.
#[derive(Message, Debug)]
#[rtype(result = "Option<ParamState>")]
pub struct ShardGet {
    /// Address.
    pub address: Address,
}

/// Every param matching a pattern (initial snapshot).
#[derive(Message, Debug)]
#[rtype(result = "Vec<ParamState>")]
pub struct ShardSnapshot {
    /// Pattern (`/**` for everything).
    pub pattern: Pattern,
}

/// Store announced signal definitions.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ShardAnnounce {
    /// Definitions whose address belongs to this shard.
    pub signals: Vec<SignalDef>,
}

/// Announced definitions matching a pattern.
#[derive(Message, Debug)]
#[rtype(result = "QueryResult")]
pub struct ShardQuery {
    /// Pattern.
    pub pattern: Pattern,
}

/// Bundle phase 1: check every SET; on success hold the addresses until commit or abort.
/// With `commit_now` (the bundle touches only this shard) apply at once and answer the
/// last revision. A refusal names the SET's address.
#[derive(Message, Debug)]
#[rtype(result = "Result<Option<u64>, (crate::shard::SetError, String)>")]
pub struct BundlePrepare {
    /// Bundle id, unique per relay.
    pub bundle: u64,
    /// Writer.
    pub origin: SessionRef,
    /// The SETs for this shard, in bundle order.
    pub sets: Vec<Set>,
    /// Single-shard bundle: no second phase.
    pub commit_now: bool,
}

/// Bundle phase 2: apply a prepared bundle. Answers the revision of its last SET.
#[derive(Message, Debug)]
#[rtype(result = "Option<u64>")]
pub struct BundleCommit {
    /// Bundle id.
    pub bundle: u64,
}

/// Bundle phase 2 on failure elsewhere: drop a prepared bundle.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct BundleAbort {
    /// Bundle id.
    pub bundle: u64,
}

/// Counts for /health.
#[derive(Message, Debug)]
#[rtype(result = "ShardStats")]
pub struct GetShardStats;

/// A shard's counts.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ShardStats {
    /// Params stored.
    pub params: usize,
    /// Subscriptions registered.
    pub subscriptions: usize,
}

/// Stops the shard actor (its supervisor restarts it). Used by tests and operators to
/// exercise supervision.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct StopShard;
