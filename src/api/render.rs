//! GroupInfo JSON already rendered, keyed by the stored bytes it was rendered from, so a read
//! of an unchanged group skips decoding and serialising (the read path's main cost). Every
//! member session stores the same bytes, so one entry serves them all.
//!
//! Bounded in bytes (`WAGATE_RENDER_CACHE_MB`), not in entries: an entry costs its stored group
//! and both rendered bodies, which vary from a few hundred bytes to a few dozen KiB (a long
//! description, a thousand participants), so a bound in entries bounds no memory. Evicts the
//! least recently used entry: clearing all or half at once would drop the hot groups with the
//! cold ones and have every hot group decoded and serialised again in the same moment.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use crate::error::{ApiError, ApiResult};
use crate::groups::service::{decode, GroupService};
use crate::ids::{ContactId, GroupId};
use crate::sessions::Session;
use crate::store::StoredBytes;

/// What an entry costs beyond the bytes it holds: the map slots, the `Arc`, the id kept twice.
/// An estimate, so that many small groups are bounded too.
const ENTRY_OVERHEAD: usize = 160;

/// A group's GroupInfo as JSON, for admins (with the invite URL) and for other members.
struct Rendered {
    stored: StoredBytes,
    admins: Vec<ContactId>,
    as_admin: Bytes,
    as_member: Bytes,
}

impl Rendered {
    /// The bytes this entry keeps alive.
    fn cost(&self) -> usize {
        let admins: usize = self
            .admins
            .iter()
            .map(|a| a.as_str().len() + std::mem::size_of::<ContactId>())
            .sum();
        self.stored.len() + self.as_admin.len() + self.as_member.len() + admins
    }
}

pub struct RenderCache {
    /// A std Mutex: held for a lookup or an insert only, never across an await.
    inner: Mutex<Lru>,
    /// The most bytes the entries may cost; 0 keeps nothing.
    max_bytes: usize,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<GroupId, Entry>,
    /// The entries by their last use, oldest first: the order of eviction.
    by_use: BTreeMap<u64, GroupId>,
    /// Counts uses, so that every entry's last use is its own.
    clock: u64,
    /// What the entries cost, by `Entry::cost`.
    bytes: usize,
}

struct Entry {
    rendered: Arc<Rendered>,
    used: u64,
    cost: usize,
}

impl Lru {
    /// The entry for `id` if it was rendered from `stored`, now the most recently used.
    fn get(&mut self, id: &GroupId, stored: &StoredBytes) -> Option<Arc<Rendered>> {
        let e = self.entries.get_mut(id)?;
        if e.rendered.stored != *stored {
            return None;
        }
        self.clock += 1;
        if let Some(gid) = self.by_use.remove(&e.used) {
            self.by_use.insert(self.clock, gid);
        }
        e.used = self.clock;
        Some(e.rendered.clone())
    }

    /// Keeps `rendered` as `id`'s entry, then evicts the least recently used until the entries
    /// cost at most `max`. An entry that alone costs more is not kept.
    fn insert(&mut self, id: GroupId, rendered: Arc<Rendered>, max: usize) {
        self.remove(&id);
        let cost = rendered.cost() + id.as_str().len() + ENTRY_OVERHEAD;
        if cost > max {
            return;
        }
        self.clock += 1;
        self.by_use.insert(self.clock, id.clone());
        let used = self.clock;
        self.entries.insert(
            id,
            Entry {
                rendered,
                used,
                cost,
            },
        );
        self.bytes += cost;
        while self.bytes > max {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.cost;
            }
        }
    }

    fn remove(&mut self, id: &GroupId) {
        if let Some(e) = self.entries.remove(id) {
            self.by_use.remove(&e.used);
            self.bytes -= e.cost;
        }
    }
}

impl RenderCache {
    /// A cache whose entries cost at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Lru::default()),
            max_bytes,
        }
    }

    /// What the entries cost now, in bytes.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The group's GroupInfo JSON as `session`'s account sees it, or 404.
    pub fn info_json(
        &self,
        groups: &GroupService,
        session: &Session,
        id: &GroupId,
    ) -> ApiResult<Bytes> {
        let stored = groups.stored(session, id)?;
        let me = session.me_id();
        let hit = self.lock().get(id, &stored);
        let r = match hit {
            Some(r) => r,
            None => {
                // Rendered outside the lock: other groups' reads go on meanwhile.
                let r = Arc::new(render(stored)?);
                self.lock().insert(id.clone(), r.clone(), self.max_bytes);
                r
            }
        };
        Ok(if r.admins.contains(&me) {
            r.as_admin.clone()
        } else {
            r.as_member.clone()
        })
    }
}

