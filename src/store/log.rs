//! The event log's layout: a round's events of one store share a key. An opened sled database
//! keeps state per key: a reopened log costs ~43 MiB per million events in sled alone at one
//! event to a key and ~17 at four (docs/benchmarks.md, "The log and the groups apart").
//!
//! An entry of the log holds the events one round wrote within one chunk of sequence numbers
//! (a multiple of `CHUNK` and the fifteen after it), under the key of its first event. Its value
//! is `MARK`, then its events in order, each as its sequence number (8 bytes), its length (4)
//! and the logged event (`cursor::encode_event`). So the entry holding event `s` has a key
//! between `chunk_key(s)` and `s`. An entry is written once, by its round, and rewritten only by
//! pruning, with a compare-and-swap. A log written before entries (one event to a key, no
//! `MARK`) reads as entries of one event. Appending each round to an entry of sixteen instead was
//! measured and dropped: the running gateway's RSS grew ~680 MiB per million events
//! (docs/benchmarks.md, "The log a round to a key").

use std::collections::VecDeque;

use sled::{IVec, Tree};

use super::archive::State;
use super::cursor::decode_event;
use super::trees::{TreeId, Trees};
use super::{seq_of, u64_of, SessionStore, StoreError, StoreResult};

/// An entry never holds events of two chunks of this many sequence numbers.
const CHUNK: u64 = 16;
/// The first byte of an entry (an event logged alone starts with its header, 1, or with `{`).
const MARK: u8 = 2;
/// The bytes ahead of each event in an entry: its sequence number and its length.
const ENTRY_HEAD: usize = 12;

/// The first key an entry holding event `seq` can have.
pub(super) fn chunk_key(seq: u64) -> [u8; 8] {
    (seq - seq % CHUNK).to_be_bytes()
}

fn corrupt(detail: &str) -> StoreError {
    StoreError::Corrupt {
        tree: "events",
        detail: detail.into(),
    }
}

/// The events of one entry of the log, oldest first (one for a key written before entries).
pub(super) fn entries(k: &[u8], v: &IVec) -> StoreResult<Vec<(u64, IVec)>> {
    if v.first() != Some(&MARK) {
        return Ok(vec![(seq_of(k, "events")?, v.clone())]);
    }
    let mut out = Vec::new();
    let mut at = 1;
    while at < v.len() {
        let head = v
            .get(at..at + ENTRY_HEAD)
            .ok_or_else(|| corrupt("an entry's event header is cut short"))?;
        let seq = u64_of(&head[..8]);
        let len = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
        let start = at + ENTRY_HEAD;
        if start + len > v.len() {
            return Err(corrupt("an entry's event is cut short"));
        }
        out.push((seq, v.subslice(start, len)));
        at = start + len;
    }
    Ok(out)
}

/// An entry with events `items`, or `None` when there are none.
fn entry_of<'a>(items: impl IntoIterator<Item = (u64, &'a [u8])>) -> Option<Vec<u8>> {
    let mut out = new_entry();
    for (seq, event) in items {
        push_entry(&mut out, seq, event)?;
    }
    (out.len() > 1).then_some(out)
}

/// Appends event `seq` to an entry's bytes; `None` for an event too long to log (over 4 GiB).
pub(super) fn push_entry(entry: &mut Vec<u8>, seq: u64, event: &[u8]) -> Option<()> {
    let len = u32::try_from(event.len()).ok()?;
    entry.extend_from_slice(&seq.to_be_bytes());
    entry.extend_from_slice(&len.to_be_bytes());
    entry.extend_from_slice(event);
    Some(())
}

/// The bytes an entry starts from.
pub(super) fn new_entry() -> Vec<u8> {
    vec![MARK]
}

/// The logged events `from..=to`, oldest first, read entry by entry.
pub(super) struct LogRange {
    entries: sled::Iter,
    from: u64,
    to: u64,
    ready: VecDeque<(u64, IVec)>,
}

impl LogRange {
    pub(super) fn new(log: &Tree, from: u64, to: u64) -> Self {
        let entries = if from > to {
            log.range(to.to_be_bytes()..to.to_be_bytes())
        } else {
            log.range(chunk_key(from)..=to.to_be_bytes())
        };
        Self {
            entries,
            from,
            to,
            ready: VecDeque::new(),
        }
    }
}

