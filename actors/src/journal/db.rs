//! The redb layout: `entries` (seq → [`Entry`]), `state` (address → [`PersistedParam`]) and
//! `meta` (the snapshot's covering seq). A journal file and a snapshot file may be the same.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Entry, JournalError};
use crate::shard::PersistedParam;

/// seq → postcard([`Entry`]).
pub const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// address → postcard([`PersistedParam`]).
pub const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
/// `snapshot_seq`: the last journal seq the snapshot includes.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// An open database file and its path (for error messages).
#[derive(Clone)]
pub struct Db {
    /// The database.
    pub db: Arc<Database>,
    /// Where it lives.
    pub path: String,
}

/// Maps any redb error to [`JournalError::Db`] naming the file.
pub fn db_err(path: &str) -> impl Fn(&dyn std::fmt::Display) -> JournalError + '_ {
    move |e| JournalError::Db {
        path: path.to_string(),
        reason: e.to_string(),
    }
}

macro_rules! tri {
    ($e:expr, $path:expr) => {
        $e.map_err(|e| db_err($path)(&e))?
    };
}

impl Db {
    /// Opens or creates the file and its tables.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let name = path.display().to_string();
        let db = tri!(Database::create(path), &name);
        let tx = tri!(db.begin_write(), &name);
        tri!(tx.open_table(ENTRIES), &name);
        tri!(tx.open_table(STATE), &name);
        tri!(tx.open_table(META), &name);
        tri!(tx.commit(), &name);
        Ok(Self {
            db: Arc::new(db),
            path: name,
        })
    }

    /// The highest seq in the journal (0 when empty).
    pub fn last_seq(&self) -> Result<u64, JournalError> {
        let tx = tri!(self.db.begin_read(), &self.path);
        let t = tri!(tx.open_table(ENTRIES), &self.path);
        let last = tri!(t.last(), &self.path);
        Ok(last.map_or(0, |(k, _)| k.value()))
    }

    /// The seq the stored snapshot covers (0 when there is none).
    pub fn snapshot_seq(&self) -> Result<u64, JournalError> {
        let tx = tri!(self.db.begin_read(), &self.path);
        let t = tri!(tx.open_table(META), &self.path);
        let v = tri!(t.get("snapshot_seq"), &self.path);
        Ok(v.map_or(0, |v| v.value()))
    }

    /// Replaces the stored snapshot with `params`, covering the journal up to `seq`.
    pub fn write_snapshot(&self, params: &[PersistedParam], seq: u64) -> Result<(), JournalError> {
        let tx = tri!(self.db.begin_write(), &self.path);
        {
            tri!(tx.delete_table(STATE), &self.path);
            let mut state = tri!(tx.open_table(STATE), &self.path);
            let mut buf = Vec::new();
            for p in params {
                buf.clear();
                let bytes = postcard::to_extend(p, std::mem::take(&mut buf))?;
                tri!(
                    state.insert(p.address.as_str(), bytes.as_slice()),
                    &self.path
                );
                buf = bytes;
            }
            let mut meta = tri!(tx.open_table(META), &self.path);
            tri!(meta.insert("snapshot_seq", seq), &self.path);
        }
        tri!(tx.commit(), &self.path);
        Ok(())
    }

    /// Every param of the stored snapshot.
    pub fn read_snapshot(&self) -> Result<Vec<PersistedParam>, JournalError> {
        let tx = tri!(self.db.begin_read(), &self.path);
        let state = tri!(tx.open_table(STATE), &self.path);
        let mut out = Vec::with_capacity(tri!(state.len(), &self.path) as usize);
        for row in tri!(state.iter(), &self.path) {
            let (_, v) = tri!(row, &self.path);
            out.push(postcard::from_bytes(v.value())?);
        }
        Ok(out)
    }

    /// Entries after `seq`, in order, passed to `each` until it returns false.
    pub fn scan_from(
        &self,
        seq: u64,
        mut each: impl FnMut(u64, Entry) -> bool,
    ) -> Result<(), JournalError> {
        let tx = tri!(self.db.begin_read(), &self.path);
        let t = tri!(tx.open_table(ENTRIES), &self.path);
        for row in tri!(t.range(seq.saturating_add(1)..), &self.path) {
            let (k, v) = tri!(row, &self.path);
            let entry: Entry = postcard::from_bytes(v.value())?;
            if !each(k.value(), entry) {
                break;
            }
        }
        Ok(())
    }

    /// Appends encoded entries in one durable transaction.
    pub fn append(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), JournalError> {
        let tx = tri!(self.db.begin_write(), &self.path);
        {
            let mut t = tri!(tx.open_table(ENTRIES), &self.path);
            for (seq, bytes) in batch {
                tri!(t.insert(*seq, bytes.as_slice()), &self.path);
            }
        }
        tri!(tx.commit(), &self.path);
        Ok(())
    }

    /// Deletes entries older than `min_timestamp` (µs) and, oldest first, as many as keep the
    /// rest under `max_bytes` of encoded entries; never deletes past `keep_after` (the
    /// snapshot's seq), so recovery stays exact. Returns how many were deleted.
    pub fn compact(
        &self,
        min_timestamp: Option<u64>,
        max_bytes: Option<u64>,
        keep_after: u64,
    ) -> Result<usize, JournalError> {
        let mut total: u64 = 0;
        let mut doomed = Vec::new();
        {
            let tx = tri!(self.db.begin_read(), &self.path);
            let t = tri!(tx.open_table(ENTRIES), &self.path);
            let mut sizes = Vec::new();
            for row in tri!(t.iter(), &self.path) {
                let (k, v) = tri!(row, &self.path);
                let bytes = v.value();
                total += bytes.len() as u64;
                let old = match min_timestamp {
                    Some(min) => postcard::from_bytes::<Entry>(bytes)?.timestamp < min,
                    None => false,
                };
                sizes.push((k.value(), bytes.len() as u64, old));
            }
            let mut over = max_bytes.map_or(0, |m| total.saturating_sub(m));
            for (seq, size, old) in sizes {
                if seq > keep_after {
                    break;
                }
                if old || over > 0 {
                    doomed.push(seq);
                    over = over.saturating_sub(size);
                } else {
                    break;
                }
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        let tx = tri!(self.db.begin_write(), &self.path);
        {
            let mut t = tri!(tx.open_table(ENTRIES), &self.path);
            for seq in &doomed {
                tri!(t.remove(*seq), &self.path);
            }
        }
        tri!(tx.commit(), &self.path);
        Ok(doomed.len())
    }
}
