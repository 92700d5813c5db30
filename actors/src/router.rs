//! What every session shares: the shard addresses and how addresses map onto them, the
//! registry of live sessions, counters and the actor table.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix::prelude::*;
use clasp_proto::Pattern;

use crate::config::RelayConfig;
use crate::health::{ActorTable, Counters};
use crate::messages::SessionKey;
use crate::shard::Shard;

/// The shard (of `count`) owning `address` under `hasher`: its first segment decides. Also
/// used before the router exists, to hand recovered params to the right shards.
pub fn shard_of(hasher: &impl BuildHasher, count: usize, address: &str) -> usize {
    let first = address.strip_prefix('/').unwrap_or(address);
    let namespace = first.split('/').next().unwrap_or("");
    (hasher.hash_one(namespace) % count.max(1) as u64) as usize
}

/// Recovered params split by owning shard (the relay at start, and the recovery benchmark,
/// which must measure what the relay does).
pub fn partition_by_shard(
    hasher: &impl BuildHasher,
    count: usize,
    params: impl IntoIterator<Item = crate::shard::PersistedParam>,
) -> Vec<Vec<crate::shard::PersistedParam>> {
    let count = count.max(1);
    let mut parts: Vec<Vec<crate::shard::PersistedParam>> = vec![Vec::new(); count];
    for p in params {
        parts[shard_of(hasher, count, &p.address)].push(p);
    }
    parts
}

/// Asks a session to close (shutdown drain).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct CloseSession;

/// Shards plus session bookkeeping. Cheap to clone (all `Arc`s).
#[derive(Clone)]
pub struct Router {
    /// Configuration.
    pub config: Arc<RelayConfig>,
    shards: Arc<[Addr<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    sessions: Arc<Mutex<HashMap<Arc<str>, SessionEntry>>>,
    next_key: Arc<AtomicU64>,
    next_bundle: Arc<AtomicU64>,
    /// Live session count (also the admission counter).
    pub session_count: Arc<AtomicUsize>,
    /// Params across shards.
    pub param_count: Arc<AtomicUsize>,
    /// Counters for /health and /metrics.
    pub counters: Arc<Counters>,
    /// Supervised actors.
    pub actors: ActorTable,
    /// Set when draining: no new sessions.
    pub draining: Arc<AtomicBool>,
    /// Relay start.
    pub started: Instant,
    /// Token validation; `None` when the relay runs open.
    pub auth: Option<Addr<crate::auth::Auth>>,
    /// The journal, when the relay keeps one (REPLAY, durable bundle ACKs).
    pub journal: Option<Addr<crate::journal::Journal>>,
    /// Journal commit progress, when there is a journal.
    pub journal_progress: Option<JournalProgress>,
    /// Metrics and readiness of components the relay does not know (bridges).
    pub metrics: crate::metrics::MetricsSources,
    /// The app config sessions apply now; SIGHUP swaps in a reloaded one.
    pub app_config: Arc<arc_swap::ArcSwapOption<crate::appconfig::AppConfig>>,
    /// Namespace ownership and links to other relays.
    pub federation: crate::federation::Federation,
}

/// A live session as the registry knows it.
#[derive(Clone)]
pub struct SessionEntry {
    /// Index key.
    pub key: SessionKey,
    /// Asks it to close.
    pub close: Recipient<CloseSession>,
    /// Delivers frames to it (P2P signalling).
    pub deliver: Recipient<crate::messages::Deliver>,
    /// Its outbound queue (depth for /metrics).
    pub queue: Arc<crate::session::outbound::OutboundQueue>,
    /// Name, transport and activity (the session listing).
    pub info: Arc<crate::session::SessionInfo>,
}

/// How far the journal's disk commits trail what it accepted (/metrics).
#[derive(Clone, Debug)]
pub struct JournalProgress {
    /// Last sequence number handed out.
    pub assigned: Arc<AtomicU64>,
    /// Last sequence number committed.
    pub committed: Arc<AtomicU64>,
}

impl Router {
    /// A router over started shards.
    pub fn new(
        config: Arc<RelayConfig>,
        shards: Vec<Addr<Shard>>,
        param_count: Arc<AtomicUsize>,
        actors: ActorTable,
        hasher: std::collections::hash_map::RandomState,
    ) -> Self {
        let app_config = Arc::new(arc_swap::ArcSwapOption::new(config.app_config.clone()));
        let federation = crate::federation::Federation::new(federation_config(&config));
        Self {
            config,
            shards: shards.into(),
            hasher,
            sessions: Arc::default(),
            next_key: Arc::new(AtomicU64::new(1)),
            next_bundle: Arc::new(AtomicU64::new(1)),
            session_count: Arc::default(),
            param_count,
            counters: Arc::default(),
            actors,
            draining: Arc::default(),
            started: Instant::now(),
            auth: None,
            journal: None,
            journal_progress: None,
            metrics: Default::default(),
            app_config,
            federation,
        }
    }

