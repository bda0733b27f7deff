//! Stores opened on first use and closed after idling, so that a gateway of 10,000 sessions
//! holds open only the databases in use (one open sled database costs about 0.25 MiB).
//!
//! A store known from the catalog starts closed (`SessionStore::closed`); any read or write
//! opens it (`trees`). `SessionStore::close_idle` closes one nobody holds, after writing its
//! summary to the catalog; `writable` makes sure that summary is gone, durably, before the
//! store's first write after it opened again. `OpenStores` counts open stores against the cap
//! and tells the closer (`sessions::closer`) when there are too many.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use super::catalog::{Catalog, Summary};
use super::jobs::{JobState, JobTally};
use super::trees::{TreeId, Trees};
use super::{counters, FaultKind, SessionStore, StoreError, StoreResult};

/// The keys start-up indexes (`SessionStore::keys`).
pub struct Keys {
    /// Group ids held.
    pub groups: Vec<String>,
    /// (invite code, group id).
    pub invites: Vec<(String, String)>,
    /// Kept answers' keys under `CREATES_PREFIX`, the prefix included.
    pub creates: Vec<Vec<u8>>,
}

/// How many stores are open, against the cap; and a clock for "least recently used".
pub struct OpenStores {
    cap: usize,
    /// Events logged in a store since it opened after which the closer closes it even when busy
    /// (0: never): sled keeps pages it has read resident until the database is dropped, whatever
    /// its cache capacity. Off by default: reopening a store with a backlog of records made RSS
    /// grow where it stays flat without (docs/benchmarks.md, "The log and the groups apart").
    worn_after: u64,
    open: AtomicUsize,
    base: Instant,
    /// Wakes the closer when more than `cap` are open.
    pub over_cap: Notify,
}

