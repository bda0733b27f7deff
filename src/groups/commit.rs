//! Committing a change through the one write path: which sessions it reaches, each one's share
//! (its copy of every group the change touched, its events), the acting session's share with a
//! fan-out record of the others' in ONE transaction of its store, then the others' shares, each
//! session's writes again in one transaction of its own store.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::fanout::Fanout;
use super::model::{Group, PictureBytes};
use super::picture;
use super::rules::{Actor, Step};
use super::service::GroupService;
use crate::error::{ApiError, ApiResult};
use crate::events::{self, GroupChange};
use crate::ids::{GroupId, SessionName};
use crate::sessions::Session;
use crate::store::{EventRecord, GroupWrite, Remember, StoreError, Work};

/// A change made and ready to commit: one part per group it touched (most touch one; a
/// community's link touches the community, its announcement group and the groups linked).
pub(super) struct Made<'a> {
    /// The session that made it: its store takes the change first.
    pub acting: &'a Arc<Session>,
    pub parts: Vec<Part<'a>>,
    /// When it was made, unix ms.
    pub now: u64,
    /// The answer to keep with the change (a request with an `Idempotency-Key`).
    pub remember: Option<Remember>,
    /// In cluster mode, the log entries of its parts once appended (`None`: not yet; the
    /// commit appends them).
    pub logged: Option<Vec<(GroupId, u64)>>,
}

/// What a change did to one group, as the events are made from it.
pub(super) struct Part<'a> {
    pub change: GroupChange<'a>,
    /// The bytes of a picture the change brings.
    pub fresh: Option<PictureBytes>,
}

impl<'a> Part<'a> {
    /// The part of a rule's `step` made by `actor` in session `session`.
    pub fn of_step(step: &'a Step, actor: &'a Actor, session: &'a SessionName) -> Self {
        Part {
            change: GroupChange {
                before: step.before.as_ref(),
                after: step.after.as_ref(),
                actor: &actor.id,
                operation: step.operation,
                changes: &step.changes,
                now_s: actor.now,
                session: session.as_str(),
            },
            fresh: None,
        }
    }
}

fn encode(g: &Group) -> String {
    serde_json::to_string(g).unwrap_or_default()
}

/// Whether a session's write has anything for it: a copy to keep or drop, a picture, events.
fn relevant(w: &GroupWrite) -> bool {
    w.group.is_some() || w.invite_del.is_some() || w.picture.is_some() || !w.events.is_empty()
}

impl GroupService {
    /// The sessions that see this change: the acting one, every local session that holds the
    /// group, and every local session whose account joins it now. A session whose account was
    /// already a participant before the session existed does not hold the group and stays out
    /// until it is added again (see README, "Local network").
    pub(super) fn affected(
        &self,
        acting: &Arc<Session>,
        before: Option<&Group>,
        after: Option<&Group>,
    ) -> ApiResult<Vec<Arc<Session>>> {
        let mut out = vec![acting.clone()];
        out.extend(self.members_here(Some(acting), before, after)?);
        Ok(out)
    }

    /// The sessions of this gateway (this node, in a cluster) that see a change besides
    /// `except`: every one that holds the group, and every one whose account joins it now.
    pub(super) fn members_here(
        &self,
        except: Option<&Arc<Session>>,
        before: Option<&Group>,
        after: Option<&Group>,
    ) -> Result<Vec<Arc<Session>>, StoreError> {
        let mut seen = BTreeSet::new();
        if let Some(a) = except {
            seen.insert(a.name.clone());
        }
        let mut out = Vec::new();
        let ids = before
            .into_iter()
            .chain(after)
            .flat_map(|g| g.participants.iter().map(|m| &m.id));
        for id in ids {
            let Some(s) = self.registry.by_me(id) else {
                continue;
            };
            if seen.contains(&s.name) {
                continue;
            }
            let joins =
                after.is_some_and(|a| a.is_member(id)) && !before.is_some_and(|b| b.is_member(id));
            let holds = match after.or(before) {
                Some(g) => s.store.group(g.id.as_str())?.is_some(),
                None => false,
            };
            if joins || holds {
                seen.insert(s.name.clone());
                out.push(s);
            }
        }
        Ok(out)
    }

