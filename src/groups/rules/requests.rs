//! Joining by invite, and the join requests it (or a non-admin's add) files while approval is
//! required: the admins approve or reject them.

use super::batch::{each, Declined};
use super::members::{admit, for_done};
use super::{next, next_version, require_admin, Actor, Change, JoinKind, Outcome, RequestAction};
use crate::groups::model::{Group, JoinMethod, JoinRequest, MAX_PARTICIPANTS};
use crate::groups::refusal::{AdminAction, Refusal};
use crate::ids::{ContactId, InviteCode};

pub(super) fn has_request(g: &Group, id: &ContactId) -> bool {
    g.join_requests.iter().any(|r| &r.requester == id)
}

/// Files `requester`'s request to join; the change that announces it.
pub(super) fn request(
    g: &mut Group,
    requester: &ContactId,
    added_by: Option<&ContactId>,
    method: JoinMethod,
    now: u64,
) -> Change {
    g.join_requests.push(JoinRequest {
        requester: requester.clone(),
        added_by: added_by.cloned(),
        method,
        timestamp: now,
    });
    Change::JoinRequest {
        action: RequestAction::Created,
        requester: requester.clone(),
        method,
    }
}

/// The actor, not a member yet, joins by the invite `code`; while approval is required it
/// files a request to join instead.
pub fn join(group: &Group, by: &Actor, code: InviteCode) -> Result<Outcome, Refusal> {
    let mut g = next_version(group);
    if code != g.invite {
        return Err(Refusal::InviteNotFound);
    }
    let (actor, id) = (by.id.clone(), g.id.clone());
    if g.is_member(&actor) {
        return Err(Refusal::AlreadyMember { actor, group: id });
    }
    if g.participants.len() >= MAX_PARTICIPANTS {
        return Err(Refusal::GroupFull { group: id });
    }
    let change = if g.settings.approval_required {
        if has_request(&g, &actor) {
            return Err(Refusal::JoinRequestPending { actor, group: id });
        }
        request(&mut g, &actor, None, JoinMethod::InviteLink, by.now)
    } else {
        admit(&mut g, &actor, by.now);
        let kind = JoinKind::Invite;
        Change::Joined {
            ids: vec![actor],
            kind,
        }
    };
    Ok(Outcome::of(g, vec![change]))
}

/// Admits the requesters (admins only) while the group has room.
pub fn approve(group: &Group, by: &Actor, ids: &[ContactId]) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    require_admin(&g, by, AdminAction::ApproveRequests)?;
    let (done, results) = each(ids, |id| {
        if !has_request(&g, id) {
            return Err(Declined::NoJoinRequest);
        }
        if g.participants.len() >= MAX_PARTICIPANTS {
            let group = g.id.clone();
            return Err(Declined::GroupFull { group });
        }
        g.join_requests.retain(|r| &r.requester != id);
        if g.is_member(id) {
            return Ok(None);
        }
        admit(&mut g, id, by.now);
        Ok(Some(id.clone()))
    });
    let kind = JoinKind::Approve;
    let changes = for_done(done, |ids| Change::Joined { ids, kind });
    Ok(Outcome::batch(g, changes.into_iter().collect(), results))
}

/// Drops the requests (admins only); each requester hears of its own.
pub fn reject(group: &Group, by: &Actor, ids: &[ContactId]) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    require_admin(&g, by, AdminAction::RejectRequests)?;
    let (changes, results) = each(ids, |id| {
        let i = g.join_requests.iter().position(|r| &r.requester == id);
        let req = g.join_requests.remove(i.ok_or(Declined::NoJoinRequest)?);
        Ok(Some(Change::JoinRequest {
            action: RequestAction::Rejected,
            requester: id.clone(),
            method: req.method,
        }))
    });
    Ok(Outcome::batch(g, changes, results))
}
