//! Groups in cluster mode (contract §7): every change of a group is an entry of the group's log
//! in JetStream (`crate::cluster::log`), and every node applies the log to its own member
//! sessions, in order, each share in one transaction of the member's store with its events and
//! delivery jobs, idempotent by version.
//!
//! A change on this node: the group's lock; `catch_up` (the entries other nodes appended are
//! applied here first, so the rule runs on the latest state); the rule; `append` with the last
//! sequence seen (a conflict: another node came first, so catch up and run the rule again);
//! the acting session's commit; this node's other members. Other nodes read the entry from
//! their durable consumer (`consume`). A node that crashes between the append and its own
//! commit applies the entry from its consumer when it returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::commit::Part;
use super::fanout::Fanout;
use super::model::{Group, PictureBytes};
use super::rules::Change;
use super::service::GroupService;
use crate::cluster::log::{group_of, LogError};
use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};
use crate::events::GroupChange;
use crate::ids::{ContactId, GroupId, InviteCode};
use crate::sessions::Session;
use crate::store::StoreError;

/// How many times a change runs its rule again after another node appended first.
pub(super) const CONFLICT_TRIES: u32 = 50;

/// A pause of 0 to `tries` ms (at most 20) before a change runs its rule again after a
/// conflict: random, so that the nodes racing for a group draw different turns.
pub(super) async fn back_off(tries: u32) {
    let ms = rand::random::<u64>() % u64::from(tries.min(20) + 1);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// One change of one group as the log carries it: enough for any node to make its own
/// members' shares and events.
#[derive(Serialize, Deserialize)]
pub(super) struct Entry {
    /// The node that appended it.
    node: String,
    /// The acting session (a picture's URL in an update is the one it serves).
    session: String,
    actor: ContactId,
    operation: String,
    changes: Vec<Change>,
    /// When it was made, unix ms: every member's events carry this time.
    now_ms: u64,
    before: Option<Group>,
    after: Option<Group>,
    /// The picture bytes a member new to the picture needs (a set picture, or a joiner's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    picture: Option<Picture64>,
}

#[derive(Serialize, Deserialize)]
struct Picture64(#[serde(with = "crate::store::base64_bytes")] PictureBytes);

impl Entry {
    fn change(&self) -> GroupChange<'_> {
        GroupChange {
            before: self.before.as_ref(),
            after: self.after.as_ref(),
            actor: &self.actor,
            operation: &self.operation,
            changes: &self.changes,
            now_s: self.now_ms / 1000,
            session: &self.session,
        }
    }
}

/// This node's place in the cluster's group logs.
pub(super) struct Logged {
    pub(super) cluster: Arc<Cluster>,
    /// Per group: the sequence of the last entry applied to every member here. Unknown after a
    /// start: the group's entries are then read from its first (applying one twice is a no-op).
    applied: Mutex<HashMap<GroupId, u64>>,
}

impl Logged {
    fn applied(&self, id: &GroupId) -> u64 {
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        applied.get(id).copied().unwrap_or(0)
    }

    fn set_applied(&self, id: &GroupId, seq: u64) {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let at = applied.entry(id.clone()).or_default();
        *at = (*at).max(seq);
    }
}

fn log_down(e: LogError) -> ApiError {
    tracing::warn!(error = %e, "cluster: the group log failed");
    ApiError::Unavailable(format!("{e}; retry later"))
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        tree: "group log",
        detail: e.to_string(),
    }
}

/// What an append came to.
pub(super) enum Appended {
    /// In the log: the sequence of each part's entry.
    Logged(Vec<(GroupId, u64)>),
    /// Another node appended to the group first: catch up and run the rule again.
    Conflict,
}

