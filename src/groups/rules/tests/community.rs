//! Communities: create, link, unlink, follow, leave and delete, and what a community and its
//! announcement group refuse as groups.

use super::*;
use crate::groups::refusal::CommunityAction;

fn gid_n(n: u64) -> GroupId {
    GroupId::parse(&format!("120363{n:012}@g.us")).expect("group id")
}

/// Community 1 by 10001 with 10002 as own member; its announcement group is 2.
fn family() -> Family {
    let steps = create_community(
        (gid_n(1), gid_n(2)),
        (code('C'), code('D')),
        &by(10001, NOW),
        "Street".into(),
        "Ours".into(),
        &[c(10002)],
    )
    .expect("created");
    let mut it = steps.into_iter().filter_map(|s| s.after);
    let community = it.next().expect("community");
    let announcement = it.next().expect("announcement");
    Family {
        community,
        announcement,
    }
}

/// Group `n` made by `creator` with `others`.
fn plain(n: u64, creator: u64, others: &[ContactId]) -> Group {
    create(
        gid_n(n),
        code('E'),
        &by(creator, NOW),
        format!("G{n}"),
        others,
    )
    .expect("create")
    .0
}

/// The family after `steps`, and the groups they changed by id.
fn after_steps(fam: &Family, steps: &[Step]) -> Family {
    let mut out = fam.clone();
    for s in steps {
        let Some(g) = &s.after else { continue };
        if g.id == out.community.id {
            out.community = g.clone();
        } else if g.id == out.announcement.id {
            out.announcement = g.clone();
        }
    }
    out
}

fn ids_of(g: &Group) -> Vec<ContactId> {
    g.participants.iter().map(|m| m.id.clone()).collect()
}

fn changes_of<'a>(steps: &'a [Step], id: &GroupId) -> &'a [Change] {
    let s = steps
        .iter()
        .find(|s| s.before.as_ref().is_some_and(|b| &b.id == id));
    &s.expect("a step of the group").changes
}

#[test]
fn a_new_community_owns_an_announcement_group_with_its_participants_where_only_admins_send() {
    let fam = family();
    let (c0, a) = (&fam.community, &fam.announcement);
    let k = c0.community.as_ref().expect("a community");
    assert_eq!(k.announcement, a.id);
    assert_eq!(k.own, vec![c(10001), c(10002)]);
    assert_eq!(c0.description, "Ours");
    assert!(a.settings.messages_admin_only);
    assert_eq!(a.announces.as_ref(), Some(&c0.id));
    assert_eq!(roles(a), roles(c0));
    assert_eq!(c0.role_of(&c(10001)), Some(Role::Superadmin));
}

#[test]
fn only_community_admins_link_and_only_groups_they_administer() {
    let fam = family();
    let g = plain(3, 10002, &[]);
    let refused = link(&fam, &[(g.id.clone(), Some(g.clone()))], &by(10002, NOW));
    let action = CommunityAction::Link;
    assert_eq!(
        refused.expect_err("refused"),
        Refusal::NotCommunityAdmin { action }
    );
    let g = plain(4, 10002, &[c(10001)]);
    let refused = link(&fam, &[(g.id.clone(), Some(g.clone()))], &by(10001, NOW));
    let want = Refusal::NotGroupAdmin {
        group: g.id.clone(),
    };
    assert_eq!(refused.expect_err("refused"), want);
}

#[test]
fn a_linked_group_gets_its_parent_and_its_members_join_the_announcement_group() {
    let fam = family();
    let g = plain(3, 10001, &[c(10003)]);
    let (steps, results) =
        link(&fam, &[(g.id.clone(), Some(g.clone()))], &by(10001, NOW)).expect("linked");
    assert_eq!(results, vec![LinkResult::Done]);
    let linked = steps[0].after.as_ref().expect("the group lives");
    assert_eq!(linked.parent.as_ref(), Some(&gid_n(1)));
    match &steps[0].changes[..] {
        [Change::Updated { fields, .. }] => {
            assert_eq!(fields["parentGroupId"], "120363000000000001@g.us")
        }
        other => panic!("{other:?}"),
    }
    let joined = changes_of(&steps, &gid_n(2));
    let kind = JoinKind::Add;
    assert_eq!(
        joined,
        [Change::Joined {
            ids: vec![c(10003)],
            kind
        }]
    );
    let after = after_steps(&fam, &steps);
    assert_eq!(ids_of(&after.community), vec![c(10001), c(10002), c(10003)]);
    assert_eq!(roles(&after.announcement), roles(&after.community));
}

#[test]
fn a_group_is_in_at_most_one_community_and_a_community_links_at_most_100() {
    let fam = family();
    let mut g = plain(3, 10001, &[]);
    g.parent = Some(gid_n(9));
    let refused = link(&fam, &[(g.id.clone(), Some(g.clone()))], &by(10001, NOW));
    let want = Refusal::InOtherCommunity {
        group: g.id.clone(),
        community: gid_n(9),
    };
    assert_eq!(refused.expect_err("refused"), want);
    let groups: Vec<(GroupId, Option<Group>)> = (10..111)
        .map(|n| (gid_n(n), Some(plain(n, 10001, &[]))))
        .collect();
    let refused = link(&fam, &groups, &by(10001, NOW));
    assert_eq!(refused.expect_err("refused"), Refusal::CommunityFull);
    assert!(link(&fam, &groups[..100], &by(10001, NOW)).is_ok());
}

