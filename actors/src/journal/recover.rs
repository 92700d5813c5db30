//! Recovery at start: the snapshot first, then every journal entry after the seq it covers,
//! newest revision per address winning (FEATURES PJ-7). Revisions keep growing afterwards.

use std::collections::HashMap;

use super::db::Db;
use super::{Body, JournalError};
use crate::shard::PersistedParam;

/// What recovery found.
pub struct Recovered {
    /// The state to give the shards, in parts as it was decoded.
    pub params: Vec<Vec<PersistedParam>>,
    /// Params read from the snapshot.
    pub from_snapshot: usize,
    /// Journal entries replayed on top of it.
    pub from_journal: usize,
    /// The journal's last seq (new entries continue after it).
    pub last_seq: u64,
}

/// Reads the snapshot from `state` and the journal tail from `journal`.
pub fn recover(state: Option<&Db>, journal: Option<&Db>) -> Result<Recovered, JournalError> {
    let mut params = match state {
        Some(db) => db.read_snapshot()?,
        None => Vec::new(),
    };
    let from_snapshot = params.iter().map(Vec::len).sum();
    let covered = match state {
        Some(db) => db.snapshot_seq()?,
        None => 0,
    };
    let mut last_seq = covered;
    let mut from_journal = 0;
    if let Some(db) = journal {
        // The newest SET per address in the tail; usually few next to the snapshot, so only
        // they are indexed.
        let mut tail: HashMap<std::sync::Arc<str>, PersistedParam> = HashMap::new();
        db.scan_from(covered, |seq, entry| {
            last_seq = seq;
            if let Body::Set { value, revision } = entry.body {
                from_journal += 1;
                if tail
                    .get(&entry.address)
                    .is_none_or(|p| p.revision < revision)
                {
                    tail.insert(
                        entry.address.clone(),
                        PersistedParam {
                            address: entry.address,
                            value,
                            revision,
                            writer: entry.author,
                            timestamp: entry.timestamp,
                            ttl: None,
                            ttl_anchor_us: entry.timestamp,
                            lock: None,
                        },
                    );
                }
            }
            true
        })?;
        if !tail.is_empty() {
            for p in params.iter_mut().flatten() {
                if let Some(newer) = tail.remove(&*p.address) {
                    if newer.revision > p.revision {
                        // Keep the TTL rule the snapshot knew; the journal does not record it.
                        let ttl = p.ttl;
                        *p = PersistedParam { ttl, ..newer };
                    }
                }
            }
            params.push(tail.into_values().collect());
        }
        last_seq = last_seq.max(db.last_seq()?);
    }
    Ok(Recovered {
        params,
        from_snapshot,
        from_journal,
        last_seq,
    })
}
