//! The rules of a group, as WhatsApp has them: one pure function per operation, from (group,
//! actor, input) to the new group and the changes that happened, or a `Refusal`. No I/O here,
//! and nothing of sessions: what a session is told is the service's and the events' business.
//!
//! By family: `info` (subject, description, picture, settings, invite code), `members` (create,
//! add, remove, promote, demote, leave, delete), `requests` (join by invite, approve, reject);
//! `batch` runs the per-participant operations id by id.

mod batch;
mod community;
mod info;
mod members;
mod requests;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::model::{Group, JoinMethod, NewPicture, Role};
use super::refusal::{AdminAction, CommunityAction, Refusal};
use crate::ids::{ContactId, InviteCode};

pub use batch::{Declined, ParticipantResult, ResultError};
pub use community::{
    announce_subject, create_community, delete_community, follow, leave_community, link,
    require_community_admin, unlink, Family, LinkResult, Step,
};
pub use info::{revoke_invite, set_description, set_picture, set_setting, set_subject, Setting};
pub use members::{add, create, delete, demote, leave, promote, remove};
pub use requests::{approve, join, reject};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinKind {
    Create,
    Add,
    Invite,
    Approve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaveKind {
    Leave,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestAction {
    Created,
    Rejected,
    Revoked,
}

/// One thing that happened to a group; events are made from these. In cluster mode they travel
/// in the group log, so that each node makes its own members' events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    Joined {
        ids: Vec<ContactId>,
        kind: JoinKind,
    },
    Left {
        ids: Vec<ContactId>,
        kind: LeaveKind,
    },
    Promoted {
        ids: Vec<ContactId>,
    },
    Demoted {
        ids: Vec<ContactId>,
    },
    /// Only the changed fields, named as in GroupInfo.
    Updated {
        fields: Map<String, Value>,
        /// Not used by the events: a change read from the log has it empty.
        #[serde(skip)]
        operation: &'static str,
    },
    /// The picture was set or removed. Its URL depends on the session that serves it, so the
    /// events show it (`Group::picture_url`), not the rule.
    PictureChanged,
    JoinRequest {
        action: RequestAction,
        requester: ContactId,
        method: JoinMethod,
    },
}

/// Who makes a change, and when (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: ContactId,
    pub now: u64,
}

/// A change to an existing group.
#[derive(Debug, Clone)]
pub enum Op {
    SetSubject(String),
    SetDescription(String),
    SetPicture(Option<NewPicture>),
    SetSetting(Setting, bool),
    RevokeInvite(InviteCode),
    Add(Vec<ContactId>),
    Remove(Vec<ContactId>),
    Promote(Vec<ContactId>),
    Demote(Vec<ContactId>),
    Leave,
    Delete,
    Join(InviteCode),
    Approve(Vec<ContactId>),
    Reject(Vec<ContactId>),
}

impl Op {
    /// How those who arrive join, and those who go leave, a community's announcement group when
    /// this op changes who is in one of its linked groups.
    pub fn kinds(&self) -> (JoinKind, LeaveKind) {
        match self {
            Op::Join(_) => (JoinKind::Invite, LeaveKind::Leave),
            Op::Approve(_) => (JoinKind::Approve, LeaveKind::Leave),
            Op::Leave => (JoinKind::Add, LeaveKind::Leave),
            _ => (JoinKind::Add, LeaveKind::Remove),
        }
    }

    /// The name WAHA's `_data.operation` carries.
    pub fn operation(&self) -> &'static str {
        match self {
            Op::SetSubject(_) => "subject",
            Op::SetDescription(_) => "description",
            Op::SetPicture(_) => "picture",
            Op::SetSetting(..) => "settings",
            Op::RevokeInvite(_) => "revoke_invite",
            Op::Add(_) => "add",
            Op::Remove(_) => "remove",
            Op::Promote(_) => "promote",
            Op::Demote(_) => "demote",
            Op::Leave => "leave",
            Op::Delete => "delete",
            Op::Join(_) => "invite",
            Op::Approve(_) => "approve",
            Op::Reject(_) => "reject",
        }
    }
}

