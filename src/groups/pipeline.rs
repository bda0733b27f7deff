//! Pipelined changes to one group: the group's lock is held only until a change is queued to
//! the committer, so that consecutive changes to one group share the committer's rounds.
//!
//! Held across the commit, the lock let one group change once per round (an fsync each); here
//! the group as the last queued change leaves it is kept in memory, the next change is decided
//! against it, and each change is answered once its own round is durable. A change is queued
//! with the version it was built on (`Commit::based_on`): when an earlier change fails, the store
//! still holds the version before it, so every change queued on top of it is refused in the
//! committer's transaction (nothing written, no event) and fails too, in order; the kept state
//! is forgotten, so that the next change starts again from the store's last durable version.
//!
//! Only what needs no other session is pipelined: a subject, description or settings change
//! (nobody joins or leaves, the invite code stays) of a group that no other local session holds
//! and that is not in a community. Everything else takes the group's lock the usual way
//! (`lock_group`), which first waits until no pipelined change of the group is in flight, and
//! holds it across the commit and the fan-out as before: a member session's share of a change
//! is never applied before an earlier change's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::model::Group;
use super::picture;
use super::rules::{self, Actor, Op};
use super::service::GroupService;
use crate::error::{ApiError, ApiResult};
use crate::events::GroupChange;
use crate::ids::GroupId;
use crate::reply::{Render, Reply};
use crate::sessions::{now_ms, Session};
use crate::store::Work;

/// The groups with pipelined changes in flight.
#[derive(Default)]
pub(super) struct Pipeline {
    /// A std Mutex: held for a lookup or an update, never across an await.
    groups: Mutex<HashMap<GroupId, Pipe>>,
    /// Bumped whenever a pipelined change settles, for those waiting for a group to drain.
    settled: Settled,
}

/// A `watch` channel that needs no receiver to be updated.
struct Settled(watch::Sender<u64>);

impl Default for Settled {
    fn default() -> Self {
        Self(watch::channel(0).0)
    }
}

/// One group's changes in flight.
struct Pipe {
    /// The group as the last queued change leaves it; `None` after a failure (the store's copy,
    /// the last durable one, is where the next change starts).
    latest: Option<Group>,
    inflight: usize,
    /// Bumped when a change fails: the changes queued before that were built on it.
    generation: u64,
}

/// A queued change's place in its group's pipeline.
pub(super) struct Ticket {
    id: GroupId,
    generation: u64,
}

impl Pipeline {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, Pipe>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The group as the last change queued for it leaves it, while any is in flight.
    pub(super) fn latest(&self, id: &GroupId) -> Option<Group> {
        self.lock().get(id).and_then(|p| p.latest.clone())
    }

    /// Records a change queued with the group's lock held: `after` is where the next one starts.
    pub(super) fn queued(&self, id: &GroupId, after: Group) -> Ticket {
        let mut groups = self.lock();
        let pipe = groups.entry(id.clone()).or_insert(Pipe {
            latest: None,
            inflight: 0,
            generation: 0,
        });
        pipe.latest = Some(after);
        pipe.inflight += 1;
        Ticket {
            id: id.clone(),
            generation: pipe.generation,
        }
    }