    /// One session's share of a change: its copy of the group, its picture bytes (`picture`:
    /// those of the group after the change, when a member needs them) and its events.
    pub(super) fn write_for(
        &self,
        session: &Session,
        change: &GroupChange<'_>,
        now_ms: u64,
        picture: Option<&PictureBytes>,
    ) -> GroupWrite {
        let me = session.me_id();
        let rec = session.record();
        let held_before = change.before.is_some_and(|g| g.is_member(&me));
        let after = change.after.filter(|g| g.is_member(&me));
        let gid = change
            .after
            .or(change.before)
            .map(|g| g.id.to_string())
            .unwrap_or_default();
        let version = change
            .after
            .map(|g| g.version)
            .or(change.before.map(|g| g.version + 1))
            .unwrap_or(1);
        let ctx = self.registry.event_context(&rec);
        let events = change
            .events_for(&me)
            .into_iter()
            .map(|(name, payload)| {
                let e = events::envelope(&ctx, name, Some(&gid), &payload, now_ms);
                EventRecord {
                    name: e.name,
                    group: e.group,
                    body: e.body,
                }
            })
            .collect();
        let plan = picture::plan_for(&me, change.before, change.after);
        let picture = picture::write(plan, picture, &gid);
        GroupWrite {
            group_id: gid,
            version,
            group: after.map(encode),
            invite_del: change
                .before
                .filter(|_| held_before)
                .map(|g| g.invite.to_string()),
            invite_put: after.map(|g| g.invite.to_string()),
            events,
            picture,
        }
    }

