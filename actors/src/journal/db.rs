//! The redb layout: `entries` (seq → [`Entry`]), `state` (address → [`PersistedParam`]) and
//! `meta` (the snapshot's covering seq). A journal file and a snapshot file may be the same.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Entry, JournalError};
use crate::shard::PersistedParam;

/// first seq of a group commit → its entries as segments (see [`super::encoded`]),
/// numbered consecutively.
pub const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entry_segments");
/// The first layout: first seq → postcard(`Vec<`[`Entry`]`>`). Rewritten into [`ENTRIES`]
/// when a journal from before segments is opened.
const ENTRIES_V1: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// chunk number → postcard(`Vec<`[`PersistedParam`]`>`): a snapshot is written and read in
/// chunks, so a million params cost a thousand B-tree rows, not a million.
pub const STATE: TableDefinition<u64, &[u8]> = TableDefinition::new("state_chunks");
/// Params per snapshot chunk.
const CHUNK: usize = 1024;
/// `snapshot_seq`: the last journal seq the snapshot includes.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// A snapshot row as stored, borrowing its strings from the chunk being decoded: the same
/// postcard layout as [`PersistedParam`] (field for field), so recovery allocates each address
/// once instead of twice and shares one allocation per distinct writer instead of one per
/// param (a million params usually have a few dozen writers).
#[derive(serde::Deserialize)]
struct PersistedParamRef<'a> {
    #[serde(borrow)]
    address: &'a str,
    value: clasp_proto::Value,
    revision: u64,
    #[serde(borrow)]
    writer: &'a str,
    timestamp: u64,
    ttl: Option<crate::shard::PersistedTtl>,
    ttl_anchor_us: u64,
    lock: Option<String>,
}

impl PersistedParamRef<'_> {
    fn into_owned(self, writers: &mut WriterInterner) -> PersistedParam {
        PersistedParam {
            address: Arc::from(self.address),
            value: self.value,
            revision: self.revision,
            writer: writers.get(self.writer),
            timestamp: self.timestamp,
            ttl: self.ttl,
            ttl_anchor_us: self.ttl_anchor_us,
            lock: self.lock,
        }
    }
}

/// One shared string per distinct writer id seen while decoding a snapshot.
#[derive(Default)]
struct WriterInterner(std::collections::HashMap<Box<str>, Arc<str>>);

