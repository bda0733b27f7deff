//! The rules of a group, as WhatsApp has them: pure functions from (group, actor, input) to the
//! new group and the changes that happened, or a refusal. No I/O here.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::model::{
    Group, JoinMethod, JoinRequest, Member, NewPicture, Role, Settings, MAX_PARTICIPANTS,
};
use crate::error::ApiError;
use crate::ids::{ContactId, GroupId, InviteCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinKind {
    Create,
    Add,
    Invite,
    Approve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaveKind {
    Leave,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestAction {
    Created,
    Rejected,
    Revoked,
}

/// One thing that happened to a group; events are made from these.
#[derive(Debug, Clone, PartialEq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    InfoAdminOnly,
    MessagesAdminOnly,
    MembersCanAdd,
    ApprovalRequired,
}

impl Setting {
    fn field(self) -> &'static str {
        match self {
            Setting::InfoAdminOnly => "infoAdminOnly",
            Setting::MessagesAdminOnly => "membersCanSendMessages",
            Setting::MembersCanAdd => "membersCanAddNewMember",
            Setting::ApprovalRequired => "newMembersApprovalRequired",
        }
    }
    pub fn get(self, s: &Settings) -> bool {
        match self {
            Setting::InfoAdminOnly => s.info_admin_only,
            Setting::MessagesAdminOnly => s.messages_admin_only,
            Setting::MembersCanAdd => s.members_can_add,
            Setting::ApprovalRequired => s.approval_required,
        }
    }
    fn set(self, s: &mut Settings, v: bool) {
        match self {
            Setting::InfoAdminOnly => s.info_admin_only = v,
            Setting::MessagesAdminOnly => s.messages_admin_only = v,
            Setting::MembersCanAdd => s.members_can_add = v,
            Setting::ApprovalRequired => s.approval_required = v,
        }
    }
    /// The value as its GroupInfo field shows it (`membersCanSendMessages` is the inverse).
    fn shown(self, v: bool) -> bool {
        if self == Setting::MessagesAdminOnly {
            !v
        } else {
            v
        }
    }
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

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ResultError {
    pub code: String,
    pub message: String,
}

/// One per requested id, in request order.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[schema(example = json!({"id": "22222222222@c.us", "success": false, "error": {"code": "already_member", "message": "22222222222@c.us is already a member"}}))]
pub struct ParticipantResult {
    pub id: String,
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ResultError>,
}

impl ParticipantResult {
    fn ok(id: &ContactId) -> Self {
        Self {
            id: id.to_string(),
            success: true,
            error: None,
        }
    }
    fn err(id: &ContactId, code: &str, message: String) -> Self {
        Self {
            id: id.to_string(),
            success: false,
            error: Some(ResultError {
                code: code.to_owned(),
                message,
            }),
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

pub fn group_not_found(id: &GroupId, session: &str) -> ApiError {
    ApiError::not_found(
        "group_not_found",
        format!("Group {id} not found in session \"{session}\""),
    )
}

/// A new group: the creator is superadmin, the others participants.
pub fn create(
    id: GroupId,
    invite: InviteCode,
    creator: &ContactId,
    subject: String,
    others: &[ContactId],
    now: u64,
) -> Result<(Group, Vec<Change>), ApiError> {
    let mut participants = vec![Member {
        id: creator.clone(),
        role: Role::Superadmin,
        joined_at: now,
    }];
    for id in others {
        if !participants.iter().any(|m| &m.id == id) {
            participants.push(Member {
                id: id.clone(),
                role: Role::Participant,
                joined_at: now,
            });
        }
    }
    if participants.len() > MAX_PARTICIPANTS {
        return Err(ApiError::bad_request(format!(
            "participants: a group holds at most {MAX_PARTICIPANTS} participants including the creator"
        )));
    }
    let ids = participants.iter().map(|m| m.id.clone()).collect();
    let group = Group {
        id,
        subject,
        description: String::new(),
        owner: creator.clone(),
        creation: now,
        participants,
        settings: Settings {
            info_admin_only: false,
            messages_admin_only: false,
            members_can_add: false,
            approval_required: false,
        },
        invite,
        picture: None,
        join_requests: Vec::new(),
        version: 1,
    };
    Ok((
        group,
        vec![Change::Joined {
            ids,
            kind: JoinKind::Create,
        }],
    ))
}

fn require_admin(g: &Group, actor: &ContactId, rule: &str) -> Result<(), ApiError> {
    if g.role_of(actor).is_some_and(Role::is_admin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            message: format!("only admins can {rule}"),
            code: "not_admin",
        })
    }
}

fn require_info_right(g: &Group, actor: &ContactId) -> Result<(), ApiError> {
    if g.settings.info_admin_only {
        require_admin(g, actor, "change group info").map_err(|_| ApiError::Forbidden {
            message: "only admins can change group info (infoAdminOnly is on)".into(),
            code: "info_admin_only",
        })
    } else {
        Ok(())
    }
}

fn updated(field: &str, value: Value, operation: &'static str) -> Change {
    let mut fields = Map::new();
    fields.insert(field.to_owned(), value);
    Change::Updated { fields, operation }
}

/// Applies `op` by `actor` to `group`. `session` only names the session in a 404.
pub fn apply(
    group: &Group,
    actor: &ContactId,
    op: Op,
    now: u64,
    session: &str,
) -> Result<Outcome, ApiError> {
    let mut g = group.clone();
    g.version += 1;
    let mut changes = Vec::new();
    let mut results = Vec::new();
    if !matches!(op, Op::Join(_)) && !g.is_member(actor) {
        return Err(group_not_found(&g.id, session));
    }
    let operation = op.operation();
    match op {
        Op::SetSubject(s) => {
            require_info_right(&g, actor)?;
            g.subject = s.clone();
            changes.push(updated("subject", s.into(), operation));
        }
        Op::SetDescription(d) => {
            require_info_right(&g, actor)?;
            g.description = d.clone();
            changes.push(updated("description", d.into(), operation));
        }
        Op::SetPicture(p) => {
            require_info_right(&g, actor)?;
            g.picture = p.as_ref().map(NewPicture::reference);
            changes.push(Change::PictureChanged);
        }
        Op::SetSetting(setting, v) => {
            require_admin(&g, actor, "change group settings")?;
            setting.set(&mut g.settings, v);
            changes.push(updated(setting.field(), setting.shown(v).into(), operation));
        }
        Op::RevokeInvite(code) => {
            require_admin(&g, actor, "revoke the invite code")?;
            g.invite = code;
            changes.push(updated("invite", g.invite.url().into(), operation));
        }
        Op::Add(ids) => add(&mut g, actor, &ids, now, &mut changes, &mut results)?,
        Op::Remove(ids) => {
            require_admin(&g, actor, "remove participants")?;
            let mut removed = Vec::new();
            for id in &ids {
                let r = match g.role_of(id) {
                    None => {
                        ParticipantResult::err(id, "not_a_member", format!("{id} is not a member"))
                    }
                    Some(Role::Superadmin) => ParticipantResult::err(
                        id,
                        "is_superadmin",
                        "the superadmin cannot be removed".into(),
                    ),
                    Some(_) if id == actor => ParticipantResult::err(
                        id,
                        "is_self",
                        "use POST /groups/{id}/leave to leave a group".into(),
                    ),
                    Some(_) => {
                        g.participants.retain(|m| &m.id != id);
                        removed.push(id.clone());
                        ParticipantResult::ok(id)
                    }
                };
                results.push(r);
            }
            if !removed.is_empty() {
                changes.push(Change::Left {
                    ids: removed,
                    kind: LeaveKind::Remove,
                });
            }
        }
        Op::Promote(ids) => {
            require_admin(&g, actor, "promote participants")?;
            let mut done = Vec::new();
            for id in &ids {
                let r = match g.role_of(id) {
                    None => {
                        ParticipantResult::err(id, "not_a_member", format!("{id} is not a member"))
                    }
                    Some(Role::Participant) => {
                        set_role(&mut g, id, Role::Admin);
                        done.push(id.clone());
                        ParticipantResult::ok(id)
                    }
                    Some(_) => ParticipantResult::err(
                        id,
                        "already_admin",
                        format!("{id} is already an admin"),
                    ),
                };
                results.push(r);
            }
            if !done.is_empty() {
                changes.push(Change::Promoted { ids: done });
            }
        }
        Op::Demote(ids) => {
            require_admin(&g, actor, "demote admins")?;
            let mut done = Vec::new();
            for id in &ids {
                let r = match g.role_of(id) {
                    None => {
                        ParticipantResult::err(id, "not_a_member", format!("{id} is not a member"))
                    }
                    Some(Role::Superadmin) => ParticipantResult::err(
                        id,
                        "is_superadmin",
                        "the superadmin cannot be demoted".into(),
                    ),
                    Some(Role::Participant) => {
                        ParticipantResult::err(id, "not_an_admin", format!("{id} is not an admin"))
                    }
                    Some(Role::Admin) => {
                        set_role(&mut g, id, Role::Participant);
                        if g.participants.iter().any(|m| m.role.is_admin()) {
                            done.push(id.clone());
                            ParticipantResult::ok(id)
                        } else {
                            set_role(&mut g, id, Role::Admin);
                            ParticipantResult::err(
                                id,
                                "last_admin",
                                "a group keeps at least one admin".into(),
                            )
                        }
                    }
                };
                results.push(r);
            }
            if !done.is_empty() {
                changes.push(Change::Demoted { ids: done });
            }
        }
        Op::Leave => {
            g.participants.retain(|m| &m.id != actor);
            changes.push(Change::Left {
                ids: vec![actor.clone()],
                kind: LeaveKind::Leave,
            });
            if !g.participants.iter().any(|m| m.role.is_admin()) {
                // As WhatsApp: the longest-standing participant inherits the group.
                if let Some(first) = g.participants.first_mut() {
                    first.role = Role::Admin;
                    changes.push(Change::Promoted {
                        ids: vec![first.id.clone()],
                    });
                }
            }
        }
        Op::Delete => {
            require_admin(&g, actor, "delete the group")?;
            let others: Vec<ContactId> = g
                .participants
                .iter()
                .map(|m| m.id.clone())
                .filter(|id| id != actor)
                .collect();
            if !others.is_empty() {
                changes.push(Change::Left {
                    ids: others,
                    kind: LeaveKind::Remove,
                });
            }
            changes.push(Change::Left {
                ids: vec![actor.clone()],
                kind: LeaveKind::Leave,
            });
            return Ok(Outcome {
                group: None,
                changes,
                results,
            });
        }
        Op::Join(code) => {
            if code != g.invite {
                return Err(ApiError::not_found(
                    "invite_not_found",
                    "invite code not found or revoked",
                ));
            }
            if g.is_member(actor) {
                return Err(ApiError::conflict(
                    "already_member",
                    format!("{actor} is already a member of {}", g.id),
                ));
            }
            if g.participants.len() >= MAX_PARTICIPANTS {
                return Err(ApiError::conflict(
                    "group_full",
                    format!("group {} is full", g.id),
                ));
            }
            if g.settings.approval_required {
                if g.join_requests.iter().any(|r| &r.requester == actor) {
                    return Err(ApiError::conflict(
                        "join_request_pending",
                        format!("{actor} already asked to join {}", g.id),
                    ));
                }
                request(
                    &mut g,
                    actor,
                    None,
                    JoinMethod::InviteLink,
                    now,
                    &mut changes,
                );
            } else {
                g.participants.push(Member {
                    id: actor.clone(),
                    role: Role::Participant,
                    joined_at: now,
                });
                changes.push(Change::Joined {
                    ids: vec![actor.clone()],
                    kind: JoinKind::Invite,
                });
            }
        }
        Op::Approve(ids) => {
            require_admin(&g, actor, "approve join requests")?;
            let mut done = Vec::new();
            for id in &ids {
                let r = if !g.join_requests.iter().any(|r| &r.requester == id) {
                    ParticipantResult::err(
                        id,
                        "no_join_request",
                        format!("{id} has no pending join request"),
                    )
                } else if g.participants.len() >= MAX_PARTICIPANTS {
                    ParticipantResult::err(id, "group_full", format!("group {} is full", g.id))
                } else {
                    g.join_requests.retain(|r| &r.requester != id);
                    if !g.is_member(id) {
                        g.participants.push(Member {
                            id: id.clone(),
                            role: Role::Participant,
                            joined_at: now,
                        });
                        done.push(id.clone());
                    }
                    ParticipantResult::ok(id)
                };
                results.push(r);
            }
            if !done.is_empty() {
                changes.push(Change::Joined {
                    ids: done,
                    kind: JoinKind::Approve,
                });
            }
        }
        Op::Reject(ids) => {
            require_admin(&g, actor, "reject join requests")?;
            for id in &ids {
                let pos = g.join_requests.iter().position(|r| &r.requester == id);
                let r = match pos {
                    None => ParticipantResult::err(
                        id,
                        "no_join_request",
                        format!("{id} has no pending join request"),
                    ),
                    Some(i) => {
                        let req = g.join_requests.remove(i);
                        changes.push(Change::JoinRequest {
                            action: RequestAction::Rejected,
                            requester: id.clone(),
                            method: req.method,
                        });
                        ParticipantResult::ok(id)
                    }
                };
                results.push(r);
            }
        }
    }
    Ok(Outcome {
        group: Some(g),
        changes,
        results,
    })
}

fn set_role(g: &mut Group, id: &ContactId, role: Role) {
    if let Some(m) = g.participants.iter_mut().find(|m| &m.id == id) {
        m.role = role;
    }
}

fn request(
    g: &mut Group,
    requester: &ContactId,
    added_by: Option<&ContactId>,
    method: JoinMethod,
    now: u64,
    changes: &mut Vec<Change>,
) {
    g.join_requests.push(JoinRequest {
        requester: requester.clone(),
        added_by: added_by.cloned(),
        method,
        timestamp: now,
    });
    changes.push(Change::JoinRequest {
        action: RequestAction::Created,
        requester: requester.clone(),
        method,
    });
}

fn add(
    g: &mut Group,
    actor: &ContactId,
    ids: &[ContactId],
    now: u64,
    changes: &mut Vec<Change>,
    results: &mut Vec<ParticipantResult>,
) -> Result<(), ApiError> {
    let is_admin = g.role_of(actor).is_some_and(Role::is_admin);
    if !is_admin && !g.settings.members_can_add {
        return Err(ApiError::Forbidden {
            message: "only admins can add participants (membersCanAddNewMember is off)".into(),
            code: "not_admin",
        });
    }
    let as_request = !is_admin && g.settings.approval_required;
    let mut added = Vec::new();
    for id in ids {
        let r = if g.is_member(id) {
            ParticipantResult::err(id, "already_member", format!("{id} is already a member"))
        } else if as_request {
            if g.join_requests.iter().any(|r| &r.requester == id) {
                ParticipantResult::err(
                    id,
                    "join_request_pending",
                    format!("{id} already has a pending join request"),
                )
            } else {
                request(g, id, Some(actor), JoinMethod::NonAdminAdd, now, changes);
                ParticipantResult::ok(id)
            }
        } else if g.participants.len() >= MAX_PARTICIPANTS {
            ParticipantResult::err(
                id,
                "group_full",
                format!("group is full ({MAX_PARTICIPANTS} participants)"),
            )
        } else {
            g.join_requests.retain(|r| &r.requester != id);
            g.participants.push(Member {
                id: id.clone(),
                role: Role::Participant,
                joined_at: now,
            });
            added.push(id.clone());
            ParticipantResult::ok(id)
        };
        results.push(r);
    }
    if !added.is_empty() {
        changes.push(Change::Joined {
            ids: added,
            kind: JoinKind::Add,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
