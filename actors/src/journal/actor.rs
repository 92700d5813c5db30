//! The `Journal` actor: group commit of appended entries, durable ACKs, snapshots, REPLAY
//! queries and background retention. Shards only ever `do_send` to it, so they never wait on
//! the disk; an ACK a shard hands over is delivered once its entry is committed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use clasp_proto::{Pattern, TypeMask};
use tokio::sync::oneshot;

use super::db::Db;
use super::encoded::EncodedEntries;
use super::Entry;
use crate::clock::now_micros;
use crate::config::{JournalConfig, JournalSync};
use crate::messages::{Deliver, DeliveryClass};
use crate::shard::PersistedParam;

/// Entries (or bytes) after which a batch is committed without waiting for its window.
const MAX_BATCH: u64 = 8192;
const MAX_BATCH_BYTES: usize = 4 << 20;
/// Room for the row's entry count (a varint of at most 10 bytes) before the entries.
const ROW_PREFIX: usize = 10;
/// Longest a batch waits for more entries in `batch` mode.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// Most entries one REPLAY returns.
pub const MAX_REPLAY: usize = 100_000;

/// The actor.
pub struct Journal {
    db: Db,
    state_db: Db,
    config: JournalConfig,
    next_seq: u64,
    /// The last seq handed out; snapshots read it to know what they cover.
    assigned: Arc<AtomicU64>,
    /// Segments not yet committed, after [`ROW_PREFIX`] bytes kept free for the row's
    /// segment count; kept between commits so its capacity is reused. The first entry is
    /// numbered `next_seq - pending_count`.
    pending: Vec<u8>,
    /// How many segments `pending` holds.
    pending_segments: u64,
    /// How many entries `pending` holds.
    pending_count: u64,
    acks: Vec<(Recipient<Deliver>, Bytes)>,
    barriers: Vec<oneshot::Sender<()>>,
    flush_scheduled: bool,
    /// Entries written and transactions committed, for /health.
    pub written: Arc<AtomicU64>,
    /// The last seq whose commit finished (or failed and was reported): the lag in /metrics.
    committed: Arc<AtomicU64>,
}

impl Journal {
    /// A journal over `db` (entries) and `state_db` (snapshots; may be the same file),
    /// continuing after `last_seq`.
    pub fn new(db: Db, state_db: Db, config: JournalConfig, last_seq: u64) -> Self {
        Self {
            db,
            state_db,
            config,
            next_seq: last_seq + 1,
            assigned: Arc::new(AtomicU64::new(last_seq)),
            pending: vec![0; ROW_PREFIX],
            pending_segments: 0,
            pending_count: 0,
            acks: Vec::new(),
            barriers: Vec::new(),
            flush_scheduled: false,
            written: Arc::default(),
            committed: Arc::new(AtomicU64::new(last_seq)),
        }
    }

    /// The last sequence number handed out (shared with the snapshot task).
    pub fn assigned(&self) -> Arc<AtomicU64> {
        self.assigned.clone()
    }

    /// The last seq whose commit finished (shared with /metrics).
    pub fn committed(&self) -> Arc<AtomicU64> {
        self.committed.clone()
    }

    /// Commits everything pending as one row (a postcard `Vec` of the segments the shards
    /// encoded: their count, then the segments), then releases the ACKs and barriers
    /// waiting on it.
    fn flush(&mut self) {
        self.flush_scheduled = false;
        if self.pending_count > 0 {
            let first = self.next_seq - self.pending_count;
            let count = std::mem::take(&mut self.pending_count);
            let segments = std::mem::take(&mut self.pending_segments);
            let mut prefix = [0u8; ROW_PREFIX];
            let written = postcard::to_slice(&(segments as usize), &mut prefix)
                .map(|p| p.len())
                .map_err(super::JournalError::from)
                .and_then(|len| {
                    let start = ROW_PREFIX - len;
                    self.pending[start..ROW_PREFIX].copy_from_slice(&prefix[..len]);
                    self.db.append_chunk(first, &self.pending[start..])
                });
            self.pending.truncate(ROW_PREFIX);
            match written {
                Ok(()) => {
                    self.written.fetch_add(count, Ordering::Relaxed);
                }
                Err(e) => {
                    // Nothing acknowledged may be lost silently: the writers are told.
                    tracing::error!(error = %e, lost = count, "journal commit failed");
                    let text = format!("Journal write failed: {e}");
                    for (to, _) in self.acks.drain(..) {
                        if let Some(frame) =
                            crate::shard::reply_frame(&clasp_proto::Message::Error(
                                clasp_proto::ErrorMessage::new(500, text.clone(), None),
                            ))
                        {
                            to.do_send(Deliver::direct(frame, DeliveryClass::Reliable, None));
                        }
                    }
                }
            }
        }
        self.committed
            .store(self.next_seq.saturating_sub(1), Ordering::Release);
        for (to, frame) in self.acks.drain(..) {
            to.do_send(Deliver::direct(frame, DeliveryClass::Reliable, None));
        }
        for b in self.barriers.drain(..) {
            let _ = b.send(());
        }
    }

