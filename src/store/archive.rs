//! The log's cold part: events every webhook has taken, moved out of sled into append-only
//! files beside it (`<store>/archive/<first seq>.log`), read from there by the same calls.
//!
//! Why: sled 0.34 keeps in memory what it has written and follows its file, which never shrinks
//! (docs/benchmarks.md, "The log out of sled"): a log kept in sled cost 130–150 MiB of RSS per
//! million retained events on the soak's mix, a log whose old entries leave sled about 9.
//!
//! A record is the event's sequence number (8 bytes), its length (4), a check (the first 4
//! bytes of the SHA-256 of the three before it) and the logged event (`cursor::encode_event`).
//! A file is written only at its end and fsynced before the events leave sled, so a crash
//! leaves at worst a torn record at the end of the newest file (cut off when the archive is
//! loaded) or events both here and in sled (read from here, removed from sled next time).
//! Events up to `last` are read from here, later ones from sled.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use sha2::{Digest, Sha256};
use sled::IVec;

use super::{StoreError, StoreResult};

/// A file takes no more appends once it holds this many bytes (a few in unit tests, so that
/// they see files rotate and go).
const FILE_BYTES: u64 = if cfg!(test) { 2048 } else { 4 * 1024 * 1024 };
/// The bytes ahead of each event: sequence number, length, check.
const HEAD: usize = 16;
/// An event longer than this is a torn or corrupt record, not an event.
const MAX_EVENT: u32 = 64 * 1024 * 1024;

/// One file: the first sequence number it holds and its length once durable.
#[derive(Debug, Clone, Copy)]
struct Segment {
    first: u64,
    len: u64,
}

/// What the archive holds, read from its directory when first needed.
#[derive(Debug, Default)]
pub(super) struct State {
    segments: Vec<Segment>,
    /// The last event moved here (0: none): later ones are read from sled.
    last: u64,
    /// Events before this one were pruned from here; those that a delivery still needed were
    /// put back into sled first (`Archive::prune`).
    floor: u64,
}

impl State {
    /// The last event moved here (0: none): later ones are read from sled.
    pub(super) fn last(&self) -> u64 {
        self.last
    }

    /// The first event that may be read from here: earlier ones are read from sled.
    pub(super) fn floor(&self) -> u64 {
        self.floor
    }
}

/// A store's archive directory and what it holds.
pub(super) struct Archive {
    dir: PathBuf,
    state: RwLock<Option<State>>,
    /// The store's next sequence number when it was opened (see `load`).
    fence: AtomicU64,
    /// The floor as the store's database keeps it (see `State::floor`).
    floor: AtomicU64,
    /// Held by whatever changes the files (moving events here, pruning, a snapshot reading
    /// them with sled), so that they take turns.
    upkeep: Mutex<()>,
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        tree: "archive",
        detail,
    }
}

fn check(seq: u64, len: u32, event: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(seq.to_be_bytes());
    h.update(len.to_be_bytes());
    h.update(event);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Appends event `seq`'s record to `out`; `None` for an event too long to archive.
pub(super) fn push_record(out: &mut Vec<u8>, seq: u64, event: &[u8]) -> Option<()> {
    let len = u32::try_from(event.len())
        .ok()
        .filter(|l| *l <= MAX_EVENT)?;
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&check(seq, len, event));
    out.extend_from_slice(event);
    Some(())
}

/// The next record of `r`: `Ok(None)` at its end, `Err` for a torn or corrupt one.
fn read_record(r: &mut impl Read) -> Result<Option<(u64, Vec<u8>)>, String> {
    let mut head = [0u8; HEAD];
    match read_full(r, &mut head) {
        Ok(0) => return Ok(None),
        Ok(n) if n < HEAD => return Err("a record's head is cut short".into()),
        Ok(_) => {}
        Err(e) => return Err(e.to_string()),
    }
    let seq = super::u64_of(&head[..8]);
    let len = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    if len > MAX_EVENT {
        return Err(format!("a record of {len} bytes"));
    }
    let mut event = vec![0u8; len as usize];
    match read_full(r, &mut event) {
        Ok(n) if n == event.len() => {}
        Ok(_) => return Err("a record's event is cut short".into()),
        Err(e) => return Err(e.to_string()),
    }
    if check(seq, len, &event) != head[12..16] {
        return Err(format!("event {seq} fails its check"));
    }
    Ok(Some((seq, event)))
}

