//! A store read whole, tree by tree, for a backup; and a store written back from one.

use std::path::Path;

use super::trees::{TreeId, Trees};
use super::{SessionStore, StoreError, StoreResult};

/// A tree's entries in key order: (key, value).
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Every tree of one store: its name and its entries.
pub struct Snapshot {
    pub trees: Vec<(&'static str, Entries)>,
}

impl SessionStore {
    /// Every tree read whole. Consistent only when no round writes this store meanwhile: run it
    /// between rounds (`Committer::between_rounds`) or with no committer at all.
    pub fn snapshot(&self) -> StoreResult<Snapshot> {
        let t = self.trees()?;
        let mut trees = Vec::with_capacity(TreeId::ALL.len());
        for id in TreeId::ALL {
            let mut entries = Vec::new();
            for kv in t.tree(id).iter() {
                let (k, v) = kv?;
                entries.push((k.to_vec(), v.to_vec()));
            }
            trees.push((id.name(), entries));
        }
        Ok(Snapshot { trees })
    }
}

/// Writes entries into the store at `path` (created if absent), then flushes it.
pub fn restore<'a>(
    path: &Path,
    entries: impl IntoIterator<Item = (&'a str, Vec<u8>, Vec<u8>)>,
) -> StoreResult<usize> {
    let t = Trees::open(path)?;
    let mut n = 0;
    for (tree, k, v) in entries {
        let id = TreeId::named(tree).ok_or_else(|| StoreError::Corrupt {
            tree: "meta",
            detail: format!("no tree named {tree:?} in a store"),
        })?;
        t.tree(id).insert(k, v)?;
        n += 1;
    }
    t.db.flush()?;
    Ok(n)
}
