//! Add, remove, promote, demote, leave and delete.

use super::*;

#[test]
fn an_admin_removes_members_and_results_follow_request_order() {
    let g = with_admin(&group(), 10002);
    let out = ok(
        &g,
        10002,
        Op::Remove(vec![c(10003), c(99999), c(10001), c(10002), c(10004)]),
    );
    assert_eq!(
        codes(&out),
        vec![
            None,
            Some("not_a_member"),
            Some("is_superadmin"),
            Some("is_self"),
            None
        ]
    );
    let ids: Vec<&str> = out.results.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "10003@c.us",
            "99999@c.us",
            "10001@c.us",
            "10002@c.us",
            "10004@c.us"
        ]
    );
    assert_eq!(
        out.changes,
        vec![Change::Left {
            ids: vec![c(10003), c(10004)],
            kind: LeaveKind::Remove
        }]
    );
    let g = out.group.expect("group");
    assert!(!g.is_member(&c(10003)) && !g.is_member(&c(10004)));
    assert_eq!(g.role_of(&c(10001)), Some(Role::Superadmin));
}

#[test]
fn the_superadmin_cannot_be_removed_or_demoted_even_by_another_admin() {
    let g = with_admin(&group(), 10002);
    let out = ok(&g, 10002, Op::Remove(vec![c(10001)]));
    assert!(!out.results[0].success);
    assert!(out.changes.is_empty());
    let out = ok(&g, 10002, Op::Demote(vec![c(10001)]));
    assert_eq!(
        out.results[0].error.as_ref().map(|e| e.code.as_str()),
        Some("is_superadmin")
    );
    assert!(out.changes.is_empty());
}

#[test]
fn promote_and_demote_report_each_id_and_change_only_the_successful_ones() {
    let g = group();
    let out = ok(&g, 10001, Op::Promote(vec![c(10002), c(10001), c(99999)]));
    assert_eq!(
        codes(&out),
        vec![None, Some("already_admin"), Some("not_a_member")]
    );
    assert_eq!(
        out.changes,
        vec![Change::Promoted {
            ids: vec![c(10002)]
        }]
    );
    let g = out.group.expect("group");
    assert_eq!(g.role_of(&c(10002)), Some(Role::Admin));
    let out = ok(&g, 10001, Op::Demote(vec![c(10002), c(10003)]));
    assert!(out.results[0].success);
    assert_eq!(
        out.results[1].error.as_ref().map(|e| e.code.as_str()),
        Some("not_an_admin")
    );
    assert_eq!(
        out.changes,
        vec![Change::Demoted {
            ids: vec![c(10002)]
        }]
    );
    assert_eq!(
        out.group.expect("group").role_of(&c(10002)),
        Some(Role::Participant)
    );
}

#[test]
fn a_non_admin_cannot_add_unless_members_can_add() {
    let g = group();
    let refused = refusal(&g, 10002, Op::Add(vec![c(10005)]));
    assert_eq!(refused, Refusal::MembersCannotAdd);
    let message = refused.to_string();
    assert!(message.contains("membersCanAddNewMember"), "{message}");
    let g = with_setting(&g, Setting::MembersCanAdd, true);
    let out = ok(&g, 10002, Op::Add(vec![c(10005)]));
    assert_eq!(
        out.changes,
        vec![Change::Joined {
            ids: vec![c(10005)],
            kind: JoinKind::Add
        }]
    );
    assert_eq!(
        out.group.expect("group").role_of(&c(10005)),
        Some(Role::Participant)
    );
}

#[test]
fn add_marks_existing_members_and_adds_the_rest_in_request_order() {
    let g = group();
    let out = ok(&g, 10001, Op::Add(vec![c(10006), c(10002), c(10005)]));
    let r: Vec<(&str, bool)> = out
        .results
        .iter()
        .map(|r| (r.id.as_str(), r.success))
        .collect();
    assert_eq!(
        r,
        vec![
            ("10006@c.us", true),
            ("10002@c.us", false),
            ("10005@c.us", true)
        ]
    );
    assert_eq!(
        out.results[1].error,
        Some(ResultError {
            code: "already_member".into(),
            message: "10002@c.us is already a member".into(),
            status: 409
        })
    );
    let g = out.group.expect("group");
    let ids: Vec<String> = g.participants.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(ids[4..], ["10006@c.us".to_owned(), "10005@c.us".to_owned()]);
}

