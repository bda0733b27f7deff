//! Communities (contract §6): a community is a group record with `community` set. It links up to
//! `MAX_LINKED_GROUPS` groups and owns an announcement group in which only admins send. Its
//! participants are derived (`resync`): its own members and the members of every linked group;
//! the announcement group's participants are the community's, with the same roles. A change
//! here is a list of `Step`s, one per group it touches, that the service commits together.

use serde_json::{Map, Value};

use super::members::{create, delete, leave};
use super::{is_admin, next_version, Actor, Change, JoinKind, LeaveKind};
use crate::groups::model::{Community, Group, Link, Member, Role, MAX_LINKED_GROUPS};
use crate::groups::refusal::{CommunityAction, Refusal};
use crate::ids::{ContactId, GroupId, InviteCode};

/// One group's part of a change that touches several: the group before (`None`: new) and
/// after (`None`: gone), what happened to it, and the operation its events name.
#[derive(Debug, Clone)]
pub struct Step {
    pub before: Option<Group>,
    pub after: Option<Group>,
    pub changes: Vec<Change>,
    pub operation: &'static str,
}

/// A community and its announcement group, as a change finds them.
#[derive(Debug, Clone)]
pub struct Family {
    pub community: Group,
    pub announcement: Group,
}

/// How one requested group of a link or unlink fared when it did not break a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkResult {
    Done,
    /// The session does not have the group.
    NotFound,
    /// A link of a group already linked to this community.
    AlreadyLinked,
    /// An unlink of a group not linked to this community.
    NotLinked,
}

/// Refuses unless `by` is an admin of the community.
pub fn require_community_admin(
    c: &Group,
    by: &Actor,
    action: CommunityAction,
) -> Result<(), Refusal> {
    if !c.is_member(&by.id) {
        return Err(Refusal::NotAMember {
            group: c.id.clone(),
        });
    }
    if is_admin(c, &by.id) {
        Ok(())
    } else {
        Err(Refusal::NotCommunityAdmin { action })
    }
}

/// A new community `ids.0` with `by` as superadmin and `others` as its own members, and its
/// announcement group `ids.1` (`messages-admin-only` on) with the same participants.
pub fn create_community(
    ids: (GroupId, GroupId),
    invites: (InviteCode, InviteCode),
    by: &Actor,
    subject: String,
    description: String,
    others: &[ContactId],
) -> Result<Vec<Step>, Refusal> {
    let (mut c, _) = create(ids.0, invites.0, by, subject.clone(), others)?;
    let (mut a, joined) = create(ids.1, invites.1, by, subject, others)?;
    c.description = description;
    c.settings.info_admin_only = true;
    c.community = Some(Community {
        announcement: a.id.clone(),
        own: c.participants.iter().map(|m| m.id.clone()).collect(),
        links: Vec::new(),
    });
    a.settings.messages_admin_only = true;
    a.settings.info_admin_only = true;
    a.announces = Some(c.id.clone());
    Ok(vec![
        step(None, Some(c), Vec::new(), "create"),
        step(None, Some(a), joined, "create"),
    ])
}

fn step(
    before: Option<Group>,
    after: Option<Group>,
    changes: Vec<Change>,
    op: &'static str,
) -> Step {
    Step {
        before,
        after,
        changes,
        operation: op,
    }
}

/// The `group.v2.update` change of a group's `parentGroupId`.
fn parent_changed(parent: Option<&GroupId>, operation: &'static str) -> Change {
    let mut fields = Map::new();
    let value = parent.map_or(Value::Null, |p| Value::from(p.as_str()));
    fields.insert("parentGroupId".into(), value);
    Change::Updated { fields, operation }
}

fn links_mut(c: &mut Group) -> &mut Vec<Link> {
    &mut c
        .community
        .get_or_insert_with(|| Community {
            announcement: c.id.clone(),
            own: Vec::new(),
            links: Vec::new(),
        })
        .links
}

fn link_of(g: &Group) -> Link {
    Link {
        id: g.id.clone(),
        subject: g.subject.clone(),
        members: g.participants.iter().map(|m| m.id.clone()).collect(),
    }
}

