//! The one write path for group state: lock the group gateway-wide, load it, run one pure rule,
//! commit the group, its events and their delivery jobs in one transaction per session
//! (the acting session's first, with a fan-out record for the others), flush, then answer.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use super::fanout::{CatchingUp, Fanout};
use super::lids;
use super::model::{Group, NewPicture, PictureBytes};
use super::picture;
use super::refusal::Refusal;
use super::rules::{self, Actor, Op, Outcome};
use super::running::Running;
use crate::error::{ApiError, ApiResult};
use crate::events::{self, GroupChange};
use crate::ids::{ContactId, GroupId, InviteCode, SessionName};
use crate::reply::{Render, Reply};
use crate::sessions::{now_ms, Registry, Session};
use crate::store::{EventRecord, GroupWrite, Remember, StoreError, StoredBytes, Work};

/// Where each group is held and which invite code leads to it, gateway-wide.
#[derive(Default)]
struct Index {
    invites: HashMap<InviteCode, GroupId>,
    holders: HashMap<GroupId, BTreeSet<SessionName>>,
}

pub struct GroupService {
    registry: Arc<Registry>,
    /// Gateway-wide lock per group id: changes to one group are serialised, other groups proceed.
    /// A std Mutex guards only the map lookup; the per-group tokio Mutex is held across the commit.
    locks: Locks,
    /// A std RwLock: updated after commits, read on lookups; never held across an await.
    index: RwLock<Index>,
    /// Test hook: abort the process after the acting commit, before the fan-out.
    abort_before_fanout: bool,
    /// Groups whose last change still has members' shares to apply (see `fanout`).
    catching_up: CatchingUp,
    /// Changes running to their end, even when the request that asked for one went away (the
    /// client hung up): a change cut off between its own commit and its fan-out would leave
    /// the other member sessions behind until a restart. A shutdown waits for them.
    pub running: Arc<Running>,
}

/// A read only a group's admins may make, asked by a session whose account is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAdmin;

type Locks = Mutex<HashMap<GroupId, Arc<tokio::sync::Mutex<()>>>>;

/// A held group lock. Dropped, it forgets the lock when nobody else holds or awaits it, so the
/// map does not grow with every group the gateway has ever seen.
struct GroupGuard<'a> {
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

/// A change made and ready to commit.
struct Made<'a> {
    /// The session that made it: its store takes the change first.
    acting: &'a Arc<Session>,
    /// What the change did, as the events are made from it.
    change: GroupChange<'a>,
    /// When it was made, unix ms.
    now: u64,
    /// The bytes of a picture the change brings.
    fresh: Option<PictureBytes>,
    /// The answer to keep with the change (a request with an `Idempotency-Key`).
    remember: Option<Remember>,
}

pub fn decode(bytes: &[u8]) -> Result<Group, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree: "groups",
        detail: e.to_string(),
    })
}

