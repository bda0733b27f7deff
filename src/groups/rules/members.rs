//! Who is in the group and with which role: create, add, remove, promote, demote, leave and
//! delete.

use super::batch::{each, Declined};
use super::requests::{has_request, request};
use super::{is_admin, next, require_admin, Actor, Change, JoinKind, LeaveKind, Outcome};
use crate::groups::model::{Group, JoinMethod, Member, Role, Settings, MAX_PARTICIPANTS};
use crate::groups::refusal::{AdminAction, Refusal};
use crate::ids::{ContactId, GroupId, InviteCode};

/// A new group: the creator is superadmin, the others participants, in the order given and
/// each once.
pub fn create(
    id: GroupId,
    invite: InviteCode,
    by: &Actor,
    subject: String,
    others: &[ContactId],
) -> Result<(Group, Vec<Change>), Refusal> {
    // Ids reach the rules with every lid the service could resolve replaced by its number: a
    // lid left names no account known here, and a group keeps numbers.
    if let Some(id) = others.iter().find(|id| id.is_lid()) {
        return Err(Refusal::LidNotFound { id: id.clone() });
    }
    let mut participants = vec![Member {
        id: by.id.clone(),
        role: Role::Superadmin,
        joined_at: by.now,
    }];
    for id in others {
        if !participants.iter().any(|m| &m.id == id) {
            participants.push(Member {
                id: id.clone(),
                role: Role::Participant,
                joined_at: by.now,
            });
        }
    }
    if participants.len() > MAX_PARTICIPANTS {
        return Err(Refusal::TooManyParticipants);
    }
    let ids = participants.iter().map(|m| m.id.clone()).collect();
    let group = Group {
        id,
        subject,
        description: String::new(),
        owner: by.id.clone(),
        creation: by.now,
        participants,
        settings: Settings {
            info_admin_only: false,
            messages_admin_only: false,
            members_can_add: false,
            approval_required: false,
            members_can_share_history: false,
        },
        invite,
        picture: None,
        join_requests: Vec::new(),
        version: 1,
        parent: None,
        announces: None,
        community: None,
    };
    let kind = JoinKind::Create;
    Ok((group, vec![Change::Joined { ids, kind }]))
}

/// Makes `id` a participant, the last to join.
pub(super) fn admit(g: &mut Group, id: &ContactId, now: u64) {
    g.participants.push(Member {
        id: id.clone(),
        role: Role::Participant,
        joined_at: now,
    });
}

fn set_role(g: &mut Group, id: &ContactId, role: Role) {
    if let Some(m) = g.participants.iter_mut().find(|m| &m.id == id) {
        m.role = role;
    }
}

/// The change `make` names for the ids a batch did, unless it did none.
pub(super) fn for_done(
    ids: Vec<ContactId>,
    make: impl FnOnce(Vec<ContactId>) -> Change,
) -> Option<Change> {
    (!ids.is_empty()).then(|| make(ids))
}

/// Adds participants: admins always; other members only while `membersCanAddNewMember` is
/// on, and then as join requests while approval is required. An admin's add settles a
/// pending request.
pub fn add(group: &Group, by: &Actor, ids: &[ContactId]) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    let admin = is_admin(&g, &by.id);
    if !admin && !g.settings.members_can_add {
        return Err(Refusal::MembersCannotAdd);
    }
    let as_request = !admin && g.settings.approval_required;
    let mut changes = Vec::new();
    let (added, results) = each(ids, |id| {
        if g.is_member(id) {
            Err(Declined::AlreadyMember)
        } else if id.is_lid() {
            // Unresolved by the service (see `create`): never stored as a second member.
            Err(Declined::LidNotFound)
        } else if as_request {
            if has_request(&g, id) {
                return Err(Declined::JoinRequestPending);
            }
            let method = JoinMethod::NonAdminAdd;
            changes.push(request(&mut g, id, Some(&by.id), method, by.now));
            Ok(None)
        } else if g.participants.len() >= MAX_PARTICIPANTS {
            Err(Declined::Full)
        } else {
            g.join_requests.retain(|r| &r.requester != id);
            admit(&mut g, id, by.now);
            Ok(Some(id.clone()))
        }
    });
    let kind = JoinKind::Add;
    changes.extend(for_done(added, |ids| Change::Joined { ids, kind }));
    Ok(Outcome::batch(g, changes, results))
}

