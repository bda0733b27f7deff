//! A store after a storage fault: it refuses writes, reads see the state before the failed round,
//! and it takes writes again once the failed round is durably undone — on the same database when
//! sled still takes writes, else by opening the database again once the disk has room.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fault::{FaultKind, Undo};
use super::trees::{TreeId, Trees};
use super::write::apply_undo;
use super::{counters, u64_of, SessionStore, StoreError, StoreResult, ROUND_KEY};

/// How often a failed store tries to recover (the committer also tries when a write comes).
pub const RETRY_EVERY: Duration = Duration::from_millis(200);
/// Free space below which a store that failed on a full disk does not try to open its database
/// again: sled writes while opening, and a failed open leaves the store without reads too.
const MIN_FREE_TO_REOPEN: u64 = 4 * 1024 * 1024;
/// How long `reopen` waits for readers to let go of the old database.
const READERS_GONE: Duration = Duration::from_millis(200);

/// Why a store takes no writes, and what it takes to put it right.
pub struct Failure {
    kind: FaultKind,
    detail: String,
    /// The failed round's number (written to meta with it), to tell after a reopen whether it
    /// reached the disk.
    round: u64,
    undo: Undo,
    /// The database was dropped and could not be opened again: reads fail too.
    closed: bool,
    last_try: Instant,
}

impl Failure {
    fn error(&self) -> StoreError {
        StoreError::Unavailable {
            kind: self.kind,
            detail: self.detail.clone(),
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SessionStore {
    /// Whether a failed round keeps the store from taking writes.
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// A round's commit or flush failed with `error`: the store takes no writes until it has
    /// recovered, and reads see the state before the round.
    pub(super) fn round_failed(&self, error: &StoreError, round: u64, undo: Undo) -> StoreError {
        let kind = error.fault().unwrap_or(FaultKind::Io);
        tracing::error!(store = %self.path.display(), ?kind, "a commit round failed: {error}; writes are refused until the store recovers");
        // Taken back in memory now if sled still takes writes; else reads go through the overlay.
        // `writable`: had the closer closed the store between the round's write and its flush,
        // its summary would describe the round; it goes before the round is taken back.
        let undone = self.writable().and_then(|t| apply_undo(&t, &undo)).is_ok();
        if !undone {
            if let Ok(mut o) = self.overlay.write() {
                *o = Some(Arc::new(undo.overlay()));
            }
        }
        lock(&self.version_cache).clear();
        let failure = Failure {
            kind,
            detail: error.to_string(),
            round,
            undo,
            closed: false,
            last_try: Instant::now(),
        };
        let err = failure.error();
        *lock(&self.failure) = Some(failure);
        self.failed.store(true, Ordering::Release);
        err
    }

    /// Tries to bring a failed store back (at most every `RETRY_EVERY`); Ok when it takes
    /// writes again. Blocking: the committer thread calls it.
    pub fn recover(&self) -> StoreResult<()> {
        let mut guard = lock(&self.failure);
        let Some(f) = guard.as_mut() else {
            return Ok(());
        };
        if f.last_try.elapsed() < RETRY_EVERY {
            return Err(f.error());
        }
        f.last_try = Instant::now();
        let same = if f.closed {
            Err(f.error())
        } else {
            self.writable().and_then(|t| self.undo_durably(&t, &f.undo))
        };
        let result = match same {
            Ok(()) => Ok(()),
            // sled's own error is sticky: only a fresh database takes writes again.
            Err(e) if f.closed || matches!(e, StoreError::Sled(_)) => {
                if f.kind == FaultKind::Full && !self.has_room() {
                    Err(e)
                } else {
                    self.reopen_and_undo(f)
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                *guard = None;
                drop(guard);
                self.healed()
            }
            Err(e) => {
                f.detail = e.to_string();
                Err(f.error())
            }
        }
    }

    fn has_room(&self) -> bool {
        fs2::available_space(&self.path).is_ok_and(|free| free >= MIN_FREE_TO_REOPEN)
    }

    /// Writes the before-images back (again: they are idempotent) and flushes.
    fn undo_durably(&self, t: &Trees, undo: &Undo) -> StoreResult<()> {
        apply_undo(t, undo)?;
        self.faults.before_flush();
        t.db.flush()?;
        self.faults.after_flush(&self.path)?;
        Ok(())
    }

    fn reopen_and_undo(&self, f: &mut Failure) -> StoreResult<()> {
        if let Err(e) = self.reopen() {
            f.closed = self.trees.read().map_or(true, |slot| slot.is_none());
            return Err(e);
        }
        f.closed = false;
        let t = self.writable()?;
        let round = t
            .tree(TreeId::Meta)
            .get(ROUND_KEY)?
            .map_or(0, |v| u64_of(&v));
        if f.round != 0 && round == f.round {
            // The failed round reached the disk after all.
            self.undo_durably(&t, &f.undo)
        } else {
            self.undo_durably(&t, &Undo::default())
        }
    }

    /// Drops the database and opens it again (sled lets one process hold a database once).
    fn reopen(&self) -> StoreResult<()> {
        let mut slot = self.trees.write().map_err(|_| StoreError::Poisoned)?;
        if let Some(old) = slot.take() {
            let deadline = Instant::now() + READERS_GONE;
            while Arc::strong_count(&old) > 1 {
                if Instant::now() > deadline {
                    *slot = Some(old);
                    return Err(StoreError::Io(std::io::Error::other(
                        "readers still hold the database",
                    )));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(old);
        }
        *slot = Some(Arc::new(Trees::open(&self.path)?));
        Ok(())
    }

    /// The failed round is undone on disk: take writes again, from what the disk holds.
    fn healed(&self) -> StoreResult<()> {
        let t = self.trees()?;
        let c = counters(&t)?;
        *self.next_seq.lock().map_err(|_| StoreError::Poisoned)? = c.next_seq;
        self.round.store(c.round, Ordering::Release);
        self.group_count.store(c.groups, Ordering::Release);
        self.durable.store(c.next_seq - 1, Ordering::Release);
        lock(&self.version_cache).clear();
        if let Ok(mut o) = self.overlay.write() {
            *o = None;
        }
        self.failed.store(false, Ordering::Release);
        tracing::info!(store = %self.path.display(), "the store takes writes again");
        Ok(())
    }
}