/// What a change did: the group after it (`None` when deleted), what happened, and the
/// per-id results of a batch.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub group: Option<Group>,
    pub changes: Vec<Change>,
    pub results: Vec<ParticipantResult>,
}

impl Outcome {
    /// The group after a change that keeps it, with what happened and no per-id results.
    fn of(group: Group, changes: Vec<Change>) -> Self {
        Self {
            group: Some(group),
            changes,
            results: Vec::new(),
        }
    }

    /// The group after a batch, with what happened and a result per requested id.
    fn batch(group: Group, changes: Vec<Change>, results: Vec<ParticipantResult>) -> Self {
        Self {
            group: Some(group),
            changes,
            results,
        }
    }
}

/// Applies `op` by `by` to `group`: the operation's own rule.
pub fn apply(group: &Group, by: &Actor, op: Op) -> Result<Outcome, Refusal> {
    community_guard(group, by, &op)?;
    match op {
        Op::SetSubject(s) => set_subject(group, by, s),
        Op::SetDescription(d) => set_description(group, by, d),
        Op::SetPicture(p) => set_picture(group, by, p),
        Op::SetSetting(setting, on) => set_setting(group, by, setting, on),
        Op::RevokeInvite(code) => revoke_invite(group, by, code),
        Op::Add(ids) => add(group, by, &ids),
        Op::Remove(ids) => remove(group, by, &ids),
        Op::Promote(ids) => promote(group, by, &ids),
        Op::Demote(ids) => demote(group, by, &ids),
        Op::Leave => leave(group, by),
        Op::Delete => delete(group, by),
        Op::Join(code) => join(group, by, code),
        Op::Approve(ids) => approve(group, by, &ids),
        Op::Reject(ids) => reject(group, by, &ids),
    }
}

/// What a community and its announcement group refuse as groups: who is in them follows the
/// community's own members and its linked groups, so nobody joins, leaves or is added to them
/// on their own; and only community admins change the community's subject or description.
fn community_guard(g: &Group, by: &Actor, op: &Op) -> Result<(), Refusal> {
    let membership = matches!(
        op,
        Op::Add(_)
            | Op::Remove(_)
            | Op::Promote(_)
            | Op::Demote(_)
            | Op::Leave
            | Op::Delete
            | Op::Join(_)
            | Op::Approve(_)
            | Op::Reject(_)
    );
    if g.community.is_none() && g.announces.is_none() {
        return Ok(());
    }
    if !g.is_member(&by.id) && !matches!(op, Op::Join(_)) {
        return Err(Refusal::NotAMember {
            group: g.id.clone(),
        });
    }
    if membership {
        let what = "its participants follow the community (use /api/{session}/communities/{id})";
        return Err(Refusal::CommunityManaged {
            group: g.id.clone(),
            what,
        });
    }
    match op {
        Op::SetSubject(_) if g.community.is_some() => {
            require_community_admin(g, by, CommunityAction::Rename)
        }
        Op::SetDescription(_) if g.community.is_some() => {
            require_community_admin(g, by, CommunityAction::Describe)
        }
        _ => Ok(()),
    }
}

/// The group's next version, to change, if `by` is a member: every operation but a join by
/// invite starts here.
fn next(group: &Group, by: &Actor) -> Result<Group, Refusal> {
    if !group.is_member(&by.id) {
        return Err(Refusal::NotAMember {
            group: group.id.clone(),
        });
    }
    Ok(next_version(group))
}

fn next_version(group: &Group) -> Group {
    let mut g = group.clone();
    g.version += 1;
    g
}

fn is_admin(g: &Group, id: &ContactId) -> bool {
    g.role_of(id).is_some_and(Role::is_admin)
}

fn require_admin(g: &Group, by: &Actor, action: AdminAction) -> Result<(), Refusal> {
    if is_admin(g, &by.id) {
        Ok(())
    } else {
        Err(Refusal::NotAdmin { action })
    }
}

#[cfg(test)]
mod tests;
