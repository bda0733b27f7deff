//! Join by invite, and the join requests admins approve or reject.

use super::*;

#[test]
fn join_by_invite_adds_a_participant_or_files_a_request_when_approval_is_on() {
    let g = group();
    let refused = refusal(&g, 10009, Op::Join(code('B')));
    assert_eq!(refused, Refusal::InviteNotFound);
    let refused = refusal(&g, 10002, Op::Join(code('A')));
    let (actor, group) = (c(10002), gid());
    assert_eq!(refused, Refusal::AlreadyMember { actor, group });
    let out = ok(&g, 10009, Op::Join(code('A')));
    assert_eq!(
        out.changes,
        vec![Change::Joined {
            ids: vec![c(10009)],
            kind: JoinKind::Invite
        }]
    );
    let g = with_setting(&g, Setting::ApprovalRequired, true);
    let out = ok(&g, 10009, Op::Join(code('A')));
    assert_eq!(
        out.changes,
        vec![Change::JoinRequest {
            action: RequestAction::Created,
            requester: c(10009),
            method: JoinMethod::InviteLink
        }]
    );
    let g = out.group.expect("group");
    let refused = refusal(&g, 10009, Op::Join(code('A')));
    let (actor, group) = (c(10009), gid());
    assert_eq!(refused, Refusal::JoinRequestPending { actor, group });
}

#[test]
fn approve_adds_the_requester_and_reject_drops_the_request() {
    let g = with_setting(&group(), Setting::ApprovalRequired, true);
    let g = after(&g, 10008, Op::Join(code('A')));
    let g = after(&g, 10009, Op::Join(code('A')));
    let out = ok(&g, 10001, Op::Approve(vec![c(10008), c(10007)]));
    assert!(out.results[0].success);
    assert_eq!(
        out.results[1].error.as_ref().map(|e| e.code.as_str()),
        Some("no_join_request")
    );
    assert_eq!(
        out.changes,
        vec![Change::Joined {
            ids: vec![c(10008)],
            kind: JoinKind::Approve
        }]
    );
    let g = out.group.expect("group");
    assert!(g.is_member(&c(10008)));
    let out = ok(&g, 10001, Op::Reject(vec![c(10009)]));
    assert_eq!(
        out.changes,
        vec![Change::JoinRequest {
            action: RequestAction::Rejected,
            requester: c(10009),
            method: JoinMethod::InviteLink
        }]
    );
    let g = out.group.expect("group");
    assert!(g.join_requests.is_empty() && !g.is_member(&c(10009)));
}

#[test]
fn approve_fails_with_group_full_when_the_group_holds_1024() {
    let others: Vec<ContactId> = (0..1022u64).map(|i| c(20000 + i)).collect();
    let g = big(&others);
    let g = with_setting(&g, Setting::ApprovalRequired, true);
    let g = after(&g, 10008, Op::Join(code('A')));
    let g = after(&g, 10009, Op::Join(code('A')));
    let out = ok(&g, 10001, Op::Approve(vec![c(10008), c(10009)]));
    assert!(out.results[0].success);
    assert_eq!(
        out.results[1].error.as_ref().map(|e| e.code.as_str()),
        Some("group_full")
    );
}