impl Iterator for LogRange {
    type Item = StoreResult<(u64, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(Ok(e));
            }
            let (k, v) = match self.entries.next()? {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            match entries(&k, &v) {
                Ok(items) => self.ready.extend(
                    items
                        .into_iter()
                        .filter(|(s, _)| (self.from..=self.to).contains(s)),
                ),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The sequence number of the last event in the log, if any.
pub(super) fn last_logged(t: &Trees) -> StoreResult<Option<u64>> {
    let Some((k, v)) = t.tree(TreeId::Events).last()? else {
        return Ok(None);
    };
    Ok(entries(&k, &v)?.last().map(|(s, _)| *s))
}

impl SessionStore {
    /// Durable events after `after` (exclusive), oldest first.
    pub fn events_after(&self, after: u64, limit: usize) -> StoreResult<Vec<(u64, IVec)>> {
        // Opened first: a store's counters are read when it opens.
        let t = self.trees()?;
        let durable = self.durable_seq();
        let mut out = Vec::new();
        let from = after.saturating_add(1);
        self.read_log(&t, from, durable, |events| {
            for r in events.take(limit) {
                let (seq, v) = r?;
                out.push((seq, decode_event(v)?.body));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs `f` over the logged events `from..=to`, oldest first: those in the archive, then
    /// those in sled, with the archive's state held so that none leaves sled meanwhile.
    pub(super) fn read_log<R>(
        &self,
        t: &Trees,
        from: u64,
        to: u64,
        f: impl FnOnce(&mut dyn Iterator<Item = StoreResult<(u64, IVec)>>) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let held = self.archive.read()?;
        let none = State::default();
        let state = held.as_ref().unwrap_or(&none);
        let log = t.tree(TreeId::Events);
        // Below the floor: what pruning the archive put back because a delivery needs it.
        let kept = LogRange::new(log, from, to.min(state.floor().saturating_sub(1)));
        let cold = self.archive.range(state, from, to);
        let hot = LogRange::new(log, from.max(state.last() + 1), to);
        f(&mut kept.chain(cold).chain(hot))
    }

    /// The envelope of event `seq`, as sent.
    pub fn event(&self, seq: u64) -> StoreResult<Option<IVec>> {
        let t = self.trees()?;
        match self.read_log(&t, seq, seq, |events| events.next().transpose())? {
            Some((_, e)) => Ok(Some(decode_event(e)?.body)),
            None => Ok(None),
        }
    }

    /// Removes events older than `cutoff_seq` (exclusive) that no pending or dead delivery needs
    /// (neither a job record nor an endpoint's cursor behind them). An entry is rewritten with a
    /// compare-and-swap: one that changed since it was read is left for the next time.
    pub fn prune_events_before(&self, cutoff_seq: u64) -> StoreResult<usize> {
        let t = self.trees()?;
        let _turn = self.archive.turn()?;
        let known = self.known_endpoints()?;
        let Some(needed) = self.needed_events(&t)? else {
            return Ok(0); // jobs kept moving: next time
        };
        let keep = |seq: u64, v: &IVec| -> StoreResult<bool> {
            if seq >= cutoff_seq || needed.contains(&seq) {
                return Ok(true);
            }
            let mut waiting = known
                .iter()
                .filter(|k| seq > k.cursor && seq <= k.record.until.unwrap_or(u64::MAX))
                .peekable();
            if waiting.peek().is_none() {
                return Ok(false);
            }
            let name = decode_event(v.clone())?.name;
            Ok(waiting.any(|k| k.record.wants(&name)))
        };
        let mut n = 0;
        for r in t.tree(TreeId::Events).range(..cutoff_seq.to_be_bytes()) {
            let (k, v) = r?;
            let items = entries(&k, &v)?;
            let mut kept = Vec::with_capacity(items.len());
            for (seq, e) in &items {
                if keep(*seq, e)? {
                    kept.push((*seq, &e[..]));
                }
            }
            if kept.len() == items.len() {
                continue;
            }
            let removed = items.len() - kept.len();
            let rest = entry_of(kept);
            let w = self.writable()?;
            if w.tree(TreeId::Events)
                .compare_and_swap(&k, Some(&v), rest)?
                .is_ok()
            {
                n += removed;
            }
        }
        Ok(n)
    }

    /// The sequence number of the first event logged at or after `cutoff_ms` (unix ms),
    /// or the next one to be written when all are older.
    pub fn first_event_since(&self, cutoff_ms: u64) -> StoreResult<u64> {
        #[derive(serde::Deserialize)]
        struct Stamp {
            timestamp: u64,
        }
        let t = self.trees()?;
        // Read first: an event committed while the log is read must not count as old.
        let bound = self.durable_seq();
        for r in LogRange::new(t.tree(TreeId::Events), 0, bound) {
            let (seq, v) = r?;
            let at = serde_json::from_slice::<Stamp>(&decode_event(v)?.body)
                .map(|s| s.timestamp)
                .unwrap_or(u64::MAX);
            if at >= cutoff_ms {
                return Ok(seq);
            }
        }
        Ok(bound + 1)
    }
}

#[cfg(test)]
mod archive_tests;
#[cfg(test)]
mod tests;