/// Reads until `buf` is full or the input ends; how many bytes it read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match r.read(&mut buf[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

/// The files of `dir`, oldest first (none when it does not exist).
fn list_segments(dir: &Path) -> StoreResult<Vec<Segment>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(first) = name.strip_suffix(".log").and_then(|n| n.parse().ok()) else {
            continue;
        };
        out.push(Segment {
            first,
            len: entry.metadata()?.len(),
        });
    }
    out.sort_by_key(|s| s.first);
    Ok(out)
}

/// Reads the newest file whole: its last good event, after cutting off a torn end.
fn settle_last(dir: &Path, seg: &mut Segment) -> StoreResult<Option<u64>> {
    let path = segment_path(dir, seg.first);
    let file = OpenOptions::new().read(true).write(true).open(&path)?;
    let mut r = BufReader::new(&file);
    let (mut good, mut last) = (0u64, None);
    loop {
        match read_record(&mut r) {
            Ok(Some((seq, event))) => {
                good += (HEAD + event.len()) as u64;
                last = Some(seq);
            }
            Ok(None) => break,
            Err(detail) => {
                tracing::warn!(file = %path.display(), good, "archive: cutting off a torn end ({detail})");
                break;
            }
        }
    }
    if good < seg.len {
        file.set_len(good)?;
        file.sync_all()?;
        seg.len = good;
    }
    Ok(last)
}

/// The archive in `dir`, if it belongs to a database that has numbered events up to `fence`
/// (exclusive): one holding later events was left by a store deleted and made again, and is
/// put aside.
fn load(dir: &Path, fence: u64, floor: u64) -> StoreResult<State> {
    let mut state = settle(dir)?;
    state.floor = floor;
    state.last = state.last.max(floor.saturating_sub(1));
    if state.last < fence {
        return Ok(state);
    }
    let aside = dir.with_file_name(format!("archive-orphaned-{}", ulid::Ulid::new()));
    tracing::warn!(archive = %dir.display(), last = state.last, fence,
        "an archive with events this store never numbered: put aside as {}", aside.display());
    std::fs::rename(dir, &aside)?;
    Ok(State {
        floor,
        ..State::default()
    })
}

fn settle(dir: &Path) -> StoreResult<State> {
    let mut segments = list_segments(dir)?;
    while let Some(seg) = segments.last_mut() {
        if let Some(last) = settle_last(dir, seg)? {
            return Ok(State {
                segments,
                last,
                floor: 0,
            });
        }
        // Made by an append that did not finish: nothing in it was ever read.
        std::fs::remove_file(segment_path(dir, seg.first))?;
        segments.pop();
    }
    Ok(State::default())
}

/// The events `from..=to` of the files as they stand under the state it borrows, oldest first.
pub(super) struct Reader<'a> {
    dir: &'a Path,
    /// The files from the one that holds `from` on (none when the range is empty here).
    segments: &'a [Segment],
    next: usize,
    open: Option<(std::io::Take<BufReader<File>>, u64)>,
    from: u64,
    to: u64,
}

impl<'a> Reader<'a> {
    fn new(dir: &'a Path, state: &'a State, from: u64, to: u64) -> Self {
        let (from, to) = (from.max(state.floor), to.min(state.last));
        let segments = if from > to {
            &[]
        } else {
            let start = state.segments.iter().rposition(|s| s.first <= from);
            &state.segments[start.unwrap_or(0)..]
        };
        Self {
            dir,
            segments,
            next: 0,
            open: None,
            from,
            to,
        }
    }

    fn open_next(&mut self) -> StoreResult<bool> {
        let Some(seg) = self.segments.get(self.next).copied() else {
            return Ok(false);
        };
        self.next += 1;
        if seg.first > self.to {
            self.next = self.segments.len();
            return Ok(false);
        }
        let file = File::open(segment_path(self.dir, seg.first))?;
        self.open = Some((BufReader::new(file).take(seg.len), seg.first));
        Ok(true)
    }
}

