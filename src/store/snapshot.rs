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
        let _turn = self.archive.turn()?;
        let mut trees = Vec::with_capacity(TreeId::ALL.len());
        for id in TreeId::ALL {
            let mut entries = Vec::new();
            if id == TreeId::Events {
                self.archived_entries(&t, &mut entries)?;
            } else {
                for kv in t.tree(id).iter() {
                    let (k, v) = kv?;
                    entries.push((k.to_vec(), v.to_vec()));
                }
            }
            trees.push((id.name(), entries));
        }
        Ok(Snapshot { trees })
    }

    /// The log as entries of sled's `events` tree: the archive's events one to a key (as a log
    /// written before entries reads), then sled's entries past them.
    fn archived_entries(&self, t: &Trees, out: &mut Entries) -> StoreResult<()> {
        let last = self.archive.last()?;
        self.read_log(t, 0, last, |events| {
            for r in events {
                let (seq, e) = r?;
                out.push((seq.to_be_bytes().to_vec(), e.to_vec()));
            }
            Ok(())
        })?;
        for kv in t.tree(TreeId::Events).range((last + 1).to_be_bytes()..) {
            let (k, v) = kv?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(())
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