fn encode(g: &Group) -> String {
    serde_json::to_string(g).unwrap_or_default()
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
            running: Arc::default(),
        });
        svc.resume_fanouts().await?;
        let mut index = Index::default();
        for session in svc.registry.list() {
            for (code, gid) in session.store.invites()? {
                if let (Ok(code), Ok(gid)) = (InviteCode::parse(&code), GroupId::parse(&gid)) {
                    index.invites.insert(code, gid);
                }
            }
            for (gid, _) in session.store.groups()? {
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

    pub(super) fn catching_up(&self) -> &CatchingUp {
        &self.catching_up
    }

    /// Takes the group's gateway-wide lock.
    async fn lock_group(&self, id: &GroupId) -> GroupGuard<'_> {
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

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
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
        let running = self.running.clone();
        running
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
        let id = loop {
            let id = GroupId::random();
            if !self.read_index().holders.contains_key(&id) {
                break id;
            }
        };
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
        let made = Made {
            acting: session,
            change: GroupChange {
                before: None,
                after: Some(&group),
                actor: &actor.id,
                operation: "create",
                changes: &changes,
                now_s: actor.now,
                session: session.name.as_str(),
            },
            now,
            fresh: None,
            remember: reply.remember.take(),
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
        let (this, session, id) = (self.clone(), session.clone(), id.clone());
        let running = self.running.clone();
        running
            .detached(async move { this.mutate_now(&session, &id, op, render).await })
            .await
    }

    async fn mutate_now(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &GroupId,
        op: Op,
        render: Render<Outcome>,
    ) -> ApiResult<Reply> {
        // Held to the answer: a stop waits for this change, and this change sees the stop.
        let _gate = session.gate.read().await;
        session.require_working()?;
        let _guard = self.lock_group(id).await;
        self.caught_up(id).await?;
        // Taken after the wait: a change of accounts waits only for changes being made.
        let _accounts = self.registry.accounts.read().await;
        let before = match &op {
            Op::Join(code) => {
                let g = self.by_invite(code)?;
                if &g.id != id {
                    return Err(Refusal::InviteNotFound.into());
                }
                g
            }
            _ => self.load(session, id)?,
        };
        // A member given by its lid is the member with its number (`lids`).
        let (op, asked) = self.resolve_op(session, &before, op)?;
        let now = now_ms();
        let actor = Actor {
            id: session.me_id(),
            now: now / 1000,
        };
        let operation = op.operation();
        let mut fresh = match &op {
            Op::SetPicture(Some(NewPicture::Bytes { bytes, .. })) => Some(bytes.clone()),
            _ => None,
        };
        let mut outcome =
            rules::apply(&before, &actor, op).map_err(|r| r.in_session(&session.name))?;
        lids::echo(&mut outcome.results, &asked);
        let mut reply = render(&outcome);
        if outcome.changes.is_empty() {
            // Nothing to commit: the caller keeps the answer on its own.
            return Ok(reply);
        }
        // A picture an older version kept inside the record moves out with any change.
        if let Some(bytes) = outcome.group.as_mut().and_then(picture::move_inline) {
            fresh = Some(bytes);
        }
        let made = Made {
            acting: session,
            change: GroupChange {
                before: Some(&before),
                after: outcome.group.as_ref(),
                actor: &actor.id,
                operation,
                changes: &outcome.changes,
                now_s: actor.now,
                session: session.name.as_str(),
            },
            now,
            fresh,
            remember: reply.remember.take(),
        };
        self.commit(made).await?;
        Ok(reply)
    }

    /// The sessions that see this change: the acting one, every local session that holds the
    /// group, and every local session whose account joins it now. A session whose account was
    /// already a participant before the session existed does not hold the group and stays out
    /// until it is added again (see README, "Local network").
    fn affected(
        &self,
        acting: &Arc<Session>,
        before: Option<&Group>,
        after: Option<&Group>,
    ) -> ApiResult<Vec<Arc<Session>>> {
        let mut seen = BTreeSet::new();
        let mut out = vec![acting.clone()];
        seen.insert(acting.name.clone());
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
    fn write_for(
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

    /// Commits a change: the acting session's share with a fan-out record for the others, then
    /// the others' shares.
    async fn commit(self: &Arc<Self>, made: Made<'_>) -> ApiResult<()> {
        let Made {
            acting,
            change,
            now,
            fresh,
            remember,
        } = made;
        let (before, after) = (change.before, change.after);
        let sessions = self.affected(acting, before, after)?;
        let needs_bytes =
            |s: &Arc<Session>| picture::plan_for(&s.me_id(), before, after) == picture::Plan::Set;
        // Read only when a member new to the picture needs it: a rename reads nothing.
        let bytes = match (fresh, after) {
            (Some(b), _) => Some(b),
            (None, Some(a)) if sessions.iter().any(needs_bytes) => self.picture_bytes(acting, a)?,
            (None, _) => None,
        };
        let mut own = None;
        let mut others = Vec::new();
        for s in &sessions {
            let w = self.write_for(s, &change, now, bytes.as_ref());
            if Arc::ptr_eq(s, acting) {
                own = Some(w);
            } else if w.group.is_some()
                || w.invite_del.is_some()
                || w.picture.is_some()
                || !w.events.is_empty()
            {
                others.push((s.name.to_string(), w));
            }
        }
        let Some(own) = own else {
            return Err(ApiError::internal(
                "acting session missing from its own change",
            ));
        };
        let fanout = Fanout { writes: others };
        let fan_record = if fanout.writes.is_empty() {
            None
        } else {
            let bytes = serde_json::to_vec(&fanout).map_err(ApiError::internal)?;
            Some((acting.store.generate_id()?, bytes))
        };
        let fan_id = fan_record.as_ref().map(|(id, _)| *id);
        let rec = acting.record();
        let work = Work::Group {
            write: own,
            fanout: fan_record,
        };
        acting
            .commit_answered(work, self.registry.endpoints(&rec), now, remember)
            .await?;
        // Committed and durable: from here on the answer is a success, whatever the members do.
        self.registry.notify(&acting.name);
        self.update_index(before, after, &sessions);
        if self.abort_before_fanout && fan_id.is_some() {
            tracing::error!("test hook: aborting between the acting commit and the fan-out");
            std::process::abort();
        }
        let Some(id) = fan_id else {
            return Ok(());
        };
        match self.apply_fanout(&fanout).await {
            Ok(()) => {
                if let Err(e) = acting.store.remove_fanout(id) {
                    tracing::warn!(session = %acting.name, "forgetting an applied fan-out record: {e}");
                }
            }
            Err(e) => self.retry_fanout(fanout, Some((acting.clone(), id)), &e),
        }
        Ok(())
    }

    /// Keeps the gateway-wide index in step with a committed change: who holds the group now,
    /// and which invite code leads to it while anyone here still holds it.
    fn update_index(
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