impl Iterator for Reader<'_> {
    type Item = StoreResult<(u64, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some((r, first)) = self.open.as_mut() else {
                match self.open_next() {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(e) => return Some(Err(e)),
                }
            };
            match read_record(r) {
                Ok(Some((seq, _))) if seq < self.from => {}
                Ok(Some((seq, _))) if seq > self.to => {
                    self.next = self.segments.len();
                    self.open = None;
                }
                Ok(Some((seq, event))) => return Some(Ok((seq, IVec::from(event)))),
                Ok(None) => self.open = None,
                Err(detail) => {
                    let first = *first;
                    self.open = None;
                    self.next = self.segments.len();
                    return Some(Err(corrupt(format!("file {first}: {detail}"))));
                }
            }
        }
    }
}

/// The first event of a file, if it can be read.
fn first_event(dir: &Path, seg: Segment) -> StoreResult<Option<(u64, Vec<u8>)>> {
    let file = File::open(segment_path(dir, seg.first))?;
    read_record(&mut BufReader::new(file).take(seg.len)).map_err(corrupt)
}

impl Archive {
    pub(super) fn new(store: &Path) -> Self {
        Self {
            dir: store.join("archive"),
            state: RwLock::new(None),
            fence: AtomicU64::new(u64::MAX),
            floor: AtomicU64::new(0),
            upkeep: Mutex::new(()),
        }
    }

    /// Tells the archive the store's next sequence number and its floor, read as its database
    /// opened.
    pub(super) fn fence(&self, next_seq: u64, floor: u64) {
        self.fence.store(next_seq, Ordering::Release);
        self.floor.store(floor, Ordering::Release);
    }

