//! The per-group log (contract §7): stream `WAGATE_GROUPS`, one subject per group
//! (`wagate.group.<id>`). A change is appended with `Nats-Expected-Last-Subject-Sequence`, so
//! two nodes changing one group at once are ordered by JetStream: the one that read an older
//! last sequence gets a conflict, catches up and runs its rule again. Every node reads the
//! stream through its own durable consumer and applies each entry to its member sessions.
//!
//! This module is the NATS side only: bytes in, bytes out. What an entry means is the group
//! service's (`crate::groups::logged`).

use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, consumer, stream};
use serde::Deserialize;
use serde_json::json;

/// The stream of every group's changes.
pub const STREAM: &str = "WAGATE_GROUPS";
const SUBJECTS: &str = "wagate.group.*";
/// How long an append or a read waits for the NATS system to answer again (a server restarts,
/// a NATS cluster elects a new leader) before the change is answered 503.
const PATIENCE: Duration = Duration::from_secs(15);
const RETRY_EVERY: Duration = Duration::from_millis(250);
/// How long an entry handed to a node's consumer waits for its acknowledgement before it is
/// handed out again (after the node's crash, or an apply that takes longer: a second copy is
/// skipped, as applied).
const ACK_WAIT: Duration = Duration::from_secs(5);

/// A log operation that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Another node appended to the group since the sequence we expected.
    #[error("another change of the group was appended first")]
    Conflict,
    #[error("the cluster's NATS system did not answer ({0})")]
    Nats(String),
}

fn nats(what: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Nats(format!("{what}: {e}"))
}

/// One entry read back: its sequence in the stream and its bytes.
pub struct Read {
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// The stream, and the JetStream context to append with.
pub struct GroupLog {
    js: jetstream::Context,
    stream: stream::Stream,
}

/// The subject of group `id` (`<digits>@g.us`): its digits, as a subject's tokens hold no dot.
pub fn subject(group: &str) -> String {
    let digits = group.strip_suffix("@g.us").unwrap_or(group);
    format!("wagate.group.{digits}")
}

/// The group id of a subject of the stream.
pub fn group_of(subject: &str) -> Option<String> {
    let digits = subject.strip_prefix("wagate.group.")?;
    Some(format!("{digits}@g.us"))
}

/// The answer of `STREAM.MSG.GET`: a message, or an error (10037: none).
#[derive(Deserialize)]
struct MsgGet {
    message: Option<stream::RawMessage>,
    error: Option<ApiErr>,
}

#[derive(Deserialize)]
struct ApiErr {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

const NO_MESSAGE_FOUND: u64 = 10037;

impl GroupLog {
    /// Opens the stream, creating it the first time: file storage (a NATS restart loses
    /// nothing acknowledged), `replicas` copies (3 on a three-server NATS cluster).
    pub async fn open(js: jetstream::Context, replicas: usize) -> Result<Self, String> {
        let config = stream::Config {
            name: STREAM.to_owned(),
            subjects: vec![SUBJECTS.to_owned()],
            storage: stream::StorageType::File,
            num_replicas: replicas.max(1),
            ..Default::default()
        };
        let stream = js.get_or_create_stream(config).await.map_err(|e| {
            format!("WAGATE_NATS_URL: cannot open the stream {STREAM} (is JetStream enabled, nats-server -js?): {e}")
        })?;
        Ok(Self { js, stream })
    }

    /// Appends `payload` to group `group`'s subject if its last sequence is still `expected`
    /// (0: the group has no entry yet). Answers the entry's sequence once JetStream has it.
    /// A NATS server that goes away (a restart, a cluster electing a new leader) is waited for
    /// up to `PATIENCE`: the append is sent again with the same message id, which JetStream
    /// recognises, so an append whose answer was lost is not appended twice.
    pub async fn append(
        &self,
        group: &str,
        payload: Vec<u8>,
        expected: u64,
    ) -> Result<u64, LogError> {
        let id = format!("{:032x}", rand::random::<u128>());
        let sent = patiently(
            "append",
            |e: &PublishError| e.kind() != PublishErrorKind::WrongLastSequence,
            || async {
                let publish = jetstream::context::Publish::build()
                    .payload(payload.clone().into())
                    .message_id(&id)
                    .expected_last_subject_sequence(expected);
                self.js.send_publish(subject(group), publish).await?.await
            },
        )
        .await;
        match sent {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(LogError::Conflict),
            Err(e) => Err(nats("append", e)),
        }
    }

