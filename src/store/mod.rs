//! One sled database per session: its record, its groups, its event log, its delivery jobs.
//! Knows nothing of HTTP. Every change lands in ONE transaction, then one (shared) flush.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::Tree;

mod commit;
pub use commit::Committer;

/// Errors of the store; the API turns them into a logged 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("a lock was poisoned by a panic")]
    Poisoned,
}

impl From<StoreError> for crate::error::ApiError {
    fn from(e: StoreError) -> Self {
        crate::error::ApiError::internal(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An event ready to be logged: its name, the group it concerns (for per-group ordering of
/// deliveries), and the exact envelope bytes that will be signed and sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub name: String,
    pub group: Option<String>,
    pub body: String,
}

/// What one session's store gets for one change of one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupWrite {
    pub group_id: String,
    /// The group's version after the change: a write at or below the stored one is skipped.
    pub version: u64,
    /// The group's JSON to keep, or `None` when this session no longer holds the group.
    pub group: Option<String>,
    /// Invite codes to forget and to index.
    pub invite_del: Option<String>,
    pub invite_put: Option<String>,
    pub events: Vec<EventRecord>,
}

/// One change for `SessionStore::commit_many` (and the `Committer`).
#[derive(Debug, Clone)]
pub enum Work {
    /// One session's share of a group change, with the fan-out record of the others' shares.
    Group {
        write: GroupWrite,
        fanout: Option<(u64, Vec<u8>)>,
    },
    /// A new session record (serialised) and the events it caused.
    Record {
        bytes: Vec<u8>,
        events: Vec<EventRecord>,
    },
    /// Nothing to write: only make what was written before durable.
    Flush,
}

impl Work {
    pub fn record(record: &impl Serialize, events: Vec<EventRecord>) -> StoreResult<Self> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            tree: "meta",
            detail: e.to_string(),
        })?;
        Ok(Work::Record { bytes, events })
    }

    fn events(&self) -> &[EventRecord] {
        match self {
            Work::Group { write, .. } => &write.events,
            Work::Record { events, .. } => events,
            Work::Flush => &[],
        }
    }
}

/// The serialised delivery jobs of one event, by endpoint.
type EventJobs = Vec<([u8; 8], Vec<u8>)>;

/// A change with its delivery jobs, serialised by whoever builds it (an API task) so that the
/// committer's thread, where every store's writes queue, only reads and inserts.
#[derive(Debug, Clone)]
pub struct Commit {
    pub work: Work,
    /// Per event of `work`, the serialised job of each endpoint that takes it.
    jobs: Vec<EventJobs>,
}

impl Commit {
    pub fn new(work: Work, endpoints: &[EndpointFilter], now_ms: u64) -> StoreResult<Self> {
        let mut jobs = Vec::with_capacity(work.events().len());
        for e in work.events() {
            let mut per_ep = Vec::new();
            for ep in endpoints.iter().filter(|ep| ep.wants(&e.name)) {
                let job = DeliveryJob {
                    event: e.name.clone(),
                    group: e.group.clone(),
                    url: ep.url.clone(),
                    attempts: 0,
                    next_attempt_at: now_ms,
                    last_error: None,
                };
                let bytes = serde_json::to_vec(&job).map_err(|e| StoreError::Corrupt {
                    tree: "deliveries",
                    detail: e.to_string(),
                })?;
                per_ep.push((ep.id, bytes));
            }
            jobs.push(per_ep);
        }
        Ok(Self { work, jobs })
    }
}

/// A webhook endpoint as the store sees it: its key prefix and which events it takes.
#[derive(Debug, Clone)]
pub struct EndpointFilter {
    pub id: [u8; 8],
    pub url: String,
    /// `None` means every event (`*`).
    pub events: Option<Vec<String>>,
}

impl EndpointFilter {
    pub fn wants(&self, event: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == event))
    }
}

/// A pending (or dead) delivery of one event to one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub event: String,
    pub group: Option<String>,
    pub url: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Unix ms; 0 = now.
    pub next_attempt_at: u64,
    pub last_error: Option<String>,
}

