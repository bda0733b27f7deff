//! One sled database per session: its record, its groups, its event log, its delivery jobs.
//! Knows nothing of HTTP. Every change lands in ONE transaction of a committer round, then one
//! (shared) flush; readers see events and delivery jobs only once they are durable.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use sled::IVec;

mod archive;
mod catalog;
mod cold;
mod commit;
mod cursor;
mod fault;
mod jobs;
mod lazy;
mod log;
mod recover;
mod snapshot;
mod trees;
mod work;
mod write;

pub use catalog::{Catalog, Summary, CREATES_PREFIX};
pub use commit::Committer;
pub use cursor::{decode_event, fresh_job, EndpointRecord, KnownEndpoint, LoggedEvent};
pub use fault::{FaultKind, Faults};
pub use jobs::{DeliveryJob, JobState, JobTally};
pub use lazy::OpenStores;
pub use snapshot::{restore, Snapshot};
pub use trees::TreeId;
pub(crate) use work::base64_bytes;
pub use work::{
    Applied, Commit, EndpointFilter, EventRecord, GroupWrite, PictureWrite, Remember, Work,
};

use fault::Overlay;
use recover::Failure;
use trees::Trees;

/// A value as the store hands it out: shared, not copied, so cheap to keep and to compare.
pub type StoredBytes = IVec;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("a lock was poisoned by a panic")]
    Poisoned,
    /// A write of this store failed; it takes no writes until it has recovered.
    #[error("storage unavailable ({kind:?}): {detail}")]
    Unavailable { kind: FaultKind, detail: String },
    /// The committer's queue is full: more changes than the gateway can commit.
    #[error("the commit queue is full")]
    Overloaded,
}

