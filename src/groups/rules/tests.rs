//! The pure group rules of contract §2, one refusal or outcome per test, without I/O.

use super::*;
use crate::groups::model::{JoinRequest, Picture, MAX_PARTICIPANTS};
use crate::ids::{GroupId, SessionName};

const NOW: u64 = 1_763_769_600;

fn c(n: u64) -> ContactId {
    ContactId::parse(&format!("{n}@c.us")).expect("contact id")
}

fn gid() -> GroupId {
    GroupId::parse("120363000000000001@g.us").expect("group id")
}

fn code(ch: char) -> InviteCode {
    InviteCode::parse(&ch.to_string().repeat(22)).expect("invite code")
}

/// Account `n` acting at `now`.
fn by(n: u64, now: u64) -> Actor {
    Actor { id: c(n), now }
}

/// A group made by 10001 (superadmin) with 10002, 10003 and 10004 as participants.
fn group() -> Group {
    let others = [c(10002), c(10003), c(10004)];
    create(gid(), code('A'), &by(10001, NOW), "Team".into(), &others)
        .expect("create")
        .0
}

/// A group made by 10001 with `others`.
fn big(others: &[ContactId]) -> Group {
    create(gid(), code('A'), &by(10001, NOW), "Big".into(), others)
        .expect("create")
        .0
}

fn run(g: &Group, actor: u64, op: Op) -> Result<Outcome, Refusal> {
    apply(g, &by(actor, NOW + 10), op)
}

fn ok(g: &Group, actor: u64, op: Op) -> Outcome {
    run(g, actor, op).expect("the rule allows it")
}

fn after(g: &Group, actor: u64, op: Op) -> Group {
    ok(g, actor, op).group.expect("the group still exists")
}

fn refusal(g: &Group, actor: u64, op: Op) -> Refusal {
    run(g, actor, op).expect_err("the rule refuses")
}

/// The code of each per-id result, `None` for a success.
fn codes(out: &Outcome) -> Vec<Option<&str>> {
    out.results
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.code.as_str()))
        .collect()
}

fn roles(g: &Group) -> Vec<(String, Role)> {
    g.participants
        .iter()
        .map(|m| (m.id.to_string(), m.role))
        .collect()
}

fn with_admin(g: &Group, id: u64) -> Group {
    after(g, 10001, Op::Promote(vec![c(id)]))
}

fn with_setting(g: &Group, s: Setting, v: bool) -> Group {
    after(g, 10001, Op::SetSetting(s, v))
}

mod community;
mod info;
mod members;
mod requests;

#[test]
fn create_makes_the_creator_superadmin_and_the_others_participants_in_order() {
    let others = [c(10002), c(10001), c(10002), c(10003)];
    let (g, changes) =
        create(gid(), code('A'), &by(10001, NOW), "Team".into(), &others).expect("create");
    assert_eq!(
        roles(&g),
        vec![
            ("10001@c.us".into(), Role::Superadmin),
            ("10002@c.us".into(), Role::Participant),
            ("10003@c.us".into(), Role::Participant),
        ]
    );
    assert_eq!(g.version, 1);
    assert_eq!(g.owner, c(10001));
    assert_eq!(g.description, "");
    assert_eq!(g.creation, NOW);
    assert_eq!(
        changes,
        vec![Change::Joined {
            ids: vec![c(10001), c(10002), c(10003)],
            kind: JoinKind::Create
        }]
    );
}

#[test]
fn create_refuses_more_than_1024_participants_including_the_creator() {
    let others: Vec<ContactId> = (0..MAX_PARTICIPANTS as u64).map(|i| c(20000 + i)).collect();
    let creator = by(10001, NOW);
    let e = create(gid(), code('A'), &creator, "Big".into(), &others)
        .expect_err("1025 members is too many");
    assert_eq!(e, Refusal::TooManyParticipants);
    assert!(e.to_string().starts_with("participants:"), "{e}");
    assert!(create(gid(), code('A'), &creator, "Big".into(), &others[1..]).is_ok());
}