/// The key of a delivery: endpoint id then event sequence number.
pub fn delivery_key(endpoint: [u8; 8], seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&endpoint);
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn split_delivery_key(k: &[u8]) -> Option<([u8; 8], u64)> {
    if k.len() != 16 {
        return None;
    }
    let mut ep = [0u8; 8];
    ep.copy_from_slice(&k[..8]);
    let mut s = [0u8; 8];
    s.copy_from_slice(&k[8..]);
    Some((ep, u64::from_be_bytes(s)))
}

/// The store of one session.
pub struct SessionStore {
    path: PathBuf,
    db: sled::Db,
    meta: Tree,
    groups: Tree,
    invites: Tree,
    events: Tree,
    deliveries: Tree,
    dead: Tree,
    fanout: Tree,
    versions: Tree,
    /// The `versions` tree's entries read or written so far: only the committer writes them, so
    /// a transaction checks a group's version here instead of reading it inside the transaction.
    version_cache: Mutex<HashMap<String, u64>>,
    /// Next event sequence number. A std Mutex held only around seq assignment and the
    /// in-memory transaction (never across a flush or an await), so that seq order is commit order.
    next_seq: Mutex<u64>,
    /// Counts dead deliveries put back to pending, so the dispatcher knows to look behind
    /// what it has already read (such a job keeps its old sequence number).
    requeues: AtomicU64,
}

const SESSION_KEY: &[u8] = b"session";

impl SessionStore {
    /// Opens (or creates) the store at `path`. Small cache and no flusher thread: we flush
    /// explicitly after each commit, and a thousand sessions must not cost a thousand threads.
    pub fn open(path: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(path)?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(1024 * 1024)
            .segment_size(64 * 1024)
            .flush_every_ms(None)
            .open()?;
        let events = db.open_tree("events")?;
        let next = match events.last()? {
            Some((k, _)) => seq_of(&k, "events")? + 1,
            None => 1,
        };
        Ok(Self {
            path: path.to_owned(),
            meta: db.open_tree("meta")?,
            groups: db.open_tree("groups")?,
            invites: db.open_tree("invites")?,
            deliveries: db.open_tree("deliveries")?,
            dead: db.open_tree("dead")?,
            fanout: db.open_tree("fanout")?,
            versions: db.open_tree("versions")?,
            version_cache: Mutex::new(HashMap::new()),
            events,
            db,
            next_seq: Mutex::new(next),
            requeues: AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes everything committed so far durable. Blocking: call from `spawn_blocking`.
    /// Concurrent callers share sled's fsync, which is what makes durable writes fast.
    pub fn flush(&self) -> StoreResult<()> {
        self.db.flush()?;
        Ok(())
    }

    pub fn load_record<T: for<'de> Deserialize<'de>>(&self) -> StoreResult<Option<T>> {
        match self.meta.get(SESSION_KEY)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    tree: "meta",
                    detail: e.to_string(),
                }),
        }
    }

    /// Commits a change of the session record together with the events it caused, as the
    /// committer would but on this thread and without a flush (for tests that seed a store).
    pub fn commit_record(
        &self,
        record: &impl Serialize,
        events: &[EventRecord],
        endpoints: &[EndpointFilter],
        now_ms: u64,
    ) -> StoreResult<Vec<u64>> {
        let item = Commit::new(Work::record(record, events.to_vec())?, endpoints, now_ms)?;
        Ok(self
            .commit_many(std::slice::from_ref(&item))?
            .pop()
            .unwrap_or_default())
    }

