//! Contract §3 through the event log: the exact envelope and the exact payload of every event,
//! to every member session.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};

use common::keys;

const ME: &str = "11111111111@c.us";
const BOB: &str = "22222222222@c.us";
const CAROL: &str = "33333333333@c.us";

fn participants(ids: &[&str]) -> Value {
    json!({"participants": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()})
}

/// The group events of a session's log, oldest first.
async fn group_events(gw: &common::Gateway, session: &str) -> Vec<Value> {
    gw.events(session)
        .await
        .into_iter()
        .filter(|e| e["event"] != "session.status")
        .collect()
}

/// Log length before an action, to read only what the action wrote.
async fn mark(gw: &common::Gateway, session: &str) -> usize {
    group_events(gw, session).await.len()
}

async fn since(gw: &common::Gateway, session: &str, mark: usize) -> Vec<Value> {
    group_events(gw, session).await.split_off(mark)
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect()
}

/// The payload, checked to carry the envelope's time in unix seconds, with that timestamp removed.
fn payload(e: &Value) -> Value {
    let mut p = e["payload"].clone();
    let ms = e["timestamp"].as_u64().expect("envelope timestamp");
    assert_eq!(p["timestamp"].as_u64(), Some(ms / 1000), "{e}");
    p.as_object_mut().expect("object").remove("timestamp");
    p
}