#[test]
fn every_change_grows_the_version_by_one() {
    let g = group();
    let g2 = after(&g, 10001, Op::SetSubject("New".into()));
    assert_eq!(g2.version, g.version + 1);
    let g3 = after(&g2, 10001, Op::Add(vec![c(10005), c(10006)]));
    assert_eq!(g3.version, g2.version + 1);
    let g4 = after(&g3, 10002, Op::Leave);
    assert_eq!(g4.version, g3.version + 1);
}

#[test]
fn a_non_member_is_told_the_group_does_not_exist() {
    let g = group();
    for op in [
        Op::SetSubject("X".into()),
        Op::Leave,
        Op::Add(vec![c(10009)]),
    ] {
        let refused = refusal(&g, 99999, op);
        assert_eq!(refused, Refusal::NotAMember { group: gid() });
        let session = SessionName::parse("default").expect("session name");
        assert_eq!(
            refused.in_session(&session).to_string(),
            "Group 120363000000000001@g.us not found in session \"default\""
        );
    }
}

#[test]
fn only_admins_remove_promote_demote_delete_approve_and_reject() {
    let g = group();
    let ops = [
        (Op::Remove(vec![c(10003)]), AdminAction::RemoveParticipants),
        (
            Op::Promote(vec![c(10003)]),
            AdminAction::PromoteParticipants,
        ),
        (Op::Demote(vec![c(10003)]), AdminAction::DemoteAdmins),
        (Op::Delete, AdminAction::DeleteGroup),
        (Op::Approve(vec![c(10009)]), AdminAction::ApproveRequests),
        (Op::Reject(vec![c(10009)]), AdminAction::RejectRequests),
    ];
    for (op, action) in ops {
        let name = op.operation();
        let refused = refusal(&g, 10002, op);
        assert_eq!(refused, Refusal::NotAdmin { action }, "{name}");
        let message = refused.to_string();
        assert!(message.starts_with("only admins can"), "{message}");
    }
}

#[test]
fn a_declined_id_reports_the_code_and_message_of_its_rule() {
    let id = c(10009);
    let cases = [
        (
            Declined::NotAMember,
            "not_a_member",
            "10009@c.us is not a member",
        ),
        (
            Declined::AlreadyMember,
            "already_member",
            "10009@c.us is already a member",
        ),
        (
            Declined::SuperadminNotRemovable,
            "is_superadmin",
            "the superadmin cannot be removed",
        ),
        (
            Declined::SuperadminNotDemotable,
            "is_superadmin",
            "the superadmin cannot be demoted",
        ),
        (
            Declined::IsSelf,
            "is_self",
            "use POST /groups/{id}/leave to leave a group",
        ),
        (
            Declined::AlreadyAdmin,
            "already_admin",
            "10009@c.us is already an admin",
        ),
        (
            Declined::NotAnAdmin,
            "not_an_admin",
            "10009@c.us is not an admin",
        ),
        (
            Declined::LastAdmin,
            "last_admin",
            "a group keeps at least one admin",
        ),
        (
            Declined::NoJoinRequest,
            "no_join_request",
            "10009@c.us has no pending join request",
        ),
        (
            Declined::JoinRequestPending,
            "join_request_pending",
            "10009@c.us already has a pending join request",
        ),
        (
            Declined::Full,
            "group_full",
            "group is full (1024 participants)",
        ),
        (
            Declined::GroupFull { group: gid() },
            "group_full",
            "group 120363000000000001@g.us is full",
        ),
    ];
    for (why, code, message) in cases {
        assert_eq!((why.code(), why.message(&id).as_str()), (code, message));
    }
}

#[test]
fn a_declined_request_carries_the_number_waha_gives_as_its_error() {
    assert_eq!(Declined::NoJoinRequest.status(), 404);
    assert_eq!(Declined::NotAMember.status(), 404);
    assert_eq!(Declined::GroupFull { group: gid() }.status(), 409);
    assert_eq!(Declined::AlreadyMember.status(), 409);
    assert_eq!(Declined::SuperadminNotRemovable.status(), 403);
}
