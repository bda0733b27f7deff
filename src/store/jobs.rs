//! The delivery log of a session: pending and dead delivery jobs, keyed by endpoint and event
//! sequence number. The dispatcher reads and rewrites pending jobs here; moves between pending
//! and dead go through the committer (`Work::Bury`, `Work::Requeue`).

use serde::{Deserialize, Serialize};

use super::trees::TreeId;
use super::{delivery_key, split_delivery_key, SessionStore, StoreError, StoreResult};

/// One endpoint's jobs in one state, counted (`SessionStore::job_tally`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTally {
    pub endpoint: [u8; 8],
    pub count: usize,
    pub oldest_seq: u64,
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
    /// The event's envelope, when it was read with the job (an event beyond the cursor): the
    /// attempt need not read it again. Never stored.
    #[serde(skip)]
    pub body: Option<sled::IVec>,
}

impl DeliveryJob {
    pub fn to_bytes(&self) -> StoreResult<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| StoreError::Corrupt {
            tree: "deliveries",
            detail: e.to_string(),
        })
    }

    fn from_bytes(seq: u64, bytes: &[u8]) -> StoreResult<Self> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            tree: "deliveries",
            detail: format!("job {seq}: {e}"),
        })
    }
}

/// Where a delivery job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Dead,
}

impl JobState {
    pub(super) fn tree(self) -> TreeId {
        match self {
            JobState::Pending => TreeId::Deliveries,
            JobState::Dead => TreeId::Dead,
        }
    }
}

impl SessionStore {
    /// Pending jobs of one endpoint with a sequence number in `from..=to`, oldest first; only
    /// jobs of durable events (a job is never seen before its change is on disk).
    pub fn pending_jobs(
        &self,
        endpoint: [u8; 8],
        from: u64,
        to: u64,
        limit: usize,
    ) -> StoreResult<Vec<(u64, DeliveryJob)>> {
        // Opened first: a store's counters are read when it opens.
        let t = self.trees()?;
        let to = to.min(self.durable_seq());
        if from > to {
            return Ok(Vec::new());
        }
        let range = delivery_key(endpoint, from).to_vec()..=delivery_key(endpoint, to).to_vec();
        let mut out = Vec::new();
        drop(t);
        for (k, v) in self.scan(TreeId::Deliveries, range, limit)? {
            if let Some((_, seq)) = split_delivery_key(&k) {
                out.push((seq, DeliveryJob::from_bytes(seq, &v)?));
            }
        }
        Ok(out)
    }

    /// The endpoints that have pending jobs (one seek per endpoint, not a full scan; from the
    /// summary while the store is closed).
    pub fn endpoints_with_jobs(&self) -> StoreResult<Vec<[u8; 8]>> {
        if let Some(s) = self.closed_summary() {
            return Ok(s
                .tallies(JobState::Pending)
                .iter()
                .map(|t| t.endpoint)
                .collect());
        }
        let mut out: Vec<[u8; 8]> = self.known_endpoints()?.iter().map(|k| k.id).collect();
        let mut from = [0u8; 16];
        loop {
            let next = self.scan(TreeId::Deliveries, from.to_vec().., 1)?;
            let Some((ep, _)) = next.first().and_then(|(k, _)| split_delivery_key(k)) else {
                break;
            };
            if !out.contains(&ep) {
                out.push(ep);
            }
            match u64::from_be_bytes(ep).checked_add(1) {
                Some(n) => from = delivery_key(n.to_be_bytes(), 0),
                None => break,
            }
        }
        Ok(out)
    }

    /// The delivery log: jobs in `state` of durable events, in key order, as (key, job). Pending
    /// ones are those with a record and the events beyond each endpoint's cursor that it takes.
    pub fn jobs(&self, state: JobState, limit: usize) -> StoreResult<Vec<([u8; 16], DeliveryJob)>> {
        let mut out = self.job_records(state, limit)?;
        if state == JobState::Pending {
            for known in self.known_endpoints()? {
                for (seq, job) in self.beyond_cursor(&known, limit)? {
                    out.push((delivery_key(known.id, seq), job));
                }
            }
            out.sort_by_key(|(key, _)| *key);
            out.dedup_by(|later, first| later.0 == first.0);
            out.truncate(limit);
        }
        Ok(out)
    }

