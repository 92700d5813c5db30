//! Param state of one shard and its rules (WIRE §7.5, FEATURES ST-3, ST-12..17): revisions,
//! conflict strategies, locks, expected revisions, TTLs and capacity. Pure logic, no actors,
//! so every rule is unit-tested directly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use clasp_proto::{Address, ParamState, Pattern, Set, Ttl, Value};

use crate::config::{ConflictStrategy, Eviction};

/// Most earlier values kept per param for the `history` subscription option.
pub const MAX_HISTORY: usize = 64;

/// Why a SET was refused. `code()` is the ERROR code sent to the writer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetError {
    /// The SET carried an expected revision that is not the current one.
    #[error("RevisionConflict {{ expected: {expected}, actual: {actual} }}")]
    RevisionConflict {
        /// What the writer expected.
        expected: u64,
        /// The current revision.
        actual: u64,
    },
    /// Another session holds the lock.
    #[error("LockHeld {{ holder: {holder:?} }}")]
    LockHeld {
        /// Session id of the holder.
        holder: String,
    },
    /// The param's conflict strategy refused the value.
    #[error("ConflictRejected: {reason}")]
    ConflictRejected {
        /// Which rule.
        reason: String,
    },
    /// The store is full and the eviction policy is `reject`.
    #[error("AtCapacity: the relay holds its maximum of {max} params")]
    AtCapacity {
        /// The limit.
        max: usize,
    },
    /// The address belongs to another router's namespace: a bundle cannot be applied across
    /// routers all-or-nothing, so it is refused whole.
    #[error("RemoteOwner: {address} is owned by router '{owner}'; bundles cannot write another router's namespace")]
    RemoteOwner {
        /// The address.
        address: String,
        /// The owning router.
        owner: String,
    },
    /// Another bundle holds this address between its prepare and commit.
    #[error("Busy: {address} is part of a bundle being applied")]
    Busy {
        /// The address.
        address: String,
    },
}

impl SetError {
    /// ERROR code: 401 for a held lock, 400 for every other state rejection.
    pub fn code(&self) -> u16 {
        match self {
            Self::LockHeld { .. } => 401,
            _ => 400,
        }
    }
}

/// A param as snapshots and the journal keep it (postcard-encoded).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PersistedParam {
    /// Address (shared, so recovery decodes it once and the store keeps that allocation).
    pub address: Arc<str>,
    /// Value.
    pub value: Value,
    /// Revision, which keeps growing across restarts.
    pub revision: u64,
    /// Session id of the last writer.
    pub writer: Arc<str>,
    /// Router-clock µs of the last write.
    pub timestamp: u64,
    /// Lifetime rule set by a SET, if any.
    pub ttl: Option<PersistedTtl>,
    /// Router-clock µs the TTL counts from.
    pub ttl_anchor_us: u64,
    /// Lock holder when the snapshot was taken (informational; not restored).
    pub lock: Option<String>,
}

/// [`Ttl`] in a stable, serialisable form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PersistedTtl {
    /// No expiry.
    Never,
    /// Seconds since the last use.
    Sliding(u32),
    /// Seconds since the last write.
    Absolute(u32),
}

impl From<Ttl> for PersistedTtl {
    fn from(t: Ttl) -> Self {
        match t {
            Ttl::Never => Self::Never,
            Ttl::Sliding(s) => Self::Sliding(s),
            Ttl::Absolute(s) => Self::Absolute(s),
        }
    }
}

impl From<PersistedTtl> for Ttl {
    fn from(t: PersistedTtl) -> Self {
        match t {
            PersistedTtl::Never => Self::Never,
            PersistedTtl::Sliding(s) => Self::Sliding(s),
            PersistedTtl::Absolute(s) => Self::Absolute(s),
        }
    }
}

/// Store-wide limits shared by all shards.
#[derive(Debug, Clone)]
pub struct StoreLimits {
    /// Maximum params across all shards (0 = unlimited).
    pub max_params: usize,
    /// What to do at the limit.
    pub eviction: Eviction,
    /// Default lifetime since last use.
    pub default_ttl: Option<Duration>,
    /// Params stored across all shards.
    pub total: Arc<AtomicUsize>,
}