/// Links `groups` (each with the session's copy, `None` when it has none) to the community.
/// A rule broken for any id refuses the whole request; otherwise one result per id.
pub fn link(
    fam: &Family,
    groups: &[(GroupId, Option<Group>)],
    by: &Actor,
) -> Result<(Vec<Step>, Vec<LinkResult>), Refusal> {
    let c0 = &fam.community;
    require_community_admin(c0, by, CommunityAction::Link)?;
    let mut c = next_version(c0);
    let (mut steps, mut results) = (Vec::new(), Vec::new());
    for (id, g) in groups {
        let Some(g) = g.as_ref().filter(|g| g.is_member(&by.id)) else {
            results.push(LinkResult::NotFound);
            continue;
        };
        if g.parent.as_ref() == Some(&c.id)
            || steps
                .iter()
                .any(|s: &Step| s.before.as_ref().is_some_and(|b| &b.id == id))
        {
            results.push(LinkResult::AlreadyLinked);
            continue;
        }
        if let Some(other) = g.parent.clone().or(g.announces.clone()) {
            return Err(Refusal::InOtherCommunity {
                group: id.clone(),
                community: other,
            });
        }
        if g.community.is_some() {
            let what = "a community cannot be linked to another";
            return Err(Refusal::CommunityManaged {
                group: id.clone(),
                what,
            });
        }
        if !is_admin(g, &by.id) {
            return Err(Refusal::NotGroupAdmin { group: id.clone() });
        }
        let mut after = next_version(g);
        after.parent = Some(c.id.clone());
        links_mut(&mut c).push(link_of(&after));
        let change = parent_changed(Some(&c.id), "link");
        steps.push(step(Some(g.clone()), Some(after), vec![change], "link"));
        results.push(LinkResult::Done);
    }
    if c.community.as_ref().map_or(0, |k| k.links.len()) > MAX_LINKED_GROUPS {
        return Err(Refusal::CommunityFull);
    }
    steps.extend(resync(
        c0,
        c,
        &fam.announcement,
        by,
        (JoinKind::Add, LeaveKind::Remove),
    ));
    Ok((steps, results))
}

/// Unlinks `groups` (each with a copy from any session that has it) from the community: they
/// live on without a parent.
pub fn unlink(
    fam: &Family,
    groups: &[(GroupId, Option<Group>)],
    by: &Actor,
) -> Result<(Vec<Step>, Vec<LinkResult>), Refusal> {
    let c0 = &fam.community;
    require_community_admin(c0, by, CommunityAction::Unlink)?;
    let mut c = next_version(c0);
    let (mut steps, mut results) = (Vec::new(), Vec::new());
    for (id, g) in groups {
        let links = links_mut(&mut c);
        let Some(i) = links.iter().position(|l| &l.id == id) else {
            results.push(LinkResult::NotLinked);
            continue;
        };
        links.remove(i);
        if let Some(g) = g.as_ref().filter(|g| g.parent.as_ref() == Some(&c0.id)) {
            steps.push(detach(g));
        }
        results.push(LinkResult::Done);
    }
    steps.extend(resync(
        c0,
        c,
        &fam.announcement,
        by,
        (JoinKind::Add, LeaveKind::Remove),
    ));
    Ok((steps, results))
}

/// A linked group without its parent.
fn detach(g: &Group) -> Step {
    let mut after = next_version(g);
    after.parent = None;
    let change = parent_changed(None, "unlink");
    step(Some(g.clone()), Some(after), vec![change], "unlink")
}

/// The community and its announcement group after a change of linked group `id` (now `after`;
/// `None`: deleted): the link follows its subject and members. `kinds`: how those who arrive
/// join, and those who go leave, the announcement group.
pub fn follow(
    fam: &Family,
    id: &GroupId,
    after: Option<&Group>,
    by: &Actor,
    kinds: (JoinKind, LeaveKind),
) -> Vec<Step> {
    let c0 = &fam.community;
    let mut c = next_version(c0);
    let links = links_mut(&mut c);
    let Some(i) = links.iter().position(|l| &l.id == id) else {
        return Vec::new();
    };
    match after {
        Some(g) => links[i] = link_of(g),
        None => {
            links.remove(i);
        }
    }
    resync(c0, c, &fam.announcement, by, kinds)
}

/// The announcement group after its community was renamed to `c.subject`: it carries the
/// community's name, as in WhatsApp. `None` when it already does.
pub fn announce_subject(fam: &Family, c: &Group) -> Option<Step> {
    let a0 = &fam.announcement;
    if a0.subject == c.subject {
        return None;
    }
    let mut a = next_version(a0);
    a.subject = c.subject.clone();
    let mut fields = Map::new();
    fields.insert("subject".into(), Value::from(c.subject.as_str()));
    let change = Change::Updated {
        fields,
        operation: "subject",
    };
    Some(step(Some(a0.clone()), Some(a), vec![change], "subject"))
}

/// The account `by` leaves the community and every linked group it is in (`linked`: the
/// session's copies of them).
pub fn leave_community(fam: &Family, linked: &[Group], by: &Actor) -> Result<Vec<Step>, Refusal> {
    let c0 = &fam.community;
    if !c0.is_member(&by.id) {
        return Err(Refusal::NotAMember {
            group: c0.id.clone(),
        });
    }
    let mut c = next_version(c0);
    let mut steps = Vec::new();
    for g in linked.iter().filter(|g| g.is_member(&by.id)) {
        let out = leave(g, by)?;
        if let (Some(after), Some(links)) = (&out.group, c.community.as_mut()) {
            for l in links.links.iter_mut().filter(|l| l.id == after.id) {
                *l = link_of(after);
            }
        }
        steps.push(step(Some(g.clone()), out.group, out.changes, "leave"));
    }
    if let Some(k) = c.community.as_mut() {
        k.own.retain(|id| id != &by.id);
    }
    c.participants.retain(|m| m.id != by.id);
    steps.extend(resync(
        c0,
        c,
        &fam.announcement,
        by,
        (JoinKind::Add, LeaveKind::Leave),
    ));
    Ok(steps)
}