    /// The jobs in `state` that have a record, in key order.
    fn job_records(
        &self,
        state: JobState,
        limit: usize,
    ) -> StoreResult<Vec<([u8; 16], DeliveryJob)>> {
        drop(self.trees()?); // opened first: a store's counters are read when it opens
        let durable = self.durable_seq();
        let mut out = Vec::new();
        for (k, v) in self.scan(state.tree(), .., usize::MAX)? {
            if out.len() >= limit {
                break;
            }
            let Some((_, seq)) = split_delivery_key(&k) else {
                continue;
            };
            if seq > durable {
                continue;
            }
            let mut key = [0u8; 16];
            key.copy_from_slice(&k);
            out.push((key, DeliveryJob::from_bytes(seq, &v)?));
        }
        Ok(out)
    }

    /// How many jobs are in `state`.
    pub fn job_count(&self, state: JobState) -> StoreResult<usize> {
        Ok(self.jobs(state, usize::MAX)?.len())
    }

    /// One job in `state`, by key.
    pub fn job(&self, state: JobState, key: &[u8; 16]) -> StoreResult<Option<DeliveryJob>> {
        let seq = split_delivery_key(key).map_or(0, |(_, s)| s);
        match self.get(state.tree(), key)? {
            Some(v) => Ok(Some(DeliveryJob::from_bytes(seq, &v)?)),
            None => Ok(None),
        }
    }

    /// Rewrites a pending job (after a failed attempt).
    pub fn save_job(&self, endpoint: [u8; 8], seq: u64, job: &DeliveryJob) -> StoreResult<()> {
        self.writable()?
            .tree(TreeId::Deliveries)
            .insert(delivery_key(endpoint, seq), job.to_bytes()?)?;
        Ok(())
    }

    /// Whether the endpoint has a pending job record for `seq`.
    pub fn has_pending_job(&self, endpoint: [u8; 8], seq: u64) -> StoreResult<bool> {
        Ok(self
            .get(TreeId::Deliveries, &delivery_key(endpoint, seq))?
            .is_some())
    }

    /// Forgets a delivered job.
    pub fn remove_job(&self, endpoint: [u8; 8], seq: u64) -> StoreResult<()> {
        self.writable()?
            .tree(TreeId::Deliveries)
            .remove(delivery_key(endpoint, seq))?;
        Ok(())
    }

    /// Per endpoint with jobs in `state`, in key order: how many, and the oldest's sequence
    /// number and URL. For the metrics: keys are counted as they are on disk, so during a failed
    /// round not yet taken back the figures may include that round's jobs.
    pub(super) fn job_tally_open(&self, state: JobState) -> StoreResult<Vec<JobTally>> {
        let t = self.trees()?;
        match state {
            JobState::Pending => pending_tally(&t, self.durable_seq()),
            JobState::Dead => tally(&t, state),
        }
    }

    /// How many dead deliveries were put back to pending (durably) since the store was opened.
    pub fn requeues(&self) -> u64 {
        self.requeues.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Per endpoint with pending jobs, in key order: how many (with a record, and beyond the cursor),
/// and the oldest's sequence number.
pub(super) fn pending_tally(t: &super::trees::Trees, durable: u64) -> StoreResult<Vec<JobTally>> {
    let mut out = tally(t, JobState::Pending)?;
    for beyond in super::cursor::beyond_tally(t, durable)? {
        match out.iter_mut().find(|t| t.endpoint == beyond.endpoint) {
            Some(t) => {
                t.count += beyond.count;
                t.oldest_seq = t.oldest_seq.min(beyond.oldest_seq);
            }
            None => out.push(beyond),
        }
    }
    out.sort_by_key(|t| t.endpoint);
    Ok(out)
}

/// Per endpoint with jobs in `state`, in key order: how many, and the oldest's sequence number.
pub(super) fn tally(t: &super::trees::Trees, state: JobState) -> StoreResult<Vec<JobTally>> {
    let mut out: Vec<JobTally> = Vec::new();
    for key in t.tree(state.tree()).iter().keys() {
        let Some((endpoint, seq)) = split_delivery_key(&key?) else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.endpoint == endpoint => last.count += 1,
            _ => out.push(JobTally {
                endpoint,
                count: 1,
                oldest_seq: seq,
            }),
        }
    }
    Ok(out)
}