#[derive(Debug, Clone)]
struct Param {
    value: Value,
    revision: u64,
    writer: Arc<str>,
    timestamp: u64,
    ttl: Option<Ttl>,
    ttl_anchor: Instant,
    last_use: Instant,
    lock: Option<Arc<str>>,
    created: u64,
    used: u64,
    /// Earlier (value, revision, timestamp), oldest first; kept only while some
    /// subscription asked for history.
    /// Boxed: most params never get one, and a million params is a million of these slots
    /// (8 bytes instead of the deque's 32), which is what the lint's advice would undo.
    #[allow(clippy::box_collection)]
    history: Option<Box<std::collections::VecDeque<(Value, u64, u64)>>>,
}

impl Param {
    fn state(&self, address: &Address) -> ParamState {
        ParamState {
            address: address.clone(),
            value: self.value.clone(),
            revision: self.revision,
            writer: Some(self.writer.to_string()),
            timestamp: Some(self.timestamp),
        }
    }
}

/// The outcome of an accepted SET.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The SET to broadcast: the incoming one with the new revision and stored value.
    pub echo: Set,
    /// Param evicted to make room, if any.
    pub evicted: Option<Address>,
}

/// Params of one shard.
#[derive(Debug)]
pub struct ParamStore {
    /// An index map: the hash table holds only positions into one dense vector of params,
    /// so a million params take about half the memory of a plain map (whose buckets are
    /// sized to the next power of two) and recovery appends to that vector instead of
    /// scattering inserts over hundreds of MB (it was bound by cache and TLB misses).
    params: IndexMap<Address, Param>,
    by_use: BTreeMap<u64, Address>,
    by_age: BTreeMap<u64, Address>,
    seq: u64,
    limits: StoreLimits,
    history_depth: usize,
}

