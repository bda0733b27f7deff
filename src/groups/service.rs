//! The one write path for group state: lock the group gateway-wide, load it, run one pure rule,
//! commit the group, its events and their delivery jobs in one transaction per session
//! (the acting session's first, with a fan-out record for the others), flush, then answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use super::commit::{Made, Part};
use super::fanout::CatchingUp;
use super::lids;
use super::logged::{Appended, CONFLICT_TRIES};
use super::model::{Group, NewPicture, PictureBytes};
use super::picture;
use super::pipeline::{self, Pipeline, Tried};
use super::refusal::Refusal;
use super::rules::{self, Actor, Family, Op, Outcome, Step};
use super::running::Running;
use crate::error::{ApiError, ApiResult};
use crate::events::GroupChange;
use crate::ids::{ContactId, GroupId, InviteCode};
use crate::reply::{Render, Reply};
use crate::sessions::{now_ms, Registry, Session};
use crate::store::{StoreError, StoredBytes};

/// Where each group is held and which invite code leads to it, gateway-wide.
#[derive(Default)]
pub(super) struct Index {
    pub(super) invites: HashMap<InviteCode, GroupId>,
    pub(super) holders: HashMap<GroupId, super::holders::Holders>,
}

pub struct GroupService {
    pub(super) registry: Arc<Registry>,
    /// Gateway-wide lock per group id: changes to one group are serialised, other groups proceed.
    /// A std Mutex guards only the map lookup; the per-group tokio Mutex is held across the commit.
    locks: Locks,
    /// A std RwLock: updated after commits, read on lookups; never held across an await.
    pub(super) index: RwLock<Index>,
    /// Test hook: abort the process after the acting commit, before the fan-out.
    abort_before_fanout: bool,
    /// Groups with pipelined changes in flight, and the state the last one queued leaves.
    pub(super) pipeline: Pipeline,
    /// Groups whose last change still has members' shares to apply (see `fanout`).
    catching_up: CatchingUp,
    /// Changes running to their end, even when the request that asked for one went away (the
    /// client hung up): a change cut off between its own commit and its fan-out would leave
    /// the other member sessions behind until a restart. A shutdown waits for them.
    pub running: Arc<Running>,
    /// Cluster mode: the group logs this node appends to and applies (`logged`).
    pub(super) logged: OnceLock<super::logged::Logged>,
}

/// What a rule made of a change, before it is logged and committed.
struct Decided {
    outcome: Outcome,
    fresh: Option<PictureBytes>,
    follow: Vec<Step>,
    now: u64,
    actor: Actor,
}

/// A read only a group's admins may make, asked by a session whose account is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAdmin;

type Locks = Mutex<HashMap<GroupId, Arc<tokio::sync::Mutex<()>>>>;

/// A held group lock. Dropped, it forgets the lock when nobody else holds or awaits it, so the
/// map does not grow with every group the gateway has ever seen.
pub(super) struct GroupGuard<'a> {
    locks: &'a Locks,
    id: GroupId,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for GroupGuard<'_> {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        let lock = tokio::sync::OwnedMutexGuard::mutex(&guard).clone();
        drop(guard);
        // Clones are only made under the map's lock: two owners (the map and `lock`) means
        // nobody else holds or waits for it.
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&lock) == 2 {
            locks.remove(&self.id);
        }
    }
}

pub fn decode(bytes: &[u8]) -> Result<Group, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree: "groups",
        detail: e.to_string(),
    })
}

impl GroupService {
    /// Builds the gateway-wide index from every store and applies fan-outs left by a crash.
    pub async fn open(
        registry: Arc<Registry>,
        abort_before_fanout: bool,
    ) -> Result<Arc<Self>, StoreError> {
        let svc = Arc::new(Self {
            registry,
            locks: Mutex::new(HashMap::new()),
            index: RwLock::new(Index::default()),
            abort_before_fanout,
            catching_up: CatchingUp::default(),
            pipeline: Pipeline::default(),
            running: Arc::default(),
            logged: OnceLock::new(),
        });
        svc.resume_fanouts().await?;
        let mut index = Index::default();
        for session in svc.registry.list() {
            let keys = session.store.keys()?;
            for (code, gid) in keys.invites {
                if let (Ok(code), Ok(gid)) = (InviteCode::parse(&code), GroupId::parse(&gid)) {
                    index.invites.insert(code, gid);
                }
            }
            for gid in keys.groups {
                if let Ok(gid) = GroupId::parse(&gid) {
                    index
                        .holders
                        .entry(gid)
                        .or_default()
                        .insert(session.name.clone());
                }
            }
        }
        *svc.index.write().unwrap_or_else(|p| p.into_inner()) = index;
        Ok(svc)
    }