    /// Commits several changes in ONE transaction, in order; answers the sequence numbers of
    /// each one's events (empty for a skipped group write or a flush).
    pub fn commit_many(&self, items: &[Commit]) -> StoreResult<Vec<Vec<u64>>> {
        if items.iter().all(|i| matches!(i.work, Work::Flush)) {
            return Ok(vec![Vec::new(); items.len()]);
        }
        let mut versions = self
            .version_cache
            .lock()
            .map_err(|_| StoreError::Poisoned)?;
        for item in items {
            if let Work::Group { write, .. } = &item.work {
                if !versions.contains_key(&write.group_id) {
                    let stored = self
                        .versions
                        .get(write.group_id.as_bytes())?
                        .map(|v| u64_of(&v))
                        .unwrap_or(0);
                    versions.insert(write.group_id.clone(), stored);
                }
            }
        }
        let mut next = self.next_seq.lock().map_err(|_| StoreError::Poisoned)?;
        let first = *next;
        let trees = (
            &self.meta,
            &self.groups,
            &self.invites,
            &self.events,
            &self.deliveries,
            &self.fanout,
            &self.versions,
        );
        let res = trees.transaction(|(meta, groups, invites, ev, del, fan, ver)| {
            let mut seq = first;
            let mut out = Vec::with_capacity(items.len());
            // Versions written by earlier changes of this round (the closure may run again).
            let mut written: HashMap<&str, u64> = HashMap::new();
            for item in items {
                let jobs = &item.jobs;
                let events = match &item.work {
                    Work::Flush => {
                        out.push(Vec::new());
                        continue;
                    }
                    Work::Record { bytes, events } => {
                        meta.insert(SESSION_KEY, bytes.as_slice())?;
                        events
                    }
                    Work::Group { write: w, fanout } => {
                        let stored = written
                            .get(w.group_id.as_str())
                            .or_else(|| versions.get(&w.group_id))
                            .copied()
                            .unwrap_or(0);
                        if stored >= w.version {
                            out.push(Vec::new());
                            continue;
                        }
                        written.insert(&w.group_id, w.version);
                        ver.insert(w.group_id.as_bytes(), &w.version.to_be_bytes())?;
                        match &w.group {
                            Some(json) => groups.insert(w.group_id.as_bytes(), json.as_bytes())?,
                            None => groups.remove(w.group_id.as_bytes())?,
                        };
                        if let Some(code) = &w.invite_del {
                            invites.remove(code.as_bytes())?;
                        }
                        if let Some(code) = &w.invite_put {
                            invites.insert(code.as_bytes(), w.group_id.as_bytes())?;
                        }
                        if let Some((id, bytes)) = fanout {
                            fan.insert(&id.to_be_bytes(), bytes.as_slice())?;
                        }
                        &w.events
                    }
                };
                let mut seqs = Vec::with_capacity(events.len());
                for (e, per_ep) in events.iter().zip(jobs) {
                    ev.insert(&seq.to_be_bytes(), e.body.as_bytes())?;
                    for (ep, bytes) in per_ep {
                        del.insert(&delivery_key(*ep, seq), bytes.as_slice())?;
                    }
                    seqs.push(seq);
                    seq += 1;
                }
                out.push(seqs);
            }
            let written: Vec<(String, u64)> = written
                .into_iter()
                .map(|(g, v)| (g.to_owned(), v))
                .collect();
            Ok::<_, ConflictableTransactionError<()>>((out, seq, written))
        });
        match res {
            Ok((out, after, written)) => {
                *next = after;
                versions.extend(written);
                Ok(out)
            }
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => Err(StoreError::Poisoned),
        }
    }

    pub fn group(&self, id: &str) -> StoreResult<Option<sled::IVec>> {
        Ok(self.groups.get(id.as_bytes())?)
    }