impl ParamStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            params: IndexMap::new(),
            by_use: BTreeMap::new(),
            by_age: BTreeMap::new(),
            seq: 0,
            limits,
            history_depth: 0,
        }
    }

    /// Params held by this shard.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the shard holds no params.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Only the index the eviction policy reads is kept, and none without a limit: each is a
    /// B-tree insert per new param and per use.
    fn tracks_use(&self) -> bool {
        self.limits.max_params != 0 && self.limits.eviction == Eviction::Lru
    }

    fn tracks_age(&self) -> bool {
        self.limits.max_params != 0 && self.limits.eviction == Eviction::Oldest
    }

    /// Indexes a new param created (and used) at `seq`.
    fn index(&mut self, seq: u64, address: &Address) {
        if self.tracks_age() {
            self.by_age.insert(seq, address.clone());
        }
        if self.tracks_use() {
            self.by_use.insert(seq, address.clone());
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn touch(&mut self, address: &Address, now: Instant) {
        let seq = self.next_seq();
        let tracks_use = self.tracks_use();
        if let Some(p) = self.params.get_mut(address) {
            if tracks_use {
                self.by_use.remove(&p.used);
                self.by_use.insert(seq, address.clone());
            }
            p.used = seq;
            p.last_use = now;
            if matches!(p.ttl, Some(Ttl::Sliding(_))) {
                p.ttl_anchor = now;
            }
        }
    }

    /// Checks a SET against the current state without changing anything.
    pub fn check(
        &self,
        set: &Set,
        writer: &str,
        strategy: ConflictStrategy,
    ) -> Result<(), SetError> {
        let Some(p) = self.params.get(&set.address) else {
            return self.check_capacity();
        };
        if let Some(holder) = &p.lock {
            // RECOMMENDED (§7.5): the unlock flag does not let a non-holder through.
            if &**holder != writer {
                return Err(SetError::LockHeld {
                    holder: holder.to_string(),
                });
            }
        }
        if let Some(expected) = set.revision {
            if expected != p.revision {
                return Err(SetError::RevisionConflict {
                    expected,
                    actual: p.revision,
                });
            }
        }
        match strategy {
            ConflictStrategy::Max => {
                if let (Some(new), Some(old)) = (set.value.as_f64(), p.value.as_f64()) {
                    if new < old {
                        return Err(SetError::ConflictRejected {
                            reason: format!("strategy max keeps {old}, refused {new}"),
                        });
                    }
                }
            }
            ConflictStrategy::Min => {
                if let (Some(new), Some(old)) = (set.value.as_f64(), p.value.as_f64()) {
                    if new > old {
                        return Err(SetError::ConflictRejected {
                            reason: format!("strategy min keeps {old}, refused {new}"),
                        });
                    }
                }
            }
            ConflictStrategy::Lww | ConflictStrategy::Lock | ConflictStrategy::Merge => {}
        }
        Ok(())
    }

    fn check_capacity(&self) -> Result<(), SetError> {
        let max = self.limits.max_params;
        if max == 0 || self.limits.total.load(Ordering::Relaxed) < max {
            return Ok(());
        }
        match self.limits.eviction {
            Eviction::Reject => Err(SetError::AtCapacity { max }),
            // Eviction happens in this shard; one with nothing to evict must refuse.
            Eviction::Lru | Eviction::Oldest if self.params.is_empty() => {
                Err(SetError::AtCapacity { max })
            }
            Eviction::Lru | Eviction::Oldest => Ok(()),
        }
    }

    /// Applies a SET by `writer` (session id) at router time `now_us` / `now`.
    pub fn apply(
        &mut self,
        set: &Set,
        writer: &Arc<str>,
        strategy: ConflictStrategy,
        now_us: u64,
        now: Instant,
    ) -> Result<Applied, SetError> {
        self.check(set, writer, strategy)?;
        let mut evicted = None;
        if !self.params.contains_key(&set.address) {
            let max = self.limits.max_params;
            if max != 0 && self.limits.total.load(Ordering::Relaxed) >= max {
                evicted = self.evict_one();
            }
            let seq = self.next_seq();
            let lock = (strategy == ConflictStrategy::Lock || set.lock).then(|| writer.clone());
            let param = Param {
                value: set.value.clone(),
                revision: 1,
                writer: writer.clone(),
                timestamp: now_us,
                ttl: set.ttl,
                ttl_anchor: now,
                last_use: now,
                lock: if set.unlock { None } else { lock },
                created: seq,
                used: seq,
                history: None,
            };
            self.index(seq, &set.address);
            self.params.insert(set.address.clone(), param);
            self.limits.total.fetch_add(1, Ordering::Relaxed);
            return Ok(Applied {
                echo: self.echo(set, 1),
                evicted,
            });
        }
        self.touch(&set.address, now);
        let Some(p) = self.params.get_mut(&set.address) else {
            return Err(SetError::Busy {
                address: set.address.to_string(),
            });
        };
        if self.history_depth > 0 {
            let history = p.history.get_or_insert_with(Default::default);
            history.push_back((p.value.clone(), p.revision, p.timestamp));
            while history.len() > self.history_depth {
                history.pop_front();
            }
        }
        p.value = match (strategy, &p.value, &set.value) {
            (ConflictStrategy::Merge, Value::Map(old), Value::Map(new)) => {
                let mut merged = old.clone();
                for (k, v) in new {
                    match merged.iter_mut().find(|(mk, _)| mk == k) {
                        Some(slot) => slot.1 = v.clone(),
                        None => merged.push((k.clone(), v.clone())),
                    }
                }
                Value::Map(merged)
            }
            _ => set.value.clone(),
        };
        p.revision += 1;
        p.writer = writer.clone();
        p.timestamp = now_us;
        if let Some(ttl) = set.ttl {
            p.ttl = Some(ttl);
            p.ttl_anchor = now;
        }
        if set.lock || (strategy == ConflictStrategy::Lock && p.lock.is_none()) {
            p.lock = Some(writer.clone());
        }
        if set.unlock {
            p.lock = None;
        }
        let (revision, value) = (p.revision, p.value.clone());
        let mut echo = self.echo(set, revision);
        echo.value = value;
        Ok(Applied { echo, evicted })
    }

    /// Stores a param as its owner (another router) has it, with the owner's revision; the
    /// SET to broadcast, or `None` when this store already has that revision or a newer one
    /// (a copy that came a second way). Locks and strategies are the owner's business.
    pub fn apply_replica(&mut self, state: &ParamState, now_us: u64, now: Instant) -> Option<Set> {
        if let Some(p) = self.params.get_mut(&state.address) {
            if p.revision >= state.revision {
                return None;
            }
            p.value = state.value.clone();
            p.revision = state.revision;
            if let Some(w) = &state.writer {
                p.writer = Arc::from(w.as_str());
            }
            p.timestamp = state.timestamp.unwrap_or(now_us);
            self.touch(&state.address, now);
        } else {
            let max = self.limits.max_params;
            if max != 0 && self.limits.total.load(Ordering::Relaxed) >= max {
                match self.limits.eviction {
                    Eviction::Reject => return None,
                    _ => {
                        self.evict_one()?;
                    }
                }
            }
            let seq = self.next_seq();
            self.index(seq, &state.address);
            self.params.insert(
                state.address.clone(),
                Param {
                    value: state.value.clone(),
                    revision: state.revision,
                    writer: Arc::from(state.writer.as_deref().unwrap_or("federation")),
                    timestamp: state.timestamp.unwrap_or(now_us),
                    ttl: None,
                    ttl_anchor: now,
                    last_use: now,
                    lock: None,
                    created: seq,
                    used: seq,
                    history: None,
                },
            );
            self.limits.total.fetch_add(1, Ordering::Relaxed);
        }
        let mut set = Set::new(state.address.clone(), state.value.clone());
        set.revision = Some(state.revision);
        Some(set)
    }

    fn echo(&self, set: &Set, revision: u64) -> Set {
        Set {
            revision: Some(revision),
            ..set.clone()
        }
    }

    fn evict_one(&mut self) -> Option<Address> {
        let order = match self.limits.eviction {
            Eviction::Oldest => &self.by_age,
            _ => &self.by_use,
        };
        let address = order.first_key_value().map(|(_, a)| a.clone())?;
        self.remove(&address);
        Some(address)
    }

    /// Removes a param.
    pub fn remove(&mut self, address: &Address) -> bool {
        // Order means nothing here (snapshots are unordered), so the O(1) removal.
        let Some(p) = self.params.swap_remove(address) else {
            return false;
        };
        self.by_use.remove(&p.used);
        self.by_age.remove(&p.created);
        self.limits.total.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// One param, as GET sees it (refreshes LRU order and a sliding TTL).
    pub fn get(&mut self, address: &Address, now: Instant) -> Option<ParamState> {
        self.touch(address, now);
        self.params.get(address).map(|p| p.state(address))
    }

    /// Every param matching `pattern`, in no particular order (snapshots are unordered;
    /// sorting 10 000 addresses would cost a late joiner about a millisecond).
    pub fn matching(&self, pattern: &Pattern) -> Vec<ParamState> {
        self.params
            .iter()
            .filter(|(a, _)| pattern.matches(a.as_str()))
            .map(|(a, p)| p.state(a))
            .collect()
    }

    /// Starts keeping up to `depth` earlier values per param (never shrinks; capped).
    pub fn keep_history(&mut self, depth: usize) {
        self.history_depth = self.history_depth.max(depth.min(MAX_HISTORY));
    }

    /// Up to `n` earlier values of each param matching `pattern`, oldest first, as the
    /// SETs that produced them (subscription option `history`).
    pub fn history(&self, pattern: &Pattern, n: usize) -> Vec<Set> {
        let mut out = Vec::new();
        let mut addresses: Vec<&Address> = self
            .params
            .keys()
            .filter(|a| pattern.matches(a.as_str()))
            .collect();
        addresses.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        for a in addresses {
            if let Some(history) = self.params.get(a).and_then(|p| p.history.as_deref()) {
                let skip = history.len().saturating_sub(n);
                for (value, revision, _) in history.iter().skip(skip) {
                    out.push(Set {
                        revision: Some(*revision),
                        ..Set::new(a.clone(), value.clone())
                    });
                }
            }
        }
        out
    }

    /// Current revision of an address.
    pub fn revision(&self, address: &Address) -> Option<u64> {
        self.params.get(address).map(|p| p.revision)
    }

    /// Releases every lock held by `session`.
    pub fn release_locks(&mut self, session: &str) -> usize {
        let mut n = 0;
        for p in self.params.values_mut() {
            if p.lock.as_deref() == Some(session) {
                p.lock = None;
                n += 1;
            }
        }
        n
    }

    /// Every param as a record that outlives the process (for snapshots). TTL anchors are
    /// turned into router-clock µs so they survive the restart too.
    pub fn export(&self, now_us: u64, now: Instant) -> Vec<PersistedParam> {
        self.params
            .iter()
            .map(|(address, p)| PersistedParam {
                address: Arc::from(address.as_str()),
                value: p.value.clone(),
                revision: p.revision,
                writer: p.writer.clone(),
                timestamp: p.timestamp,
                ttl: p.ttl.map(PersistedTtl::from),
                ttl_anchor_us: now_us
                    .saturating_sub(now.duration_since(p.ttl_anchor).as_micros() as u64),
                lock: p.lock.as_ref().map(|l| l.to_string()),
            })
            .collect()
    }

    /// Loads params recovered at start. A record replaces what the store holds only when its
    /// revision is newer, so a snapshot and a journal tail can be applied in any order.
    /// Locks are not restored: every session ended with the process, and locks are released
    /// when their holder goes, as at a disconnect.
    pub fn restore(&mut self, params: Vec<PersistedParam>, now_us: u64, now: Instant) -> usize {
        use indexmap::map::Entry as Slot;
        let mut restored = 0;
        let mut added = 0;
        self.params.reserve(params.len());
        for r in params {
            let address = match Address::from_shared(r.address) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "recovered param with an invalid address skipped");
                    continue;
                }
            };
            let age = Duration::from_micros(now_us.saturating_sub(r.ttl_anchor_us));
            let writer = r.writer;
            self.seq += 1;
            let seq = self.seq;
            let param = Param {
                value: r.value,
                revision: r.revision,
                writer,
                timestamp: r.timestamp,
                ttl: r.ttl.map(Ttl::from),
                ttl_anchor: now.checked_sub(age).unwrap_or(now),
                last_use: now,
                lock: None,
                created: seq,
                used: seq,
                history: None,
            };
            // One probe of the table per param: recovery is bound by its cache misses. The key
            // is shared with an eviction index only when one is kept.
            let indexed = (self.tracks_use() || self.tracks_age()).then(|| address.clone());
            match self.params.entry(address) {
                Slot::Occupied(mut slot) => {
                    if slot.get().revision >= param.revision {
                        continue;
                    }
                    let old = slot.insert(param);
                    self.by_age.remove(&old.created);
                    self.by_use.remove(&old.used);
                }
                Slot::Vacant(slot) => {
                    slot.insert(param);
                    added += 1;
                }
            }
            if let Some(address) = indexed {
                self.index(seq, &address);
            }
            restored += 1;
        }
        // One shared-counter update for the whole load, not one per param per shard thread.
        self.limits.total.fetch_add(added, Ordering::Relaxed);
        restored
    }

    /// Removes expired params and returns their addresses. A param's own TTL wins over the
    /// relay default; `Never` (and Python's absolute 0) keeps it forever.
    pub fn expire(&mut self, now: Instant) -> Vec<Address> {
        let default = self.limits.default_ttl;
        let expired: Vec<Address> = self
            .params
            .iter()
            .filter(|(_, p)| match p.ttl {
                Some(ttl) => match ttl.seconds() {
                    None => false,
                    Some(s) => now.duration_since(p.ttl_anchor) > Duration::from_secs(u64::from(s)),
                },
                None => default.is_some_and(|d| now.duration_since(p.last_use) > d),
            })
            .map(|(a, _)| a.clone())
            .collect();
        for a in &expired {
            self.remove(a);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize, eviction: Eviction, ttl: Option<Duration>) -> ParamStore {
        ParamStore::new(StoreLimits {
            max_params: max,
            eviction,
            default_ttl: ttl,
            total: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn addr(s: &str) -> Address {
        Address::parse(s).expect("test address")
    }

    fn set(a: &str, v: impl Into<Value>) -> Set {
        Set::new(addr(a), v)
    }

    fn w(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    const LWW: ConflictStrategy = ConflictStrategy::Lww;

    #[test]
    fn revisions_start_at_one_and_count_writes() {
        let mut s = store(0, Eviction::Lru, None);
        let now = Instant::now();
        assert_eq!(
            s.apply(&set("/a", 1.0), &w("A"), LWW, 10, now)
                .expect("ok")
                .echo
                .revision,
            Some(1)
        );
        assert_eq!(
            s.apply(&set("/a", 2.0), &w("B"), LWW, 20, now)
                .expect("ok")
                .echo
                .revision,
            Some(2)
        );
        let p = s.get(&addr("/a"), now).expect("stored");
        assert_eq!(
            (p.revision, p.writer.as_deref(), p.timestamp),
            (2, Some("B"), Some(20))
        );
        assert_eq!(p.value, Value::Float(2.0));
    }

    #[test]
    fn expected_revision_mismatch_is_rejected_and_changes_nothing() {
        let mut s = store(0, Eviction::Lru, None);
        let now = Instant::now();
        s.apply(&set("/a", 1.0), &w("A"), LWW, 0, now).expect("ok");
        let mut stale = set("/a", 9.0);
        stale.revision = Some(5);
        let err = s.apply(&stale, &w("A"), LWW, 0, now).expect_err("conflict");
        assert_eq!(
            err,
            SetError::RevisionConflict {
                expected: 5,
                actual: 1
            }
        );
        assert_eq!(err.code(), 400);
        assert_eq!(
            s.get(&addr("/a"), now).expect("kept").value,
            Value::Float(1.0)
        );
        stale.revision = Some(1);
        assert!(s.apply(&stale, &w("A"), LWW, 0, now).is_ok());
    }

    #[test]
    fn locks_keep_others_out_until_unlock_or_disconnect() {
        let mut s = store(0, Eviction::Lru, None);
        let now = Instant::now();
        let mut lock = set("/l", 1.0);
        lock.lock = true;
        s.apply(&lock, &w("A"), LWW, 0, now).expect("lock");
        let err = s
            .apply(&set("/l", 2.0), &w("B"), LWW, 0, now)
            .expect_err("held");
        assert_eq!(err.code(), 401);
        // A non-holder's unlock flag does not get through (RECOMMENDED §7.5).
        let mut sneaky = set("/l", 3.0);
        sneaky.unlock = true;
        assert!(s.apply(&sneaky, &w("B"), LWW, 0, now).is_err());
        assert!(s.apply(&set("/l", 4.0), &w("A"), LWW, 0, now).is_ok());
        assert_eq!(s.release_locks("A"), 1);
        assert!(s.apply(&set("/l", 5.0), &w("B"), LWW, 0, now).is_ok());
        let mut unlock = set("/l", 6.0);
        unlock.lock = true;
        s.apply(&unlock, &w("B"), LWW, 0, now).expect("B locks");
        unlock.lock = false;
        unlock.unlock = true;
        s.apply(&unlock, &w("B"), LWW, 0, now).expect("B unlocks");
        assert!(s.apply(&set("/l", 7.0), &w("A"), LWW, 0, now).is_ok());
    }

    #[test]
    fn strategies() {
        let mut s = store(0, Eviction::Lru, None);
        let now = Instant::now();
        let max = ConflictStrategy::Max;
        s.apply(&set("/m", 5), &w("A"), max, 0, now).expect("first");
        assert!(matches!(
            s.apply(&set("/m", 3), &w("A"), max, 0, now),
            Err(SetError::ConflictRejected { .. })
        ));
        s.apply(&set("/m", 7), &w("A"), max, 0, now)
            .expect("higher");
        s.apply(&set("/m", "text"), &w("A"), max, 0, now)
            .expect("non-numeric falls back to lww");
        let min = ConflictStrategy::Min;
        s.apply(&set("/n", 5), &w("A"), min, 0, now).expect("first");
        assert!(s.apply(&set("/n", 6), &w("A"), min, 0, now).is_err());
        s.apply(&set("/n", 4), &w("A"), min, 0, now).expect("lower");
        let lock = ConflictStrategy::Lock;
        s.apply(&set("/k", 1), &w("A"), lock, 0, now)
            .expect("first writer holds");
        assert_eq!(
            s.apply(&set("/k", 2), &w("B"), lock, 0, now)
                .expect_err("held")
                .code(),
            401
        );
        let merge = ConflictStrategy::Merge;
        let m1 = Value::Map(vec![("a".into(), 1.into()), ("b".into(), 2.into())]);
        let m2 = Value::Map(vec![("b".into(), 3.into()), ("c".into(), 4.into())]);
        s.apply(&set("/g", m1), &w("A"), merge, 0, now)
            .expect("first");
        let echo = s
            .apply(&set("/g", m2), &w("B"), merge, 0, now)
            .expect("merge")
            .echo;
        assert_eq!(
            echo.value,
            Value::Map(vec![
                ("a".into(), 1.into()),
                ("b".into(), 3.into()),
                ("c".into(), 4.into())
            ])
        );
    }

    #[test]
    fn capacity_policies() {
        let now = Instant::now();
        let mut lru = store(3, Eviction::Lru, None);
        for a in ["/c/1", "/c/2", "/c/3"] {
            lru.apply(&set(a, 1), &w("A"), LWW, 0, now).expect("fits");
        }
        lru.get(&addr("/c/1"), now); // /c/2 is now least recently used
        let applied = lru
            .apply(&set("/c/4", 1), &w("A"), LWW, 0, now)
            .expect("evicts");
        assert_eq!(applied.evicted, Some(addr("/c/2")));
        assert_eq!(lru.len(), 3);

        let mut oldest = store(3, Eviction::Oldest, None);
        for a in ["/c/1", "/c/2", "/c/3"] {
            oldest
                .apply(&set(a, 1), &w("A"), LWW, 0, now)
                .expect("fits");
        }
        oldest.get(&addr("/c/1"), now);
        let applied = oldest
            .apply(&set("/c/4", 1), &w("A"), LWW, 0, now)
            .expect("evicts");
        assert_eq!(applied.evicted, Some(addr("/c/1")));

        let mut reject = store(3, Eviction::Reject, None);
        for a in ["/c/1", "/c/2", "/c/3"] {
            reject
                .apply(&set(a, 1), &w("A"), LWW, 0, now)
                .expect("fits");
        }
        assert_eq!(
            reject
                .apply(&set("/c/4", 1), &w("A"), LWW, 0, now)
                .expect_err("full"),
            SetError::AtCapacity { max: 3 }
        );
        assert!(
            reject.apply(&set("/c/1", 2), &w("A"), LWW, 0, now).is_ok(),
            "updates still work"
        );
    }

    #[test]
    fn history_keeps_earlier_values_once_asked_for() {
        let mut s = store(0, Eviction::Lru, None);
        let now = Instant::now();
        s.apply(&set("/h", 1), &w("A"), LWW, 0, now).expect("ok");
        s.keep_history(2);
        for v in 2..=5 {
            s.apply(&set("/h", v), &w("A"), LWW, 0, now).expect("ok");
        }
        let p = Pattern::compile("/h").expect("valid");
        let h: Vec<(Value, Option<u64>)> = s
            .history(&p, 10)
            .into_iter()
            .map(|s| (s.value, s.revision))
            .collect();
        assert_eq!(h, vec![(Value::Int(3), Some(3)), (Value::Int(4), Some(4))]);
        assert_eq!(s.history(&p, 1).len(), 1);
    }

    #[test]
    fn ttls_expire_on_their_own_clock() {
        let t0 = Instant::now();
        let mut s = store(0, Eviction::Lru, Some(Duration::from_secs(10)));
        let mut sliding = set("/t/sliding", 1);
        sliding.ttl = Some(Ttl::Sliding(2));
        let mut absolute = set("/t/absolute", 1);
        absolute.ttl = Some(Ttl::Absolute(2));
        let mut never = set("/t/never", 1);
        never.ttl = Some(Ttl::Absolute(0));
        s.apply(&sliding, &w("A"), LWW, 0, t0).expect("ok");
        s.apply(&absolute, &w("A"), LWW, 0, t0).expect("ok");
        s.apply(&never, &w("A"), LWW, 0, t0).expect("ok");
        s.apply(&set("/t/default", 1), &w("A"), LWW, 0, t0)
            .expect("ok");
        // A read at 1.5 s keeps the sliding one alive, not the absolute one.
        s.get(&addr("/t/sliding"), t0 + Duration::from_millis(1500));
        s.get(&addr("/t/absolute"), t0 + Duration::from_millis(1500));
        let gone = s.expire(t0 + Duration::from_millis(2500));
        assert_eq!(gone, vec![addr("/t/absolute")]);
        let gone = s.expire(t0 + Duration::from_millis(3600));
        assert_eq!(gone, vec![addr("/t/sliding")]);
        let gone = s.expire(t0 + Duration::from_secs(11));
        assert_eq!(gone, vec![addr("/t/default")]);
        assert!(s.expire(t0 + Duration::from_secs(100_000)).is_empty());
        assert_eq!(s.len(), 1);
    }
}