    /// Every session a change of several groups reaches: the acting one first.
    fn affected_by_all(&self, made: &Made<'_>) -> ApiResult<Vec<Arc<Session>>> {
        let mut out = vec![made.acting.clone()];
        for p in &made.parts {
            for s in self.affected(made.acting, p.change.before, p.change.after)? {
                if !out.iter().any(|o| Arc::ptr_eq(o, &s)) {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    /// The picture bytes a part's members need: those it brings, else the stored ones when a
    /// member new to the picture needs them (a rename reads nothing).
    fn part_bytes(
        &self,
        acting: &Arc<Session>,
        part: &mut Part<'_>,
        sessions: &[Arc<Session>],
    ) -> ApiResult<Option<PictureBytes>> {
        let (before, after) = (part.change.before, part.change.after);
        let needs_bytes =
            |s: &Arc<Session>| picture::plan_for(&s.me_id(), before, after) == picture::Plan::Set;
        Ok(match (part.fresh.take(), after) {
            (Some(b), _) => Some(b),
            (None, Some(a)) if sessions.iter().any(needs_bytes) => self.picture_bytes(acting, a)?,
            (None, _) => None,
        })
    }

    /// Commits a change: the acting session's share of every part with a fan-out record for the
    /// others, in one transaction of its store, then the others' shares. In cluster mode the
    /// parts are in the group log first, and the log takes the record's place.
    pub(super) async fn commit(self: &Arc<Self>, mut made: Made<'_>) -> ApiResult<()> {
        let acting = made.acting;
        let logged = self.logged_parts(&mut made).await?;
        let sessions = self.affected_by_all(&made)?;
        let mut bytes = Vec::with_capacity(made.parts.len());
        for part in &mut made.parts {
            bytes.push(self.part_bytes(acting, part, &sessions)?);
        }
        let single = made.parts.len() == 1;
        let mut own = Vec::new();
        let mut others = Vec::new();
        for s in &sessions {
            for (part, bytes) in made.parts.iter().zip(&bytes) {
                let w = self.write_for(s, &part.change, made.now, bytes.as_ref());
                if Arc::ptr_eq(s, acting) {
                    if single || relevant(&w) {
                        own.push(w);
                    }
                } else if relevant(&w) {
                    others.push((s.name.to_string(), w));
                }
            }
        }
        let fanout = Fanout { writes: others };
        let fan_record = if fanout.writes.is_empty() || logged.is_some() {
            None
        } else {
            let bytes = serde_json::to_vec(&fanout).map_err(ApiError::internal)?;
            Some((acting.store.generate_id()?, bytes))
        };
        let fan_id = fan_record.as_ref().map(|(id, _)| *id);
        let rec = acting.record();
        let work = match (single, own.pop()) {
            (true, Some(write)) => Work::Group {
                write,
                fanout: fan_record,
            },
            (_, last) => Work::Groups {
                writes: own.into_iter().chain(last).collect(),
                fanout: fan_record,
            },
        };
        let endpoints = self.registry().endpoints(&rec);
        acting
            .commit_answered(work, endpoints, made.remember.take())
            .await?;
        // Committed and durable: from here on the answer is a success, whatever the members do.
        self.registry().notify(&acting.name);
        for p in &made.parts {
            self.update_index(p.change.before, p.change.after, &sessions);
        }
        match logged {
            Some(logged) => self.share_logged(&made, fanout, &logged).await,
            None => self.share(acting, fanout, fan_id).await,
        }
        Ok(())
    }

    /// In cluster mode, the log entries of `made`'s parts: appended now unless they already
    /// are. A conflict here (the rule cannot run again from here) is a 503 to retry.
    async fn logged_parts(&self, made: &mut Made<'_>) -> ApiResult<Option<Vec<(GroupId, u64)>>> {
        if self.logged().is_none() {
            return Ok(None);
        }
        if let Some(logged) = made.logged.take() {
            return Ok(Some(logged));
        }
        match self.append(made.acting, &made.parts, made.now).await? {
            super::logged::Appended::Logged(l) => Ok(Some(l)),
            super::logged::Appended::Conflict => Err(ApiError::Unavailable(
                "another node changed the group at the same moment; retry".to_owned(),
            )),
        }
    }

    /// After a logged change's own commit: this node's other members' shares (no record: the
    /// log holds the change), and the cluster's invite index.
    async fn share_logged(
        self: &Arc<Self>,
        made: &Made<'_>,
        fanout: Fanout,
        logged: &[(GroupId, u64)],
    ) {
        for p in &made.parts {
            self.reindex_invite(p.change.before, p.change.after).await;
        }
        if fanout.writes.is_empty() {
            return self.logged_applied(logged);
        }
        match self.apply_fanout(&fanout).await {
            Ok(()) => self.logged_applied(logged),
            // Not counted as applied here: the consumer applies the entry again.
            Err(e) => self.retry_fanout(fanout, None, &e),
        }
    }

    /// Applies the other members' shares of a committed change, and forgets its record.
    async fn share(self: &Arc<Self>, acting: &Arc<Session>, fanout: Fanout, id: Option<u64>) {
        if self.abort_before_fanout() && id.is_some() {
            tracing::error!("test hook: aborting between the acting commit and the fan-out");
            std::process::abort();
        }
        let Some(id) = id else {
            return;
        };
        match self.apply_fanout(&fanout).await {
            Ok(()) => {
                if let Err(e) = acting.store.remove_fanout(id) {
                    tracing::warn!(session = %acting.name, "forgetting an applied fan-out record: {e}");
                }
            }
            Err(e) => self.retry_fanout(fanout, Some((acting.clone(), id)), &e),
        }
    }

    /// Keeps the gateway-wide index in step with a committed change: who holds the group now,
    /// and which invite code leads to it while anyone here still holds it.
    pub(super) fn update_index(
        &self,
        before: Option<&Group>,
        after: Option<&Group>,
        sessions: &[Arc<Session>],
    ) {
        let Some(gid) = after.or(before).map(|g| g.id.clone()) else {
            return;
        };
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = before {
            index.invites.remove(&b.invite);
        }
        let holders = index.holders.entry(gid.clone()).or_default();
        for s in sessions {
            if after.is_some_and(|a| a.is_member(&s.me_id())) {
                holders.insert(s.name.clone());
            } else {
                holders.remove(&s.name);
            }
        }
        match after {
            Some(a) if !holders.is_empty() => {
                index.invites.insert(a.invite.clone(), gid);
            }
            _ => {
                index.holders.remove(&gid);
            }
        }
    }
}
