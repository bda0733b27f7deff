//! Contract §2 rules seen through two sessions of one gateway: what a non-admin member may and
//! may not do, joining by invite, join requests and their approval, and the last admin leaving.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};

const ME: &str = "11111111111@c.us";
const BOB: &str = "22222222222@c.us";
const CAROL: &str = "33333333333@c.us";

fn id_of(g: &Value) -> String {
    g["id"].as_str().expect("group id").to_owned()
}

fn participants(ids: &[&str]) -> Value {
    json!({"participants": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()})
}

/// A gateway with session `alpha` acting as ME.
async fn alpha() -> common::Gateway {
    let gw = common::gateway().await;
    gw.session("alpha", Some(ME), None).await;
    gw
}

/// ME's session `alpha` and BOB's session `bob`, and a group of alpha's with bob in it.
async fn alpha_and_bob() -> (common::Gateway, String) {
    let gw = alpha().await;
    gw.session("bob", Some(BOB), None).await;
    let id = id_of(&gw.group("alpha", "Team", &[BOB, CAROL]).await);
    (gw, id)
}

#[tokio::test]
async fn a_non_admin_sees_no_invite_and_is_refused_admin_operations_with_403() {
    let (gw, id) = alpha_and_bob().await;
    let at = |op: &str| format!("/api/bob/groups/{id}{op}");
    let (status, g) = gw.get(&at("")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        g["invite"],
        Value::Null,
        "the invite URL is only for admins"
    );
    let refusals = [
        (
            "GET",
            at("/invite-code"),
            None,
            "only admins can read the invite code",
        ),
        (
            "POST",
            at("/invite-code/revoke"),
            None,
            "only admins can revoke the invite code",
        ),
        (
            "PUT",
            at("/settings/security/info-admin-only"),
            Some(json!({"adminsOnly": true})),
            "only admins can change group settings",
        ),
        (
            "PUT",
            at("/settings/security/member-add-mode"),
            Some(json!({"membersCanAddNewMember": true})),
            "only admins can change group settings",
        ),
        (
            "POST",
            at("/participants/remove"),
            Some(participants(&[CAROL])),
            "only admins can remove participants",
        ),
        (
            "POST",
            at("/admin/promote"),
            Some(participants(&[CAROL])),
            "only admins can promote participants",
        ),
        (
            "POST",
            at("/admin/demote"),
            Some(participants(&[ME])),
            "only admins can demote admins",
        ),
        ("DELETE", at(""), None, "only admins can delete the group"),
        (
            "GET",
            at("/participants/join-requests"),
            None,
            "only admins can list join requests",
        ),
        (
            "POST",
            at("/participants/join-requests/approve"),
            Some(participants(&[CAROL])),
            "only admins can approve join requests",
        ),
        (
            "POST",
            at("/participants/join-requests/reject"),
            Some(participants(&[CAROL])),
            "only admins can reject join requests",
        ),
        (
            "POST",
            at("/participants/add"),
            Some(participants(&["44444444444@c.us"])),
            "only admins can add participants (membersCanAddNewMember is off)",
        ),
    ];
    for (method, path, body, message) in refusals {
        let (status, answer) = gw.call(method, &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(
            answer,
            json!({"statusCode": 403, "error": "Forbidden", "message": message, "code": "not_admin"}),
            "{method} {path}"
        );
    }
    // While info is open, a member may change it.
    let (status, _) = gw.put(&at("/subject"), json!({"subject": "Bob's"})).await;
    assert_eq!(status, StatusCode::OK);
    gw.put(
        &format!("/api/alpha/groups/{id}/settings/security/info-admin-only"),
        json!({"adminsOnly": true}),
    )
    .await;
    for (path, body) in [
        (at("/subject"), json!({"subject": "X"})),
        (at("/description"), json!({"description": "X"})),
        (
            at("/picture"),
            json!({"file": {"url": "https://e.com/p.jpg"}}),
        ),
    ] {
        let (status, answer) = gw.put(&path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            answer,
            json!({"statusCode": 403, "error": "Forbidden",
                   "message": "only admins can change group info (infoAdminOnly is on)", "code": "info_admin_only"})
        );
    }
    let (_, g) = gw.get(&format!("/api/alpha/groups/{id}")).await;
    assert_eq!(g["subject"], "Bob's");
}

#[tokio::test]
async fn a_member_adds_with_member_add_mode_and_it_becomes_a_join_request_with_approval() {
    let (gw, id) = alpha_and_bob().await;
    let admin = |p: &str| format!("/api/alpha/groups/{id}{p}");
    gw.put(
        &admin("/settings/security/member-add-mode"),
        json!({"membersCanAddNewMember": true}),
    )
    .await;
    let (status, body) = gw
        .post(
            &format!("/api/bob/groups/{id}/participants/add"),
            participants(&["44444444444@c.us"]),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!([{"id": "44444444444@c.us", "success": true}])
        )
    );
    gw.put(
        &admin("/settings/security/membership-approval"),
        json!({"newMembersApprovalRequired": true}),
    )
    .await;
    let (status, body) = gw
        .post(
            &format!("/api/bob/groups/{id}/participants/add"),
            participants(&["55555555555@c.us"]),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!([{"id": "55555555555@c.us", "success": true}])
        )
    );
    let (_, g) = gw.get(&admin("")).await;
    assert_eq!(g["size"], 4, "the second add is only a request");
    let (status, list) = gw.get(&admin("/participants/join-requests")).await;
    assert_eq!(status, StatusCode::OK);
    let ts = list[0]["timestamp"].as_u64().expect("timestamp");
    assert_eq!(
        list,
        json!([{"requesterId": "55555555555@c.us", "requesterPn": "55555555555@c.us", "addedById": BOB, "parentGroupId": null, "requestMethod": "non_admin_add", "timestamp": ts}])
    );
}