    /// `batch` commits when the window closes (or the batch is full); `always` commits as
    /// soon as the entries already in the mailbox are taken in, so concurrent writers share
    /// one commit but nobody waits for a window.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if self.pending_count >= MAX_BATCH || self.pending.len() >= MAX_BATCH_BYTES {
            self.flush();
        } else if !self.flush_scheduled {
            self.flush_scheduled = true;
            let window = match self.config.sync {
                JournalSync::Always => Duration::ZERO,
                JournalSync::Batch => BATCH_WINDOW,
            };
            ctx.run_later(window, |act, _| act.flush());
        }
    }

    fn compact(&mut self) {
        let min_timestamp = self
            .config
            .max_age
            .map(|age| now_micros().saturating_sub(age.as_micros() as u64));
        if min_timestamp.is_none() && self.config.max_bytes.is_none() {
            return;
        }
        let keep_after = match self.state_db.snapshot_seq() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "journal compaction skipped");
                return;
            }
        };
        match self
            .db
            .compact(min_timestamp, self.config.max_bytes, keep_after)
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "journal compacted"),
            Err(e) => tracing::warn!(error = %e, "journal compaction failed"),
        }
    }
}

impl Actor for Journal {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Appends arrive with do_send; the mailbox bound only applies to `send`.
        ctx.set_mailbox_capacity(1024);
        let every = self.config.compact_every;
        ctx.run_interval(every, |act, _| act.compact());
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.flush();
        Running::Stop
    }
}

impl Supervised for Journal {}

/// Entries one shard accepted, encoded by it, in order (one message per mailbox drain).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppendEncoded(pub EncodedEntries);

impl Handler<AppendEncoded> for Journal {
    type Result = ();
    fn handle(&mut self, msg: AppendEncoded, ctx: &mut Context<Self>) {
        let (bytes, count, acks) = msg.0.into_parts();
        if count > 0 {
            self.next_seq += count;
            self.assigned
                .store(self.next_seq.saturating_sub(1), Ordering::Release);
            self.pending.extend_from_slice(&bytes);
            self.pending_segments += 1;
            self.pending_count += count;
        }
        self.acks.extend(acks);
        if count > 0 || !self.acks.is_empty() {
            self.schedule(ctx);
        }
    }
}

/// Resolves once everything appended before it is durable (bundle ACKs wait on this).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Barrier(pub oneshot::Sender<()>);

impl Handler<Barrier> for Journal {
    type Result = ();
    fn handle(&mut self, msg: Barrier, ctx: &mut Context<Self>) {
        if self.pending_count == 0 && self.acks.is_empty() {
            let _ = msg.0.send(());
        } else {
            self.barriers.push(msg.0);
            self.schedule(ctx);
        }
    }
}

/// REPLAY: committed entries matching, oldest first.
#[derive(Message)]
#[rtype(result = "Result<Vec<(u64, Entry)>, String>")]
pub struct ReplayQuery {
    /// Addresses.
    pub pattern: Pattern,
    /// From router-clock µs, inclusive.
    pub from: Option<u64>,
    /// To router-clock µs, inclusive.
    pub to: Option<u64>,
    /// At most this many (capped at [`MAX_REPLAY`]).
    pub limit: Option<u32>,
    /// Signal types.
    pub types: TypeMask,
}

impl Handler<ReplayQuery> for Journal {
    type Result = Result<Vec<(u64, Entry)>, String>;
    fn handle(&mut self, q: ReplayQuery, _: &mut Context<Self>) -> Self::Result {
        // What was appended is what a replay must see, committed or about to be.
        self.flush();
        let limit = q.limit.map_or(MAX_REPLAY, |l| (l as usize).min(MAX_REPLAY));
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.db
            .scan_from(0, |seq, entry| {
                if q.to.is_some_and(|to| entry.timestamp > to) {
                    return false;
                }
                let wanted = q.from.is_none_or(|from| entry.timestamp >= from)
                    && q.types
                        .includes(clasp_proto::SignalType::from_code(entry.body.signal_code()))
                    && q.pattern.matches(&entry.address);
                if wanted {
                    out.push((seq, entry));
                }
                out.len() < limit
            })
            .map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Stores a state snapshot covering the journal up to `seq`.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct WriteSnapshot {
    /// Every param.
    pub params: Vec<PersistedParam>,
    /// The last seq whose effect the params include.
    pub seq: u64,
}

impl Handler<WriteSnapshot> for Journal {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: WriteSnapshot, _: &mut Context<Self>) -> Self::Result {
        self.flush();
        self.state_db
            .write_snapshot(&msg.params, msg.seq)
            .map_err(|e| e.to_string())
    }
}