    /// A queued change was answered: durable, or failed. The first failure of a generation
    /// forgets the kept state; the changes queued on it fail in the committer on their own.
    pub(super) fn settle(&self, ticket: Ticket, durable: bool) {
        let mut groups = self.lock();
        if let Some(pipe) = groups.get_mut(&ticket.id) {
            if !durable && pipe.generation == ticket.generation {
                pipe.generation += 1;
                pipe.latest = None;
            }
            pipe.inflight = pipe.inflight.saturating_sub(1);
            if pipe.inflight == 0 {
                groups.remove(&ticket.id);
            }
        }
        drop(groups);
        self.settled.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits until no pipelined change of `id` is in flight (call with the group's lock held,
    /// so that none is queued meanwhile).
    pub(super) async fn drain(&self, id: &GroupId) {
        let mut settled = self.settled.0.subscribe();
        while self.lock().contains_key(id) {
            if settled.changed().await.is_err() {
                return;
            }
        }
    }
}

/// What `pipelined` did with a change.
pub(super) enum Tried {
    Answered(ApiResult<Reply>),
    /// Not one to pipeline: the usual write path takes it, as it came.
    Declined(Op, Render<rules::Outcome>),
}

/// Whether `op` may be pipelined: it changes neither who is in the group nor its invite code.
pub(super) fn pipelines(op: &Op) -> bool {
    matches!(
        op,
        Op::SetSubject(_) | Op::SetDescription(_) | Op::SetSetting(..)
    )
}

impl GroupService {
    /// Makes `op` (one `pipelines` takes) by `session` on group `id` as a pipelined change
    /// when the group allows it (see the module's comment); declines it otherwise.
    pub(super) async fn pipelined(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &GroupId,
        op: Op,
        render: Render<rules::Outcome>,
    ) -> Tried {
        let guard = self.lock_queued(id).await;
        let _accounts = self.registry.accounts.read().await;
        let before = match self.pipeline_start(session, id) {
            Ok(Some(before)) => before,
            Ok(None) => return Tried::Declined(op, render),
            Err(e) => return Tried::Answered(Err(e)),
        };
        let now = now_ms();
        let actor = Actor {
            id: session.me_id(),
            now: now / 1000,
        };
        let operation = op.operation();
        let outcome = match rules::apply(&before, &actor, op) {
            Ok(o) => o,
            Err(r) => return Tried::Answered(Err(r.in_session(&session.name).into())),
        };
        let mut reply = render(&outcome);
        let Some(mut after) = outcome
            .group
            .clone()
            .filter(|_| !outcome.changes.is_empty())
        else {
            return Tried::Answered(Ok(reply));
        };
        // A picture an older version kept inside the record moves out with any change.
        let fresh = picture::move_inline(&mut after);
        let change = GroupChange {
            before: Some(&before),
            after: Some(&after),
            actor: &actor.id,
            operation,
            changes: &outcome.changes,
            now_s: actor.now,
            session: session.name.as_str(),
        };
        let write = self.write_for(session, &change, now, fresh.as_ref());
        let work = Work::Group {
            write,
            fanout: None,
        };
        let endpoints = self.registry().endpoints(&session.record());
        let remember = reply.remember.take();
        // Refused before it was queued (a full queue): nothing was built on it.
        let answer = match session.commit_on(work, endpoints, remember, before.version) {
            Ok(answer) => answer,
            Err(e) => return Tried::Answered(Err(e.into())),
        };
        let ticket = self.pipeline.queued(id, after.clone());
        // Queued in order: the next change of the group may be decided now.
        drop(guard);
        let result = self.pipelined_end(session, answer.await, &before, &after);
        self.pipeline.settle(ticket, result.is_ok());
        Tried::Answered(result.map(|()| reply))
    }

    /// The group a pipelined change starts from, or `None` when it is not one to pipeline:
    /// another local session holds the group, it is in a community or is one, or an earlier
    /// change's shares are still being applied.
    fn pipeline_start(&self, session: &Arc<Session>, id: &GroupId) -> ApiResult<Option<Group>> {
        let only_here = {
            let index = self.read_index();
            let holders = index.holders.get(id);
            holders.is_some_and(|h| h.len() == 1 && h.contains(&session.name))
        };
        if !only_here || self.catching_up().pending(id) {
            return Ok(None);
        }
        let before = match self.pipeline.latest(id) {
            Some(g) => g,
            None => self.load(session, id)?,
        };
        if before.parent.is_some() || before.community.is_some() || before.announces.is_some() {
            return Ok(None);
        }
        // Nobody joins or leaves in a pipelined change: who it reaches is known from before.
        let reached = self.affected(session, Some(&before), Some(&before))?;
        Ok((reached.len() == 1).then_some(before))
    }

    /// What a pipelined change's answer from the committer means to its client.
    fn pipelined_end(
        &self,
        session: &Arc<Session>,
        answer: Result<crate::store::Applied, crate::store::StoreError>,
        before: &Group,
        after: &Group,
    ) -> ApiResult<()> {
        match answer {
            Ok(applied) if applied.stale => Err(ApiError::StorageUnavailable(
                "an earlier change of this group, which this one was built on, failed to be stored"
                    .into(),
            )),
            Ok(_) => {
                self.registry().notify(&session.name);
                self.update_index(Some(before), Some(after), std::slice::from_ref(session));
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
