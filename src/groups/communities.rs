//! Communities through the one write path: creating one (the community and its announcement
//! group together), linking and unlinking groups, leaving and deleting, and the locks a change
//! of a linked group needs (its community's and its announcement group's too). Every change
//! here is a list of the rules' `Step`s committed as ONE change: one transaction per store.

use std::sync::Arc;

use super::commit::{Made, Part};
use super::model::Group;
use super::refusal::Refusal;
use super::rules::{self, Actor, Family, LinkResult, Op, Step};
use super::service::{decode, GroupGuard, GroupService};
use crate::error::{ApiError, ApiResult};
use crate::ids::{ContactId, GroupId, InviteCode};
use crate::reply::{Render, Reply};
use crate::sessions::{now_ms, Session};

/// A change of a community as a whole.
#[derive(Debug, Clone)]
pub enum CommunityOp {
    Link(Vec<GroupId>),
    Unlink(Vec<GroupId>),
    Leave,
    Delete,
}

/// What a community change did: one result per requested group of a link or unlink.
#[derive(Debug, Clone)]
pub struct CommunityOutcome {
    pub results: Vec<(GroupId, LinkResult)>,
}

/// A new community as asked for.
pub struct NewCommunity {
    pub subject: String,
    pub description: String,
    pub others: Vec<ContactId>,
}

impl GroupService {
    /// The community `id` as `session` holds it; 404 `community_not_found` when the session
    /// has no such group or it is not a community.
    pub fn load_community(&self, session: &Session, id: &GroupId) -> ApiResult<Group> {
        let found = match session.store.group(id.as_str())? {
            Some(bytes) => Some(decode(&bytes)?),
            None => None,
        };
        found.filter(|g| g.community.is_some()).ok_or_else(|| {
            Refusal::CommunityNotFound {
                id: id.clone(),
                session: session.name.clone(),
            }
            .into()
        })
    }

    /// Every community `session`'s account is in.
    pub fn communities(&self, session: &Session) -> ApiResult<Vec<Group>> {
        let mut all = self.list(session)?;
        all.retain(|g| g.community.is_some());
        Ok(all)
    }

    /// Group `id` as `session` holds it, else as any session that holds it does.
    fn load_any(&self, session: &Session, id: &GroupId) -> ApiResult<Option<Group>> {
        if let Some(bytes) = session.store.group(id.as_str())? {
            return Ok(Some(decode(&bytes)?));
        }
        for s in self.holders(id) {
            if let Some(bytes) = s.store.group(id.as_str())? {
                return Ok(Some(decode(&bytes)?));
            }
        }
        Ok(None)
    }

    /// Community `c` with its announcement group, from any session that holds them.
    fn family(&self, session: &Session, c: &GroupId) -> ApiResult<Option<Family>> {
        let Some(community) = self.load_any(session, c)? else {
            return Ok(None);
        };
        let Some(a) = community.community.as_ref().map(|k| k.announcement.clone()) else {
            return Ok(None);
        };
        Ok(self.load_any(session, &a)?.map(|announcement| Family {
            community,
            announcement,
        }))
    }

    /// Takes the locks a change `op` of group `id` needs: the group's, and when it is linked to
    /// a community (or is one), the community's and its announcement group's, all in id order (a first
    /// pass under the group's lock finds the community; then all three are taken afresh).
    pub(super) async fn lock_family(
        &self,
        session: &Session,
        id: &GroupId,
        op: &Op,
    ) -> ApiResult<(Vec<GroupGuard<'_>>, Option<Family>)> {
        let mut ids = vec![id.clone()];
        loop {
            let guards = self.lock_groups(&ids).await;
            for g in &ids {
                self.caught_up(g).await?;
                self.catch_up(g).await?;
            }
            let group = match op {
                Op::Join(code) => self.by_invite(code).ok().filter(|g| &g.id == id),
                _ => self.load_any(session, id)?,
            };
            // A community's own family is itself and its announcement group.
            let community = group.and_then(|g| match g.community {
                Some(_) => Some(g.id),
                None => g.parent,
            });
            let family = match community {
                Some(c) => self.family(session, &c)?,
                None => None,
            };
            let mut want = vec![id.clone()];
            if let Some(f) = &family {
                want.extend([f.community.id.clone(), f.announcement.id.clone()]);
            }
            if want.iter().all(|w| ids.contains(w)) {
                return Ok((guards, family));
            }
            drop(guards);
            ids = want;
        }
    }

    /// Creates a community with `session`'s account as superadmin, and its announcement group.
    /// The answer, rendered by `render` from the new community, is kept with the change.
    pub async fn create_community(
        self: &Arc<Self>,
        session: &Arc<Session>,
        new: NewCommunity,
        render: Render<Group>,
    ) -> ApiResult<Reply> {
        let (this, session) = (self.clone(), session.clone());
        self.running
            .detached(async move { this.create_community_now(&session, new, render).await })
            .await
    }

    async fn create_community_now(
        self: &Arc<Self>,
        session: &Arc<Session>,
        new: NewCommunity,
        render: Render<Group>,
    ) -> ApiResult<Reply> {
        let _gate = session.gate.read().await;
        session.require_working()?;
        let ids = (self.new_id(), self.new_id());
        let _guards = self.lock_groups(&[ids.0.clone(), ids.1.clone()]).await;
        let _accounts = self.registry.accounts.read().await;
        let now = now_ms();
        let actor = Actor {
            id: session.me_id(),
            now: now / 1000,
        };
        let invites = (InviteCode::random(), InviteCode::random());
        let steps = rules::create_community(
            ids,
            invites,
            &actor,
            new.subject,
            new.description,
            &new.others,
        )?;
        let community = steps.first().and_then(|s| s.after.as_ref());
        let community = community.ok_or_else(|| ApiError::internal("no community created"))?;
        let mut reply = render(community);
        self.commit_steps(session, &steps, &actor, now, &mut reply)
            .await?;
        Ok(reply)
    }

