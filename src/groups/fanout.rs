//! Fan-out: the other local members' shares of a group change, applied after the acting
//! session's commit (which keeps them in a durable record until they are applied).
//!
//! A share that fails to apply (a member's store is full or failing) must not turn a committed
//! change into an error, nor let the group split: the acting change is answered as committed,
//! the shares are retried in the background until every one is applied, and later changes to
//! that group wait for it (`GroupService::caught_up`), at most `CATCH_UP_WAIT`, then 503
//! `group_catching_up`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::service::GroupService;
use crate::error::{ApiError, ApiResult};
use crate::ids::{GroupId, SessionName};
use crate::sessions::Session;
use crate::store::{GroupWrite, StoreError, Work};

/// How long a change waits for an earlier change's shares before answering 503.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(5);
/// The longest pause between two tries of a failed share.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The other sessions' shares of one change, kept in the acting session's store until applied.
#[derive(Serialize, Deserialize, Clone)]
pub struct Fanout {
    pub writes: Vec<(String, GroupWrite)>,
}

impl Fanout {
    /// The groups the change touched, each once.
    pub fn groups(&self) -> Vec<GroupId> {
        let mut out: Vec<GroupId> = Vec::new();
        for (_, w) in &self.writes {
            if let Ok(id) = GroupId::parse(&w.group_id) {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        out
    }

    /// The writes by session, in order: a session's writes of one change go in one transaction.
    fn by_session(&self) -> Vec<(&str, Vec<GroupWrite>)> {
        let mut out: Vec<(&str, Vec<GroupWrite>)> = Vec::new();
        for (name, w) in &self.writes {
            match out.iter_mut().find(|(n, _)| n == name) {
                Some((_, ws)) => ws.push(w.clone()),
                None => out.push((name, vec![w.clone()])),
            }
        }
        out
    }
}

/// Groups whose last change still has shares to apply, with a wake-up for those waiting.
#[derive(Default)]
pub struct CatchingUp {
    /// Group → shares being retried. A std Mutex: held for a lookup or an update.
    pending: Mutex<HashMap<GroupId, usize>>,
    done: Notify,
}

impl CatchingUp {
    fn count(&self, id: &GroupId) -> usize {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.get(id).copied().unwrap_or(0)
    }

    fn add(&self, id: &GroupId) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending.entry(id.clone()).or_default() += 1;
    }

    fn remove(&self, id: &GroupId) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = pending.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                pending.remove(id);
            }
        }
        drop(pending);
        self.done.notify_waiters();
    }

    /// Whether a share of `id` is pending.
    pub fn pending(&self, id: &GroupId) -> bool {
        self.count(id) > 0
    }

    /// Waits until no share of `id` is pending, at most `wait`; false when time ran out.
    pub async fn wait(&self, id: &GroupId, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.done.notified();
            if self.count(id) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count(id) == 0;
            }
        }
    }
}

impl GroupService {
    /// Applies the other sessions' shares (idempotent by version) and makes them durable.
    /// All are queued before any is awaited, so they share one round of the committer.
    pub(super) async fn apply_fanout(&self, fanout: &Fanout) -> Result<(), StoreError> {
        let mut pending = Vec::new();
        for (name, mut writes) in fanout.by_session() {
            let Some(s) = self.session_named(name) else {
                continue; // the session was deleted since
            };
            let rec = s.record();
            let work = match (writes.len(), writes.pop()) {
                (1, Some(write)) => Work::Group {
                    write,
                    fanout: None,
                },
                (_, last) => Work::Groups {
                    writes: writes.into_iter().chain(last).collect(),
                    fanout: None,
                },
            };
            let done = s.commit(work, self.registry().endpoints(&rec));
            pending.push((s, done));
        }
        let mut first_error = None;
        for (s, done) in pending {
            match done.await {
                Ok(_) => self.registry().notify(&s.name),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn session_named(&self, name: &str) -> Option<Arc<Session>> {
        SessionName::parse(name)
            .ok()
            .and_then(|n| self.registry().get(&n))
    }

    /// Shares that failed: retried in the background until all are applied; meanwhile the group
    /// is catching up and each member counts the share as a group it holds.
    pub(super) fn retry_fanout(
        self: &Arc<Self>,
        fanout: Fanout,
        record: Option<(Arc<Session>, u64)>,
        error: &StoreError,
    ) {
        let gids = fanout.groups();
        let Some(gid) = gids.first().cloned() else {
            return;
        };
        tracing::warn!(group = %gid, "a member's share of a change failed: {error}; retrying it in the background, later changes of the group wait for it");
        for g in &gids {
            self.catching_up().add(g);
        }
        let members: Vec<Arc<Session>> = fanout
            .writes
            .iter()
            .filter_map(|(n, _)| self.session_named(n))
            .collect();
        for m in &members {
            m.pending_shares.fetch_add(1, Ordering::AcqRel);
        }
        let members: Vec<Weak<Session>> = members.iter().map(Arc::downgrade).collect();
        let record = record.map(|(s, id)| (Arc::downgrade(&s), id));
        // Weak: a gateway that is dropped (a test's) ends the retries; its record stays for
        // the next start-up.
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            let this = loop {
                let Some(this) = weak.upgrade() else {
                    return;
                };
                let applied = {
                    let _accounts = this.registry().accounts.read().await;
                    this.apply_fanout(&fanout).await
                };
                match applied {
                    Ok(()) => break this,
                    Err(e) => tracing::debug!(group = %gid, "a share is still failing: {e}"),
                }
                drop(this);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            };
            if let Some((session, id)) = record.and_then(|(s, id)| Some((s.upgrade()?, id))) {
                if let Err(e) = session.store.remove_fanout(id) {
                    tracing::warn!(group = %gid, "forgetting an applied fan-out record: {e}");
                }
            }
            for m in members.iter().filter_map(Weak::upgrade) {
                m.pending_shares.fetch_sub(1, Ordering::AcqRel);
            }
            for g in &gids {
                this.catching_up().remove(g);
            }
            tracing::info!(group = %gid, "every member's copy of the group caught up");
        });
    }

    /// 503 `group_catching_up` when an earlier change of `id` still has shares to apply after
    /// `CATCH_UP_WAIT`; call with the group's lock held.
    pub(super) async fn caught_up(&self, id: &GroupId) -> ApiResult<()> {
        if self.catching_up().wait(id, CATCH_UP_WAIT).await {
            return Ok(());
        }
        Err(ApiError::GroupCatchingUp(format!(
            "group {id}: an earlier change is still being applied to a member's copy; retry shortly"
        )))
    }

    /// Applies the fan-out records an interrupted change left in each store, before serving.
    /// A share that cannot be applied now is retried in the background.
    pub(super) async fn resume_fanouts(self: &Arc<Self>) -> Result<(), StoreError> {
        for session in self.registry().list() {
            for (id, bytes) in session.store.fanouts()? {
                let fanout: Fanout =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                        tree: "fanout",
                        detail: e.to_string(),
                    })?;
                tracing::info!(session = %session.name, records = fanout.writes.len(), "applying a fan-out left by an interrupted change");
                match self.apply_fanout(&fanout).await {
                    Ok(()) => session.store.remove_fanout(id)?,
                    Err(e) => self.retry_fanout(fanout, Some((session.clone(), id)), &e),
                }
            }
        }
        Ok(())
    }
}
