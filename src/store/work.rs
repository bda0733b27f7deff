//! What a change writes: the units of work the committer takes, with their delivery jobs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::jobs::DeliveryJob;
use super::{StoreError, StoreResult};

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
    /// The group's picture bytes in this session's `pictures` tree; `None` leaves them as they
    /// are. Missing from fan-out records written before pictures left the group record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<PictureWrite>,
}

/// What a change does to the picture bytes a session keeps for the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PictureWrite {
    /// Keep these bytes: a new picture, or one the session did not hold yet.
    Set(#[serde(with = "base64_bytes")] Arc<[u8]>),
    /// The session keeps no bytes for the group any more.
    Delete,
}

/// Bytes as one base64 string in a fan-out record's JSON, not serde's array of numbers (about
/// 3.6 characters a byte).
pub(crate) mod base64_bytes {
    use std::sync::Arc;

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Arc<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[u8]>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Arc::from)
            .map_err(D::Error::custom)
    }
}

/// One change for the committer.
#[derive(Debug, Clone)]
pub enum Work {
    /// One session's share of a group change, with the fan-out record of the others' shares.
    Group {
        write: GroupWrite,
        fanout: Option<(u64, Vec<u8>)>,
    },
    /// One session's shares of a change that touches several groups (a community and the groups
    /// it links): every write in the same transaction, each skipped on its own when it is not
    /// newer than the stored version (with its events), with the fan-out record of the others.
    Groups {
        writes: Vec<GroupWrite>,
        fanout: Option<(u64, Vec<u8>)>,
    },
    /// A new session record (serialised) and the events it caused; `gone`: the webhook
    /// endpoints its config no longer has (see `EndpointRecord::until`).
    Record {
        bytes: Vec<u8>,
        events: Vec<EventRecord>,
        gone: Vec<[u8; 8]>,
    },
    /// A dead delivery back to pending with `job` (skipped when it is not dead any more).
    Requeue { key: [u8; 16], job: Vec<u8> },
    /// A pending delivery to the dead letters, as `job`.
    Bury { key: [u8; 16], job: Vec<u8> },
    /// Nothing to write but the commit's `remember` (an answer to a request that changed
    /// nothing), or only making what was written before durable.
    Flush,
}

impl Work {
    pub fn record(record: &impl Serialize, events: Vec<EventRecord>) -> StoreResult<Self> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            tree: "meta",
            detail: e.to_string(),
        })?;
        Ok(Work::Record {
            bytes,
            events,
            gone: Vec::new(),
        })
    }

    /// The same session record, recording that these endpoints left its config.
    pub fn dropping(mut self, dropped: Vec<[u8; 8]>) -> Self {
        if let Work::Record { gone, .. } = &mut self {
            *gone = dropped;
        }
        self
    }

    /// A dead delivery to send again, with `job` as it should be pending.
    pub fn requeue(key: [u8; 16], job: &DeliveryJob) -> StoreResult<Self> {
        Ok(Work::Requeue {
            key,
            job: job.to_bytes()?,
        })
    }

    /// A pending delivery to dead-letter, with `job` as it should be kept.
    pub fn bury(key: [u8; 16], job: &DeliveryJob) -> StoreResult<Self> {
        Ok(Work::Bury {
            key,
            job: job.to_bytes()?,
        })
    }

    /// The events of the change, in the order they are logged.
    pub(super) fn events(&self) -> Vec<&EventRecord> {
        match self {
            Work::Group { write, .. } => write.events.iter().collect(),
            Work::Groups { writes, .. } => writes.iter().flat_map(|w| &w.events).collect(),
            Work::Record { events, .. } => events.iter().collect(),
            Work::Requeue { .. } | Work::Bury { .. } | Work::Flush => Vec::new(),
        }
    }
}

/// A change for the committer, built by whoever makes it (an API task).
#[derive(Debug, Clone)]
pub struct Commit {
    pub work: Work,
    /// The session's webhook endpoints when the change was made: one without a cursor gets one
    /// just before the change's events (it takes them and every later one); a session record
    /// (`Work::Record`) also writes their settings.
    pub(super) endpoints: Vec<EndpointFilter>,
    /// The answer to keep with the change (an idempotent request's), in the same transaction.
    pub(super) remember: Option<Remember>,
    /// For a `Work::Group` decided against the group as an earlier change still in the queue
    /// leaves it (a pipelined change): the version the store must hold when this one is written.
    /// Any other, and the change is not written (`Applied::stale`): one it was built on failed.
    pub(super) base: Option<u64>,
}

/// An answer kept under an idempotency key: the caller's key (scoped as it likes) and record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remember {
    pub key: Vec<u8>,
    pub record: Vec<u8>,
}

impl Commit {
    pub fn new(work: Work, endpoints: &[EndpointFilter]) -> Self {
        Self {
            work,
            endpoints: endpoints.to_vec(),
            remember: None,
            base: None,
        }
    }

    /// The same change, keeping `remember` with it (in its transaction) when there is one.
    pub fn remembering(mut self, remember: Option<Remember>) -> Self {
        self.remember = remember;
        self
    }

    /// The same change, written only onto version `base` of its group (see `Commit::base`).
    pub fn based_on(mut self, base: Option<u64>) -> Self {
        self.base = base;
        self
    }
}

/// What one committed change did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The sequence numbers of its events.
    pub seqs: Vec<u64>,
    /// Nothing was written: a group write at or below the stored version, or a requeue of a
    /// delivery that is not dead any more.
    pub skipped: bool,
    /// Not written either, because the store did not hold the version the change was built on
    /// (`Commit::base`): an earlier change of the group, queued before it, failed.
    pub stale: bool,
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