/// Deletes the community (admins): every linked group (`linked`: a copy of each that any
/// session has) is unlinked and lives on; the announcement group is deleted.
pub fn delete_community(fam: &Family, linked: &[Group], by: &Actor) -> Result<Vec<Step>, Refusal> {
    let c0 = &fam.community;
    require_community_admin(c0, by, CommunityAction::Delete)?;
    let mut steps: Vec<Step> = linked
        .iter()
        .filter(|g| g.parent.as_ref() == Some(&c0.id))
        .map(detach)
        .collect();
    let a = &fam.announcement;
    let gone = delete(a, by).map_err(|_| Refusal::NotCommunityAdmin {
        action: CommunityAction::Delete,
    })?;
    steps.push(step(Some(a.clone()), None, gone.changes, "delete"));
    steps.push(step(Some(c0.clone()), None, Vec::new(), "delete"));
    Ok(steps)
}

/// The community's participants after `c` (the next version of `c0`) changed its own members or
/// links, and the announcement group's after them; a step for each that changed. A community
/// left without an admin gets its longest-standing participant as admin, as a group does.
fn resync(
    c0: &Group,
    mut c: Group,
    a0: &Group,
    by: &Actor,
    kinds: (JoinKind, LeaveKind),
) -> Vec<Step> {
    let wanted = wanted_members(&c);
    let mut participants: Vec<Member> = Vec::with_capacity(wanted.len());
    for m in c0.participants.iter().filter(|m| wanted.contains(&m.id)) {
        participants.push(m.clone());
    }
    for id in &wanted {
        if !participants.iter().any(|m| &m.id == id) {
            participants.push(Member {
                id: id.clone(),
                role: Role::Participant,
                joined_at: by.now,
            });
        }
    }
    if !participants.iter().any(|m| m.role.is_admin()) {
        if let Some(first) = participants.first_mut() {
            first.role = Role::Admin;
            let id = first.id.clone();
            if let Some(k) = c.community.as_mut().filter(|k| !k.own.contains(&id)) {
                k.own.push(id);
            }
        }
    }
    c.participants = participants;
    let mut steps = Vec::new();
    if !same_but_version(c0, &c) {
        steps.push(step(
            Some(c0.clone()),
            Some(c.clone()),
            Vec::new(),
            "community",
        ));
    }
    if let Some(a) = mirror(a0, &c, kinds) {
        steps.push(a);
    }
    steps
}

/// Everyone who belongs in community `c`: its own members, then the members of its links.
fn wanted_members(c: &Group) -> Vec<ContactId> {
    let mut out: Vec<ContactId> = Vec::new();
    let Some(k) = &c.community else {
        return out;
    };
    let ids = k.own.iter().chain(k.links.iter().flat_map(|l| &l.members));
    for id in ids {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}

fn same_but_version(a: &Group, b: &Group) -> bool {
    let mut b = b.clone();
    b.version = a.version;
    a == &b
}

/// The announcement group with community `c`'s participants and roles: its step, unless
/// nothing changed.
fn mirror(a0: &Group, c: &Group, kinds: (JoinKind, LeaveKind)) -> Option<Step> {
    let mut a = next_version(a0);
    a.participants = c.participants.clone();
    let ids = |f: &dyn Fn(&Member) -> bool| -> Vec<ContactId> {
        a.participants
            .iter()
            .filter(|m| f(m))
            .map(|m| m.id.clone())
            .collect()
    };
    let joined = ids(&|m| !a0.is_member(&m.id));
    let promoted = ids(&|m| m.role.is_admin() && a0.role_of(&m.id) == Some(Role::Participant));
    let demoted = ids(&|m| !m.role.is_admin() && a0.role_of(&m.id).is_some_and(Role::is_admin));
    let left: Vec<ContactId> = a0
        .participants
        .iter()
        .filter(|m| !a.is_member(&m.id))
        .map(|m| m.id.clone())
        .collect();
    let mut changes = Vec::new();
    if !left.is_empty() {
        changes.push(Change::Left {
            ids: left,
            kind: kinds.1,
        });
    }
    if !joined.is_empty() {
        changes.push(Change::Joined {
            ids: joined,
            kind: kinds.0,
        });
    }
    if !promoted.is_empty() {
        changes.push(Change::Promoted { ids: promoted });
    }
    if !demoted.is_empty() {
        changes.push(Change::Demoted { ids: demoted });
    }
    (!changes.is_empty()).then(|| step(Some(a0.clone()), Some(a), changes, "community"))
}
