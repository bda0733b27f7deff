//! Writing a round: every change queued for one store in ONE sled transaction, recording the
//! value each write replaced, so that a round whose flush fails can be taken back (`fault.rs`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::{IVec, Transactional};

use super::fault::Undo;
use super::trees::{TreeId, Trees};
use super::work::{Applied, Commit, GroupWrite, PictureWrite, Work};
use super::{delivery_key, SessionStore, StoreError, StoreResult, GROUP_COUNT_KEY, ROUND_KEY};
use super::{u64_of, SESSION_KEY};

/// One store's share of a round, written but not yet known durable.
#[derive(Debug)]
pub struct RoundWrites {
    pub applied: Vec<Applied>,
    pub undo: Undo,
    /// The round's number, as written to meta.
    pub round: u64,
    /// Groups held after the round.
    pub groups: u64,
    /// Dead deliveries put back to pending.
    pub requeued: u64,
    /// The last event sequence number after the round.
    pub last_seq: u64,
}

/// The counters a round's transaction ends with.
struct Counts {
    seq: u64,
    groups: u64,
    requeued: u64,
}

/// A transaction's trees, recording what each write replaced.
struct Tx<'a> {
    t: &'a [TransactionalTree],
    undo: Vec<(TreeId, IVec, Option<IVec>)>,
}

type TxResult<T> = ConflictableTransactionResult<T, ()>;

impl Tx<'_> {
    fn insert(&mut self, id: TreeId, key: &[u8], value: &[u8]) -> TxResult<Option<IVec>> {
        let old = self.t[id as usize].insert(key, value)?;
        self.undo.push((id, IVec::from(key), old.clone()));
        Ok(old)
    }

    fn remove(&mut self, id: TreeId, key: &[u8]) -> TxResult<Option<IVec>> {
        let old = self.t[id as usize].remove(key)?;
        if old.is_some() {
            self.undo.push((id, IVec::from(key), old.clone()));
        }
        Ok(old)
    }
}

/// The state one round's transaction carries from change to change.
struct RoundState<'a> {
    seq: u64,
    groups: u64,
    requeued: u64,
    /// Versions the store held before the round (the committer's cache).
    stored: &'a HashMap<String, u64>,
    /// Versions written by earlier changes of this round.
    written: HashMap<String, u64>,
}

impl SessionStore {
    /// Commits several changes in ONE transaction, in order, without a flush, and takes them as
    /// durable (for tests that seed a store; the committer flushes between the two).
    pub fn commit_many(&self, items: &[Commit]) -> StoreResult<Vec<Applied>> {
        let w = self.write_round(items)?;
        self.round_durable(&w);
        Ok(w.applied)
    }

    /// Writes a round's changes in one transaction; they are visible but not yet durable.
    pub(super) fn write_round(&self, items: &[Commit]) -> StoreResult<RoundWrites> {
        let t = self.trees()?;
        if items.iter().all(|i| matches!(i.work, Work::Flush)) {
            // Nothing to write; the flush covers what was written outside the committer.
            return Ok(RoundWrites {
                applied: vec![Applied::default(); items.len()],
                undo: Undo::default(),
                round: self.round.load(Ordering::Acquire),
                groups: self.group_count.load(Ordering::Acquire),
                requeued: 0,
                last_seq: self
                    .next_seq
                    .lock()
                    .map_err(|_| StoreError::Poisoned)?
                    .saturating_sub(1),
            });
        }
        let mut versions = self
            .version_cache
            .lock()
            .map_err(|_| StoreError::Poisoned)?;
        for item in items {
            if let Work::Group { write, .. } = &item.work {
                if !versions.contains_key(&write.group_id) {
                    let stored = t
                        .tree(TreeId::Versions)
                        .get(write.group_id.as_bytes())?
                        .map_or(0, |v| u64_of(&v));
                    versions.insert(write.group_id.clone(), stored);
                }
            }
        }
        let mut next = self.next_seq.lock().map_err(|_| StoreError::Poisoned)?;
        let round = self.round.load(Ordering::Acquire) + 1;
        let groups = self.group_count.load(Ordering::Acquire);
        let res = t.all[..].transaction(|view| {
            let mut tx = Tx {
                t: view,
                undo: Vec::new(),
            };
            let mut st = RoundState {
                seq: *next,
                groups,
                requeued: 0,
                stored: &versions,
                written: HashMap::new(),
            };
            let mut applied = Vec::with_capacity(items.len());
            for item in items {
                applied.push(apply(&mut tx, &mut st, item)?);
            }
            tx.insert(TreeId::Meta, ROUND_KEY, &round.to_be_bytes())?;
            tx.insert(TreeId::Meta, GROUP_COUNT_KEY, &st.groups.to_be_bytes())?;
            let RoundState {
                seq,
                groups,
                requeued,
                written,
                ..
            } = st;
            Ok((
                applied,
                tx.undo,
                Counts {
                    seq,
                    groups,
                    requeued,
                },
                written,
            ))
        });
        match res {
            Ok((applied, undo, st, written)) => {
                *next = st.seq;
                versions.extend(written);
                self.round.store(round, Ordering::Release);
                Ok(RoundWrites {
                    applied,
                    undo: Undo { writes: undo },
                    round,
                    groups: st.groups,
                    requeued: st.requeued,
                    last_seq: st.seq - 1,
                })
            }
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => Err(StoreError::Poisoned),
        }
    }