    /// The first entry of group `group` at or after sequence `from`, read from the stream's
    /// leader (never a lagging replica).
    pub async fn next(&self, group: &str, from: u64) -> Result<Option<Read>, LogError> {
        self.get(json!({"seq": from.max(1), "next_by_subj": subject(group)}))
            .await
    }

    /// The last entry of group `group`, from the stream's leader.
    pub async fn last(&self, group: &str) -> Result<Option<Read>, LogError> {
        self.get(json!({"last_by_subj": subject(group)})).await
    }

    /// One read of `STREAM.MSG.GET`, tried again while the NATS system does not answer, up to
    /// `PATIENCE`.
    async fn get(&self, request: serde_json::Value) -> Result<Option<Read>, LogError> {
        let unanswered = |e: &LogError| matches!(e, LogError::Nats(_));
        patiently("log read", unanswered, || self.get_once(&request)).await
    }

    async fn get_once(&self, request: &serde_json::Value) -> Result<Option<Read>, LogError> {
        let got: MsgGet = self
            .js
            .request(format!("STREAM.MSG.GET.{STREAM}"), request)
            .await
            .map_err(|e| nats("read", e))?;
        if let Some(e) = got.error {
            return match e.err_code {
                NO_MESSAGE_FOUND => Ok(None),
                _ => Err(LogError::Nats(format!("read: {}", e.description))),
            };
        }
        let Some(raw) = got.message else {
            return Ok(None);
        };
        let msg = async_nats::jetstream::message::StreamMessage::try_from(raw)
            .map_err(|e| nats("read", e))?;
        Ok(Some(Read {
            seq: msg.sequence,
            payload: msg.payload.to_vec(),
        }))
    }

    /// This node's durable consumer of the whole stream: it resumes after the last entry the
    /// node acknowledged, so a node that was down reads what it missed, in order.
    pub async fn consumer(&self, node: &str) -> Result<consumer::PullConsumer, LogError> {
        let name = format!("wagate_node_{}", durable_name(node));
        let config = consumer::pull::Config {
            durable_name: Some(name.clone()),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            // One entry at a time, so that they are applied in order even after a crash; the one
            // a killed node had in hand comes again after `ack_wait`, which is what its return
            // waits for before it reads on.
            ack_wait: ACK_WAIT,
            max_ack_pending: 1,
            ..Default::default()
        };
        self.stream
            .get_or_create_consumer(&name, config)
            .await
            .map_err(|e| nats("consumer", e))
    }
}

/// Runs `op` again every `RETRY_EVERY` while it fails with an error `retry` accepts (the NATS
/// system does not answer: a server restarting, a NATS cluster electing a leader), for up to
/// `PATIENCE`; then answers its last error. Every wait of cluster mode for NATS goes through here.
pub(crate) async fn patiently<T, E, F, Fut>(
    what: &str,
    retry: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match op().await {
            Err(e) if retry(&e) && tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "cluster: a NATS {what} is tried again");
                tokio::time::sleep(RETRY_EVERY).await;
            }
            done => return done,
        }
    }
}

/// A node id as a consumer name: letters, digits, `-` and `_` kept, anything else `_`.
fn durable_name(node: &str) -> String {
    node.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '_',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_names_its_group_and_a_node_id_makes_a_valid_consumer_name() {
        let id = "120363000000000042@g.us";
        assert_eq!(subject(id), "wagate.group.120363000000000042");
        assert_eq!(group_of(&subject(id)).as_deref(), Some(id));
        assert_eq!(group_of("other.subject"), None);
        assert_eq!(durable_name("node-1.example"), "node-1_example");
    }
}
