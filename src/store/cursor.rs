//! Where each webhook's deliveries stand, without a record per event. Per endpoint, in `meta`:
//! a cursor (every event up to it that the endpoint takes was delivered, or has a job record of
//! its own in `deliveries`) and the endpoint as the session's config last had it. A delivery that
//! succeeds at its first attempt writes nothing; the dispatcher moves the cursor in batches. Job
//! records exist only for events whose attempt failed, for dead letters put back, and for
//! stores written before cursors (read as before).
//!
//! An event is logged with its name and group ahead of the envelope, so that the dispatcher
//! knows whom it is for and which group it orders with without parsing the envelope.

use serde::{Deserialize, Serialize};
use sled::IVec;

use super::jobs::{DeliveryJob, JobTally};
use super::log::LogRange;
use super::trees::TreeId;
use super::trees::Trees;
use super::work::{EndpointFilter, EventRecord};
use super::{SessionStore, StoreError, StoreResult};

const CURSOR_PREFIX: &[u8] = b"cursor/";
const ENDPOINT_PREFIX: &[u8] = b"endpoint/";
/// The first byte of an event logged with its header (an envelope starts with `{`).
const HEADER: u8 = 1;

pub(super) fn cursor_key(ep: [u8; 8]) -> Vec<u8> {
    [CURSOR_PREFIX, &ep].concat()
}

pub(super) fn endpoint_key(ep: [u8; 8]) -> Vec<u8> {
    [ENDPOINT_PREFIX, &ep].concat()
}

/// A webhook endpoint as the store keeps it: where it posts and which events it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRecord {
    pub url: String,
    /// `None`: every event.
    pub events: Option<Vec<String>>,
    /// Set once the endpoint left the config: the last event that is for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

impl EndpointRecord {
    pub fn of(ep: &EndpointFilter) -> Self {
        Self {
            url: ep.url.clone(),
            events: ep.events.clone(),
            until: None,
        }
    }

    pub fn wants(&self, event: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == event))
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(super) fn from_bytes(v: &[u8]) -> StoreResult<Self> {
        serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
            tree: "meta",
            detail: format!("endpoint record: {e}"),
        })
    }
}

/// An event as logged: its name, the group it orders with, the exact envelope bytes.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub name: String,
    pub group: Option<String>,
    pub body: IVec,
}

/// The bytes an event is logged as: a header (name, group) and the envelope.
pub(super) fn encode_event(e: &EventRecord) -> Vec<u8> {
    let group = e.group.as_deref().unwrap_or("");
    let mut out = Vec::with_capacity(5 + e.name.len() + group.len() + e.body.len());
    out.push(HEADER);
    for part in [e.name.as_str(), group] {
        let len = u16::try_from(part.len()).unwrap_or(0);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&part.as_bytes()[..usize::from(len)]);
    }
    out.extend_from_slice(e.body.as_bytes());
    out
}

/// Reads a logged event; one logged before headers is its envelope alone (its name is read
/// from it, and it orders with its session's events).
pub fn decode_event(v: IVec) -> StoreResult<LoggedEvent> {
    let corrupt = || StoreError::Corrupt {
        tree: "events",
        detail: "an event's header is cut short".into(),
    };
    if v.first() != Some(&HEADER) {
        #[derive(Deserialize)]
        struct Named {
            event: String,
        }
        let name = serde_json::from_slice::<Named>(&v).map_or_else(|_| String::new(), |n| n.event);
        return Ok(LoggedEvent {
            name,
            group: None,
            body: v,
        });
    }
    let mut at = 1;
    let mut parts = [String::new(), String::new()];
    for part in &mut parts {
        let len = v.get(at..at + 2).ok_or_else(corrupt)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let text = v.get(at + 2..at + 2 + len).ok_or_else(corrupt)?;
        *part = String::from_utf8_lossy(text).into_owned();
        at += 2 + len;
    }
    let [name, group] = parts;
    let body = v.subslice(at, v.len() - at);
    Ok(LoggedEvent {
        name,
        group: (!group.is_empty()).then_some(group),
        body,
    })
}

/// One endpoint the store knows: its record and its cursor.
#[derive(Debug, Clone)]
pub struct KnownEndpoint {
    pub id: [u8; 8],
    pub record: EndpointRecord,
    pub cursor: u64,
}

impl SessionStore {
    /// Every endpoint with a cursor, in id order.
    pub fn known_endpoints(&self) -> StoreResult<Vec<KnownEndpoint>> {
        known_endpoints(&*self.trees()?)
    }

    /// The endpoint's record and cursor, if it has them.
    pub fn known_endpoint(&self, id: [u8; 8]) -> StoreResult<Option<KnownEndpoint>> {
        let Some(v) = self.get(TreeId::Meta, &endpoint_key(id))? else {
            return Ok(None);
        };
        let Some(cursor) = self.cursor(id)? else {
            return Ok(None);
        };
        Ok(Some(KnownEndpoint {
            id,
            record: EndpointRecord::from_bytes(&v)?,
            cursor,
        }))
    }