#[test]
fn a_non_admins_add_becomes_a_join_request_when_approval_is_required() {
    let g = with_setting(&group(), Setting::MembersCanAdd, true);
    let g = with_setting(&g, Setting::ApprovalRequired, true);
    let out = ok(&g, 10002, Op::Add(vec![c(10005)]));
    assert!(out.results[0].success);
    assert_eq!(
        out.changes,
        vec![Change::JoinRequest {
            action: RequestAction::Created,
            requester: c(10005),
            method: JoinMethod::NonAdminAdd
        }]
    );
    let g = out.group.expect("group");
    assert!(!g.is_member(&c(10005)));
    assert_eq!(
        g.join_requests,
        vec![JoinRequest {
            requester: c(10005),
            added_by: Some(c(10002)),
            method: JoinMethod::NonAdminAdd,
            timestamp: NOW + 10
        }]
    );
    let again = ok(&g, 10003, Op::Add(vec![c(10005)]));
    assert_eq!(
        again.results[0].error.as_ref().map(|e| e.code.as_str()),
        Some("join_request_pending")
    );
    // An admin's add is never a request, and it settles the pending one.
    let g = after(&g, 10001, Op::Add(vec![c(10005)]));
    assert!(g.is_member(&c(10005)));
    assert!(g.join_requests.is_empty());
}

#[test]
fn the_add_that_would_pass_1024_fails_only_for_the_extra_ids() {
    let others: Vec<ContactId> = (0..1021u64).map(|i| c(20000 + i)).collect();
    let g = big(&others);
    assert_eq!(g.participants.len(), 1022);
    let out = ok(
        &g,
        10001,
        Op::Add(vec![c(30001), c(20000), c(30002), c(30003)]),
    );
    assert_eq!(
        codes(&out),
        vec![None, Some("already_member"), None, Some("group_full")]
    );
    assert_eq!(
        out.group.expect("group").participants.len(),
        MAX_PARTICIPANTS
    );
}

#[test]
fn leave_of_the_last_admin_promotes_the_longest_standing_participant() {
    let g = group();
    let out = ok(&g, 10001, Op::Leave);
    assert_eq!(
        out.changes,
        vec![
            Change::Left {
                ids: vec![c(10001)],
                kind: LeaveKind::Leave
            },
            Change::Promoted {
                ids: vec![c(10002)]
            }
        ]
    );
    let g = out.group.expect("group");
    assert_eq!(
        roles(&g),
        vec![
            ("10002@c.us".into(), Role::Admin),
            ("10003@c.us".into(), Role::Participant),
            ("10004@c.us".into(), Role::Participant),
        ]
    );
}

#[test]
fn leave_promotes_nobody_while_another_admin_remains() {
    let g = with_admin(&group(), 10003);
    let out = ok(&g, 10001, Op::Leave);
    assert_eq!(
        out.changes,
        vec![Change::Left {
            ids: vec![c(10001)],
            kind: LeaveKind::Leave
        }]
    );
    assert_eq!(
        out.group.expect("group").role_of(&c(10002)),
        Some(Role::Participant)
    );
}

#[test]
fn delete_removes_everyone_then_the_actor_and_leaves_no_group() {
    let g = group();
    let out = ok(&g, 10001, Op::Delete);
    assert!(out.group.is_none());
    assert_eq!(
        out.changes,
        vec![
            Change::Left {
                ids: vec![c(10002), c(10003), c(10004)],
                kind: LeaveKind::Remove
            },
            Change::Left {
                ids: vec![c(10001)],
                kind: LeaveKind::Leave
            }
        ]
    );
}

#[test]
fn a_lid_that_reaches_an_add_unresolved_is_declined_and_never_becomes_a_member() {
    let g = group();
    let unknown = ContactId::parse("123456789012345@lid").expect("lid");
    let out = ok(&g, 10001, Op::Add(vec![unknown.clone(), c(10005)]));
    assert_eq!(codes(&out), vec![Some("lid_not_found"), None]);
    assert_eq!(out.results[0].id, "123456789012345@lid");
    let g = out.group.expect("group");
    assert!(!g.is_member(&unknown));
    assert_eq!(g.participants.len(), 5, "only the number was added");
}

#[test]
fn a_group_is_not_created_with_an_unresolved_lid() {
    let unknown = ContactId::parse("123456789012345@lid").expect("lid");
    let refused = create(
        gid(),
        code('A'),
        &by(10001, NOW),
        "T".into(),
        &[c(10002), unknown.clone()],
    );
    assert_eq!(refused.err(), Some(Refusal::LidNotFound { id: unknown }));
}