    /// The same router with `federation` (the instance its shards route by).
    pub fn with_federation(mut self, federation: crate::federation::Federation) -> Self {
        self.federation = federation;
        self
    }

    /// The same router, logging to `journal`.
    pub fn with_journal(mut self, journal: Option<Addr<crate::journal::Journal>>) -> Self {
        self.journal = journal;
        self
    }

    /// The same router, requiring tokens validated by `auth`.
    pub fn with_auth(mut self, auth: Addr<crate::auth::Auth>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// All shards.
    pub fn shards(&self) -> &[Addr<Shard>] {
        &self.shards
    }

    fn index_of(&self, namespace: &str) -> usize {
        (self.hasher.hash_one(namespace) % self.shards.len() as u64) as usize
    }

    /// Index of the shard owning `address`: chosen by its first segment.
    pub fn shard_index(&self, address: &str) -> usize {
        shard_of(&self.hasher, self.shards.len(), address)
    }

    /// The shard owning `address`.
    pub fn shard_for(&self, address: &str) -> &Addr<Shard> {
        &self.shards[self.shard_index(address)]
    }

    /// The shards a pattern can match on: one if its first segment is literal, else all.
    pub fn shards_for(&self, pattern: &Pattern) -> Vec<Addr<Shard>> {
        match pattern.namespace() {
            Some(ns) => vec![self.shards[self.index_of(ns)].clone()],
            None => self.shards.to_vec(),
        }
    }

    /// A fresh session key.
    pub fn next_session_key(&self) -> SessionKey {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh bundle id.
    pub fn next_bundle_id(&self) -> u64 {
        self.next_bundle.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes a session slot; false when `max_sessions` is reached or the relay is draining.
    pub fn admit(&self) -> bool {
        if self.draining.load(Ordering::Relaxed) {
            return false;
        }
        let max = self.config.max_sessions;
        let mut current = self.session_count.load(Ordering::Relaxed);
        loop {
            if max != 0 && current >= max {
                return false;
            }
            match self.session_count.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// Gives a slot back.
    pub fn release(&self) {
        self.session_count.fetch_sub(1, Ordering::AcqRel);
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, SessionEntry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session under its wire id.
    pub fn register(&self, id: Arc<str>, entry: SessionEntry) {
        self.registry().insert(id, entry);
    }

    /// Removes a session from the registry.
    pub fn unregister(&self, id: &str) {
        self.registry().remove(id);
    }

    /// Looks a session up by wire id (P2P signalling).
    pub fn session(&self, id: &str) -> Option<SessionEntry> {
        self.registry().get(id).cloned()
    }

    /// Frames waiting in all sessions' outbound queues, and in the fullest one.
    pub fn queue_depths(&self) -> (usize, usize) {
        let queues: Vec<_> = self.registry().values().map(|e| e.queue.clone()).collect();
        queues.iter().fold((0, 0), |(sum, max), q| {
            let n = q.len();
            (sum + n, max.max(n))
        })
    }

    /// Every open session, ordered by when it connected (`GET /api/v1/sessions`).
    pub fn session_rows(&self) -> Vec<crate::session::SessionRow> {
        let entries: Vec<(Arc<str>, SessionEntry)> = self
            .registry()
            .iter()
            .map(|(id, e)| (id.clone(), e.clone()))
            .collect();
        let mut rows: Vec<_> = entries
            .iter()
            .map(|(id, e)| e.info.row(id, e.queue.len()))
            .collect();
        rows.sort_by(|a, b| a.connected_ms.cmp(&b.connected_ms).then(a.id.cmp(&b.id)));
        rows
    }

    /// Asks every session to close.
    pub fn close_all(&self) -> usize {
        let entries: Vec<SessionEntry> = self.registry().values().cloned().collect();
        for e in &entries {
            e.close.do_send(CloseSession);
        }
        entries.len()
    }
}

/// The relay's federation settings; without any, a hub named after the relay.
pub fn federation_config(config: &RelayConfig) -> crate::federation::FederationConfig {
    config
        .federation
        .clone()
        .unwrap_or_else(|| crate::federation::FederationConfig::new(config.name.clone()))
}