impl GroupService {
    /// Joins the cluster's group logs: changes are appended from now on, and this node's
    /// durable consumer applies every node's entries to its members.
    pub async fn attach_cluster(self: &Arc<Self>, cluster: Arc<Cluster>) -> Result<(), String> {
        let consumer = (cluster.log.consumer(cluster.node.as_str()).await)
            .map_err(|e| format!("WAGATE_NATS_URL: {e}"))?;
        let logged = Logged {
            cluster,
            applied: Mutex::default(),
        };
        if self.logged.set(logged).is_err() {
            return Err("the group service joined a cluster twice".to_owned());
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(consume(weak, consumer));
        Ok(())
    }

    /// Set in cluster mode.
    pub(super) fn logged(&self) -> Option<&Logged> {
        self.logged.get()
    }

    /// Applies here every entry of group `id` other nodes appended since the last one applied;
    /// call with the group's lock held. Without a cluster, nothing.
    pub(super) async fn catch_up(&self, id: &GroupId) -> ApiResult<()> {
        let Some(logged) = self.logged() else {
            return Ok(());
        };
        let log = &logged.cluster.log;
        let last = match log.last(id.as_str()).await.map_err(log_down)? {
            Some(read) => read.seq,
            None => return Ok(()),
        };
        let mut at = logged.applied(id);
        while at < last {
            let Some(read) = log.next(id.as_str(), at + 1).await.map_err(log_down)? else {
                break;
            };
            let entry: Entry = serde_json::from_slice(&read.payload).map_err(corrupt)?;
            self.apply_entry(&entry).await?;
            logged.set_applied(id, read.seq);
            at = read.seq;
        }
        Ok(())
    }

    /// Applies an entry to this node's members of the group, each share idempotent by version.
    async fn apply_entry(&self, entry: &Entry) -> Result<(), StoreError> {
        let change = entry.change();
        let members = self.members_here(None, change.before, change.after)?;
        let mut writes = Vec::new();
        for s in &members {
            let w = self.write_for(
                s,
                &change,
                entry.now_ms,
                entry.picture.as_ref().map(|p| &p.0),
            );
            writes.push((s.name.to_string(), w));
        }
        self.apply_fanout(&Fanout { writes }).await?;
        self.update_index(change.before, change.after, &members);
        if self
            .logged()
            .is_some_and(|l| l.cluster.node.as_str() == entry.node)
        {
            self.reindex_invite(change.before, change.after).await;
        }
        Ok(())
    }

    /// Keeps `wagate_invites` in step with a change made here; a failure is logged (the code
    /// then resolves only on the nodes that hold the group until its next change).
    pub(super) async fn reindex_invite(&self, before: Option<&Group>, after: Option<&Group>) {
        let Some(logged) = self.logged() else {
            return;
        };
        let Some(gid) = after.or(before).map(|g| g.id.to_string()) else {
            return;
        };
        let old = before.map(|g| g.invite.to_string());
        let new = after.map(|g| g.invite.to_string());
        if let Err(e) = (logged.cluster)
            .reindex_invite(&gid, old.as_deref(), new.as_deref())
            .await
        {
            tracing::warn!(group = %gid, error = %e, "cluster: cannot index the group's invite code");
        }
    }

    /// Appends each part of a change to its group's log, after the last entry this node
    /// applied; the first part's conflict is answered as `Conflict` (nothing was appended).
    pub(super) async fn append(
        &self,
        acting: &Arc<Session>,
        parts: &[Part<'_>],
        now_ms: u64,
    ) -> ApiResult<Appended> {
        let Some(logged) = self.logged() else {
            return Ok(Appended::Logged(Vec::new()));
        };
        let mut out = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let c = &part.change;
            let Some(gid) = c.after.or(c.before).map(|g| g.id.clone()) else {
                continue;
            };
            let entry = Entry {
                node: logged.cluster.node.to_string(),
                session: c.session.to_owned(),
                actor: c.actor.clone(),
                operation: c.operation.to_owned(),
                changes: c.changes.to_vec(),
                now_ms,
                before: c.before.cloned(),
                after: c.after.cloned(),
                picture: self.entry_picture(acting, part)?.map(Picture64),
            };
            let bytes = serde_json::to_vec(&entry).map_err(ApiError::internal)?;
            let expected = logged.applied(&gid);
            match logged
                .cluster
                .log
                .append(gid.as_str(), bytes, expected)
                .await
            {
                Ok(seq) => out.push((gid, seq)),
                Err(LogError::Conflict) if i == 0 => return Ok(Appended::Conflict),
                Err(e) => {
                    tracing::error!(group = %gid, error = %e, "cluster: a later part of a change could not be appended after its first");
                    return Err(log_down(e));
                }
            }
        }
        Ok(Appended::Logged(out))
    }

    /// The picture bytes other nodes' members may need: a new picture's, or the stored ones
    /// when someone joins a group that has a picture.
    fn entry_picture(
        &self,
        acting: &Arc<Session>,
        part: &Part<'_>,
    ) -> ApiResult<Option<PictureBytes>> {
        if let Some(b) = &part.fresh {
            return Ok(Some(b.clone()));
        }
        let (before, after) = (part.change.before, part.change.after);
        let Some(a) = after.filter(|a| a.picture.is_some()) else {
            return Ok(None);
        };
        let joins = a
            .participants
            .iter()
            .any(|m| !before.is_some_and(|b| b.is_member(&m.id)));
        if !joins {
            return Ok(None);
        }
        self.picture_bytes(acting, a)
    }

    /// After a logged change's own commit and its local members' shares: the entries count
    /// as applied here.
    pub(super) fn logged_applied(&self, logged: &[(GroupId, u64)]) {
        if let Some(l) = self.logged() {
            for (gid, seq) in logged {
                l.set_applied(gid, *seq);
            }
        }
    }

    /// The group invite code `code` leads to: from a session here that holds it, else (in
    /// cluster mode) from the log of the group `wagate_invites` names.
    pub async fn by_invite_anywhere(&self, code: &InviteCode) -> ApiResult<Group> {
        let local = self.by_invite(code);
        let (Err(_), Some(logged)) = (&local, self.logged()) else {
            return local;
        };
        let gid = (logged.cluster.invite(code.as_str()).await)
            .map_err(|e| log_down(LogError::Nats(e)))?;
        let Some(gid) = gid else {
            return local;
        };
        let Some(read) = logged.cluster.log.last(&gid).await.map_err(log_down)? else {
            return local;
        };
        let entry: Entry = serde_json::from_slice(&read.payload).map_err(corrupt)?;
        match entry.after {
            Some(g) if &g.invite == code => Ok(g),
            _ => local,
        }
    }
}

/// This node's consumer: every entry of every group, in log order, applied to the members
/// here (under the group's lock), then acknowledged. An entry that cannot be applied now (a
/// member's store failing) is tried again until it is: later entries wait behind it.
async fn consume(
    service: std::sync::Weak<GroupService>,
    consumer: async_nats::jetstream::consumer::PullConsumer,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cluster: cannot read the group log; trying again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        while let Some(next) = messages.next().await {
            let msg = match next {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: reading the group log failed; resuming");
                    break;
                }
            };
            let Some(this) = service.upgrade() else {
                return;
            };
            backoff = Duration::from_millis(100);
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
            let Some(gid) = group_of(msg.subject.as_str()).and_then(|g| GroupId::parse(&g).ok())
            else {
                let _ = msg.ack().await;
                continue;
            };
            while let Err(e) = this.apply_consumed(&gid, seq, &msg.payload).await {
                tracing::warn!(group = %gid, seq, error = %e, "cluster: an entry of the group log cannot be applied here yet; trying again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            if let Err(e) = msg.ack().await {
                tracing::debug!(group = %gid, seq, error = %e, "cluster: an acknowledgement was lost (the entry comes again and is skipped)");
            }
        }
    }
}

impl GroupService {
    /// One entry from the consumer: skipped when this node applied it already.
    async fn apply_consumed(
        &self,
        gid: &GroupId,
        seq: u64,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        let Some(logged) = self.logged() else {
            return Ok(());
        };
        let _guard = self.lock_queued(gid).await;
        let _accounts = self.registry().accounts.read().await;
        if seq != 0 && logged.applied(gid) >= seq {
            return Ok(());
        }
        let entry: Entry = serde_json::from_slice(payload).map_err(corrupt)?;
        self.apply_entry(&entry).await?;
        logged.set_applied(gid, seq);
        Ok(())
    }
}