impl OpenStores {
    pub fn new(cap: usize, worn_after: u64) -> Self {
        Self {
            cap: cap.max(1),
            worn_after,
            open: AtomicUsize::new(0),
            base: Instant::now(),
            over_cap: Notify::new(),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Stores open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn opened(&self) {
        if self.open.fetch_add(1, Ordering::AcqRel) + 1 > self.cap {
            self.over_cap.notify_one();
        }
    }

    fn closed(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// Ms since the gateway started: when stores were last used.
    pub fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }
}

/// What a store opened on demand has besides the database: where it is counted, and where
/// its summary goes when it closes.
pub(super) struct Lazy {
    pub(super) stores: Arc<OpenStores>,
    pub(super) catalog: Arc<Catalog>,
    /// The session's name: the catalog's key.
    pub(super) name: String,
    /// `OpenStores::now` at the last use.
    pub(super) last_used: AtomicU64,
    /// Whether the counters have been read from the database (at its first open).
    pub(super) loaded: std::sync::atomic::AtomicBool,
    /// The summary the store was closed with; `None` while open.
    pub(super) summary: std::sync::RwLock<Option<Arc<Summary>>>,
    /// The last event durable when the database was opened (see `OpenStores::worn_after`).
    pub(super) opened_at: AtomicU64,
    /// Whether the closer was woken for this store since it opened.
    pub(super) worn_told: std::sync::atomic::AtomicBool,
}

impl SessionStore {
    /// A store known from the catalog: closed until first used.
    pub fn closed(
        path: &std::path::Path,
        faults: super::Faults,
        name: &str,
        summary: Summary,
        stores: Arc<OpenStores>,
        catalog: Arc<Catalog>,
    ) -> Self {
        let group_count = summary.group_count;
        let lazy = Lazy {
            stores,
            catalog,
            name: name.to_owned(),
            last_used: AtomicU64::new(0),
            loaded: false.into(),
            summary: std::sync::RwLock::new(Some(Arc::new(summary.light()))),
            opened_at: AtomicU64::new(0),
            worn_told: false.into(),
        };
        let store = Self::unopened(path, faults, None, Some(lazy));
        store.group_count.store(group_count, Ordering::Release);
        store
    }

    /// Opens the store at `path` now, to be closed when idle like those known from the catalog.
    pub fn open_counted(
        path: &std::path::Path,
        faults: super::Faults,
        name: &str,
        stores: Arc<OpenStores>,
        catalog: Arc<Catalog>,
    ) -> StoreResult<Self> {
        let trees = Trees::open(path)?;
        let c = counters(&trees)?;
        stores.opened();
        let lazy = Lazy {
            last_used: AtomicU64::new(stores.now_ms()),
            stores,
            catalog,
            name: name.to_owned(),
            loaded: true.into(),
            summary: std::sync::RwLock::new(None),
            opened_at: AtomicU64::new(c.next_seq - 1),
            worn_told: false.into(),
        };
        let store = Self::unopened(path, faults, Some(trees), Some(lazy));
        store.set_counters(&c);
        Ok(store)
    }

    /// Notes a use (for the closer's "least recently used").
    pub(super) fn touch(&self) {
        if let Some(l) = &self.lazy {
            l.last_used.store(l.stores.now_ms(), Ordering::Relaxed);
        }
    }

    /// Opens a store that was closed while idle; the error of a store closed by a fault.
    pub(super) fn open_again(&self) -> StoreResult<Arc<Trees>> {
        let closed_by_fault = || StoreError::Unavailable {
            kind: FaultKind::Io,
            detail: "the database is closed after a storage fault".into(),
        };
        let Some(lazy) = self.lazy.as_ref().filter(|_| !self.is_failed()) else {
            return Err(closed_by_fault());
        };
        let mut slot = self.trees.write().map_err(|_| StoreError::Poisoned)?;
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        if self.is_failed() {
            return Err(closed_by_fault());
        }
        let trees = Arc::new(Trees::open(&self.path)?);
        if !lazy.loaded.load(Ordering::Acquire) {
            self.set_counters(&counters(&trees)?);
            lazy.loaded.store(true, Ordering::Release);
        }
        *slot = Some(trees.clone());
        if let Ok(mut s) = lazy.summary.write() {
            *s = None;
        }
        lazy.opened_at
            .store(self.durable.load(Ordering::Acquire), Ordering::Release);
        lazy.worn_told.store(false, Ordering::Release);
        lazy.stores.opened();
        self.touch();
        Ok(trees)
    }

    /// The open database, for a write: the catalog's summary of this store (if any) is
    /// forgotten durably first, so that a crash can never leave a summary that is out of date.
    pub(super) fn writable(&self) -> StoreResult<Arc<Trees>> {
        let t = self.trees()?;
        if !self.marked.load(Ordering::Acquire) {
            let _guard = self.closing.lock().map_err(|_| StoreError::Poisoned)?;
            if !self.marked.load(Ordering::Acquire) {
                if let Some(l) = &self.lazy {
                    l.catalog.forget(&l.name)?;
                }
                self.marked.store(true, Ordering::Release);
            }
        }
        Ok(t)
    }

    /// Whether the database is open now.
    pub fn is_open(&self) -> bool {
        self.trees.read().is_ok_and(|s| s.is_some())
    }

    /// The summary of a store closed while idle (`None` while open).
    pub fn closed_summary(&self) -> Option<Arc<Summary>> {
        let l = self.lazy.as_ref()?;
        l.summary.read().ok().and_then(|s| s.clone())
    }

    /// When the store was last used (`OpenStores` ms), for stores that close when idle.
    pub fn last_used(&self) -> Option<u64> {
        self.lazy
            .as_ref()
            .map(|l| l.last_used.load(Ordering::Relaxed))
    }

    /// Whether the store has logged `OpenStores::worn_after` events (when set) since it opened:
    /// the closer closes it even though it is in use, to free the pages sled holds.
    pub fn is_worn(&self) -> bool {
        self.lazy.as_ref().is_some_and(|l| {
            let since = self.durable.load(Ordering::Acquire);
            let worn_after = l.stores.worn_after;
            worn_after > 0
                && since.saturating_sub(l.opened_at.load(Ordering::Acquire)) >= worn_after
        })
    }

    /// After a round is durable: wakes the closer once when the store has become worn. A store
    /// the closer could not close (in use at that moment) wakes it again at a later round.
    pub(super) fn tell_if_worn(&self) {
        if let Some(l) = &self.lazy {
            if self.is_worn() && !l.worn_told.swap(true, Ordering::AcqRel) {
                l.stores.over_cap.notify_one();
            }
        }
    }

    /// Lets a worn store that could not be closed wake the closer again.
    pub fn retell_worn(&self) {
        if let Some(l) = &self.lazy {
            l.worn_told.store(false, Ordering::Release);
        }
    }

    /// Jobs per endpoint in `state`: from the summary while closed (they cannot change then).
    pub fn job_tally(&self, state: JobState) -> StoreResult<Vec<JobTally>> {
        match self.closed_summary() {
            Some(s) => Ok(s.tallies(state)),
            None => self.job_tally_open(state),
        }
    }

    /// What start-up indexes of a store: from the catalog while closed (the summary in memory
    /// is kept without these lists), else read from the store.
    pub fn keys(&self) -> StoreResult<Keys> {
        if let (Some(l), Some(_)) = (&self.lazy, self.closed_summary()) {
            // None when the store opened (and wrote) meanwhile: then it is read below.
            if let Some(s) = l.catalog.get(&l.name)? {
                return Ok(Keys {
                    groups: s.groups,
                    invites: s.invites,
                    creates: s.creates,
                });
            }
        }
        let groups = self.groups()?.into_iter().map(|(id, _)| id).collect();
        let creates = self.remembered_with_prefix(super::CREATES_PREFIX)?;
        Ok(Keys {
            groups,
            invites: self.invites()?,
            creates: creates.into_iter().map(|(k, _)| k.to_vec()).collect(),
        })
    }

    /// Whether there may be pending deliveries: false only for a closed store whose summary
    /// has none (the dispatcher need not open it).
    pub fn may_have_pending(&self) -> bool {
        self.closed_summary().is_none_or(|s| !s.pending.is_empty())
    }

    /// Closes the database if the store takes writes, nobody holds it, and no fan-out record
    /// waits in it; its summary goes to the catalog (durable at the catalog's next flush).
    /// Blocking. Answers whether it closed.
    pub fn close_idle(&self) -> StoreResult<bool> {
        let Some(lazy) = &self.lazy else {
            return Ok(false);
        };
        let _guard = self.closing.lock().map_err(|_| StoreError::Poisoned)?;
        let mut slot = self.trees.write().map_err(|_| StoreError::Poisoned)?;
        let busy = match slot.as_ref() {
            None => return Ok(false),
            Some(t) => Arc::strong_count(t) > 1 || !t.tree(TreeId::Fanout).is_empty(),
        };
        if busy || self.is_failed() {
            return Ok(false);
        }
        let Some(t) = slot.take() else {
            return Ok(false);
        };
        let summary =
            t.db.flush()
                .map_err(StoreError::from)
                .and_then(|_| Summary::of(&t, self.group_count() as u64, self.durable_seq()));
        let summary = match summary {
            Ok(s) => s,
            Err(e) => {
                *slot = Some(t);
                return Err(e);
            }
        };
        drop(t);
        lazy.stores.closed();
        // Set under the slot's lock, as `open_again` clears it: never a summary while open.
        if let Ok(mut s) = lazy.summary.write() {
            *s = Some(Arc::new(summary.clone().light()));
        }
        drop(slot);
        if let Ok(mut c) = self.version_cache.lock() {
            c.clear();
        }
        // Still under `closing`: a first write after this forgets the summary after it is put.
        lazy.catalog.put(&lazy.name, &summary)?;
        self.marked.store(false, Ordering::Release);
        Ok(true)
    }
}

impl Drop for SessionStore {
    /// A deleted session's open store leaves the count of open ones.
    fn drop(&mut self) {
        if let Some(l) = &self.lazy {
            if self.trees.get_mut().is_ok_and(|t| t.is_some()) {
                l.stores.closed();
            }
        }
    }
}