impl WriterInterner {
    fn get(&mut self, writer: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(writer) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(writer);
        self.0.insert(Box::from(writer), shared.clone());
        shared
    }
}

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
        Self::migrate_v1(&tx, &name)?;
        tri!(tx.commit(), &name);
        Ok(Self {
            db: Arc::new(db),
            path: name,
        })
    }

    /// Rewrites rows of the first layout, if the file has any, in the same transaction that
    /// opens it: a journal written by an earlier version keeps every entry.
    fn migrate_v1(tx: &redb::WriteTransaction, name: &str) -> Result<(), JournalError> {
        let old = match tx.open_table(ENTRIES_V1) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(db_err(name)(&e)),
        };
        let mut rows = Vec::new();
        for row in tri!(old.iter(), name) {
            let (k, v) = tri!(row, name);
            let chunk: Vec<Entry> = postcard::from_bytes(v.value())?;
            rows.push((k.value(), super::encoded::encode_row(&chunk)?));
        }
        drop(old);
        if !rows.is_empty() {
            tracing::info!(
                file = name,
                rows = rows.len(),
                "journal rows rewritten as segments"
            );
        }
        let mut new = tri!(tx.open_table(ENTRIES), name);
        for (k, row) in rows {
            tri!(new.insert(k, row.as_slice()), name);
        }
        drop(new);
        tri!(tx.delete_table(ENTRIES_V1), name);
        Ok(())
    }

    /// The highest seq in the journal (0 when empty).
    pub fn last_seq(&self) -> Result<u64, JournalError> {
        let tx = tri!(self.db.begin_read(), &self.path);
        let t = tri!(tx.open_table(ENTRIES), &self.path);
        let last = tri!(t.last(), &self.path);
        match last {
            None => Ok(0),
            Some((k, v)) => {
                let len = super::encoded::row_len(v.value())?;
                Ok(k.value() + len.saturating_sub(1) as u64)
            }
        }
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
            for (i, chunk) in params.chunks(CHUNK).enumerate() {
                let bytes = postcard::to_allocvec(chunk)?;
                tri!(state.insert(i as u64, bytes.as_slice()), &self.path);
            }
            let mut meta = tri!(tx.open_table(META), &self.path);
            tri!(meta.insert("snapshot_seq", seq), &self.path);
        }
        tri!(tx.commit(), &self.path);
        Ok(())
    }

    /// Every param of the stored snapshot, in parts (one per core that decoded them: joining
    /// them would be one more pass over a million params' memory). Rows are decoded where
    /// redb keeps them, without a copy.
    pub fn read_snapshot(&self) -> Result<Vec<Vec<PersistedParam>>, JournalError> {
        let tx = tri!(self.db.begin_read(), &self.path);
        let state = tri!(tx.open_table(STATE), &self.path);
        let mut rows = Vec::with_capacity(tri!(state.len(), &self.path) as usize);
        for row in tri!(state.iter(), &self.path) {
            rows.push(tri!(row, &self.path).1);
        }
        let raw: Vec<&[u8]> = rows.iter().map(|v| v.value()).collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = raw.len().div_ceil(threads).max(1);
        let decoded: Vec<Result<Vec<PersistedParam>, postcard::Error>> = std::thread::scope(|s| {
            let workers: Vec<_> = raw
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        let mut out = Vec::with_capacity(part.len() * CHUNK);
                        let mut writers = WriterInterner::default();
                        for bytes in part {
                            let rows: Vec<PersistedParamRef<'_>> = postcard::from_bytes(bytes)?;
                            out.extend(rows.into_iter().map(|r| r.into_owned(&mut writers)));
                        }
                        Ok(out)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|_| Ok(Vec::new())))
                .collect()
        });
        decoded.into_iter().map(|p| p.map_err(Into::into)).collect()
    }

    /// Entries after `seq`, in order, passed to `each` until it returns false.
    pub fn scan_from(
        &self,
        seq: u64,
        mut each: impl FnMut(u64, Entry) -> bool,
    ) -> Result<(), JournalError> {
        let tx = tri!(self.db.begin_read(), &self.path);
        let t = tri!(tx.open_table(ENTRIES), &self.path);
        // The chunk holding `seq + 1` starts at or before it.
        let first = seq.saturating_add(1);
        let start = match tri!(t.range(..=first), &self.path).next_back() {
            Some(row) => tri!(row, &self.path).0.value(),
            None => first,
        };
        for row in tri!(t.range(start..), &self.path) {
            let (k, v) = tri!(row, &self.path);
            let chunk = super::encoded::decode_row(v.value())?;
            for (i, entry) in chunk.into_iter().enumerate() {
                let at = k.value() + i as u64;
                if at < first {
                    continue;
                }
                if !each(at, entry) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Appends one chunk of consecutive entries, the first numbered `first`, in one durable
    /// transaction: a single B-tree row per group commit.
    pub fn append_chunk(&self, first: u64, chunk: &[u8]) -> Result<(), JournalError> {
        let tx = tri!(self.db.begin_write(), &self.path);
        {
            let mut t = tri!(tx.open_table(ENTRIES), &self.path);
            tri!(t.insert(first, chunk), &self.path);
        }
        tri!(tx.commit(), &self.path);
        Ok(())
    }

    /// Deletes whole chunks, oldest first, whose entries are all older than `min_timestamp`
    /// (µs) or that must go to keep the rest under `max_bytes`; never a chunk holding an entry
    /// after `keep_after` (the snapshot's seq), so recovery stays exact. Returns how many
    /// entries were deleted.
    pub fn compact(
        &self,
        min_timestamp: Option<u64>,
        max_bytes: Option<u64>,
        keep_after: u64,
    ) -> Result<usize, JournalError> {
        let mut total: u64 = 0;
        let mut doomed = Vec::new();
        let mut removed = 0;
        {
            let tx = tri!(self.db.begin_read(), &self.path);
            let t = tri!(tx.open_table(ENTRIES), &self.path);
            let mut chunks = Vec::new();
            for row in tri!(t.iter(), &self.path) {
                let (k, v) = tri!(row, &self.path);
                let bytes = v.value();
                total += bytes.len() as u64;
                let chunk = super::encoded::decode_row(bytes)?;
                let last_seq = k.value() + chunk.len().saturating_sub(1) as u64;
                let old = match (min_timestamp, chunk.last()) {
                    (Some(min), Some(e)) => e.timestamp < min,
                    _ => false,
                };
                chunks.push((k.value(), last_seq, chunk.len(), bytes.len() as u64, old));
            }
            let mut over = max_bytes.map_or(0, |m| total.saturating_sub(m));
            for (first, last_seq, len, size, old) in chunks {
                if last_seq > keep_after || !(old || over > 0) {
                    break;
                }
                doomed.push(first);
                removed += len;
                over = over.saturating_sub(size);
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
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::PersistedTtl;
    use clasp_proto::Value;

    fn param(i: usize) -> PersistedParam {
        PersistedParam {
            address: format!("/venue/fixture/{i}").into(),
            value: if i % 2 == 0 {
                Value::Float(i as f64)
            } else {
                Value::String(format!("cue {i}"))
            },
            revision: 1 + i as u64,
            writer: format!("writer-{}", i % 3).into(),
            timestamp: 1_796_000_000_000_000 + i as u64,
            ttl: match i % 3 {
                0 => None,
                1 => Some(PersistedTtl::Sliding(30)),
                _ => Some(PersistedTtl::Absolute(5)),
            },
            ttl_anchor_us: 1_796_000_000_000_000,
            lock: (i % 4 == 0).then(|| format!("session-{i}")),
        }
    }

    /// The borrowed decoder must read exactly what `write_snapshot` wrote, over several
    /// chunks, and share one string per writer.
    #[test]
    fn a_snapshot_reads_back_field_for_field_with_writers_shared() {
        let dir = std::env::temp_dir().join(format!("clasp-db-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = Db::open(&dir.join("state.redb")).expect("opens");
        let params: Vec<PersistedParam> = (0..CHUNK * 2 + 7).map(param).collect();
        db.write_snapshot(&params, 42).expect("writes");
        let back: Vec<PersistedParam> = db.read_snapshot().expect("reads").concat();
        assert_eq!(back, params);
        assert_eq!(db.snapshot_seq().expect("seq"), 42);
        let same_writer: Vec<&PersistedParam> =
            back.iter().filter(|p| &*p.writer == "writer-1").collect();
        assert!(same_writer.len() > 2);
        // Within one decoding thread's part the allocation is shared.
        assert!(same_writer
            .windows(2)
            .any(|w| Arc::ptr_eq(&w[0].writer, &w[1].writer)));
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A journal written in the first layout (one struct per entry) is rewritten when
    /// opened, and every entry reads back, numbered as before.
    #[test]
    fn a_first_layout_journal_is_migrated_without_losing_an_entry() {
        use crate::journal::{Body, Entry};
        let dir = std::env::temp_dir().join(format!("clasp-db-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("journal.redb");
        let entries: Vec<Entry> = (0..5)
            .map(|i| Entry {
                timestamp: 1_000 + i,
                author: "old-session".into(),
                address: format!("/old/{i}").into(),
                body: Body::Set {
                    value: Value::Int(i as i64),
                    revision: i + 1,
                },
            })
            .collect();
        {
            let db = redb::Database::create(&path).expect("creates");
            let tx = db.begin_write().expect("tx");
            {
                let mut t = tx.open_table(ENTRIES_V1).expect("table");
                let first = postcard::to_allocvec(&entries[..3]).expect("encodes");
                let second = postcard::to_allocvec(&entries[3..]).expect("encodes");
                t.insert(1u64, first.as_slice()).expect("row");
                t.insert(4u64, second.as_slice()).expect("row");
            }
            tx.commit().expect("commits");
        }
        let db = Db::open(&path).expect("opens and migrates");
        assert_eq!(db.last_seq().expect("last"), 5);
        let mut back = Vec::new();
        db.scan_from(0, |seq, e| {
            back.push((seq, e));
            true
        })
        .expect("scans");
        let expected: Vec<(u64, Entry)> = (1..).zip(entries.iter().cloned()).collect();
        assert_eq!(back, expected);
        drop(db);
        // Opening again finds nothing left to migrate.
        let db = Db::open(&path).expect("reopens");
        assert_eq!(db.last_seq().expect("last"), 5);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