fn render(stored: StoredBytes) -> ApiResult<Rendered> {
    let g = decode(&stored)?;
    // Only the invite URL depends on who looks: admins see it, others get null.
    let render = |as_admin: bool| -> ApiResult<Bytes> {
        let mut info = g.info(&g.owner, true);
        info.invite = as_admin.then(|| g.invite.url());
        Ok(serde_json::to_vec(&info)
            .map_err(ApiError::internal)?
            .into())
    };
    Ok(Rendered {
        admins: g
            .participants
            .iter()
            .filter(|m| m.role.is_admin())
            .map(|m| m.id.clone())
            .collect(),
        as_admin: render(true)?,
        as_member: render(false)?,
        stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry of about `3 * size` bytes, rendered from stored bytes tagged `tag`.
    fn rendered(tag: u8, size: usize) -> Arc<Rendered> {
        Arc::new(Rendered {
            stored: StoredBytes::from(vec![tag; size]),
            admins: Vec::new(),
            as_admin: Bytes::from(vec![b'a'; size]),
            as_member: Bytes::from(vec![b'm'; size]),
        })
    }

    fn gid(n: u8) -> GroupId {
        GroupId::parse(&format!("120363{n:012}@g.us")).expect("group id")
    }

    fn stored(tag: u8, size: usize) -> StoredBytes {
        StoredBytes::from(vec![tag; size])
    }

    #[test]
    fn entries_beyond_the_bound_evict_the_least_recently_used_and_the_cost_stays_under_it() {
        let max = 64 * 1024;
        let mut lru = Lru::default();
        for n in 0..100u8 {
            lru.insert(gid(n), rendered(n, 1024), max);
            assert!(lru.bytes <= max, "{} bytes after {n} inserts", lru.bytes);
            // Group 0 is read between every two inserts: it stays.
            assert!(lru.get(&gid(0), &stored(0, 1024)).is_some(), "after {n}");
        }
        assert!(lru.bytes > max / 2, "the bound is used, not emptied");
        assert!(lru.get(&gid(99), &stored(99, 1024)).is_some(), "the newest");
        assert!(
            lru.get(&gid(1), &stored(1, 1024)).is_none(),
            "an old cold one"
        );
        assert_eq!(lru.entries.len(), lru.by_use.len());
        let total: usize = lru.entries.values().map(|e| e.cost).sum();
        assert_eq!(total, lru.bytes, "the count matches the entries");
    }

    #[test]
    fn a_hit_needs_the_stored_bytes_it_was_rendered_from() {
        let mut lru = Lru::default();
        lru.insert(gid(1), rendered(1, 100), 1 << 20);
        assert!(lru.get(&gid(1), &stored(1, 100)).is_some());
        assert!(
            lru.get(&gid(1), &stored(2, 100)).is_none(),
            "the group changed"
        );
        assert!(lru.get(&gid(2), &stored(1, 100)).is_none());
    }

    #[test]
    fn a_new_rendering_of_a_group_replaces_its_entry_and_its_cost() {
        let mut lru = Lru::default();
        lru.insert(gid(1), rendered(1, 5000), 1 << 20);
        lru.insert(gid(1), rendered(2, 100), 1 << 20);
        assert_eq!(lru.entries.len(), 1);
        assert_eq!(lru.by_use.len(), 1);
        assert!(lru.bytes < 1000, "{} bytes", lru.bytes);
        assert!(lru.get(&gid(1), &stored(2, 100)).is_some());
    }

    #[test]
    fn an_entry_larger_than_the_bound_is_served_but_not_kept() {
        let mut lru = Lru::default();
        lru.insert(gid(1), rendered(1, 100), 4096);
        lru.insert(gid(2), rendered(2, 4096), 4096);
        assert!(lru.get(&gid(2), &stored(2, 4096)).is_none());
        assert!(
            lru.get(&gid(1), &stored(1, 100)).is_some(),
            "nothing evicted for it"
        );
        let mut off = Lru::default();
        off.insert(gid(1), rendered(1, 1), 0);
        assert_eq!((off.entries.len(), off.bytes), (0, 0), "a bound of 0");
    }
}