    fn cursor(&self, id: [u8; 8]) -> StoreResult<Option<u64>> {
        Ok(self
            .get(TreeId::Meta, &cursor_key(id))?
            .map(|v| super::u64_of(&v)))
    }

    /// Moves an endpoint's cursor (not flushed: the next round's flush covers it; a crash
    /// before that only means events are sent again).
    pub fn set_cursor(&self, id: [u8; 8], seq: u64) -> StoreResult<()> {
        self.writable()?
            .tree(TreeId::Meta)
            .insert(cursor_key(id), &seq.to_be_bytes())?;
        Ok(())
    }

    /// Forgets an endpoint that left the config once everything for it is dead-lettered, unless
    /// its record changed meanwhile (it came back).
    pub fn forget_endpoint(&self, id: [u8; 8], seen: &EndpointRecord) -> StoreResult<()> {
        let t = self.writable()?;
        let meta = t.tree(TreeId::Meta);
        let swapped =
            meta.compare_and_swap(endpoint_key(id), Some(seen.to_bytes()), None::<&[u8]>)?;
        if swapped.is_ok() {
            meta.remove(cursor_key(id))?;
        }
        Ok(())
    }

    /// Durable events in `from..=to` (and up to `limit`), with their headers read.
    pub fn logged_events(
        &self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> StoreResult<Vec<(u64, LoggedEvent)>> {
        let to = to.min(self.durable_seq());
        if from > to {
            return Ok(Vec::new());
        }
        // A failed round not yet undone wrote only entries past `durable`: the live tree is
        // read, not its before-images.
        let t = self.trees()?;
        let mut out = Vec::new();
        self.read_log(&t, from, to, |events| {
            for r in events.take(limit) {
                let (seq, v) = r?;
                out.push((seq, decode_event(v)?));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The deliveries an endpoint has pending beyond its cursor (no record of their own), in
    /// order, at most `limit`, as jobs.
    pub(super) fn beyond_cursor(
        &self,
        known: &KnownEndpoint,
        limit: usize,
    ) -> StoreResult<Vec<(u64, DeliveryJob)>> {
        let to = known.record.until.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut from = known.cursor.saturating_add(1);
        while out.len() < limit {
            let chunk = self.logged_events(from, to, 1024)?;
            let Some((last, _)) = chunk.last() else {
                break;
            };
            from = last.saturating_add(1);
            for (seq, e) in chunk {
                if known.record.wants(&e.name) && out.len() < limit {
                    out.push((seq, fresh_job(&known.record, e)));
                }
            }
        }
        Ok(out)
    }
}

/// Every endpoint with a cursor, in id order, as the database holds them.
pub(super) fn known_endpoints(t: &Trees) -> StoreResult<Vec<KnownEndpoint>> {
    let meta = t.tree(TreeId::Meta);
    let mut out = Vec::new();
    for r in meta.scan_prefix(ENDPOINT_PREFIX) {
        let (k, v) = r?;
        let Ok(id) = <[u8; 8]>::try_from(&k[ENDPOINT_PREFIX.len()..]) else {
            continue;
        };
        let Some(cursor) = meta.get(cursor_key(id))? else {
            continue;
        };
        out.push(KnownEndpoint {
            id,
            record: EndpointRecord::from_bytes(&v)?,
            cursor: super::u64_of(&cursor),
        });
    }
    Ok(out)
}

/// Per endpoint with durable events beyond its cursor that it takes: how many, and the first.
pub(super) fn beyond_tally(t: &Trees, durable: u64) -> StoreResult<Vec<JobTally>> {
    let mut out = Vec::new();
    for known in known_endpoints(t)? {
        let last = known.record.until.unwrap_or(u64::MAX).min(durable);
        let from = known.cursor.saturating_add(1);
        if from > last {
            continue;
        }
        let mut tally = JobTally {
            endpoint: known.id,
            count: 0,
            oldest_seq: 0,
        };
        let records = t.tree(TreeId::Deliveries);
        // Only events every endpoint has taken leave sled for the archive: these are in sled.
        for r in LogRange::new(t.tree(TreeId::Events), from, last) {
            let (seq, v) = r?;
            // One that failed has a record, counted with the records.
            if known.record.wants(&decode_event(v)?.name)
                && !records.contains_key(super::delivery_key(known.id, seq))?
            {
                if tally.count == 0 {
                    tally.oldest_seq = seq;
                }
                tally.count += 1;
            }
        }
        if tally.count > 0 {
            out.push(tally);
        }
    }
    Ok(out)
}

/// The job of an event beyond an endpoint's cursor: not yet tried.
pub fn fresh_job(record: &EndpointRecord, e: LoggedEvent) -> DeliveryJob {
    DeliveryJob {
        event: e.name,
        group: e.group,
        url: record.url.clone(),
        attempts: 0,
        next_attempt_at: 0,
        last_error: None,
        body: Some(e.body),
    }
}
