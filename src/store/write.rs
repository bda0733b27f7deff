//! Writing a round: every change queued for one store in ONE sled transaction, recording the
//! value each write replaced, so that a round whose flush fails can be taken back (`fault.rs`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::{IVec, Transactional};

use super::cursor::{cursor_key, encode_event, endpoint_key, EndpointRecord};
use super::fault::Undo;
use super::log::{chunk_key, new_entry, push_entry};
use super::trees::{TreeId, Trees};
use super::work::{Applied, Commit, EndpointFilter, GroupWrite, PictureWrite, Work};
use super::{u64_of, SESSION_KEY};
use super::{SessionStore, StoreError, StoreResult, GROUP_COUNT_KEY, NEXT_SEQ_KEY, ROUND_KEY};

/// A round whose transaction failed in sled, with what it may have overwritten.
#[derive(Debug)]
pub struct WriteFailed {
    pub error: StoreError,
    /// The round's number, or 0 when it never reached sled.
    pub round: u64,
    pub undo: Undo,
}

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
    fn get(&self, id: TreeId, key: &[u8]) -> TxResult<Option<IVec>> {
        Ok(self.t[id as usize].get(key)?)
    }

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
    /// The round's entry of the log being filled: its first event's sequence number (its key)
    /// and its bytes, written when the round moves to the next chunk or ends.
    entry: Option<(u64, Vec<u8>)>,
}

/// Appends event `st.seq` to the round's entry of the log: one per round and chunk, keyed by
/// its first event (see `log.rs`), never rewritten.
fn log_event(tx: &mut Tx<'_>, st: &mut RoundState<'_>, event: &[u8]) -> TxResult<()> {
    let seq = st.seq;
    if st
        .entry
        .as_ref()
        .is_some_and(|(first, _)| chunk_key(*first) != chunk_key(seq))
    {
        close_entry(tx, st)?;
    }
    let bytes = &mut st.entry.get_or_insert_with(|| (seq, new_entry())).1;
    push_entry(bytes, seq, event).ok_or(ConflictableTransactionError::Abort(()))
}

/// Writes the round's entry of the log being filled, if any.
fn close_entry(tx: &mut Tx<'_>, st: &mut RoundState<'_>) -> TxResult<()> {
    if let Some((first, bytes)) = st.entry.take() {
        tx.insert(TreeId::Events, &first.to_be_bytes(), &bytes)?;
    }
    Ok(())
}

impl SessionStore {
    /// Commits several changes in ONE transaction, in order, without a flush, and takes them as
    /// durable (for tests that seed a store; the committer flushes between the two).
    pub fn commit_many(&self, items: &[Commit]) -> StoreResult<Vec<Applied>> {
        let w = self.write_round(items).map_err(|f| f.error)?;
        self.round_durable(&w);
        Ok(w.applied)
    }

    /// Writes a round's changes in one transaction; they are visible but not yet durable.
    pub(super) fn write_round(&self, items: &[Commit]) -> Result<RoundWrites, WriteFailed> {
        let failed = |error| WriteFailed {
            error,
            round: 0,
            undo: Undo::default(),
        };
        let t = self.writable().map_err(failed)?;
        if items
            .iter()
            .all(|i| matches!(i.work, Work::Flush) && i.remember.is_none())
        {
            return self.flush_only(items.len()).map_err(failed);
        }
        let mut versions = self.versions_of(&t, items).map_err(failed)?;
        let mut next = self
            .next_seq
            .lock()
            .map_err(|_| failed(StoreError::Poisoned))?;
        let round = self.round.load(Ordering::Acquire) + 1;
        let start = RoundStart {
            seq: *next,
            groups: self.group_count.load(Ordering::Acquire),
            round,
        };
        let moves = items
            .iter()
            .any(|i| matches!(i.work, Work::Bury { .. } | Work::Requeue { .. }));
        if moves {
            self.moves.fetch_add(1, Ordering::AcqRel);
        }
        // The before-images leave the transaction here, so that a commit that fails in sled
        // still hands them to `round_failed` (restoring values never overwritten is harmless).
        let undo = RefCell::new(Vec::new());
        let res = t.all[..].transaction(|view| transaction(view, items, &start, &versions, &undo));
        if moves {
            self.moves.fetch_add(1, Ordering::AcqRel);
        }
        let undo = Undo {
            writes: undo.into_inner(),
        };
        match res {
            Ok((applied, counts, written)) => {
                *next = counts.seq;
                versions.extend(written);
                self.round.store(round, Ordering::Release);
                Ok(RoundWrites {
                    applied,
                    undo,
                    round,
                    groups: counts.groups,
                    requeued: counts.requeued,
                    last_seq: counts.seq - 1,
                })
            }
            Err(TransactionError::Storage(e)) => Err(WriteFailed {
                error: e.into(),
                round,
                undo,
            }),
            Err(TransactionError::Abort(())) => Err(failed(StoreError::Poisoned)),
        }
    }