impl StoreError {
    /// The storage fault behind this error, if it is one (an I/O error of sled or of a flush).
    pub fn fault(&self) -> Option<FaultKind> {
        match self {
            StoreError::Sled(sled::Error::Io(e)) | StoreError::Io(e) => Some(FaultKind::of(e)),
            StoreError::Unavailable { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The key of a delivery: endpoint id then event sequence number.
pub fn delivery_key(endpoint: [u8; 8], seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&endpoint);
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn split_delivery_key(k: &[u8]) -> Option<([u8; 8], u64)> {
    if k.len() != 16 {
        return None;
    }
    let mut ep = [0u8; 8];
    ep.copy_from_slice(&k[..8]);
    let mut s = [0u8; 8];
    s.copy_from_slice(&k[8..]);
    Some((ep, u64::from_be_bytes(s)))
}

const SESSION_KEY: &[u8] = b"session";
/// meta: the number of the last round written (see `recover`).
const ROUND_KEY: &[u8] = b"round";
/// meta: how many groups the session holds, kept with every change.
const GROUP_COUNT_KEY: &[u8] = b"group_count";
/// meta: the next event sequence number, kept with every change, so that cursors are never
/// given out twice even when pruning has emptied the log.
const NEXT_SEQ_KEY: &[u8] = b"next_seq";

/// meta: the archive's floor (`store/archive.rs`, `State::floor`).
const ARCHIVE_FLOOR_KEY: &[u8] = b"archive_floor";

/// The store of one session.
pub struct SessionStore {
    path: PathBuf,
    /// The open database; `None` while closed (opening it again after a fault failed). A std
    /// RwLock held only to clone the `Arc`, or by `reopen` while it swaps the database.
    trees: RwLock<Option<Arc<Trees>>>,
    faults: Faults,
    /// Set while a failed round is not yet durably undone: the store takes no writes.
    failure: Mutex<Option<Failure>>,
    /// Set for a store opened on demand and closed when idle (see `lazy`).
    lazy: Option<lazy::Lazy>,
    /// Whether the catalog is known to hold no summary of this store (see `writable`).
    marked: AtomicBool,
    /// Held while the store closes and while its summary is forgotten, so that the two keep
    /// their order in the catalog.
    closing: Mutex<()>,
    /// `failure.is_some()`, readable without the lock on every read and write.
    failed: AtomicBool,
    /// Before-images of a failed round that reads see until it is undone.
    overlay: RwLock<Option<Arc<Overlay>>>,
    /// The `versions` tree's entries read or written so far: only the committer writes them, so
    /// a transaction checks a group's version here instead of reading it inside the transaction.
    version_cache: Mutex<HashMap<String, u64>>,
    /// Next event sequence number. A std Mutex held only around seq assignment and the
    /// in-memory transaction (never across a flush or an await), so that seq order is commit order.
    next_seq: Mutex<u64>,
    /// Every event up to this sequence number is durable: the only ones listed or delivered.
    durable: AtomicU64,
    /// The last event logged when this process first opened the store (see `adopt_endpoint`).
    opened_seq: AtomicU64,
    /// The number of the last round written; only the committer thread moves it.
    round: AtomicU64,
    /// Groups held, as of the last durable round.
    group_count: AtomicU64,
    /// Counts dead deliveries put back to pending, so the dispatcher knows to look behind
    /// what it has already read (such a job keeps its old sequence number).
    requeues: AtomicU64,
    /// The log's old entries, moved out of sled (`archive.rs`).
    archive: archive::Archive,
    /// Odd while the committer moves jobs between pending and dead, bumped before and after:
    /// pruning reads both trees again when a move ran meanwhile (a job flipping twice between
    /// its reads would otherwise be missed, and its event pruned).
    moves: AtomicU64,
}

fn u64_of(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if v.len() == 8 {
        b.copy_from_slice(v);
    }
    u64::from_be_bytes(b)
}

fn seq_of(k: &[u8], tree: &'static str) -> StoreResult<u64> {
    if k.len() != 8 {
        return Err(StoreError::Corrupt {
            tree,
            detail: format!("key of {} bytes", k.len()),
        });
    }
    Ok(u64_of(k))
}

/// What the store keeps in memory about its database, read when it is opened (again).
struct Counters {
    next_seq: u64,
    archive_floor: u64,
    round: u64,
    groups: u64,
}

fn counters(t: &Trees) -> StoreResult<Counters> {
    let meta = t.tree(TreeId::Meta);
    let logged = log::last_logged(t)?.map_or(1, |s| s + 1);
    let next_seq = logged.max(meta.get(NEXT_SEQ_KEY)?.map_or(1, |v| u64_of(&v)));
    let round = meta.get(ROUND_KEY)?.map_or(0, |v| u64_of(&v));
    let groups = match meta.get(GROUP_COUNT_KEY)? {
        Some(v) => u64_of(&v),
        // A store written before the count was kept: count once.
        None => t.tree(TreeId::Groups).len() as u64,
    };
    Ok(Counters {
        next_seq,
        archive_floor: meta.get(ARCHIVE_FLOOR_KEY)?.map_or(0, |v| u64_of(&v)),
        round,
        groups,
    })
}

impl SessionStore {
    /// Opens (or creates) the store at `path`, with the gateway's fault seam.
    pub fn open(path: &Path, faults: Faults) -> StoreResult<Self> {
        let trees = Trees::open(path)?;
        let c = counters(&trees)?;
        let store = Self::unopened(path, faults, Some(trees), None);
        store.set_counters(&c);
        Ok(store)
    }

    fn unopened(
        path: &Path,
        faults: Faults,
        trees: Option<Trees>,
        lazy: Option<lazy::Lazy>,
    ) -> Self {
        Self {
            path: path.to_owned(),
            trees: RwLock::new(trees.map(Arc::new)),
            faults,
            marked: AtomicBool::new(lazy.is_none()),
            lazy,
            closing: Mutex::new(()),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            overlay: RwLock::new(None),
            version_cache: Mutex::new(HashMap::new()),
            next_seq: Mutex::new(1),
            durable: AtomicU64::new(0),
            opened_seq: AtomicU64::new(0),
            round: AtomicU64::new(0),
            group_count: AtomicU64::new(0),
            requeues: AtomicU64::new(0),
            moves: AtomicU64::new(0),
            archive: archive::Archive::new(path),
        }
    }

    /// Takes the counters read from the database.
    fn set_counters(&self, c: &Counters) {
        if let Ok(mut n) = self.next_seq.lock() {
            *n = c.next_seq;
        }
        self.archive.fence(c.next_seq, c.archive_floor);
        self.durable.store(c.next_seq - 1, Ordering::Release);
        self.opened_seq.store(c.next_seq - 1, Ordering::Release);
        self.round.store(c.round, Ordering::Release);
        self.group_count.store(c.groups, Ordering::Release);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open database, if it is open, without opening it or counting a use.
    fn open_trees(&self) -> Option<Arc<Trees>> {
        self.trees.read().ok().and_then(|slot| slot.clone())
    }

    /// The open database, for the length of one read or write.
    fn trees(&self) -> StoreResult<Arc<Trees>> {
        let open = {
            let slot = self.trees.read().map_err(|_| StoreError::Poisoned)?;
            slot.as_ref().cloned()
        };
        self.touch();
        match open {
            Some(t) => Ok(t),
            None => self.open_again(),
        }
    }

    /// The overlay of a failed round, if any (checked without a lock while there is none).
    fn overlay(&self) -> Option<Arc<Overlay>> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.overlay.read().ok().and_then(|o| o.clone())
    }

    /// One value as the last durable round left it.
    fn get(&self, tree: TreeId, key: &[u8]) -> StoreResult<Option<IVec>> {
        if let Some(over) = self.overlay() {
            if let Some(v) = over.get(&(tree, IVec::from(key))) {
                return Ok(v.clone());
            }
        }
        Ok(self.trees()?.tree(tree).get(key)?)
    }

    /// The entries of `tree` in `range`, in key order, at most `limit`, as the last durable
    /// round left them.
    fn scan(
        &self,
        tree: TreeId,
        range: impl std::ops::RangeBounds<Vec<u8>> + Clone,
        limit: usize,
    ) -> StoreResult<Vec<(IVec, IVec)>> {
        let t = self.trees()?;
        let Some(over) = self.overlay() else {
            let mut out = Vec::new();
            for r in t.tree(tree).range(range).take(limit) {
                out.push(r?);
            }
            return Ok(out);
        };
        // Rare (a failed round not yet undone): merge the before-images in.
        let mut merged = std::collections::BTreeMap::new();
        for r in t.tree(tree).range(range.clone()) {
            let (k, v) = r?;
            merged.insert(k, v);
        }
        for ((id, k), old) in over.iter() {
            if *id != tree || !range.contains(&k.to_vec()) {
                continue;
            }
            match old {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    pub fn load_record<T: for<'de> Deserialize<'de>>(&self) -> StoreResult<Option<T>> {
        match self.get(TreeId::Meta, SESSION_KEY)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    tree: "meta",
                    detail: e.to_string(),
                }),
        }
    }

    /// Commits a change of the session record together with the events it caused, as the
    /// committer would but on this thread and without a flush (for tests that seed a store).
    pub fn commit_record(
        &self,
        record: &impl Serialize,
        events: &[EventRecord],
        endpoints: &[EndpointFilter],
    ) -> StoreResult<Vec<u64>> {
        let item = Commit::new(Work::record(record, events.to_vec())?, endpoints);
        Ok(self
            .commit_many(std::slice::from_ref(&item))?
            .pop()
            .map(|a| a.seqs)
            .unwrap_or_default())
    }

    pub fn group(&self, id: &str) -> StoreResult<Option<IVec>> {
        self.get(TreeId::Groups, id.as_bytes())
    }

    /// Every group this session holds, as stored JSON, in id order.
    pub fn groups(&self) -> StoreResult<Vec<(String, IVec)>> {
        Ok(self
            .scan(TreeId::Groups, .., usize::MAX)?
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
            .collect())
    }

    /// How many groups the session holds (kept with every change: no scan).
    pub fn group_count(&self) -> usize {
        self.group_count.load(Ordering::Acquire) as usize
    }

    pub fn invites(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .scan(TreeId::Invites, .., usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect())
    }

    /// The bytes of a picture stored for `group_id`.
    pub fn picture(&self, group_id: &str) -> StoreResult<Option<IVec>> {
        self.get(TreeId::Pictures, group_id.as_bytes())
    }

    /// The last event logged when this process first opened the store.
    pub fn opened_seq(&self) -> u64 {
        self.opened_seq.load(Ordering::Acquire)
    }

    /// The sequence number of the last event written (durable or not yet).
    pub fn last_seq(&self) -> u64 {
        self.next_seq.lock().map(|n| *n - 1).unwrap_or(0)
    }

    /// Every event up to this sequence number is durable.
    pub fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// The sequence numbers of every pending and dead job, read while no job moved between
    /// the two (see `moves`); `None` when they kept moving.
    pub(super) fn needed_events(&self, t: &Trees) -> StoreResult<Option<BTreeSet<u64>>> {
        for _ in 0..100 {
            let before = self.moves.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let mut needed = BTreeSet::new();
            for id in [TreeId::Deliveries, TreeId::Dead] {
                for r in t.tree(id).iter().keys() {
                    if let Some((_, s)) = split_delivery_key(&r?) {
                        needed.insert(s);
                    }
                }
            }
            if self.moves.load(Ordering::Acquire) == before {
                return Ok(Some(needed));
            }
        }
        Ok(None)
    }

    /// The answer kept under an idempotency key (see `Remember`).
    pub fn remembered(&self, key: &[u8]) -> StoreResult<Option<IVec>> {
        self.get(TreeId::Idempotency, key)
    }

    /// The keys of kept answers that start with `prefix`, with their records.
    pub fn remembered_with_prefix(&self, prefix: &[u8]) -> StoreResult<Vec<(IVec, IVec)>> {
        let mut out = Vec::new();
        for r in self.trees()?.tree(TreeId::Idempotency).scan_prefix(prefix) {
            out.push(r?);
        }
        Ok(out)
    }

    /// Forgets kept answers whose expiry (a record's first 8 bytes, unix ms) is before `now_ms`.
    pub fn prune_remembered(&self, now_ms: u64) -> StoreResult<usize> {
        let t = self.trees()?;
        let tree = t.tree(TreeId::Idempotency);
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for r in tree.iter() {
            let (k, v) = r?;
            if v.get(..8).map_or(0, u64_of) < now_ms {
                batch.remove(k);
                n += 1;
            }
        }
        if n > 0 {
            drop(self.writable()?);
            tree.apply_batch(batch)?;
        }
        Ok(n)
    }

    /// Pending fan-out records: (id, bytes).
    pub fn fanouts(&self) -> StoreResult<Vec<(u64, IVec)>> {
        let mut out = Vec::new();
        if self.closed_summary().is_some() {
            return Ok(out); // a store with fan-out records is never closed
        }
        for (k, v) in self.scan(TreeId::Fanout, .., usize::MAX)? {
            out.push((seq_of(&k, "fanout")?, v));
        }
        Ok(out)
    }

    pub fn remove_fanout(&self, id: u64) -> StoreResult<()> {
        self.writable()?
            .tree(TreeId::Fanout)
            .remove(id.to_be_bytes())?;
        Ok(())
    }

    pub fn generate_id(&self) -> StoreResult<u64> {
        Ok(self.trees()?.db.generate_id()?)
    }

    /// Makes everything committed so far durable. Blocking: the committer calls it.
    /// Goes through the fault seam, so tests can slow or fail it.
    pub fn flush(&self) -> StoreResult<()> {
        let t = self.trees()?;
        self.faults.before_flush();
        t.db.flush()?;
        self.faults.after_flush(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