/// A group.join / group.leave payload without its (opaque) id and timestamp.
fn v1(e: &Value) -> Value {
    let mut p = payload(e);
    assert!(p["id"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
    p.as_object_mut().expect("object").remove("id");
    p
}

fn data(author: &str, operation: &str) -> Value {
    json!({"author": author, "operation": operation})
}

async fn alpha_bob() -> common::Gateway {
    let gw = common::gateway().await;
    gw.session("alpha", Some(ME), None).await;
    gw.session("bob", Some(BOB), None).await;
    gw
}

#[tokio::test]
async fn the_envelope_has_the_waha_keys_in_order_and_metadata_only_when_configured() {
    let gw = common::gateway().await;
    gw.post(
        "/api/sessions",
        json!({"name": "meta", "config": {"metadata": {"tenant": "acme", "n": "1"}, "local": {"me": {"id": ME, "pushName": "Me"}}}}),
    )
    .await;
    gw.session("plain", None, None).await;
    let (_, environment) = gw.get("/api/server/version").await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64;
    gw.group("meta", "Team", &[]).await;

    let events = gw.events("meta").await;
    let e = events.last().expect("an event");
    assert_eq!(
        keys(e),
        [
            "id",
            "timestamp",
            "event",
            "session",
            "metadata",
            "me",
            "payload",
            "engine",
            "environment"
        ]
    );
    let id = e["id"].as_str().expect("id");
    let ulid = id.strip_prefix("evt_").expect("evt_ prefix");
    assert_eq!(ulid.len(), 26, "{id}");
    assert!(
        ulid.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
        "lowercase ulid: {id}"
    );
    let ts = e["timestamp"].as_u64().expect("ms");
    assert!(
        ts + 1000 >= before && ts < before + 60_000,
        "ms since the epoch"
    );
    assert_eq!(e["event"], "group.v2.join");
    assert_eq!(e["session"], "meta");
    assert_eq!(e["metadata"], json!({"tenant": "acme", "n": "1"}));
    assert_eq!(keys(&e["metadata"]), ["tenant", "n"]);
    assert_eq!(e["me"], json!({"id": ME, "pushName": "Me"}));
    assert_eq!(keys(&e["me"]), ["id", "pushName"]);
    assert_eq!(e["engine"], "LOCAL");
    assert_eq!(e["environment"], environment);

    let plain = gw.events("plain").await;
    for e in &plain {
        assert_eq!(
            keys(e),
            [
                "id",
                "timestamp",
                "event",
                "session",
                "me",
                "payload",
                "engine",
                "environment"
            ]
        );
    }
    let mut ids: Vec<&str> = events
        .iter()
        .chain(&plain)
        .filter_map(|e| e["id"].as_str())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "every event id is unique");
}

#[tokio::test]
async fn session_status_events_follow_each_status_change() {
    let gw = common::gateway().await;
    gw.session("alpha", None, None).await;
    gw.post("/api/sessions/alpha/stop", json!({})).await;
    let events = gw.events("alpha").await;
    assert_eq!(names(&events), ["session.status"; 3]);
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["payload"]["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["STARTING", "WORKING", "STOPPED"]);
    let last = &events[2]["payload"];
    assert_eq!(keys(last), ["name", "status", "statuses"]);
    assert_eq!(last["name"], "alpha");
    let history: Vec<&str> = last["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|s| {
            assert_eq!(keys(s), ["status", "timestamp"]);
            assert!(s["timestamp"]
                .as_u64()
                .is_some_and(|t| t > 1_700_000_000_000));
            s["status"].as_str().unwrap_or_default()
        })
        .collect();
    assert_eq!(history, ["STARTING", "WORKING", "STOPPED"]);
}

#[tokio::test]
async fn create_sends_group_join_and_group_v2_join_to_every_member_session() {
    let gw = alpha_bob().await;
    let g = gw.group("alpha", "Team", &[BOB, CAROL]).await;
    let gid = g["id"].as_str().expect("id").to_owned();
    for (session, admin) in [("alpha", true), ("bob", false)] {
        let events = group_events(&gw, session).await;
        assert_eq!(names(&events), ["group.join", "group.v2.join"], "{session}");
        assert_eq!(
            keys(&events[0]["payload"]),
            [
                "id",
                "timestamp",
                "chatId",
                "author",
                "type",
                "recipientIds",
                "group"
            ]
        );
        assert_eq!(
            v1(&events[0]),
            json!({"chatId": gid, "author": ME, "type": "create",
                   "recipientIds": [ME, BOB, CAROL], "group": {"id": gid, "subject": "Team"}}),
            "{session}"
        );
        assert_eq!(
            keys(&events[1]["payload"]),
            ["timestamp", "group", "by", "_data"]
        );
        let mut info = g.clone();
        if !admin {
            // Only admins see the invite; WAHA types it as a string, so it is left out.
            info.as_object_mut().expect("object").remove("invite");
        }
        assert_eq!(
            payload(&events[1]),
            json!({"group": info, "by": ME, "_data": data(ME, "create")}),
            "{session} sees the group as it sees it"
        );
    }
}

#[tokio::test]
async fn add_remove_promote_and_demote_send_the_contract_payloads() {
    let gw = alpha_bob().await;
    let gid = gw.group("alpha", "Team", &[CAROL]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let at = |op: &str| format!("/api/alpha/groups/{gid}/{op}");
    let m = mark(&gw, "alpha").await;
    gw.post(&at("participants/add"), participants(&[BOB, CAROL]))
        .await;
    gw.post(&at("admin/promote"), participants(&[BOB])).await;
    gw.post(&at("admin/demote"), participants(&[BOB])).await;
    gw.post(&at("participants/remove"), participants(&[CAROL]))
        .await;
    let ev = since(&gw, "alpha", m).await;
    assert_eq!(
        names(&ev),
        [
            "group.join",
            "group.v2.participants",
            "group.v2.participants",
            "group.v2.participants",
            "group.leave",
            "group.v2.participants"
        ]
    );
    let group = json!({"id": gid, "subject": "Team"});
    assert_eq!(
        v1(&ev[0]),
        json!({"chatId": gid, "author": ME, "type": "add", "recipientIds": [BOB], "group": group})
    );
    let v2 = |ty: &str, id: &str, role: &str, op: &str| {
        json!({"type": ty, "group": {"id": gid}, "participants": [{"id": id, "pn": id, "role": role}],
               "by": ME, "_data": data(ME, op)})
    };
    assert_eq!(
        keys(&ev[1]["payload"]),
        ["type", "timestamp", "group", "participants", "by", "_data"]
    );
    assert_eq!(payload(&ev[1]), v2("join", BOB, "participant", "add"));
    assert_eq!(payload(&ev[2]), v2("promote", BOB, "admin", "promote"));
    assert_eq!(payload(&ev[3]), v2("demote", BOB, "participant", "demote"));
    assert_eq!(
        v1(&ev[4]),
        json!({"chatId": gid, "author": ME, "type": "remove", "recipientIds": [CAROL], "group": group})
    );
    assert_eq!(payload(&ev[5]), v2("leave", CAROL, "left", "remove"));

    // bob was added: he gets group.v2.join for himself, then sees the rest as a member.
    let bob = group_events(&gw, "bob").await;
    assert_eq!(
        names(&bob),
        [
            "group.join",
            "group.v2.join",
            "group.v2.participants",
            "group.v2.participants",
            "group.leave",
            "group.v2.participants"
        ]
    );
    assert_eq!(bob[1]["payload"]["by"], ME);
    assert_eq!(bob[1]["payload"]["_data"], data(ME, "add"));
    assert_eq!(bob[1]["payload"]["group"]["id"], json!(gid));
}

#[tokio::test]
async fn removal_and_leave_send_group_v2_leave_to_the_one_who_goes() {
    let gw = alpha_bob().await;
    let gid = gw.group("alpha", "Team", &[BOB, CAROL]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let group = json!({"id": gid, "subject": "Team"});
    let m = mark(&gw, "bob").await;
    gw.post(
        &format!("/api/alpha/groups/{gid}/participants/remove"),
        participants(&[BOB]),
    )
    .await;
    let ev = since(&gw, "bob", m).await;
    assert_eq!(names(&ev), ["group.leave", "group.v2.leave"]);
    assert_eq!(
        v1(&ev[0]),
        json!({"chatId": gid, "author": ME, "type": "remove", "recipientIds": [BOB], "group": group})
    );
    assert_eq!(
        keys(&ev[1]["payload"]),
        ["timestamp", "group", "by", "_data"]
    );
    assert_eq!(
        payload(&ev[1]),
        json!({"group": {"id": gid}, "by": ME, "_data": data(ME, "remove")})
    );

    // alpha, the last admin, leaves: carol (longest-standing) becomes admin.
    let m = mark(&gw, "alpha").await;
    gw.post(&format!("/api/alpha/groups/{gid}/leave"), json!({}))
        .await;
    let ev = since(&gw, "alpha", m).await;
    assert_eq!(names(&ev), ["group.leave", "group.v2.leave"]);
    assert_eq!(
        v1(&ev[0]),
        json!({"chatId": gid, "author": ME, "type": "leave", "recipientIds": [ME], "group": group})
    );
    assert_eq!(
        payload(&ev[1]),
        json!({"group": {"id": gid}, "by": ME, "_data": data(ME, "leave")})
    );
    let bob_after = since(&gw, "bob", 0).await;
    assert_eq!(bob_after.len(), 4, "bob is no longer told about the group");
}

#[tokio::test]
async fn a_member_sees_the_last_admin_leave_and_its_successor_promoted() {
    let gw = alpha_bob().await;
    let gid = gw.group("alpha", "Team", &[BOB, CAROL]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let m = mark(&gw, "bob").await;
    gw.post(&format!("/api/alpha/groups/{gid}/leave"), json!({}))
        .await;
    let ev = since(&gw, "bob", m).await;
    assert_eq!(
        names(&ev),
        [
            "group.leave",
            "group.v2.participants",
            "group.v2.participants"
        ]
    );
    assert_eq!(v1(&ev[0])["type"], "leave");
    assert_eq!(
        payload(&ev[1]),
        json!({"type": "leave", "group": {"id": gid}, "participants": [{"id": ME, "pn": ME, "role": "left"}],
               "by": ME, "_data": data(ME, "leave")})
    );
    assert_eq!(
        payload(&ev[2]),
        json!({"type": "promote", "group": {"id": gid}, "participants": [{"id": BOB, "pn": BOB, "role": "admin"}],
               "by": ME, "_data": data(ME, "leave")})
    );
}

#[tokio::test]
async fn group_v2_update_carries_only_the_changed_field() {
    let gw = common::gateway().await;
    gw.session("alpha", Some(ME), None).await;
    let gid = gw.group("alpha", "Team", &[BOB]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let at = |op: &str| format!("/api/alpha/groups/{gid}/{op}");
    let m = mark(&gw, "alpha").await;
    gw.put(&at("subject"), json!({"subject": "New"})).await;
    gw.put(&at("description"), json!({"description": "About"}))
        .await;
    gw.put(
        &at("picture"),
        json!({"file": {"url": "https://e.com/p.jpg"}}),
    )
    .await;
    gw.put(
        &at("settings/security/info-admin-only"),
        json!({"adminsOnly": true}),
    )
    .await;
    gw.put(
        &at("settings/security/messages-admin-only"),
        json!({"adminsOnly": true}),
    )
    .await;
    gw.put(
        &at("settings/security/member-add-mode"),
        json!({"membersCanAddNewMember": true}),
    )
    .await;
    gw.put(
        &at("settings/security/membership-approval"),
        json!({"newMembersApprovalRequired": true}),
    )
    .await;
    let (_, code) = gw.post(&at("invite-code/revoke"), json!({})).await;
    gw.call("DELETE", &at("picture"), None).await;
    let ev = since(&gw, "alpha", m).await;
    assert_eq!(names(&ev), ["group.v2.update"; 9]);
    let invite = format!("https://chat.whatsapp.com/{}", code.as_str().expect("code"));
    let want = [
        (json!({"subject": "New"}), "subject"),
        (json!({"description": "About"}), "description"),
        (json!({"picture": "https://e.com/p.jpg"}), "picture"),
        (json!({"infoAdminOnly": true}), "settings"),
        (json!({"membersCanSendMessages": false}), "settings"),
        (json!({"membersCanAddNewMember": true}), "settings"),
        (json!({"newMembersApprovalRequired": true}), "settings"),
        (json!({"invite": invite}), "revoke_invite"),
        (json!({"picture": null}), "picture"),
    ];
    for (e, (fields, op)) in ev.iter().zip(want) {
        assert_eq!(keys(&e["payload"]), ["timestamp", "group", "by", "_data"]);
        let mut group = json!({"id": gid});
        for (k, v) in fields.as_object().expect("object") {
            group[k] = v.clone();
        }
        assert_eq!(
            payload(e),
            json!({"group": group, "by": ME, "_data": data(ME, op)})
        );
        assert_eq!(keys(&e["payload"]["group"])[0], "id");
    }
}

#[tokio::test]
async fn joining_by_invite_sends_join_events_and_approval_sends_join_requests() {
    let gw = alpha_bob().await;
    gw.session("carol", Some(CAROL), None).await;
    let gid = gw.group("alpha", "Team", &[]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, code) = gw
        .get(&format!("/api/alpha/groups/{gid}/invite-code"))
        .await;
    let group = json!({"id": gid, "subject": "Team"});

    let m = mark(&gw, "alpha").await;
    gw.post("/api/bob/groups/join", json!({"code": code})).await;
    let ev = since(&gw, "alpha", m).await;
    assert_eq!(names(&ev), ["group.join", "group.v2.participants"]);
    assert_eq!(
        v1(&ev[0]),
        json!({"chatId": gid, "author": BOB, "type": "invite", "recipientIds": [BOB], "group": group})
    );
    assert_eq!(
        payload(&ev[1]),
        json!({"type": "join", "group": {"id": gid}, "participants": [{"id": BOB, "pn": BOB, "role": "participant"}],
               "by": BOB, "_data": data(BOB, "invite")})
    );
    let bob = group_events(&gw, "bob").await;
    assert_eq!(names(&bob), ["group.join", "group.v2.join"]);
    assert!(bob[1]["payload"]["group"].get("invite").is_none());
    assert_eq!(bob[1]["payload"]["_data"], data(BOB, "invite"));

    gw.put(
        &format!("/api/alpha/groups/{gid}/settings/security/membership-approval"),
        json!({"newMembersApprovalRequired": true}),
    )
    .await;
    let m = mark(&gw, "alpha").await;
    let m_bob = mark(&gw, "bob").await;
    gw.post("/api/carol/groups/join", json!({"code": code}))
        .await;
    let ev = since(&gw, "alpha", m).await;
    assert_eq!(names(&ev), ["group.v2.participants.join-request"]);
    assert_eq!(
        keys(&ev[0]["payload"]),
        [
            "action",
            "requesterId",
            "requesterPn",
            "requestMethod",
            "timestamp",
            "group",
            "_data"
        ]
    );
    assert_eq!(
        payload(&ev[0]),
        json!({"action": "created", "requesterId": CAROL, "requesterPn": CAROL, "requestMethod": "invite_link",
               "group": {"id": gid}, "_data": data(CAROL, "invite")})
    );
    assert!(
        since(&gw, "bob", m_bob).await.is_empty(),
        "join requests go to admins only"
    );
    assert!(
        group_events(&gw, "carol").await.is_empty(),
        "a request is not a membership"
    );

    let m = mark(&gw, "alpha").await;
    gw.post(
        &format!("/api/alpha/groups/{gid}/participants/join-requests/approve"),
        participants(&[CAROL]),
    )
    .await;
    let ev = since(&gw, "alpha", m).await;
    assert_eq!(names(&ev), ["group.join", "group.v2.participants"]);
    assert_eq!(
        v1(&ev[0]),
        json!({"chatId": gid, "author": ME, "type": "approve", "recipientIds": [CAROL], "group": group})
    );
    assert_eq!(
        names(&group_events(&gw, "carol").await),
        ["group.join", "group.v2.join"]
    );

    // carol leaves, asks again and is rejected.
    gw.post(&format!("/api/carol/groups/{gid}/leave"), json!({}))
        .await;
    gw.post("/api/carol/groups/join", json!({"code": code}))
        .await;
    let m = mark(&gw, "alpha").await;
    gw.post(
        &format!("/api/alpha/groups/{gid}/participants/join-requests/reject"),
        participants(&[CAROL]),
    )
    .await;
    let ev = since(&gw, "alpha", m).await;
    assert_eq!(names(&ev), ["group.v2.participants.join-request"]);
    assert_eq!(
        payload(&ev[0]),
        json!({"action": "rejected", "requesterId": CAROL, "requesterPn": CAROL, "requestMethod": "invite_link",
               "group": {"id": gid}, "_data": data(ME, "reject")})
    );
}

#[tokio::test]
async fn delete_removes_everyone_then_the_deleter_leaves() {
    let gw = alpha_bob().await;
    let gid = gw.group("alpha", "Team", &[BOB]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let m = mark(&gw, "alpha").await;
    let m_bob = mark(&gw, "bob").await;
    gw.call("DELETE", &format!("/api/alpha/groups/{gid}"), None)
        .await;
    let ev = since(&gw, "alpha", m).await;
    assert_eq!(
        names(&ev),
        [
            "group.leave",
            "group.v2.participants",
            "group.leave",
            "group.v2.leave"
        ]
    );
    assert_eq!(v1(&ev[0])["type"], "remove");
    assert_eq!(v1(&ev[0])["recipientIds"], json!([BOB]));
    assert_eq!(v1(&ev[2])["type"], "leave");
    assert_eq!(payload(&ev[3])["_data"], data(ME, "delete"));
    let bob = since(&gw, "bob", m_bob).await;
    assert_eq!(names(&bob), ["group.leave", "group.v2.leave"]);
    let (status, _) = gw.get(&format!("/api/bob/groups/{gid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
