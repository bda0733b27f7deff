//! Moving the log's old entries out of sled into the store's archive (`archive.rs`), and
//! pruning the archive by age.

use std::sync::Arc;

use sled::IVec;

use super::archive::push_record;
use super::cursor::known_endpoints;
use super::log::entries;
use super::trees::{TreeId, Trees};
use super::{SessionStore, StoreError, StoreResult, ARCHIVE_FLOOR_KEY};

/// The newest events stay in sled whatever the endpoints have taken: reads of the log's end
/// and the store's last sequence number find them there.
const HOT: u64 = 512;
/// Events are moved when at least this many can go at once.
const BATCH: u64 = 256;
/// At most this many bytes of events are appended at once (a few in unit tests, so that they
/// see the archive's files follow one another).
const STEP_BYTES: usize = if cfg!(test) { 1024 } else { 4 * 1024 * 1024 };

impl SessionStore {
    /// Moves the events every endpoint has taken, except the newest `HOT`, out of sled into the
    /// archive: appended there and made durable first, then removed from sled. Does nothing to
    /// a closed store and does not count as a use of it. Answers how many events it moved.
    pub fn archive_old_events(&self) -> StoreResult<usize> {
        let Some(t) = self.open_trees() else {
            return Ok(0);
        };
        let end = self.durable_seq().saturating_sub(HOT);
        if end < self.archive.last()?.saturating_add(BATCH) {
            return Ok(0);
        }
        let _turn = self.archive.turn()?;
        // Read under the turn: pruning may have raised it meanwhile.
        let last = self.archive.last()?;
        let taken = known_endpoints(&t)?
            .iter()
            .filter(|k| k.cursor < k.record.until.unwrap_or(u64::MAX))
            .map(|k| k.cursor)
            .min()
            .unwrap_or(u64::MAX);
        let bound = end.min(taken);
        if bound < last.saturating_add(BATCH) {
            return Ok(0);
        }
        let (mut last, mut n) = (last, 0);
        loop {
            let step = self.move_entries(&t, last, bound)?;
            if step == 0 {
                return Ok(n);
            }
            n += step;
            last = self.archive.last()?;
        }
    }

    /// Moves the entries of sled's log whose events are all `..=bound` (those `..=last` are
    /// already archived: a move a crash cut short).
    fn move_entries(&self, t: &Arc<Trees>, last: u64, bound: u64) -> StoreResult<usize> {
        let log = t.tree(TreeId::Events);
        let (mut records, mut moved) = (Vec::new(), Vec::<(IVec, IVec)>::new());
        let (mut first, mut upto, mut n) = (None, last, 0);
        // Below the floor are only events pruning put back for a delivery: they stay.
        let floor = self.archive.read()?.as_ref().map_or(0, |s| s.floor());
        for r in log.range(floor.to_be_bytes()..) {
            let (k, v) = r?;
            let items = entries(&k, &v)?;
            if items.last().is_some_and(|(s, _)| *s > bound) {
                break;
            }
            for (seq, e) in items.iter().filter(|(s, _)| *s > last) {
                push_record(&mut records, *seq, e).ok_or_else(|| StoreError::Corrupt {
                    tree: "events",
                    detail: format!("event {seq} is too long to archive"),
                })?;
                first.get_or_insert(*seq);
                upto = *seq;
                n += 1;
            }
            moved.push((k, v));
            if records.len() >= STEP_BYTES {
                break;
            }
        }
        if let Some(first) = first {
            self.archive.append(&records, first, upto)?;
        }
        // Read from the archive from now on: sled's copies go, durably with the next flush
        // (copies a crash brings back are passed over by reads and removed next time).
        for (k, v) in moved {
            let _ = log.compare_and_swap(k, Some(v), None::<&[u8]>)?;
        }
        Ok(n)
    }

    /// Prunes the archive's events older than `cutoff_ms`; those a pending or dead delivery
    /// needs go back into sled first. Answers how many sequence numbers it pruned.
    pub fn prune_archive(&self, cutoff_ms: u64) -> StoreResult<u64> {
        let t = self.trees()?;
        let _turn = self.archive.turn()?;
        let Some(needed) = self.needed_events(&t)? else {
            return Ok(0); // jobs kept moving: next time
        };
        self.archive.prune(cutoff_ms, &needed, |floor, kept| {
            let log = t.tree(TreeId::Events);
            for (seq, event) in kept {
                log.insert(seq.to_be_bytes(), event)?;
            }
            t.db.flush()?;
            let meta = t.tree(TreeId::Meta);
            meta.insert(ARCHIVE_FLOOR_KEY, &floor.to_be_bytes())?;
            t.db.flush()?;
            Ok(())
        })
    }
}
