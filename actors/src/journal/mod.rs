//! Durability (FEATURES PJ-*): the `Journal` actor appends every accepted SET and PUBLISH to a
//! redb log with group commit, keeps state snapshots, answers REPLAY, and at start gives the
//! shards back the state they had (snapshot first, then the journal tail).

pub mod actor;
pub mod db;
pub mod encoded;
pub mod recover;

use serde::{Deserialize, Serialize};

pub use actor::{AppendEncoded, Barrier, Journal, ReplayQuery, WriteSnapshot};
pub use encoded::EncodedEntries;
pub use recover::{recover, Recovered};

use clasp_proto::Value;

/// One journal record (postcard-encoded, keyed by its gap-free sequence number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Router-clock µs when it was accepted.
    pub timestamp: u64,
    /// Session id of the writer (shared with the session: logging it costs no copy).
    pub author: std::sync::Arc<str>,
    /// Address written or published to (shared with the store).
    pub address: std::sync::Arc<str>,
    /// What happened.
    pub body: Body,
}

/// The change an [`Entry`] records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// An accepted SET: the stored value and its new revision.
    Set {
        /// Stored value.
        value: Value,
        /// Revision after the write.
        revision: u64,
    },
    /// A PUBLISH, kept as the protocol's own frame so a replay sends exactly what was sent.
    Publish {
        /// Signal type code (§3.3).
        signal: u8,
        /// The encoded frame.
        frame: Vec<u8>,
    },
}

impl Body {
    /// The signal type code (`0` for params).
    pub fn signal_code(&self) -> u8 {
        match self {
            Body::Set { .. } => 0,
            Body::Publish { signal, .. } => *signal,
        }
    }
}

/// Why the journal or snapshot store failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// redb could not open, read or write.
    #[error("journal database {path}: {reason}")]
    Db {
        /// Which file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// A record does not decode.
    #[error("journal record does not decode: {0}")]
    Decode(#[from] postcard::Error),
}

/// The durability pieces a relay runs with, opened and recovered before anything starts.
pub struct Durability {
    /// The actor, on its own arbiter (`None` without `--journal` and `--persist`).
    pub actor: Option<Addr<Journal>>,
    /// Whether shards log to it (`--journal`), not only snapshot through it.
    pub journaling: bool,
    /// Recovered state, for the shards (in parts as it was decoded).
    pub recovered: Vec<Vec<crate::shard::PersistedParam>>,
    /// The last seq handed out (what a snapshot covers).
    pub assigned: Arc<std::sync::atomic::AtomicU64>,
    /// The last seq committed.
    pub committed: Arc<std::sync::atomic::AtomicU64>,
    /// Time between snapshots.
    pub snapshot_every: std::time::Duration,
    /// The arbiter the actor runs on.
    pub arbiter: Option<Arbiter>,
}

use std::sync::Arc;

use actix::prelude::*;

/// Default time between snapshots when only `--journal` is given.
pub const DEFAULT_SNAPSHOT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the journal and snapshot files, recovers the state they hold and starts the
/// `Journal` actor. Snapshots go to `--persist`'s file, or to the journal's when only
/// `--journal` is given (so retention never loses state).
pub fn open(config: &crate::config::RelayConfig) -> Result<Durability, JournalError> {
    let journal_db = match &config.journal {
        Some(j) => Some(db::Db::open(&j.path)?),
        None => None,
    };
    let state_db = match (&config.persist, &config.journal, &journal_db) {
        (Some(p), Some(j), Some(jdb)) if same_file(&p.path, &j.path) => Some(jdb.clone()),
        (Some(p), _, _) => Some(db::Db::open(&p.path)?),
        (None, Some(_), Some(jdb)) => Some(jdb.clone()),
        _ => None,
    };
    let started = std::time::Instant::now();
    let found = recover(state_db.as_ref(), journal_db.as_ref())?;
    if state_db.is_some() {
        tracing::info!(
            params = found.params.iter().map(Vec::len).sum::<usize>(),
            from_snapshot = found.from_snapshot,
            journal_entries = found.from_journal,
            ms = started.elapsed().as_millis() as u64,
            "state recovered"
        );
    }
    let snapshot_every = match (&config.persist, &config.journal) {
        (Some(p), _) => p.interval,
        (None, Some(j)) => j.snapshot_every,
        (None, None) => DEFAULT_SNAPSHOT_EVERY,
    };
    let Some(state) = state_db else {
        return Ok(Durability {
            actor: None,
            journaling: false,
            recovered: Vec::new(),
            assigned: Arc::default(),
            committed: Arc::default(),
            snapshot_every,
            arbiter: None,
        });
    };
    let journal_cfg = config
        .journal
        .clone()
        .unwrap_or_else(|| crate::config::JournalConfig::at(state.path.clone().into()));
    let entries = journal_db.clone().unwrap_or_else(|| state.clone());
    let actor = Journal::new(entries, state, journal_cfg, found.last_seq);
    let assigned = actor.assigned();
    let committed = actor.committed();
    let arbiter = Arbiter::new();
    let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| actor);
    Ok(Durability {
        actor: Some(addr),
        journaling: config.journal.is_some(),
        recovered: found.params,
        assigned,
        committed,
        snapshot_every,
        arbiter: Some(arbiter),
    })
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Takes a snapshot: what every shard holds, covering the journal up to the seq handed out
/// before the shards were asked (so replaying the tail after it is exact).
pub async fn snapshot(
    journal: &Addr<Journal>,
    shards: &[Addr<crate::shard::Shard>],
    assigned: &std::sync::atomic::AtomicU64,
) -> Result<usize, String> {
    let seq = assigned.load(std::sync::atomic::Ordering::Acquire);
    let parts =
        futures_util::future::join_all(shards.iter().map(|s| s.send(crate::shard::ExportParams)))
            .await;
    let mut params = Vec::new();
    for p in parts {
        params.extend(p.map_err(|e| format!("shard unavailable: {e}"))?);
    }
    let n = params.len();
    journal
        .send(WriteSnapshot { params, seq })
        .await
        .map_err(|e| format!("journal unavailable: {e}"))??;
    Ok(n)
}