    pub(super) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub(super) fn abort_before_fanout(&self) -> bool {
        self.abort_before_fanout
    }

    pub(super) fn catching_up(&self) -> &CatchingUp {
        &self.catching_up
    }

    /// Takes the group's gateway-wide lock, once no pipelined change of it is in flight: every
    /// change but a pipelined one starts from the group's durable state, and holds the lock
    /// across its commit and fan-out.
    async fn lock_group(&self, id: &GroupId) -> GroupGuard<'_> {
        let guard = self.lock_queued(id).await;
        self.pipeline.drain(id).await;
        guard
    }

    /// Takes the group's gateway-wide lock as a pipelined change does: changes of the group
    /// still in flight stay in flight.
    pub(super) async fn lock_queued(&self, id: &GroupId) -> GroupGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(id.clone()).or_default().clone()
        };
        GroupGuard {
            locks: &self.locks,
            id: id.clone(),
            guard: Some(lock.lock_owned().await),
        }
    }

    /// Takes the gateway-wide locks of several groups, in id order (every change that takes
    /// more than one takes them this way, so two such changes never wait for each other's).
    pub(super) async fn lock_groups(&self, ids: &[GroupId]) -> Vec<GroupGuard<'_>> {
        let mut sorted: Vec<&GroupId> = ids.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut guards = Vec::with_capacity(sorted.len());
        for id in sorted {
            guards.push(self.lock_group(id).await);
        }
        guards
    }

    pub(super) fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The group as `session` holds it, or 404.
    pub fn load(&self, session: &Session, id: &GroupId) -> ApiResult<Group> {
        Ok(decode(&self.stored(session, id)?)?)
    }

    /// The group as `session` holds it, for what only its admins may read: `Err(NotAdmin)`
    /// inside when `session`'s account is not one of them (the caller words the refusal).
    pub fn load_as_admin(
        &self,
        session: &Session,
        id: &GroupId,
    ) -> ApiResult<Result<Group, NotAdmin>> {
        let g = self.load(session, id)?;
        let admin = g.role_of(&session.me_id()).is_some_and(|r| r.is_admin());
        Ok(if admin { Ok(g) } else { Err(NotAdmin) })
    }

    /// The group's bytes as `session` stores them, or 404.
    pub fn stored(&self, session: &Session, id: &GroupId) -> ApiResult<StoredBytes> {
        match session.store.group(id.as_str())? {
            Some(bytes) => Ok(bytes),
            None => Err(Refusal::GroupNotFound {
                id: id.clone(),
                session: session.name.clone(),
            }
            .into()),
        }
    }

    /// Every group `session` is in.
    pub fn list(&self, session: &Session) -> ApiResult<Vec<Group>> {
        let stored = session.store.groups()?;
        let mut out = Vec::with_capacity(stored.len());
        for (_, bytes) in stored {
            out.push(decode(&bytes)?);
        }
        Ok(out)
    }

    /// The group an invite code leads to, from any session that holds it; 404 if unknown or revoked.
    pub fn by_invite(&self, code: &InviteCode) -> ApiResult<Group> {
        let gid = self.read_index().invites.get(code).cloned();
        let gid = gid.ok_or(Refusal::InviteNotFound)?;
        for s in self.holders(&gid) {
            if let Some(bytes) = s.store.group(gid.as_str())? {
                let g = decode(&bytes)?;
                if &g.invite == code {
                    return Ok(g);
                }
            }
        }
        Err(Refusal::InviteNotFound.into())
    }

    /// The sessions that hold group `id`.
    pub(super) fn holders(&self, id: &GroupId) -> Vec<Arc<Session>> {
        let index = self.read_index();
        let names = index.holders.get(id).into_iter().flatten();
        names.filter_map(|n| self.registry.get(n)).collect()
    }

    /// The picture's URL as `session` serves it (`Group::picture_url`).
    pub fn picture_path(session: &str, g: &Group) -> Option<String> {
        g.picture_url(session)
    }

    /// A random group id no session of the gateway holds.
    pub(super) fn new_id(&self) -> GroupId {
        loop {
            let id = GroupId::random();
            if !self.read_index().holders.contains_key(&id) {
                return id;
            }
        }
    }

    /// Creates a group with `me` of `session` as superadmin.
    /// The answer, rendered by `render` from the new group, is kept with the change.
    pub async fn create(
        self: &Arc<Self>,
        session: &Arc<Session>,
        subject: String,
        others: Vec<ContactId>,
        render: Render<Group>,
    ) -> ApiResult<Reply> {
        let (this, session) = (self.clone(), session.clone());
        self.running
            .detached(async move { this.create_now(&session, subject, others, render).await })
            .await
    }

    async fn create_now(
        self: &Arc<Self>,
        session: &Arc<Session>,
        subject: String,
        mut others: Vec<ContactId>,
        render: Render<Group>,
    ) -> ApiResult<Reply> {
        let _gate = session.gate.read().await;
        session.require_working()?;
        let id = self.new_id();
        let _guard = self.lock_group(&id).await;
        let _accounts = self.registry.accounts.read().await;
        self.resolve(session, None, &mut others)?;
        let now = now_ms();
        let actor = Actor {
            id: session.me_id(),
            now: now / 1000,
        };
        let (group, changes) = rules::create(id, InviteCode::random(), &actor, subject, &others)?;
        let mut reply = render(&group);
        let change = GroupChange {
            before: None,
            after: Some(&group),
            actor: &actor.id,
            operation: "create",
            changes: &changes,
            now_s: actor.now,
            session: session.name.as_str(),
        };
        let made = Made {
            acting: session,
            parts: vec![Part {
                change,
                fresh: None,
            }],
            now,
            remember: reply.remember.take(),
            logged: None,
        };
        self.commit(made).await?;
        Ok(reply)
    }

    /// Runs `op` by `session`'s account on group `id` through the one write path. The answer,
    /// rendered by `render` from the outcome, is kept with the change.
    pub async fn mutate(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &GroupId,
        op: Op,
        render: Render<Outcome>,
    ) -> ApiResult<Reply> {
        self.mutate_detached(session, id, op, render, false).await
    }

    /// As `mutate`, on a community: 404 `community_not_found` when `id` is none.
    pub async fn mutate_community(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &GroupId,
        op: Op,
        render: Render<Outcome>,
    ) -> ApiResult<Reply> {
        self.mutate_detached(session, id, op, render, true).await
    }

    async fn mutate_detached(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &GroupId,
        op: Op,
        render: Render<Outcome>,
        community: bool,
    ) -> ApiResult<Reply> {
        let (this, session, id) = (self.clone(), session.clone(), id.clone());
        self.running
            .detached(async move { this.mutate_now(&session, &id, op, render, community).await })
            .await
    }

    async fn mutate_now(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &GroupId,
        op: Op,
        render: Render<Outcome>,
        community: bool,
    ) -> ApiResult<Reply> {
        // Held to the answer: a stop waits for this change, and this change sees the stop.
        let _gate = session.gate.read().await;
        session.require_working()?;
        // In a cluster every change goes through the group's log, one at a time.
        if community || !pipeline::pipelines(&op) || self.logged().is_some() {
            return self.mutate_serial(session, id, op, render, community).await;
        }
        match self.pipelined(session, id, op, render).await {
            Tried::Answered(answer) => answer,
            Tried::Declined(op, render) => self.mutate_serial(session, id, op, render, false).await,
        }
    }

    /// A change through the usual write path: the group's lock (and its community's) held
    /// across the commit and the fan-out. In a cluster, a change another node appended first
    /// makes it catch up and run the rule again.
    async fn mutate_serial(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &GroupId,
        op: Op,
        render: Render<Outcome>,
        community: bool,
    ) -> ApiResult<Reply> {
        let mut tries = 0;
        loop {
            // The group's lock, and its community's when it is linked to one.
            let (_guards, family) = self.lock_family(session, id, &op).await?;
            // Taken after the wait: a change of accounts waits only for changes being made.
            let _accounts = self.registry.accounts.read().await;
            if community {
                self.load_community(session, id)?;
            }
            let before = self.before_op(session, id, &op).await?;
            let decided = self.decide(session, id, &before, op.clone(), family.as_ref())?;
            let Decided {
                outcome,
                fresh,
                follow,
                now,
                actor,
            } = decided;
            if outcome.changes.is_empty() {
                // Nothing to commit: the caller keeps the answer on its own.
                return Ok(render(&outcome));
            }
            let change = GroupChange {
                before: Some(&before),
                after: outcome.group.as_ref(),
                actor: &actor.id,
                operation: op.operation(),
                changes: &outcome.changes,
                now_s: actor.now,
                session: session.name.as_str(),
            };
            let mut parts = vec![Part { change, fresh }];
            parts.extend(
                follow
                    .iter()
                    .map(|s| Part::of_step(s, &actor, &session.name)),
            );
            let logged = match self.append(session, &parts, now).await? {
                Appended::Logged(l) => self.logged().map(|_| l),
                Appended::Conflict if tries < CONFLICT_TRIES => {
                    tries += 1;
                    // Apart, so that nodes racing for one group do not meet again at once.
                    drop(_accounts);
                    drop(_guards);
                    super::logged::back_off(tries).await;
                    continue;
                }
                Appended::Conflict => {
                    return Err(ApiError::Unavailable(format!(
                        "group {id}: other nodes kept changing it; retry"
                    )))
                }
            };
            let mut reply = render(&outcome);
            let made = Made {
                acting: session,
                parts,
                now,
                remember: reply.remember.take(),
                logged,
            };
            self.commit(made).await?;
            return Ok(reply);
        }
    }

    /// Runs `op`'s rule on `before`: the outcome, the picture bytes it brings, and what its
    /// community and announcement group follow with.
    fn decide(
        &self,
        session: &Arc<Session>,
        id: &GroupId,
        before: &Group,
        op: Op,
        family: Option<&Family>,
    ) -> ApiResult<Decided> {
        // A member given by its lid is the member with its number (`lids`).
        let (op, asked) = self.resolve_op(session, before, op)?;
        let now = now_ms();
        let actor = Actor {
            id: session.me_id(),
            now: now / 1000,
        };
        let (operation, kinds) = (op.operation(), op.kinds());
        let mut fresh = match &op {
            Op::SetPicture(Some(NewPicture::Bytes { bytes, .. })) => Some(bytes.clone()),
            _ => None,
        };
        let mut outcome =
            rules::apply(before, &actor, op).map_err(|r| r.in_session(&session.name))?;
        lids::echo(&mut outcome.results, &asked);
        // A picture an older version kept inside the record moves out with any change.
        if let Some(bytes) = outcome.group.as_mut().and_then(picture::move_inline) {
            fresh = Some(bytes);
        }
        // A linked group's community and announcement group follow its subject and members; a
        // community's announcement group follows its name.
        let after = outcome.group.as_ref();
        let follow = match (family, after) {
            (Some(f), Some(c)) if &f.community.id == id => match operation {
                "subject" => rules::announce_subject(f, c).into_iter().collect(),
                _ => Vec::new(),
            },
            (Some(f), _) => rules::follow(f, id, after, &actor, kinds),
            (None, _) => Vec::new(),
        };
        Ok(Decided {
            outcome,
            fresh,
            follow,
            now,
            actor,
        })
    }

    /// The group `op` starts from: the session's copy, or for a join the one its code leads to
    /// (in a cluster, possibly a group no session here holds).
    async fn before_op(&self, session: &Session, id: &GroupId, op: &Op) -> ApiResult<Group> {
        match op {
            Op::Join(code) => {
                let g = self.by_invite_anywhere(code).await?;
                if &g.id != id {
                    return Err(Refusal::InviteNotFound.into());
                }
                Ok(g)
            }
            _ => self.load(session, id),
        }
    }
}
