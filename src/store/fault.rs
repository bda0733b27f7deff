//! Storage faults: what kind a failed write was, the seam through which tests inject them, and
//! the before-images that let a failed round be taken back.
//!
//! sled 0.34 makes a round's transaction visible in memory before the flush that makes it
//! durable, and once a write or flush fails it refuses every later write of that database until
//! it is opened again (its error is sticky). So a failed round leaves changes that the client was
//! told did not happen visible in memory, and possibly on disk (a flush can write the data and
//! then fail, and dropping a database flushes it). The committer therefore keeps each round's
//! before-images (`Undo`) until the round's flush has succeeded; when it fails, reads see the
//! before-images (`Overlay`) and `SessionStore::recover` writes them back, durably, before the
//! store takes writes again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sled::IVec;

use super::trees::TreeId;

/// What a storage fault was, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// No space left on the device: 507 `storage_full`.
    Full,
    /// The data dir became read-only: 503 `storage_unavailable`.
    ReadOnly,
    /// Any other I/O failure (a failed fsync among them): 503 `storage_unavailable`.
    Io,
}

impl FaultKind {
    pub fn of(e: &std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::StorageFull => FaultKind::Full,
            std::io::ErrorKind::ReadOnlyFilesystem => FaultKind::ReadOnly,
            _ => match e.raw_os_error() {
                Some(28) => FaultKind::Full,
                Some(30) => FaultKind::ReadOnly,
                _ => FaultKind::Io,
            },
        }
    }

    fn code(self) -> u8 {
        match self {
            FaultKind::Full => 1,
            FaultKind::ReadOnly => 2,
            FaultKind::Io => 3,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(FaultKind::Full),
            2 => Some(FaultKind::ReadOnly),
            3 => Some(FaultKind::Io),
            _ => None,
        }
    }

    /// The error an injected fault of this kind reports, as the OS would.
    pub fn io_error(self) -> std::io::Error {
        match self {
            FaultKind::Full => std::io::Error::from_raw_os_error(28),
            FaultKind::ReadOnly => std::io::Error::from_raw_os_error(30),
            FaultKind::Io => std::io::Error::from_raw_os_error(5),
        }
    }
}

/// The store layer's fault-injection seam, shared by every store of a gateway: a delay before
/// each flush (a slow disk) and an error after it (a flush that wrote and then failed, the hard
/// case). Cheap to clone; inert unless a test or `WAGATE_TEST_FSYNC_DELAY_MS` sets it.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<FaultState>);

#[derive(Debug, Default)]
struct FaultState {
    flush_delay_ms: AtomicU64,
    /// 0: none, else a `FaultKind` code.
    flush_error: AtomicU8,
    /// Fail only the flushes of stores under this path (every store when `None`).
    only: std::sync::Mutex<Option<std::path::PathBuf>>,
}

impl Faults {
    /// Every flush waits this long first (0: no wait).
    pub fn set_flush_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.0.flush_delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Every flush fails with `kind` after it ran, until called again with `None`.
    pub fn fail_flushes(&self, kind: Option<FaultKind>) {
        self.fail_flushes_under(kind, None);
    }

    /// As `fail_flushes`, for the stores under `path` only (one session's store, say).
    pub fn fail_flushes_under(&self, kind: Option<FaultKind>, path: Option<&Path>) {
        let mut only = self.0.only.lock().unwrap_or_else(|p| p.into_inner());
        *only = path.map(Path::to_owned);
        let code = kind.map_or(0, FaultKind::code);
        self.0.flush_error.store(code, Ordering::SeqCst);
    }

    pub(super) fn before_flush(&self) {
        let ms = self.0.flush_delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }

    pub(super) fn after_flush(&self, store: &Path) -> std::io::Result<()> {
        let Some(kind) = FaultKind::from_code(self.0.flush_error.load(Ordering::Relaxed)) else {
            return Ok(());
        };
        let only = self.0.only.lock().unwrap_or_else(|p| p.into_inner());
        match only.as_deref() {
            Some(prefix) if !store.starts_with(prefix) => Ok(()),
            _ => Err(kind.io_error()),
        }
    }
}

/// What one round changed in one store: each write's tree, key and the value before it, in the
/// order written. Replayed backwards, it puts the store back as it was before the round.
#[derive(Debug, Default, Clone)]
pub struct Undo {
    pub writes: Vec<(TreeId, IVec, Option<IVec>)>,
}

/// The values a failed round overwrote, as reads must see them until the round is undone.
pub type Overlay = HashMap<(TreeId, IVec), Option<IVec>>;

impl Undo {
    pub fn overlay(&self) -> Overlay {
        let mut out = Overlay::new();
        for (tree, key, old) in &self.writes {
            // The first write of a key holds the value from before the round.
            out.entry((*tree, key.clone()))
                .or_insert_with(|| old.clone());
        }
        out
    }
}