/// Removes members (admins only); never the superadmin, nor the actor (who leaves instead).
pub fn remove(group: &Group, by: &Actor, ids: &[ContactId]) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    require_admin(&g, by, AdminAction::RemoveParticipants)?;
    let (removed, results) = each(ids, |id| match g.role_of(id) {
        None => Err(Declined::NotAMember),
        Some(Role::Superadmin) => Err(Declined::SuperadminNotRemovable),
        Some(_) if id == &by.id => Err(Declined::IsSelf),
        Some(_) => {
            g.participants.retain(|m| &m.id != id);
            Ok(Some(id.clone()))
        }
    });
    let kind = LeaveKind::Remove;
    let changes = for_done(removed, |ids| Change::Left { ids, kind });
    Ok(Outcome::batch(g, changes.into_iter().collect(), results))
}

/// Makes participants admins (admins only).
pub fn promote(group: &Group, by: &Actor, ids: &[ContactId]) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    require_admin(&g, by, AdminAction::PromoteParticipants)?;
    let (done, results) = each(ids, |id| match g.role_of(id) {
        None => Err(Declined::NotAMember),
        Some(Role::Participant) => {
            set_role(&mut g, id, Role::Admin);
            Ok(Some(id.clone()))
        }
        Some(_) => Err(Declined::AlreadyAdmin),
    });
    let changes = for_done(done, |ids| Change::Promoted { ids });
    Ok(Outcome::batch(g, changes.into_iter().collect(), results))
}

/// Makes admins participants (admins only); never the superadmin, nor the group's last admin.
pub fn demote(group: &Group, by: &Actor, ids: &[ContactId]) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    require_admin(&g, by, AdminAction::DemoteAdmins)?;
    let (done, results) = each(ids, |id| match g.role_of(id) {
        None => Err(Declined::NotAMember),
        Some(Role::Superadmin) => Err(Declined::SuperadminNotDemotable),
        Some(Role::Participant) => Err(Declined::NotAnAdmin),
        Some(Role::Admin) => {
            set_role(&mut g, id, Role::Participant);
            if g.participants.iter().any(|m| m.role.is_admin()) {
                Ok(Some(id.clone()))
            } else {
                set_role(&mut g, id, Role::Admin);
                Err(Declined::LastAdmin)
            }
        }
    });
    let changes = for_done(done, |ids| Change::Demoted { ids });
    Ok(Outcome::batch(g, changes.into_iter().collect(), results))
}

/// The actor leaves. If it was the last admin, the longest-standing participant inherits the
/// group, as WhatsApp.
pub fn leave(group: &Group, by: &Actor) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    g.participants.retain(|m| m.id != by.id);
    let mut changes = vec![Change::Left {
        ids: vec![by.id.clone()],
        kind: LeaveKind::Leave,
    }];
    if !g.participants.iter().any(|m| m.role.is_admin()) {
        if let Some(first) = g.participants.first_mut() {
            first.role = Role::Admin;
            changes.push(Change::Promoted {
                ids: vec![first.id.clone()],
            });
        }
    }
    Ok(Outcome::of(g, changes))
}

/// Deletes the group (admins only): everyone else is removed, then the actor leaves.
pub fn delete(group: &Group, by: &Actor) -> Result<Outcome, Refusal> {
    let g = next(group, by)?;
    require_admin(&g, by, AdminAction::DeleteGroup)?;
    let others: Vec<ContactId> = g
        .participants
        .iter()
        .map(|m| m.id.clone())
        .filter(|id| id != &by.id)
        .collect();
    let kind = LeaveKind::Remove;
    let mut changes: Vec<Change> = for_done(others, |ids| Change::Left { ids, kind })
        .into_iter()
        .collect();
    changes.push(Change::Left {
        ids: vec![by.id.clone()],
        kind: LeaveKind::Leave,
    });
    Ok(Outcome {
        group: None,
        changes,
        results: Vec::new(),
    })
}
