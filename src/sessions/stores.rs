//! The sessions' stores at start-up and while idle: those the catalog describes start closed,
//! the others are opened (in parallel); the closer keeps the open ones under the cap
//! (`WAGATE_MAX_OPEN_STORES`) and closes those idle for long, least recently used first.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Registry, Session, SessionRecord};
use crate::ids::SessionName;
use crate::store::{Catalog, Committer, Faults, OpenStores, SessionStore, StoreError};

/// A store unused for this long is closed even under the cap.
const IDLE: Duration = Duration::from_secs(300);
/// How often the closer looks when nothing wakes it.
const LOOK_EVERY: Duration = Duration::from_secs(30);
/// The closer's shortest pause between two passes.
const PASS_GAP: Duration = Duration::from_millis(100);

/// What opening a session's store needs.
pub(super) struct Opener<'a> {
    pub committer: &'a Committer,
    pub faults: &'a Faults,
    pub catalog: &'a Arc<Catalog>,
    pub stores: &'a Arc<OpenStores>,
}

impl Opener<'_> {
    /// Every session under `root`: closed when the catalog describes it, else opened.
    pub fn all(&self, named: Vec<(SessionName, PathBuf)>) -> Result<Vec<Session>, StoreError> {
        let mut out = Vec::with_capacity(named.len());
        let mut to_open = Vec::new();
        for (name, path) in named {
            match self.described(&name, &path)? {
                Some(s) => out.push(s),
                None => to_open.push((name, path)),
            }
        }
        if !to_open.is_empty() {
            tracing::info!(
                sessions = to_open.len(),
                "opening the stores the catalog does not describe (open at a crash, or older)"
            );
        }
        // Opening a sled database is mostly waiting on small reads: a few threads at once make a
        // thousand sessions start in a fraction of the time.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        let chunk = to_open.len().div_ceil(threads).max(1);
        let opened: Vec<Result<Option<Session>, StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = to_open
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(n, p)| self.open(n, p))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|_| vec![Err(StoreError::Poisoned)]))
                .collect()
        });
        for session in opened {
            out.extend(session?);
        }
        Ok(out)
    }

    fn described(&self, name: &SessionName, path: &Path) -> Result<Option<Session>, StoreError> {
        let Some(summary) = self.catalog.get(name.as_str())? else {
            return Ok(None);
        };
        let record: SessionRecord = match serde_json::from_str(&summary.record) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(session = %name, "catalog: unreadable record ({e}); opening the store");
                return Ok(None);
            }
        };
        let store = SessionStore::closed(
            path,
            self.faults.clone(),
            name.as_str(),
            summary,
            self.stores.clone(),
            self.catalog.clone(),
        );
        Ok(Some(Session::new(
            name.clone(),
            store,
            record,
            self.committer.clone(),
        )))
    }

    /// Opens a store now (counted against the cap); `None` for one without a record.
    pub fn open(&self, name: &SessionName, path: &Path) -> Result<Option<Session>, StoreError> {
        let store = self.store(name, path)?;
        let Some(record) = store.load_record::<SessionRecord>()? else {
            tracing::warn!(session = %name, "skipping a session store without a record (interrupted create)");
            return Ok(None);
        };
        Ok(Some(Session::new(
            name.clone(),
            store,
            record,
            self.committer.clone(),
        )))
    }

    /// The store at `path`, open, to be closed when idle.
    pub fn store(&self, name: &SessionName, path: &Path) -> Result<SessionStore, StoreError> {
        SessionStore::open_counted(
            path,
            self.faults.clone(),
            name.as_str(),
            self.stores.clone(),
            self.catalog.clone(),
        )
    }
}

impl Registry {
    /// How many stores are open, and the cap.
    pub fn open_stores(&self) -> &Arc<OpenStores> {
        &self.stores
    }