    /// Commits `steps` by `actor` as one change of `session`, keeping `reply`'s answer with it.
    async fn commit_steps(
        self: &Arc<Self>,
        session: &Arc<Session>,
        steps: &[Step],
        actor: &Actor,
        now: u64,
        reply: &mut Reply,
    ) -> ApiResult<()> {
        let parts = steps
            .iter()
            .map(|s| Part::of_step(s, actor, &session.name))
            .collect();
        let made = Made {
            acting: session,
            parts,
            now,
            remember: reply.remember.take(),
            logged: None,
        };
        self.commit(made).await
    }

    /// Runs `op` by `session`'s account on community `id` through the one write path.
    pub async fn change_community(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &GroupId,
        op: CommunityOp,
        render: Render<CommunityOutcome>,
    ) -> ApiResult<Reply> {
        let (this, session, id) = (self.clone(), session.clone(), id.clone());
        self.running
            .detached(async move { this.change_community_now(&session, &id, op, render).await })
            .await
    }

    async fn change_community_now(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &GroupId,
        op: CommunityOp,
        render: Render<CommunityOutcome>,
    ) -> ApiResult<Reply> {
        let _gate = session.gate.read().await;
        session.require_working()?;
        let (_guards, fam) = self.lock_community(session, id, &op).await?;
        let _accounts = self.registry.accounts.read().await;
        let now = now_ms();
        let actor = Actor {
            id: session.me_id(),
            now: now / 1000,
        };
        let (steps, results) =
            self.community_rule(session, &fam, &op, &actor)?
                .map_err(|r| match r {
                    Refusal::NotAMember { group } if group == *id => Refusal::CommunityNotFound {
                        id: group,
                        session: session.name.clone(),
                    },
                    other => other.in_session(&session.name),
                })?;
        let mut reply = render(&CommunityOutcome { results });
        if !steps.is_empty() {
            self.commit_steps(session, &steps, &actor, now, &mut reply)
                .await?;
        }
        Ok(reply)
    }

    /// The locks of community `id`, its announcement group and every group `op` touches (the
    /// requested ones, or every linked one), in id order; with the family as it stands then.
    async fn lock_community(
        &self,
        session: &Session,
        id: &GroupId,
        op: &CommunityOp,
    ) -> ApiResult<(Vec<GroupGuard<'_>>, Family)> {
        let mut ids = vec![id.clone()];
        loop {
            let guards = self.lock_groups(&ids).await;
            for g in &ids {
                self.caught_up(g).await?;
                self.catch_up(g).await?;
            }
            let community = self.load_community(session, id)?;
            let family = self.family(session, id)?;
            let family = family.ok_or_else(|| ApiError::internal("announcement group missing"))?;
            let mut want = vec![id.clone(), family.announcement.id.clone()];
            match op {
                CommunityOp::Link(gs) | CommunityOp::Unlink(gs) => want.extend(gs.iter().cloned()),
                CommunityOp::Leave | CommunityOp::Delete => {
                    let links = community.community.iter().flat_map(|k| &k.links);
                    want.extend(links.map(|l| l.id.clone()));
                }
            }
            if want.iter().all(|w| ids.contains(w)) {
                return Ok((guards, family));
            }
            drop(guards);
            ids = want;
        }
    }

    /// Runs the community rule of `op`, with the copies of the groups it needs.
    #[allow(clippy::type_complexity)]
    fn community_rule(
        &self,
        session: &Session,
        fam: &Family,
        op: &CommunityOp,
        by: &Actor,
    ) -> ApiResult<Result<(Vec<Step>, Vec<(GroupId, LinkResult)>), Refusal>> {
        let links: Vec<GroupId> = fam
            .community
            .community
            .iter()
            .flat_map(|k| k.links.iter().map(|l| l.id.clone()))
            .collect();
        let with_ids = |ids: &[GroupId], (steps, results): (Vec<Step>, Vec<LinkResult>)| {
            (steps, ids.iter().cloned().zip(results).collect())
        };
        Ok(match op {
            CommunityOp::Link(ids) => {
                let mut groups = Vec::with_capacity(ids.len());
                for g in ids {
                    let own = session.store.group(g.as_str())?;
                    groups.push((g.clone(), own.map(|b| decode(&b)).transpose()?));
                }
                rules::link(fam, &groups, by).map(|r| with_ids(ids, r))
            }
            CommunityOp::Unlink(ids) => {
                let mut groups = Vec::with_capacity(ids.len());
                for g in ids {
                    groups.push((g.clone(), self.load_any(session, g)?));
                }
                rules::unlink(fam, &groups, by).map(|r| with_ids(ids, r))
            }
            CommunityOp::Leave => {
                let mut linked = Vec::new();
                for g in &links {
                    if let Some(bytes) = session.store.group(g.as_str())? {
                        linked.push(decode(&bytes)?);
                    }
                }
                rules::leave_community(fam, &linked, by).map(|s| (s, Vec::new()))
            }
            CommunityOp::Delete => {
                let mut linked = Vec::new();
                for g in &links {
                    linked.extend(self.load_any(session, g)?);
                }
                rules::delete_community(fam, &linked, by).map(|s| (s, Vec::new()))
            }
        })
    }
}
