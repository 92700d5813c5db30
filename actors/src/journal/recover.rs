//! Recovery at start: the snapshot first, then every journal entry after the seq it covers,
//! newest revision per address winning (FEATURES PJ-7). Revisions keep growing afterwards.

use std::collections::HashMap;

use super::db::Db;
use super::{Body, JournalError};
use crate::shard::PersistedParam;

/// What recovery found.
pub struct Recovered {
    /// The state to give the shards.
    pub params: Vec<PersistedParam>,
    /// Params read from the snapshot.
    pub from_snapshot: usize,
    /// Journal entries replayed on top of it.
    pub from_journal: usize,
    /// The journal's last seq (new entries continue after it).
    pub last_seq: u64,
}

/// Reads the snapshot from `state` and the journal tail from `journal`.
pub fn recover(state: Option<&Db>, journal: Option<&Db>) -> Result<Recovered, JournalError> {
    let snapshot = match state {
        Some(db) => db.read_snapshot()?,
        None => Vec::new(),
    };
    let from_snapshot = snapshot.len();
    let covered = match state {
        Some(db) => db.snapshot_seq()?,
        None => 0,
    };
    let mut last_seq = 0;
    let mut from_journal = 0;
    let params = match journal {
        None => snapshot,
        Some(db) => {
            let mut by_address: HashMap<String, PersistedParam> = snapshot
                .into_iter()
                .map(|p| (p.address.clone(), p))
                .collect();
            db.scan_from(covered, |seq, entry| {
                last_seq = seq;
                if let Body::Set { value, revision } = entry.body {
                    from_journal += 1;
                    let known = by_address.get(&entry.address);
                    let newer = known.is_none_or(|p| p.revision < revision);
                    let ttl = known.and_then(|p| p.ttl);
                    if newer {
                        by_address.insert(
                            entry.address.clone(),
                            PersistedParam {
                                address: entry.address,
                                value,
                                revision,
                                writer: entry.author,
                                timestamp: entry.timestamp,
                                ttl,
                                ttl_anchor_us: entry.timestamp,
                                lock: None,
                            },
                        );
                    }
                }
                true
            })?;
            last_seq = last_seq.max(db.last_seq()?).max(covered);
            by_address.into_values().collect()
        }
    };
    Ok(Recovered {
        params,
        from_snapshot,
        from_journal,
        last_seq,
    })
}