    /// Closes open stores nobody holds, least recently used first, until at most `keep` are
    /// open; any idle for `idle` or more; and any worn (`SessionStore::is_worn`: it has logged
    /// enough since it opened that sled's resident pages are worth freeing). Before closing, a
    /// store's events older than the retention and its expired kept answers are pruned (the
    /// periodic pruning skips closed stores). Blocking. Answers how many it closed.
    pub fn close_idle(&self, keep: usize, idle_for: Duration, prune: Option<(u64, u64)>) -> usize {
        let now = self.stores.now_ms();
        let mut open: Vec<(u64, Arc<Session>)> = self
            .list()
            .into_iter()
            .filter(|s| s.store.is_open())
            .filter_map(|s| s.store.last_used().map(|at| (at, s)))
            .collect();
        open.sort_by_key(|(at, _)| *at);
        let mut closed = 0;
        for (at, s) in open {
            let over = self.stores.open() > keep;
            let idle = now.saturating_sub(at) >= idle_for.as_millis() as u64;
            let worn = s.store.is_worn();
            if !over && !idle && !worn {
                continue;
            }
            if let Some((retention_ms, now_ms)) = prune {
                if let Err(e) = prune_store(&s.store, retention_ms, now_ms) {
                    tracing::warn!(session = %s.name, "pruning before closing the store: {e}");
                }
            }
            match s.store.close_idle() {
                Ok(true) => {
                    closed += 1;
                    crate::metrics::store_closed(if keep == 0 && idle_for.is_zero() {
                        "all"
                    } else if over {
                        "cap"
                    } else if idle {
                        "idle"
                    } else {
                        "worn"
                    });
                }
                Ok(false) if worn => s.store.retell_worn(),
                Ok(false) => {}
                Err(e) => tracing::warn!(session = %s.name, "closing an idle store: {e}"),
            }
        }
        if closed > 0 {
            if let Err(e) = self.catalog.flush() {
                tracing::warn!("catalog: flush after closing stores: {e}");
            }
            tracing::debug!(closed, open = self.stores.open(), "closed idle stores");
        }
        closed
    }

    /// Closes every store it can (at a stop), so that the next start opens none of them.
    pub fn close_all(&self) -> usize {
        self.close_idle(0, Duration::ZERO, None)
    }
}

/// What the periodic pruning does to one store (`webhooks::prune`).
pub fn prune_store(
    store: &SessionStore,
    retention_ms: u64,
    now_ms: u64,
) -> crate::store::StoreResult<(usize, usize)> {
    let mut events = 0;
    if retention_ms > 0 {
        let cutoff_ms = now_ms.saturating_sub(retention_ms);
        let first_kept = store.first_event_since(cutoff_ms)?;
        events = store.prune_events_before(first_kept)?;
        events += usize::try_from(store.prune_archive(cutoff_ms)?).unwrap_or(usize::MAX);
    }
    Ok((events, store.prune_remembered(now_ms)?))
}

/// Keeps the open stores under the cap (to 90 % of it when woken over it), closes those idle
/// for `IDLE` and those worn, until the registry is dropped. `retention_ms` as
/// `WAGATE_EVENT_RETENTION_HOURS`.
pub fn spawn_closer(registry: &Arc<Registry>, retention_ms: u64) -> tokio::task::JoinHandle<()> {
    let stores = registry.stores.clone();
    let registry: Weak<Registry> = Arc::downgrade(registry);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stores.over_cap.notified() => {}
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
            let Some(r) = registry.upgrade() else { break };
            let keep = stores.cap() - stores.cap() / 10;
            let prune = Some((retention_ms, super::now_ms()));
            let pass = tokio::task::spawn_blocking(move || r.close_idle(keep, IDLE, prune));
            if let Err(e) = pass.await {
                tracing::error!("the store closer failed: {e}");
            }
            // At most a few passes a second, however often busy stores wake it.
            tokio::time::sleep(PASS_GAP).await;
        }
    })
}

/// How often the open stores move their old events out of sled into their archives.
const ARCHIVE_EVERY: Duration = Duration::from_secs(1);

impl Registry {
    /// Moves each open store's events that every webhook has taken out of sled into its
    /// archive (`SessionStore::archive_old_events`). Blocking. Answers how many it moved.
    pub fn archive_pass(&self) -> usize {
        let mut moved = 0;
        for s in self.list() {
            match s.store.archive_old_events() {
                Ok(n) => moved += n,
                Err(e) => {
                    tracing::warn!(session = %s.name, "moving old events to the archive: {e}")
                }
            }
        }
        moved
    }
}

/// Runs `Registry::archive_pass` every second until the registry is dropped.
pub fn spawn_archiver(registry: &Arc<Registry>) -> tokio::task::JoinHandle<()> {
    let registry: Weak<Registry> = Arc::downgrade(registry);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(ARCHIVE_EVERY).await;
            let Some(r) = registry.upgrade() else { break };
            if let Err(e) = tokio::task::spawn_blocking(move || r.archive_pass()).await {
                tracing::error!("the archiver failed: {e}");
            }
        }
    })
}