    /// A round of flushes only: nothing to write, the flush covers what was written outside
    /// the committer.
    fn flush_only(&self, n: usize) -> StoreResult<RoundWrites> {
        let next = *self.next_seq.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(RoundWrites {
            applied: vec![Applied::default(); n],
            undo: Undo::default(),
            round: self.round.load(Ordering::Acquire),
            groups: self.group_count.load(Ordering::Acquire),
            requeued: 0,
            last_seq: next.saturating_sub(1),
        })
    }

    /// The committer's cache of stored versions, filled for the groups `items` write.
    fn versions_of(
        &self,
        t: &Trees,
        items: &[Commit],
    ) -> StoreResult<std::sync::MutexGuard<'_, HashMap<String, u64>>> {
        let mut versions = self
            .version_cache
            .lock()
            .map_err(|_| StoreError::Poisoned)?;
        for item in items {
            let writes = match &item.work {
                Work::Group { write, .. } => std::slice::from_ref(write),
                Work::Groups { writes, .. } => writes.as_slice(),
                _ => &[],
            };
            for write in writes {
                if !versions.contains_key(&write.group_id) {
                    let stored = t
                        .tree(TreeId::Versions)
                        .get(write.group_id.as_bytes())?
                        .map_or(0, |v| u64_of(&v));
                    versions.insert(write.group_id.clone(), stored);
                }
            }
        }
        Ok(versions)
    }

    /// After a round's flush succeeded: its events may be listed and delivered.
    pub(super) fn round_durable(&self, w: &RoundWrites) {
        self.group_count.store(w.groups, Ordering::Release);
        self.durable.fetch_max(w.last_seq, Ordering::AcqRel);
        if w.requeued > 0 {
            self.requeues.fetch_add(w.requeued, Ordering::SeqCst);
        }
        self.tell_if_worn();
    }
}

/// Where a round's transaction starts.
struct RoundStart {
    seq: u64,
    groups: u64,
    round: u64,
}

type Written = (Vec<Applied>, Counts, HashMap<String, u64>);

/// The body of a round's transaction (sled may run it more than once).
fn transaction(
    view: &[TransactionalTree],
    items: &[Commit],
    start: &RoundStart,
    stored: &HashMap<String, u64>,
    undo: &RefCell<Vec<(TreeId, IVec, Option<IVec>)>>,
) -> TxResult<Written> {
    let mut tx = Tx {
        t: view,
        undo: Vec::new(),
    };
    let mut st = RoundState {
        seq: start.seq,
        groups: start.groups,
        requeued: 0,
        stored,
        written: HashMap::new(),
        entry: None,
    };
    let mut applied = Vec::with_capacity(items.len());
    let result = (|| {
        for item in items {
            applied.push(apply(&mut tx, &mut st, item)?);
        }
        close_entry(&mut tx, &mut st)?;
        tx.insert(TreeId::Meta, ROUND_KEY, &start.round.to_be_bytes())?;
        tx.insert(TreeId::Meta, NEXT_SEQ_KEY, &st.seq.to_be_bytes())?;
        tx.insert(TreeId::Meta, GROUP_COUNT_KEY, &st.groups.to_be_bytes())
    })();
    *undo.borrow_mut() = std::mem::take(&mut tx.undo);
    result?;
    let counts = Counts {
        seq: st.seq,
        groups: st.groups,
        requeued: st.requeued,
    };
    Ok((applied, counts, st.written))
}

/// Writes one change of a round.
fn apply(tx: &mut Tx<'_>, st: &mut RoundState<'_>, item: &Commit) -> TxResult<Applied> {
    let applied = change(tx, st, item)?;
    // An answer is kept only with a change that was made (a skipped requeue answers 404).
    if let (Some(r), false) = (&item.remember, applied.skipped) {
        tx.insert(TreeId::Idempotency, &r.key, &r.record)?;
    }
    Ok(applied)
}

/// A change of a round that writes nothing: skipped, or `stale` (see `Commit::base`).
fn unwritten(stale: bool) -> Applied {
    Applied {
        seqs: Vec::new(),
        skipped: true,
        stale,
    }
}

