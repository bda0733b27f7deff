//! The events a change makes, as the sessions that see them get them.

use serde_json::json;

use super::*;
use crate::groups::model::{JoinMethod, NewPicture, Picture};
use crate::groups::rules::{self, Actor, Op, RequestAction};
use crate::ids::{GroupId, InviteCode};

fn c(n: u64) -> ContactId {
    ContactId::parse(&format!("{n}@c.us")).expect("contact id")
}

/// A group made by 10001 (superadmin) with 10002 (participant).
fn team() -> Group {
    let gid = GroupId::parse("120363000000000001@g.us").expect("group id");
    let code = InviteCode::parse(&"A".repeat(22)).expect("invite code");
    let creator = Actor {
        id: c(10001),
        now: 1,
    };
    let others = [c(10002)];
    rules::create(gid, code, &creator, "Team".into(), &others)
        .expect("created")
        .0
}

/// `changes` by `actor` to `before`, made in session "alpha" at 2.
fn made<'a>(
    before: &'a Group,
    after: Option<&'a Group>,
    actor: &'a ContactId,
    changes: &'a [Change],
) -> GroupChange<'a> {
    GroupChange {
        before: Some(before),
        after,
        actor,
        operation: "picture",
        changes,
        now_s: 2,
        session: "alpha",
    }
}

#[test]
fn a_stored_picture_is_shown_at_the_acting_sessions_file_url() {
    let before = team();
    let picture = NewPicture::Bytes {
        mimetype: "image/png".into(),
        bytes: vec![1u8, 2, 3].into(),
    };
    let by = Actor {
        id: c(10001),
        now: 2,
    };
    let out = rules::apply(&before, &by, Op::SetPicture(Some(picture))).expect("set");
    let after = out.group.as_ref().expect("group");
    assert_eq!(after.picture, Some(Picture::file("image/png", &[1, 2, 3])));
    let events = made(&before, Some(after), &by.id, &out.changes).events_for(&c(10002));
    let url = "/api/alpha/groups/120363000000000001@g.us/picture/file";
    let want = json!({"timestamp": 2, "group": {"id": after.id.as_str(), "picture": url},
        "by": "10001@c.us", "_data": {"author": "10001@c.us", "operation": "picture"}});
    assert_eq!(events, vec![("group.v2.update", want)]);
}

#[test]
fn a_removed_picture_is_shown_as_null() {
    let before = team();
    let by = Actor {
        id: c(10002),
        now: 2,
    };
    let out = rules::apply(&before, &by, Op::SetPicture(None)).expect("removed");
    let events = made(&before, out.group.as_ref(), &by.id, &out.changes).events_for(&c(10001));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["group"]["picture"], Value::Null);
}

#[test]
fn a_join_request_names_its_method_as_waha_does_and_only_admins_hear_of_it() {
    let g = team();
    let changes = [Change::JoinRequest {
        action: RequestAction::Created,
        requester: c(10009),
        method: JoinMethod::NonAdminAdd,
    }];
    let change = made(&g, Some(&g), &g.owner, &changes);
    let events = change.events_for(&c(10001));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "group.v2.participants.join-request");
    assert_eq!(events[0].1["requestMethod"], "non_admin_add");
    assert!(change.events_for(&c(10002)).is_empty(), "not an admin");
}
