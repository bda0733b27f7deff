//! The catalog: what start-up needs to know of each session whose store is closed, so that it
//! opens none of them. One small sled database (`<data>/catalog/`), a summary per session.
//!
//! A summary is written when a store is closed after idling (`SessionStore::close_idle`), from
//! what the store holds then, and removed (durably) before the store's first write after it is
//! opened again (`SessionStore::writable`). So a summary on disk always describes its store
//! exactly; a session without one (its store was open at a crash, or written by an older
//! version, or restored from a backup) is opened at start-up and read as before.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::jobs::{JobState, JobTally};
use super::trees::{TreeId, Trees};
use super::{StoreError, StoreResult, GROUP_COUNT_KEY, SESSION_KEY};

/// One closed store, as start-up and the metrics need it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The session record's stored JSON.
    pub record: String,
    /// The groups held, by id.
    pub groups: Vec<String>,
    /// (invite code, group id).
    pub invites: Vec<(String, String)>,
    /// Keys of kept answers that start with `prefix::CREATES` (the creates this store answered).
    pub creates: Vec<Vec<u8>>,
    pub pending: Vec<Tally>,
    pub dead: Vec<Tally>,
    pub group_count: u64,
}

/// `JobTally` as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tally {
    pub endpoint: u64,
    pub count: usize,
    pub oldest_seq: u64,
}

/// Keys of the idempotency tree that record which key created the session (see `api::idempotency`).
pub const CREATES_PREFIX: &[u8] = &[1];

impl Summary {
    /// Reads the summary of an open database (that nothing writes meanwhile).
    pub(super) fn of(t: &Trees, group_count: u64, durable: u64) -> StoreResult<Self> {
        let corrupt = |detail: String| StoreError::Corrupt {
            tree: "meta",
            detail,
        };
        let record = match t.tree(TreeId::Meta).get(SESSION_KEY)? {
            Some(v) => String::from_utf8(v.to_vec()).map_err(|e| corrupt(e.to_string()))?,
            None => return Err(corrupt("no session record".into())),
        };
        let mut groups = Vec::new();
        for k in t.tree(TreeId::Groups).iter().keys() {
            groups.push(String::from_utf8_lossy(&k?).into_owned());
        }
        let mut invites = Vec::new();
        for kv in t.tree(TreeId::Invites).iter() {
            let (k, v) = kv?;
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            invites.push((text(&k), text(&v)));
        }
        let mut creates = Vec::new();
        for k in t
            .tree(TreeId::Idempotency)
            .scan_prefix(CREATES_PREFIX)
            .keys()
        {
            creates.push(k?.to_vec());
        }
        let stored_count = t.tree(TreeId::Meta).get(GROUP_COUNT_KEY)?;
        Ok(Self {
            record,
            groups,
            invites,
            creates,
            pending: super::jobs::pending_tally(t, durable)?
                .into_iter()
                .map(Tally::of)
                .collect(),
            dead: tally(t, JobState::Dead)?,
            group_count: stored_count.map_or(group_count, |v| super::u64_of(&v)),
        })
    }

    /// The summary without its lists of groups, invites and creates: what a closed store keeps
    /// in memory (only start-up reads the lists, from the catalog; a gateway of many closed
    /// stores would otherwise hold every group id twice).
    pub fn light(self) -> Self {
        Self {
            groups: Vec::new(),
            invites: Vec::new(),
            creates: Vec::new(),
            ..self
        }
    }

    /// The jobs in `state`, per endpoint.
    pub fn tallies(&self, state: JobState) -> Vec<JobTally> {
        let list = match state {
            JobState::Pending => &self.pending,
            JobState::Dead => &self.dead,
        };
        list.iter()
            .map(|t| JobTally {
                endpoint: t.endpoint.to_be_bytes(),
                count: t.count,
                oldest_seq: t.oldest_seq,
            })
            .collect()
    }
}

/// Per endpoint: how many jobs in `state`, and the oldest's sequence number, as stored.
fn tally(t: &Trees, state: JobState) -> StoreResult<Vec<Tally>> {
    Ok(super::jobs::tally(t, state)?
        .into_iter()
        .map(Tally::of)
        .collect())
}

impl Tally {
    fn of(j: JobTally) -> Self {
        Self {
            endpoint: u64::from_be_bytes(j.endpoint),
            count: j.count,
            oldest_seq: j.oldest_seq,
        }
    }
}

/// The catalog's database.
pub struct Catalog {
    db: sled::Db,
}

impl Catalog {
    pub fn open(path: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(path)?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(4 * 1024 * 1024)
            .flush_every_ms(None)
            .open()?;
        Ok(Self { db })
    }

    /// The summary of a closed store, if one is kept (an unreadable one counts as none).
    pub fn get(&self, name: &str) -> StoreResult<Option<Summary>> {
        let Some(v) = self.db.get(name)? else {
            return Ok(None);
        };
        match serde_json::from_slice(&v) {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                tracing::warn!(
                    session = name,
                    "catalog: unreadable summary ({e}); the store is opened instead"
                );
                Ok(None)
            }
        }
    }

    /// Keeps a summary (durable at the next `flush`).
    pub fn put(&self, name: &str, summary: &Summary) -> StoreResult<()> {
        let bytes = serde_json::to_vec(summary).map_err(|e| StoreError::Corrupt {
            tree: "catalog",
            detail: e.to_string(),
        })?;
        self.db.insert(name, bytes)?;
        Ok(())
    }

    /// Forgets a summary, durably, when there was one.
    pub fn forget(&self, name: &str) -> StoreResult<()> {
        if self.db.remove(name)?.is_some() {
            self.db.flush()?;
        }
        Ok(())
    }

    pub fn flush(&self) -> StoreResult<()> {
        self.db.flush()?;
        Ok(())
    }
}