/// Writes one change of a round, but its kept answer.
fn change(tx: &mut Tx<'_>, st: &mut RoundState<'_>, item: &Commit) -> TxResult<Applied> {
    // Per event of the change: whether it is logged (a skipped group write drops its events).
    let mut live = Vec::new();
    match &item.work {
        Work::Flush => return Ok(Applied::default()),
        Work::Record { bytes, gone, .. } => {
            tx.insert(TreeId::Meta, SESSION_KEY, bytes)?;
            settle_endpoints(tx, st.seq - 1, &item.endpoints, Some(gone))?;
        }
        Work::Group { write, fanout } => {
            if item
                .base
                .is_some_and(|base| base != held(st, &write.group_id))
            {
                return Ok(unwritten(true));
            }
            if !group(tx, st, write)? {
                return Ok(unwritten(false));
            }
            if let Some((id, bytes)) = fanout {
                tx.insert(TreeId::Fanout, &id.to_be_bytes(), bytes)?;
            }
        }
        Work::Groups { writes, fanout } => {
            let mut any = writes.is_empty();
            for w in writes {
                let written = group(tx, st, w)?;
                any |= written;
                live.extend(std::iter::repeat_n(written, w.events.len()));
            }
            if !any {
                return Ok(unwritten(false));
            }
            if let Some((id, bytes)) = fanout {
                tx.insert(TreeId::Fanout, &id.to_be_bytes(), bytes)?;
            }
        }
        Work::Requeue { key, job } => {
            if tx.remove(TreeId::Dead, key)?.is_none() {
                return Ok(unwritten(false));
            }
            tx.insert(TreeId::Deliveries, key, job)?;
            st.requeued += 1;
        }
        Work::Bury { key, job } => {
            tx.remove(TreeId::Deliveries, key)?;
            tx.insert(TreeId::Dead, key, job)?;
        }
    }
    let events = item.work.events();
    let mut seqs = Vec::with_capacity(events.len());
    if !events.is_empty() && !matches!(item.work, Work::Record { .. }) {
        settle_endpoints(tx, st.seq - 1, &item.endpoints, None)?;
    }
    for (i, e) in events.iter().enumerate() {
        if !live.get(i).copied().unwrap_or(true) {
            continue;
        }
        log_event(tx, st, &encode_event(e))?;
        seqs.push(st.seq);
        st.seq += 1;
    }
    Ok(Applied {
        seqs,
        skipped: false,
        stale: false,
    })
}

/// Gives each endpoint without a cursor one at `last` (the event before the change's: it takes
/// them and every later one), so that the dispatcher finds them beyond it. From a session record
/// (`gone` is then known): writes the endpoints' settings, gives one that comes back a new
/// cursor, and marks those that left with the last event for them.
fn settle_endpoints(
    tx: &mut Tx<'_>,
    last: u64,
    endpoints: &[EndpointFilter],
    gone: Option<&[[u8; 8]]>,
) -> TxResult<()> {
    for ep in endpoints {
        let key = endpoint_key(ep.id);
        let held = tx.get(TreeId::Meta, &key)?;
        let held = held.and_then(|v| EndpointRecord::from_bytes(&v).ok());
        let fresh = EndpointRecord::of(ep);
        match held {
            Some(h) if h.until.is_none() => {
                if gone.is_some() && h != fresh {
                    tx.insert(TreeId::Meta, &key, &fresh.to_bytes())?;
                }
            }
            _ => {
                tx.insert(TreeId::Meta, &cursor_key(ep.id), &last.to_be_bytes())?;
                tx.insert(TreeId::Meta, &key, &fresh.to_bytes())?;
            }
        }
    }
    for id in gone.unwrap_or_default() {
        let key = endpoint_key(*id);
        let Some(held) = tx.get(TreeId::Meta, &key)? else {
            continue;
        };
        let Ok(mut held) = EndpointRecord::from_bytes(&held) else {
            continue;
        };
        if held.until.is_none() {
            held.until = Some(last);
            tx.insert(TreeId::Meta, &key, &held.to_bytes())?;
        }
    }
    Ok(())
}

/// The version of group `gid` the store holds at this point of the round.
fn held(st: &RoundState<'_>, gid: &str) -> u64 {
    st.written
        .get(gid)
        .or_else(|| st.stored.get(gid))
        .copied()
        .unwrap_or(0)
}

/// Writes one session's copy of a group; false when it is not newer than the stored one.
fn group(tx: &mut Tx<'_>, st: &mut RoundState<'_>, w: &GroupWrite) -> TxResult<bool> {
    let stored = held(st, &w.group_id);
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