    /// After a round's flush succeeded: its events may be listed and delivered.
    pub(super) fn round_durable(&self, w: &RoundWrites) {
        self.group_count.store(w.groups, Ordering::Release);
        self.durable.fetch_max(w.last_seq, Ordering::AcqRel);
        if w.requeued > 0 {
            self.requeues.fetch_add(w.requeued, Ordering::SeqCst);
        }
    }
}

/// Writes one change of a round.
fn apply(tx: &mut Tx<'_>, st: &mut RoundState<'_>, item: &Commit) -> TxResult<Applied> {
    match &item.work {
        Work::Flush => return Ok(Applied::default()),
        Work::Record { bytes, .. } => {
            tx.insert(TreeId::Meta, SESSION_KEY, bytes)?;
        }
        Work::Group { write, fanout } => {
            if !group(tx, st, write)? {
                return Ok(Applied {
                    seqs: Vec::new(),
                    skipped: true,
                });
            }
            if let Some((id, bytes)) = fanout {
                tx.insert(TreeId::Fanout, &id.to_be_bytes(), bytes)?;
            }
        }
        Work::Requeue { key, job } => {
            if tx.remove(TreeId::Dead, key)?.is_none() {
                return Ok(Applied {
                    seqs: Vec::new(),
                    skipped: true,
                });
            }
            tx.insert(TreeId::Deliveries, key, job)?;
            st.requeued += 1;
        }
        Work::Bury { key, job } => {
            tx.remove(TreeId::Deliveries, key)?;
            tx.insert(TreeId::Dead, key, job)?;
        }
    }
    let mut seqs = Vec::with_capacity(item.jobs.len());
    for (e, per_ep) in item.work.events().iter().zip(&item.jobs) {
        tx.insert(TreeId::Events, &st.seq.to_be_bytes(), e.body.as_bytes())?;
        for (ep, bytes) in per_ep {
            tx.insert(TreeId::Deliveries, &delivery_key(*ep, st.seq), bytes)?;
        }
        seqs.push(st.seq);
        st.seq += 1;
    }
    Ok(Applied {
        seqs,
        skipped: false,
    })
}

/// Writes one session's copy of a group; false when it is not newer than the stored one.
fn group(tx: &mut Tx<'_>, st: &mut RoundState<'_>, w: &GroupWrite) -> TxResult<bool> {
    let stored = st
        .written
        .get(w.group_id.as_str())
        .or_else(|| st.stored.get(&w.group_id))
        .copied()
        .unwrap_or(0);
    if stored >= w.version {
        return Ok(false);
    }
    st.written.insert(w.group_id.clone(), w.version);
    let gid = w.group_id.as_bytes();
    tx.insert(TreeId::Versions, gid, &w.version.to_be_bytes())?;
    let held_before = match &w.group {
        Some(json) => tx.insert(TreeId::Groups, gid, json.as_bytes())?.is_some(),
        None => tx.remove(TreeId::Groups, gid)?.is_some(),
    };
    match (held_before, w.group.is_some()) {
        (false, true) => st.groups += 1,
        (true, false) => st.groups = st.groups.saturating_sub(1),
        _ => {}
    }
    if let Some(code) = &w.invite_del {
        tx.remove(TreeId::Invites, code.as_bytes())?;
    }
    if let Some(code) = &w.invite_put {
        tx.insert(TreeId::Invites, code.as_bytes(), gid)?;
    }
    match &w.picture {
        Some(PictureWrite::Set(bytes)) => {
            tx.insert(TreeId::Pictures, gid, bytes)?;
        }
        Some(PictureWrite::Delete) => {
            tx.remove(TreeId::Pictures, gid)?;
        }
        None => {}
    }
    Ok(true)
}

/// Writes a round's before-images back, newest write first, in one transaction.
pub(super) fn apply_undo(t: &Trees, undo: &Undo) -> StoreResult<()> {
    let res = t.all[..].transaction(|view| {
        for (id, key, old) in undo.writes.iter().rev() {
            let tree = &view[*id as usize];
            match old {
                Some(v) => tree.insert(key, v.clone())?,
                None => tree.remove(key)?,
            };
        }
        Ok::<_, ConflictableTransactionError<()>>(())
    });
    match res {
        Ok(()) => Ok(()),
        Err(TransactionError::Storage(e)) => Err(e.into()),
        Err(TransactionError::Abort(())) => Err(StoreError::Poisoned),
    }
}