#[tokio::test]
async fn join_by_invite_and_join_requests_approve_and_reject() {
    let (gw, id) = alpha_and_bob().await;
    gw.session("dave", Some("44444444444@c.us"), None).await;
    gw.session("erin", Some("55555555555@c.us"), None).await;
    let (_, code) = gw.get(&format!("/api/alpha/groups/{id}/invite-code")).await;
    let code = code.as_str().expect("code").to_owned();

    let (status, body) = gw
        .post("/api/dave/groups/join", json!({"code": code}))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"id": id})));
    let (status, g) = gw.get(&format!("/api/dave/groups/{id}")).await;
    assert_eq!(status, StatusCode::OK, "dave is a member now");
    assert_eq!(g["size"], 4);
    let (status, body) = gw
        .post("/api/dave/groups/join", json!({"code": code}))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::CONFLICT, json!("already_member"))
    );

    gw.put(
        &format!("/api/alpha/groups/{id}/settings/security/membership-approval"),
        json!({"newMembersApprovalRequired": true}),
    )
    .await;
    let url = format!("https://chat.whatsapp.com/{code}");
    let (status, body) = gw.post("/api/erin/groups/join", json!({"code": url})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"id": id})));
    let (status, _) = gw.get(&format!("/api/erin/groups/{id}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a request is not a membership"
    );
    let (status, body) = gw
        .post("/api/erin/groups/join", json!({"code": code}))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::CONFLICT, json!("join_request_pending"))
    );
    let (_, list) = gw
        .get(&format!(
            "/api/alpha/groups/{id}/participants/join-requests"
        ))
        .await;
    let ts = list[0]["timestamp"].as_u64().expect("timestamp");
    assert_eq!(
        list,
        json!([{"requesterId": "55555555555@c.us", "requesterPn": "55555555555@c.us", "addedById": null, "parentGroupId": null, "requestMethod": "invite_link", "timestamp": ts}])
    );

    let (status, body) = gw
        .post(
            &format!("/api/alpha/groups/{id}/participants/join-requests/approve"),
            participants(&["55555555555@c.us", "66666666666@c.us"]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([
            {"requesterId": "55555555555@c.us", "success": true},
            {"requesterId": "66666666666@c.us", "success": false, "error": 404},
        ])
    );
    let (status, g) = gw.get(&format!("/api/erin/groups/{id}")).await;
    assert_eq!(status, StatusCode::OK, "approved: erin is a member");
    assert_eq!(
        g["participants"][4],
        json!({"id": "55555555555@c.us", "pn": "55555555555@c.us", "role": "participant"})
    );

    // erin leaves and asks again; this time she is rejected.
    gw.post(&format!("/api/erin/groups/{id}/leave"), json!({}))
        .await;
    gw.post("/api/erin/groups/join", json!({"code": code}))
        .await;
    let (status, body) = gw
        .post(
            &format!("/api/alpha/groups/{id}/participants/join-requests/reject"),
            participants(&["55555555555@c.us"]),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!([{"requesterId": "55555555555@c.us", "success": true}])
        )
    );
    let (_, list) = gw
        .get(&format!(
            "/api/alpha/groups/{id}/participants/join-requests"
        ))
        .await;
    assert_eq!(list, json!([]));
    let (status, _) = gw.get(&format!("/api/erin/groups/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn leave_of_the_last_admin_makes_the_longest_standing_participant_admin() {
    let (gw, id) = alpha_and_bob().await;
    let (status, _) = gw
        .post(&format!("/api/alpha/groups/{id}/leave"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = gw.get(&format!("/api/bob/groups/{id}/participants")).await;
    assert_eq!(
        list,
        json!([{"id": BOB, "pn": BOB, "role": "admin"}, {"id": CAROL, "pn": CAROL, "role": "participant"}])
    );
    let (_, g) = gw.get(&format!("/api/bob/groups/{id}")).await;
    assert!(
        g["invite"].is_string(),
        "bob is admin now and sees the invite"
    );
}

#[tokio::test]
async fn the_invite_code_of_a_deleted_group_stops_working() {
    let gw = alpha().await;
    gw.session("bob", Some(BOB), None).await;
    let id = id_of(&gw.group("alpha", "Team", &[]).await);
    let (_, code) = gw.get(&format!("/api/alpha/groups/{id}/invite-code")).await;
    gw.call("DELETE", &format!("/api/alpha/groups/{id}"), None)
        .await;
    let code = code.as_str().expect("code");
    let (status, body) = gw
        .get(&format!("/api/bob/groups/join-info?code={code}"))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("invite_not_found"))
    );
    let (status, _) = gw.post("/api/bob/groups/join", json!({"code": code})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
