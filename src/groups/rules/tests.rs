//! The pure group rules of contract §2, one refusal or outcome per test, without I/O.

use super::*;
use crate::groups::model::{JoinMethod, Picture, MAX_PARTICIPANTS};

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

/// A group made by 10001 (superadmin) with 10002, 10003 and 10004 as participants.
fn group() -> Group {
    create(
        gid(),
        code('A'),
        &c(10001),
        "Team".into(),
        &[c(10002), c(10003), c(10004)],
        NOW,
    )
    .expect("create")
    .0
}

fn run(g: &Group, actor: u64, op: Op) -> Result<Outcome, ApiError> {
    apply(g, &c(actor), op, NOW + 10, "default")
}

fn ok(g: &Group, actor: u64, op: Op) -> Outcome {
    run(g, actor, op).expect("the rule allows it")
}

fn after(g: &Group, actor: u64, op: Op) -> Group {
    ok(g, actor, op).group.expect("the group still exists")
}

fn refusal(g: &Group, actor: u64, op: Op) -> (u16, &'static str, String) {
    let e = run(g, actor, op).expect_err("the rule refuses");
    (e.status().as_u16(), e.code(), e.to_string())
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

#[test]
fn create_makes_the_creator_superadmin_and_the_others_participants_in_order() {
    let (g, changes) = create(
        gid(),
        code('A'),
        &c(10001),
        "Team".into(),
        &[c(10002), c(10001), c(10002), c(10003)],
        NOW,
    )
    .expect("create");
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
    let e = create(gid(), code('A'), &c(10001), "Big".into(), &others, NOW)
        .expect_err("1025 members is too many");
    assert_eq!(e.status().as_u16(), 400);
    assert!(e.to_string().starts_with("participants:"), "{e}");
    assert!(create(gid(), code('A'), &c(10001), "Big".into(), &others[1..], NOW).is_ok());
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
fn any_member_may_change_subject_description_and_picture_while_info_is_open() {
    let g = group();
    let out = ok(&g, 10002, Op::SetSubject("Renamed".into()));
    assert_eq!(
        out.group.as_ref().map(|g| g.subject.as_str()),
        Some("Renamed")
    );
    let mut fields = Map::new();
    fields.insert("subject".into(), "Renamed".into());
    assert_eq!(
        out.changes,
        vec![Change::Updated {
            fields,
            operation: "subject"
        }]
    );
    let g = after(&g, 10003, Op::SetDescription("About".into()));
    assert_eq!(g.description, "About");
    let url = "https://example.com/p.jpg".to_owned();
    let g = after(
        &g,
        10004,
        Op::SetPicture(Some(NewPicture::Url(url.clone()))),
    );
    assert_eq!(g.picture, Some(Picture::Url(url)));
}

#[test]
fn a_picture_set_from_bytes_leaves_only_its_type_size_and_digest_in_the_group() {
    let bytes: std::sync::Arc<[u8]> = vec![7u8; 300_000].into();
    let pic = NewPicture::Bytes {
        mimetype: "image/png".into(),
        bytes,
    };
    let g = after(&group(), 10002, Op::SetPicture(Some(pic)));
    let Some(Picture::File {
        mimetype,
        size,
        digest,
    }) = &g.picture
    else {
        panic!("a file reference, got {:?}", g.picture);
    };
    assert_eq!((mimetype.as_str(), *size), ("image/png", 300_000));
    assert_eq!(digest.len(), 64, "hex sha256: {digest}");
    let json = serde_json::to_string(&g).expect("json");
    assert!(json.len() < 2048, "the record is {} bytes", json.len());
}

#[test]
fn non_admin_cannot_change_subject_description_or_picture_when_info_is_admin_only() {
    let g = with_setting(&group(), Setting::InfoAdminOnly, true);
    for op in [
        Op::SetSubject("X".into()),
        Op::SetDescription("X".into()),
        Op::SetPicture(None),
    ] {
        let (status, code, message) = refusal(&g, 10002, op);
        assert_eq!((status, code), (403, "info_admin_only"));
        assert!(
            message.contains("only admins can change group info"),
            "{message}"
        );
    }
    let g = with_admin(&g, 10002);
    assert_eq!(after(&g, 10002, Op::SetSubject("X".into())).subject, "X");
}

#[test]
fn only_admins_change_settings_and_the_update_names_the_group_info_field() {
    let g = group();
    for s in [
        Setting::InfoAdminOnly,
        Setting::MessagesAdminOnly,
        Setting::MembersCanAdd,
        Setting::ApprovalRequired,
    ] {
        let (status, code, message) = refusal(&g, 10002, Op::SetSetting(s, true));
        assert_eq!((status, code), (403, "not_admin"));
        assert!(message.contains("only admins can change group settings"));
        let out = ok(&g, 10001, Op::SetSetting(s, true));
        assert!(s.get(&out.group.expect("group").settings));
        let Change::Updated { fields, operation } = &out.changes[0] else {
            panic!("an update: {:?}", out.changes);
        };
        assert_eq!(*operation, "settings");
        let (field, shown) = fields.iter().next().expect("one field");
        assert_eq!(fields.len(), 1);
        let (want_field, want) = match s {
            Setting::InfoAdminOnly => ("infoAdminOnly", true),
            // messages admin only means members can NOT send: GroupInfo shows the inverse.
            Setting::MessagesAdminOnly => ("membersCanSendMessages", false),
            Setting::MembersCanAdd => ("membersCanAddNewMember", true),
            Setting::ApprovalRequired => ("newMembersApprovalRequired", true),
        };
        assert_eq!((field.as_str(), shown), (want_field, &Value::Bool(want)));
    }
}

#[test]
fn only_admins_revoke_the_invite_code() {
    let g = group();
    let (status, code_, _) = refusal(&g, 10002, Op::RevokeInvite(code('B')));
    assert_eq!((status, code_), (403, "not_admin"));
    let out = ok(&g, 10001, Op::RevokeInvite(code('B')));
    assert_eq!(out.group.expect("group").invite, code('B'));
    let mut fields = Map::new();
    fields.insert("invite".into(), code('B').url().into());
    assert_eq!(
        out.changes,
        vec![Change::Updated {
            fields,
            operation: "revoke_invite"
        }]
    );
}

#[test]
fn only_admins_remove_promote_demote_delete_approve_and_reject() {
    let g = group();
    let ops = [
        Op::Remove(vec![c(10003)]),
        Op::Promote(vec![c(10003)]),
        Op::Demote(vec![c(10003)]),
        Op::Delete,
        Op::Approve(vec![c(10009)]),
        Op::Reject(vec![c(10009)]),
    ];
    for op in ops {
        let name = op.operation();
        let (status, code, message) = refusal(&g, 10002, op);
        assert_eq!((status, code), (403, "not_admin"), "{name}");
        assert!(message.starts_with("only admins can"), "{message}");
    }
}

#[test]
fn an_admin_removes_members_and_results_follow_request_order() {
    let g = with_admin(&group(), 10002);
    let out = ok(
        &g,
        10002,
        Op::Remove(vec![c(10003), c(99999), c(10001), c(10002), c(10004)]),
    );
    let codes: Vec<Option<&str>> = out
        .results
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.code.as_str()))
        .collect();
    assert_eq!(
        codes,
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
    let codes: Vec<Option<&str>> = out
        .results
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.code.as_str()))
        .collect();
    assert_eq!(
        codes,
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
    let (status, code, message) = refusal(&g, 10002, Op::Add(vec![c(10005)]));
    assert_eq!((status, code), (403, "not_admin"));
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
            message: "10002@c.us is already a member".into()
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
    let g = create(gid(), code('A'), &c(10001), "Big".into(), &others, NOW)
        .expect("create")
        .0;
    assert_eq!(g.participants.len(), 1022);
    let out = ok(
        &g,
        10001,
        Op::Add(vec![c(30001), c(20000), c(30002), c(30003)]),
    );
    let codes: Vec<Option<&str>> = out
        .results
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.code.as_str()))
        .collect();
    assert_eq!(
        codes,
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
fn a_non_member_is_told_the_group_does_not_exist() {
    let g = group();
    for op in [
        Op::SetSubject("X".into()),
        Op::Leave,
        Op::Add(vec![c(10009)]),
    ] {
        let (status, code, message) = refusal(&g, 99999, op);
        assert_eq!((status, code), (404, "group_not_found"));
        assert_eq!(
            message,
            "Group 120363000000000001@g.us not found in session \"default\""
        );
    }
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
fn join_by_invite_adds_a_participant_or_files_a_request_when_approval_is_on() {
    let g = group();
    let (status, code_, _) = refusal(&g, 10009, Op::Join(code('B')));
    assert_eq!((status, code_), (404, "invite_not_found"));
    let (status, code_, _) = refusal(&g, 10002, Op::Join(code('A')));
    assert_eq!((status, code_), (409, "already_member"));
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
    let (status, code_, _) = refusal(&g, 10009, Op::Join(code('A')));
    assert_eq!((status, code_), (409, "join_request_pending"));
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
    let g = create(gid(), code('A'), &c(10001), "Big".into(), &others, NOW)
        .expect("create")
        .0;
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