#[test]
fn a_join_of_a_linked_group_brings_the_joiner_into_the_announcement_group_by_invite() {
    let fam = family();
    let g = plain(3, 10001, &[]);
    let (steps, _) = link(&fam, &[(g.id.clone(), Some(g.clone()))], &by(10001, NOW)).expect("ok");
    let fam = after_steps(&fam, &steps);
    let linked = steps[0].after.clone().expect("linked");
    let joined = ok(&linked, 10009, Op::Join(linked.invite.clone()));
    let after = joined.group.expect("group");
    let steps = follow(
        &fam,
        &after.id,
        Some(&after),
        &by(10009, NOW),
        Op::Join(after.invite.clone()).kinds(),
    );
    let kind = JoinKind::Invite;
    assert_eq!(
        changes_of(&steps, &gid_n(2)),
        [Change::Joined {
            ids: vec![c(10009)],
            kind
        }]
    );
}

#[test]
fn an_unlinked_group_loses_its_parent_and_its_members_leave_the_community() {
    let fam = family();
    let g = plain(3, 10001, &[c(10003)]);
    let (steps, _) = link(&fam, &[(g.id.clone(), Some(g.clone()))], &by(10001, NOW)).expect("ok");
    let fam = after_steps(&fam, &steps);
    let linked = steps[0].after.clone().expect("linked");
    let refused = unlink(
        &fam,
        &[(linked.id.clone(), Some(linked.clone()))],
        &by(10002, NOW),
    );
    let action = CommunityAction::Unlink;
    assert_eq!(
        refused.expect_err("refused"),
        Refusal::NotCommunityAdmin { action }
    );
    let (steps, results) = unlink(
        &fam,
        &[(linked.id.clone(), Some(linked.clone()))],
        &by(10001, NOW),
    )
    .expect("ok");
    assert_eq!(results, vec![LinkResult::Done]);
    assert_eq!(steps[0].after.as_ref().and_then(|g| g.parent.clone()), None);
    let kind = LeaveKind::Remove;
    assert_eq!(
        changes_of(&steps, &gid_n(2)),
        [Change::Left {
            ids: vec![c(10003)],
            kind
        }]
    );
    let (_, results) = unlink(&fam, &[(linked.id.clone(), None)], &by(10001, NOW)).expect("ok");
    assert_eq!(
        results,
        vec![LinkResult::Done],
        "a group nobody here holds still unlinks"
    );
}

#[test]
fn leaving_a_community_leaves_every_linked_group_and_the_announcement_group() {
    let fam = family();
    let g = plain(3, 10001, &[c(10002)]);
    let (steps, _) = link(&fam, &[(g.id.clone(), Some(g.clone()))], &by(10001, NOW)).expect("ok");
    let fam = after_steps(&fam, &steps);
    let linked = steps[0].after.clone().expect("linked");
    let steps =
        leave_community(&fam, std::slice::from_ref(&linked), &by(10002, NOW)).expect("left");
    let kind = LeaveKind::Leave;
    assert_eq!(
        changes_of(&steps, &linked.id)[0],
        Change::Left {
            ids: vec![c(10002)],
            kind
        }
    );
    assert_eq!(
        changes_of(&steps, &gid_n(2)),
        [Change::Left {
            ids: vec![c(10002)],
            kind
        }]
    );
    let after = after_steps(&fam, &steps);
    assert_eq!(ids_of(&after.community), vec![c(10001)]);
    let refused = leave_community(&after, &[], &by(10002, NOW));
    assert_eq!(
        refused.expect_err("refused"),
        Refusal::NotAMember { group: gid_n(1) }
    );
}

#[test]
fn deleting_a_community_is_for_its_admins_and_unlinks_every_group() {
    let fam = family();
    let g = plain(3, 10001, &[]);
    let (steps, _) = link(&fam, &[(g.id.clone(), Some(g.clone()))], &by(10001, NOW)).expect("ok");
    let fam = after_steps(&fam, &steps);
    let linked = steps[0].after.clone().expect("linked");
    let refused = delete_community(&fam, std::slice::from_ref(&linked), &by(10002, NOW));
    let action = CommunityAction::Delete;
    assert_eq!(
        refused.expect_err("refused"),
        Refusal::NotCommunityAdmin { action }
    );
    let steps = delete_community(&fam, &[linked], &by(10001, NOW)).expect("deleted");
    let gone: Vec<(GroupId, bool)> = steps
        .iter()
        .filter_map(|s| Some((s.before.as_ref()?.id.clone(), s.after.is_some())))
        .collect();
    assert_eq!(
        gone,
        [(gid_n(3), true), (gid_n(2), false), (gid_n(1), false)]
    );
}

#[test]
fn a_community_and_its_announcement_group_refuse_membership_changes_and_non_admin_renames() {
    let fam = family();
    for g in [&fam.community, &fam.announcement] {
        let refused = refusal(g, 10001, Op::Add(vec![c(10005)]));
        assert!(
            matches!(refused, Refusal::CommunityManaged { .. }),
            "{refused:?}"
        );
        let refused = refusal(g, 10002, Op::Leave);
        assert!(
            matches!(refused, Refusal::CommunityManaged { .. }),
            "{refused:?}"
        );
    }
    let action = CommunityAction::Rename;
    let refused = refusal(&fam.community, 10002, Op::SetSubject("Mine".into()));
    assert_eq!(refused, Refusal::NotCommunityAdmin { action });
    assert!(run(&fam.community, 10001, Op::SetSubject("Road".into())).is_ok());
    let refused = refusal(&fam.community, 10009, Op::SetSubject("X".into()));
    assert_eq!(refused, Refusal::NotAMember { group: gid_n(1) });
}
