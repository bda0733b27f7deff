//! The sled database of one session and its trees, opened together so that the whole set can be
//! dropped and opened again when a storage fault has left the database refusing writes.

use std::path::Path;

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
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(1024 * 1024)
            .segment_size(64 * 1024)
            .flush_every_ms(None)
            .open()?;
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
