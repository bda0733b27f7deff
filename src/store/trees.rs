//! The sled database of one session and its trees, opened together so that the whole set can be
//! dropped and opened again when a storage fault has left the database refusing writes.

use std::path::Path;
use std::time::{Duration, Instant};

use sled::Tree;

use super::StoreResult;

/// The trees of a session's store, by name. The discriminant is the index in `Trees::all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TreeId {
    Meta = 0,
    Groups,
    Invites,
    Events,
    Deliveries,
    Dead,
    Fanout,
    Versions,
    Pictures,
    Idempotency,
}

impl TreeId {
    pub const ALL: [TreeId; 10] = [
        TreeId::Meta,
        TreeId::Groups,
        TreeId::Invites,
        TreeId::Events,
        TreeId::Deliveries,
        TreeId::Dead,
        TreeId::Fanout,
        TreeId::Versions,
        TreeId::Pictures,
        TreeId::Idempotency,
    ];

    /// The tree of this name, if a store has one.
    pub fn named(name: &str) -> Option<TreeId> {
        Self::ALL.into_iter().find(|id| id.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            TreeId::Meta => "meta",
            TreeId::Groups => "groups",
            TreeId::Invites => "invites",
            TreeId::Events => "events",
            TreeId::Deliveries => "deliveries",
            TreeId::Dead => "dead",
            TreeId::Fanout => "fanout",
            TreeId::Versions => "versions",
            TreeId::Pictures => "pictures",
            TreeId::Idempotency => "idempotency",
        }
    }
}

/// One open sled database and its trees. Held in an `Arc` by each reader for the length of one
/// read, so that `SessionStore::reopen` can tell when the last reader is done with it.
pub struct Trees {
    pub db: sled::Db,
    /// Indexed by `TreeId as usize`; a slice of trees is what sled's multi-tree transaction takes.
    pub all: [Tree; 10],
}

impl Trees {
    /// Opens (or creates) the database at `path`. Small cache and no flusher thread: the
    /// committer flushes after each round, and a thousand sessions must not cost a thousand threads.
    pub fn open(path: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(path)?;
        let db = open_db(path)?;
        let mut trees = Vec::with_capacity(TreeId::ALL.len());
        for id in TreeId::ALL {
            trees.push(db.open_tree(id.name())?);
        }
        let all: [Tree; 10] = trees.try_into().map_err(|_| super::StoreError::Corrupt {
            tree: "meta",
            detail: "the store's trees did not open".into(),
        })?;
        Ok(Self { db, all })
    }

    pub fn tree(&self, id: TreeId) -> &Tree {
        &self.all[id as usize]
    }
}

/// sled's segment size for a new store. It is a trade, measured (docs/benchmarks.md,
/// "Segments"): sled keeps a record for every segment its file has reached and, for each one in
/// use, the set of pages with a fragment in it, so a busy store's RSS grows with its log faster
/// with small segments (512 KiB: 35 against 54 MiB per million events on `retained-long`); but
/// a cold open reads whole segments, so the first request to a cold session costs more with large
/// ones (p99 64 against 43 ms on `sessions`). 64 KiB keeps the cold open in its target.
const SEGMENT_SIZE: usize = 64 * 1024;

/// The segment size of the database at `path`: the one it was made with (sled refuses to open
/// a database with another), or `SEGMENT_SIZE` for a new one, so that changing `SEGMENT_SIZE`
/// leaves the stores already made openable.
fn segment_size_of(path: &Path) -> usize {
    let Ok(conf) = std::fs::read(path.join("conf")) else {
        return SEGMENT_SIZE;
    };
    String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|l| l.strip_prefix("segment_size: ")?.trim().parse().ok())
        .unwrap_or(SEGMENT_SIZE)
}

/// How long an open waits for the file lock of a database this process has just dropped.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the sled database at `path`. sled's exclusive file lock outlives a dropped database
/// for a moment (its background writes still hold the file), so a store closed by the closer
/// and opened again at once can find it taken: that open waits for it, a few ms at a time, up
/// to `LOCK_WAIT`. Another process holding the database still fails, after that wait.
fn open_db(path: &Path) -> StoreResult<sled::Db> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let segment_size = segment_size_of(path);
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(1024 * 1024)
            .segment_size(segment_size)
            .flush_every_ms(None)
            .open();
        match opened {
            Err(e) if is_locked(&e) && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
            Ok(db) => {
                if started.elapsed() > pause {
                    tracing::debug!(path = %path.display(), waited_ms = started.elapsed().as_millis() as u64,
                        "opened a store after waiting for its file lock");
                }
                return Ok(db);
            }
        }
    }
}

/// Whether sled refused to open because another handle holds the database's file lock.
fn is_locked(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database still locked by a handle about to go away (as after the closer dropped it)
    /// opens once the handle is gone, instead of failing the store.
    #[test]
    fn an_open_waits_for_a_lock_that_is_about_to_be_released() -> StoreResult<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s");
        let held = Trees::open(&path)?;
        held.tree(TreeId::Meta).insert("k", "v")?;
        // The fault: the handle lingers for a moment after the store was closed.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(held);
        });
        let again = Trees::open(&path)?;
        let _ = releaser.join();
        assert_eq!(
            again.tree(TreeId::Meta).get("k")?.as_deref(),
            Some(&b"v"[..])
        );
        Ok(())
    }

    /// A store made with another segment size than today's opens with its own (sled refuses
    /// another size) and keeps its data; a new store gets `SEGMENT_SIZE`.
    #[test]
    fn a_store_keeps_the_segment_size_it_was_made_with() -> StoreResult<()> {
        let dir = tempfile::tempdir()?;
        let old = dir.path().join("old");
        {
            let db = sled::Config::new()
                .path(&old)
                .segment_size(SEGMENT_SIZE * 2)
                .open()?;
            db.open_tree("meta")?.insert("k", "v")?;
            db.flush()?;
        }
        assert_eq!(segment_size_of(&old), SEGMENT_SIZE * 2);
        let again = Trees::open(&old)?;
        assert_eq!(
            again.tree(TreeId::Meta).get("k")?.as_deref(),
            Some(&b"v"[..])
        );
        let new = dir.path().join("new");
        drop(Trees::open(&new)?);
        assert_eq!(segment_size_of(&new), SEGMENT_SIZE);
        Ok(())
    }

    /// A lock that stays taken (another process on the same data) still fails the open.
    #[test]
    fn an_open_fails_when_the_lock_stays_taken() -> StoreResult<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s");
        let _held = Trees::open(&path)?;
        let started = Instant::now();
        let Err(e) = Trees::open(&path) else {
            panic!("a second open of a held database succeeded");
        };
        assert!(e.to_string().contains("could not acquire lock"), "{e}");
        assert!(started.elapsed() >= LOCK_WAIT);
        Ok(())
    }
}