    /// What the archive holds, loaded on first use. Held while a read goes through the archive
    /// and then sled, so that events cannot leave sled between the two.
    pub(super) fn read(&self) -> StoreResult<RwLockReadGuard<'_, Option<State>>> {
        loop {
            let g = self.state.read().map_err(|_| StoreError::Poisoned)?;
            if g.is_some() {
                return Ok(g);
            }
            drop(g);
            let mut w = self.state.write().map_err(|_| StoreError::Poisoned)?;
            if w.is_none() {
                let (fence, floor) = (&self.fence, &self.floor);
                let (fence, floor) = (fence.load(Ordering::Acquire), floor.load(Ordering::Acquire));
                *w = Some(load(&self.dir, fence, floor)?);
            }
        }
    }

    /// Holds `upkeep` (see there).
    pub(super) fn turn(&self) -> StoreResult<std::sync::MutexGuard<'_, ()>> {
        self.upkeep.lock().map_err(|_| StoreError::Poisoned)
    }

    /// The last event held here (0: none).
    pub(super) fn last(&self) -> StoreResult<u64> {
        Ok(self.read()?.as_ref().map_or(0, State::last))
    }

    /// The events `from..=to` held here, read as the files stand under `state`.
    pub(super) fn range<'a>(&'a self, state: &'a State, from: u64, to: u64) -> Reader<'a> {
        Reader::new(&self.dir, state, from, to)
    }

    /// Appends `records` (events `first..=last`, as `push_record` wrote them) and makes them
    /// durable; from then on they are read from here. Call with `upkeep` held.
    pub(super) fn append(&self, records: &[u8], first: u64, last: u64) -> StoreResult<()> {
        let current = self
            .read()?
            .as_ref()
            .and_then(|s| s.segments.last().copied());
        let (seg, fresh) = match current {
            Some(s) if s.len < FILE_BYTES => (s, false),
            _ => (Segment { first, len: 0 }, true),
        };
        if fresh {
            // Not `create_dir_all`: a store whose folder was deleted (its session with it)
            // must not get an archive back.
            match std::fs::create_dir(&self.dir) {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e.into()),
                _ => {}
            }
        }
        let path = segment_path(&self.dir, seg.first);
        let mut file = OpenOptions::new()
            .write(true)
            .create(fresh)
            .truncate(fresh)
            .open(&path)?;
        let written = file
            .seek(SeekFrom::Start(seg.len))
            .and_then(|_| file.write_all(records))
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Nothing past the old end is read: cut it off, or let the next load do it.
            let _ = file.set_len(seg.len);
            return Err(e.into());
        }
        if fresh {
            File::open(&self.dir).and_then(|d| d.sync_all())?;
        }
        let mut w = self.state.write().map_err(|_| StoreError::Poisoned)?;
        let state = w.get_or_insert_with(State::default);
        let len = seg.len + records.len() as u64;
        match state.segments.last_mut() {
            Some(s) if !fresh => s.len = len,
            _ => state.segments.push(Segment {
                first: seg.first,
                len,
            }),
        }
        state.last = last;
        Ok(())
    }

    /// Prunes the events older than `cutoff_ms`: the new floor is the first event at or after
    /// it. `keep` puts back into sled, durably, the events below it that `needed` lists and
    /// records the floor there; then the files wholly below it go. Answers how many sequence
    /// numbers the floor rose by. Call with `upkeep` held.
    pub(super) fn prune(
        &self,
        cutoff_ms: u64,
        needed: &BTreeSet<u64>,
        keep: impl FnOnce(u64, Vec<(u64, IVec)>) -> StoreResult<()>,
    ) -> StoreResult<u64> {
        let (segments, floor, last) = match self.read()?.as_ref() {
            Some(s) => (s.segments.clone(), s.floor, s.last),
            None => return Ok(0),
        };
        let Some(new_floor) = self.first_since(&segments, last, cutoff_ms)? else {
            return Ok(0);
        };
        if new_floor <= floor {
            return Ok(0);
        }
        let mut kept = Vec::new();
        {
            let held = self.read()?;
            if let Some(state) = held.as_ref() {
                for seq in needed.range(floor..new_floor) {
                    if let Some(e) = self.range(state, *seq, *seq).next() {
                        kept.push(e?);
                    }
                }
            }
        }
        keep(new_floor, kept)?;
        let mut gone = Vec::new();
        {
            let mut w = self.state.write().map_err(|_| StoreError::Poisoned)?;
            if let Some(state) = w.as_mut() {
                state.floor = new_floor;
                state.last = state.last.max(new_floor - 1);
                let ends: Vec<u64> = (state.segments.iter().skip(1).map(|s| s.first))
                    .chain([state.last + 1])
                    .collect();
                let below = |i: usize| ends.get(i).is_some_and(|end| *end <= new_floor);
                let mut i = 0;
                state.segments.retain(|s| {
                    let drop = below(i);
                    i += 1;
                    if drop {
                        gone.push(s.first);
                    }
                    !drop
                });
            }
        }
        for first in gone {
            std::fs::remove_file(segment_path(&self.dir, first))?;
        }
        Ok(new_floor - floor.max(1))
    }

    /// The first event held here made at or after `cutoff_ms`, or `last + 1` when all are
    /// older; `None` when there are no files.
    fn first_since(
        &self,
        segments: &[Segment],
        last: u64,
        cutoff_ms: u64,
    ) -> StoreResult<Option<u64>> {
        if segments.is_empty() {
            return Ok(None);
        }
        // The file that holds it: the first whose successor starts at or after the cutoff.
        let mut at = segments.len() - 1;
        for (i, pair) in segments.windows(2).enumerate() {
            let older =
                first_event(&self.dir, pair[1])?.is_some_and(|(_, e)| stamp_of(e) < cutoff_ms);
            if !older {
                at = i;
                break;
            }
        }
        let seg = segments[at];
        let file = File::open(segment_path(&self.dir, seg.first))?;
        let mut r = BufReader::new(file).take(seg.len);
        while let Some((seq, event)) = read_record(&mut r).map_err(corrupt)? {
            if stamp_of(event) >= cutoff_ms {
                return Ok(Some(seq));
            }
        }
        Ok(Some(segments.get(at + 1).map_or(last + 1, |s| s.first)))
    }
}

/// When a logged event was made (unix ms; `u64::MAX` when it cannot be read: never pruned).
pub(super) fn stamp_of(event: Vec<u8>) -> u64 {
    #[derive(serde::Deserialize)]
    struct Stamp {
        timestamp: u64,
    }
    super::decode_event(IVec::from(event))
        .ok()
        .and_then(|e| serde_json::from_slice::<Stamp>(&e.body).ok())
        .map_or(u64::MAX, |s| s.timestamp)
}