    /// Every group this session holds, as stored JSON, in id order.
    pub fn groups(&self) -> impl Iterator<Item = StoreResult<(String, sled::IVec)>> + '_ {
        self.groups.iter().map(|r| {
            let (k, v) = r?;
            Ok((String::from_utf8_lossy(&k).into_owned(), v))
        })
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    pub fn invites(&self) -> impl Iterator<Item = StoreResult<(String, String)>> + '_ {
        self.invites.iter().map(|r| {
            let (k, v) = r?;
            Ok((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ))
        })
    }

    /// Events after `after` (exclusive), oldest first.
    pub fn events_after(&self, after: u64, limit: usize) -> StoreResult<Vec<(u64, sled::IVec)>> {
        let mut out = Vec::new();
        for r in self
            .events
            .range((after.saturating_add(1)).to_be_bytes()..)
            .take(limit)
        {
            let (k, v) = r?;
            out.push((seq_of(&k, "events")?, v));
        }
        Ok(out)
    }

    pub fn event(&self, seq: u64) -> StoreResult<Option<sled::IVec>> {
        Ok(self.events.get(seq.to_be_bytes())?)
    }

    pub fn last_seq(&self) -> u64 {
        self.next_seq.lock().map(|n| *n - 1).unwrap_or(0)
    }

    /// Removes events older than `cutoff_seq` (exclusive) that no pending or dead delivery needs.
    /// Pending is read twice, around dead, because a job may move between the two meanwhile.
    pub fn prune_events_before(&self, cutoff_seq: u64) -> StoreResult<usize> {
        let mut needed = std::collections::BTreeSet::new();
        for t in [&self.deliveries, &self.dead, &self.deliveries] {
            for r in t.iter().keys() {
                if let Some((_, s)) = split_delivery_key(&r?) {
                    needed.insert(s);
                }
            }
        }
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for r in self.events.range(..cutoff_seq.to_be_bytes()).keys() {
            let k = r?;
            let s = seq_of(&k, "events")?;
            if !needed.contains(&s) {
                batch.remove(k);
                n += 1;
            }
        }
        self.events.apply_batch(batch)?;
        Ok(n)
    }

    /// The sequence number of the first event logged at or after `cutoff_ms` (unix ms),
    /// or the next one to be written when all are older.
    pub fn first_event_since(&self, cutoff_ms: u64) -> StoreResult<u64> {
        #[derive(Deserialize)]
        struct Stamp {
            timestamp: u64,
        }
        for r in self.events.iter() {
            let (k, v) = r?;
            let seq = seq_of(&k, "events")?;
            let at = serde_json::from_slice::<Stamp>(&v)
                .map(|s| s.timestamp)
                .unwrap_or(u64::MAX);
            if at >= cutoff_ms {
                return Ok(seq);
            }
        }
        Ok(self.last_seq() + 1)
    }

    /// Pending jobs of one endpoint with a sequence number in `from..=to`, oldest first.
    pub fn pending_jobs(
        &self,
        endpoint: [u8; 8],
        from: u64,
        to: u64,
        limit: usize,
    ) -> StoreResult<Vec<(u64, DeliveryJob)>> {
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let range = delivery_key(endpoint, from)..=delivery_key(endpoint, to);
        for r in self.deliveries.range(range) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = r?;
            let Some((_, seq)) = split_delivery_key(&k) else {
                continue;
            };
            let job = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: "deliveries",
                detail: format!("job {seq}: {e}"),
            })?;
            out.push((seq, job));
        }
        Ok(out)
    }

    /// The endpoints that have pending jobs (one seek per endpoint, not a full scan).
    pub fn endpoints_with_jobs(&self) -> StoreResult<Vec<[u8; 8]>> {
        let mut out = Vec::new();
        let mut from = [0u8; 16];
        while let Some((k, _)) = self.deliveries.range(from..).next().transpose()? {
            let Some((ep, _)) = split_delivery_key(&k) else {
                break;
            };
            out.push(ep);
            let next = u64::from_be_bytes(ep).checked_add(1);
            match next {
                Some(n) => from = delivery_key(n.to_be_bytes(), 0),
                None => break,
            }
        }
        Ok(out)
    }

    /// Rewrites a pending job (after a failed attempt).
    pub fn save_job(&self, endpoint: [u8; 8], seq: u64, job: &DeliveryJob) -> StoreResult<()> {
        let bytes = serde_json::to_vec(job).map_err(|e| StoreError::Corrupt {
            tree: "deliveries",
            detail: e.to_string(),
        })?;
        self.deliveries.insert(delivery_key(endpoint, seq), bytes)?;
        Ok(())
    }

    /// Forgets a delivered job.
    pub fn remove_job(&self, endpoint: [u8; 8], seq: u64) -> StoreResult<()> {
        self.deliveries.remove(delivery_key(endpoint, seq))?;
        Ok(())
    }

    /// How many dead deliveries were put back to pending since the store was opened.
    pub fn requeues(&self) -> u64 {
        self.requeues.load(Ordering::SeqCst)
    }

    pub fn deliveries(&self) -> &Tree {
        &self.deliveries
    }
    pub fn dead(&self) -> &Tree {
        &self.dead
    }

    /// Pending fan-out records: (id, bytes).
    pub fn fanouts(&self) -> StoreResult<Vec<(u64, sled::IVec)>> {
        let mut out = Vec::new();
        for r in self.fanout.iter() {
            let (k, v) = r?;
            out.push((seq_of(&k, "fanout")?, v));
        }
        Ok(out)
    }

    pub fn remove_fanout(&self, id: u64) -> StoreResult<()> {
        self.fanout.remove(id.to_be_bytes())?;
        Ok(())
    }

    pub fn generate_id(&self) -> StoreResult<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Moves a delivery job from one tree to another (pending ↔ dead) atomically.
    pub fn move_job(&self, key: &[u8], job: &DeliveryJob, to_dead: bool) -> StoreResult<()> {
        let bytes = serde_json::to_vec(job).map_err(|e| StoreError::Corrupt {
            tree: "deliveries",
            detail: e.to_string(),
        })?;
        let (from, to) = if to_dead {
            (&self.deliveries, &self.dead)
        } else {
            (&self.dead, &self.deliveries)
        };
        (from, to)
            .transaction(|(f, t)| {
                f.remove(key)?;
                t.insert(key, bytes.as_slice())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => StoreError::Sled(e),
                TransactionError::Abort(()) => StoreError::Poisoned,
            })?;
        if !to_dead {
            self.requeues.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

fn u64_of(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if v.len() == 8 {
        b.copy_from_slice(v);
    }
    u64::from_be_bytes(b)
}

fn seq_of(k: &[u8], tree: &'static str) -> StoreResult<u64> {
    if k.len() != 8 {
        return Err(StoreError::Corrupt {
            tree,
            detail: format!("key of {} bytes", k.len()),
        });
    }
    Ok(u64_of(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(version: u64, subject: &str) -> Commit {
        let work = Work::Group {
            write: GroupWrite {
                group_id: "g1@g.us".into(),
                version,
                group: Some(format!(r#"{{"subject":"{subject}"}}"#)),
                invite_del: None,
                invite_put: None,
                events: vec![EventRecord {
                    name: "group.v2.update".into(),
                    group: Some("g1@g.us".into()),
                    body: format!(r#"{{"id":"evt_{version}"}}"#),
                }],
            },
            fanout: None,
        };
        let hook = EndpointFilter {
            id: [1; 8],
            url: "http://127.0.0.1:9/h".into(),
            events: None,
        };
        Commit::new(work, &[hook], 1).expect("commit")
    }

    fn subject(store: &SessionStore) -> String {
        let json = store.group("g1@g.us").expect("read").expect("stored");
        String::from_utf8_lossy(&json).into_owned()
    }

    #[test]
    fn a_write_at_or_below_the_stored_version_is_skipped_within_a_round_across_rounds_and_restarts()
    {
        let dir = tempfile::tempdir().expect("dir");
        let store = SessionStore::open(dir.path()).expect("open");
        let seqs = store
            .commit_many(&[write(2, "two"), write(1, "one"), write(3, "three")])
            .expect("round");
        assert_eq!(
            seqs,
            [vec![1], Vec::<u64>::new(), vec![2]],
            "the older change has no events"
        );
        assert!(subject(&store).contains("three"));
        assert_eq!(
            store.commit_many(&[write(3, "again")]).expect("round"),
            [Vec::<u64>::new()]
        );
        assert_eq!(
            store
                .pending_jobs([1; 8], 0, u64::MAX, 10)
                .expect("jobs")
                .len(),
            2,
            "jobs only for the applied changes"
        );
        drop(store);
        let store = SessionStore::open(dir.path()).expect("reopen");
        assert_eq!(
            store.commit_many(&[write(3, "stale")]).expect("round"),
            [Vec::<u64>::new()]
        );
        assert_eq!(
            store.commit_many(&[write(4, "four")]).expect("round"),
            [vec![3]]
        );
        assert!(subject(&store).contains("four"));
    }
}
