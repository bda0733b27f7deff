//! The local network: sessions of one gateway are members of each other's groups, each with
//! its own copy of the group and its own events, through the HTTP API only: sharing a group,
//! joining by invite or by request, admin rights, the last admin leaving, deleting a group.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};

use common::local_network::{group_of, payloads, role_in, three_sessions, A, B, C};

const OUTSIDER: &str = "99999999999@c.us";

fn code_of(info: &Value) -> String {
    info["invite"]
        .as_str()
        .expect("admins see the invite URL")
        .to_owned()
}

/// The Done-when scenario of issue 5; checked again after the gateway reopens its data dir.
#[tokio::test]
async fn three_sessions_share_a_group_through_the_api_and_keep_it_after_a_restart() {
    let gw = three_sessions().await;
    let g = gw.group("a", "Team", &[B]).await;
    let gid = g["id"].as_str().expect("id").to_owned();

    // B sees the group with its own role, and was told it joined.
    let (s, b_view) = group_of(&gw, "b", &gid).await;
    assert_eq!(s, StatusCode::OK, "{b_view}");
    assert_eq!(role_in(&b_view, B).as_deref(), Some("participant"));
    assert!(b_view.get("invite").is_none(), "B is no admin: {b_view}");
    let b_join = payloads(&gw, "b", "group.v2.join").await;
    assert_eq!(b_join.len(), 1);
    assert_eq!(b_join[0]["group"]["id"], gid);
    assert_eq!(b_join[0]["by"], A);
    let b_v1 = payloads(&gw, "b", "group.join").await;
    assert_eq!(b_v1[0]["type"], "create");

    // C joins by A's invite code: A and B learn of it.
    let (s, body) = gw
        .post("/api/c/groups/join", json!({"code": code_of(&g)}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["id"], gid);
    for member in ["a", "b"] {
        let parts = payloads(&gw, member, "group.v2.participants").await;
        let last = parts.last().expect("a participants event");
        assert_eq!(last["type"], "join", "{member}");
        assert_eq!(
            last["participants"],
            json!([{"id": C, "pn": C, "role": "participant"}])
        );
        assert_eq!(last["by"], C);
        let joins = payloads(&gw, member, "group.join").await;
        let last = joins.last().expect("a group.join");
        assert_eq!(last["type"], "invite", "{member}");
        assert_eq!(last["recipientIds"], json!([C]));
    }
    assert_eq!(payloads(&gw, "c", "group.v2.join").await.len(), 1);

    // B may not rename while info is admin-only; may once A promotes B.
    let (s, _) = gw
        .put(
            &format!("/api/a/groups/{gid}/settings/security/info-admin-only"),
            json!({"adminsOnly": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, refusal) = gw
        .put(
            &format!("/api/b/groups/{gid}/subject"),
            json!({"subject": "B's"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{refusal}");
    assert_eq!(refusal["code"], "info_admin_only");
    let (s, res) = gw
        .post(
            &format!("/api/a/groups/{gid}/admin/promote"),
            json!({"participants": [{"id": B}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(res[0]["success"], true, "{res}");
    let (s, _) = gw
        .put(
            &format!("/api/b/groups/{gid}/subject"),
            json!({"subject": "B's"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // A removes C: C is told it left and no longer sees the group.
    let (s, res) = gw
        .post(
            &format!("/api/a/groups/{gid}/participants/remove"),
            json!({"participants": [{"id": C}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(res[0]["success"], true, "{res}");

    assert_scenario_end(&gw, &gid).await;

    let dir = gw.dir;
    drop(gw.router);
    drop(gw.state);
    let gw = common::gateway_in(dir, |_| {}).await;
    assert_scenario_end(&gw, &gid).await;
}

/// What every session of the scenario holds and was told once A removed C.
async fn assert_scenario_end(gw: &common::Gateway, gid: &str) {
    let c_leave = payloads(gw, "c", "group.v2.leave").await;
    assert_eq!(c_leave.len(), 1);
    assert_eq!(c_leave[0]["group"]["id"], gid);
    assert_eq!(c_leave[0]["by"], A);
    let (s, _) = group_of(gw, "c", gid).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for member in ["a", "b"] {
        let (s, view) = group_of(gw, member, gid).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(view["subject"], "B's", "{member}");
        assert_eq!(role_in(&view, B).as_deref(), Some("admin"));
        assert_eq!(role_in(&view, C), None);
        assert_eq!(
            gw.event_names(member).await,
            [
                "group.join",
                "group.v2.join",
                "group.join",
                "group.v2.participants",
                "group.v2.update",
                "group.v2.participants",
                "group.v2.update",
                "group.leave",
                "group.v2.participants",
            ],
            "{member}"
        );
        let parts = payloads(gw, member, "group.v2.participants").await;
        assert_eq!(parts[1]["type"], "promote");
        assert_eq!(
            parts[1]["participants"],
            json!([{"id": B, "pn": B, "role": "admin"}])
        );
        assert_eq!(parts[2]["type"], "leave");
        assert_eq!(
            parts[2]["participants"],
            json!([{"id": C, "pn": C, "role": "left"}])
        );
    }
    assert_eq!(
        gw.event_names("c").await,
        [
            "group.join",
            "group.v2.join",
            "group.v2.update",
            "group.v2.participants",
            "group.v2.update",
            "group.leave",
            "group.v2.leave",
        ]
    );
}

#[tokio::test]
async fn join_info_previews_without_joining_and_a_revoked_code_is_404() {
    let gw = three_sessions().await;
    let g = gw.group("a", "Open", &[]).await;
    let gid = g["id"].as_str().expect("id");
    let old = code_of(&g);

    let (s, preview) = gw.get(&format!("/api/b/groups/join-info?code={old}")).await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    assert_eq!(preview["id"], gid);
    assert_eq!(preview["subject"], "Open");
    assert_eq!(preview["size"], 1);
    assert_eq!(gw.get("/api/b/groups").await.1, json!([]));
    assert_eq!(group_of(&gw, "a", gid).await.1["size"], 1);

    let (s, new) = gw
        .post(
            &format!("/api/a/groups/{gid}/invite-code/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{new}");
    let new = new.as_str().expect("the new code").to_owned();
    let (s, err) = gw.get(&format!("/api/b/groups/join-info?code={old}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{err}");
    let (s, err) = gw.post("/api/b/groups/join", json!({"code": old})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(err["code"], "invite_not_found");

    let (s, _) = gw.post("/api/b/groups/join", json!({"code": new})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, list) = gw.get("/api/b/groups").await;
    assert_eq!(list[0]["id"], gid);
    assert_eq!(role_in(&list[0], B).as_deref(), Some("participant"));
    let (s, err) = gw.post("/api/b/groups/join", json!({"code": new})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{err}");

    // The new code is news for admins only: B, a participant, never sees an invite.
    let b_updates = payloads(&gw, "b", "group.v2.update").await;
    assert!(b_updates.is_empty(), "{b_updates:?}");
    let a_updates = payloads(&gw, "a", "group.v2.update").await;
    assert_eq!(
        a_updates[0]["group"]["invite"],
        format!("https://chat.whatsapp.com/{new}")
    );
}

#[tokio::test]
async fn with_approval_required_a_join_is_a_request_that_admins_approve_or_reject() {
    let gw = three_sessions().await;
    let g = gw.group("a", "Gated", &[]).await;
    let gid = g["id"].as_str().expect("id");
    let (s, _) = gw
        .put(
            &format!("/api/a/groups/{gid}/settings/security/membership-approval"),
            json!({"newMembersApprovalRequired": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for session in ["b", "c"] {
        let (s, body) = gw
            .post(
                &format!("/api/{session}/groups/join"),
                json!({"code": code_of(&g)}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["id"], gid);
        assert_eq!(gw.get(&format!("/api/{session}/groups")).await.1, json!([]));
    }
    let (s, requests) = gw
        .get(&format!("/api/a/groups/{gid}/participants/join-requests"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let who: Vec<&Value> = requests
        .as_array()
        .expect("array")
        .iter()
        .map(|r| &r["requesterId"])
        .collect();
    assert_eq!(who, [B, C]);
    assert_eq!(requests[0]["requestMethod"], "invite_link");
    let created = payloads(&gw, "a", "group.v2.participants.join-request").await;
    assert_eq!(created.len(), 2);
    assert_eq!(created[0]["action"], "created");
    assert_eq!(created[0]["requesterId"], B);

    let (s, res) = gw
        .post(
            &format!("/api/a/groups/{gid}/participants/join-requests/approve"),
            json!({"participants": [{"id": B}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(res, json!([{"requesterId": B, "success": true}]));
    let (s, view) = group_of(&gw, "b", gid).await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(role_in(&view, B).as_deref(), Some("participant"));
    assert_eq!(gw.event_names("b").await, ["group.join", "group.v2.join"]);
    assert_eq!(payloads(&gw, "b", "group.join").await[0]["type"], "approve");

    let (s, res) = gw
        .post(
            &format!("/api/a/groups/{gid}/participants/join-requests/reject"),
            json!({"participants": [{"id": C}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(res, json!([{"requesterId": C, "success": true}]));
    assert_eq!(group_of(&gw, "c", gid).await.0, StatusCode::NOT_FOUND);
    assert!(gw.event_names("c").await.is_empty());
    let rejected = payloads(&gw, "a", "group.v2.participants.join-request").await;
    assert_eq!(rejected[2]["action"], "rejected");
    assert_eq!(rejected[2]["requesterId"], C);
    // B is no admin: it hears of no request.
    assert!(payloads(&gw, "b", "group.v2.participants.join-request")
        .await
        .is_empty());
    let (_, requests) = gw
        .get(&format!("/api/a/groups/{gid}/participants/join-requests"))
        .await;
    assert_eq!(requests, json!([]));
}

#[tokio::test]
async fn a_participant_is_refused_admin_changes_until_promoted_and_nobody_removes_the_superadmin() {
    let gw = three_sessions().await;
    let g = gw.group("a", "Rules", &[B, C]).await;
    let gid = g["id"].as_str().expect("id");
    let setting = format!("/api/b/groups/{gid}/settings/security/messages-admin-only");
    let (s, err) = gw.put(&setting, json!({"adminsOnly": true})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["code"], "not_admin");
    let (s, _) = gw
        .post(
            &format!("/api/b/groups/{gid}/participants/remove"),
            json!({"participants": [{"id": C}]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = gw.get(&format!("/api/b/groups/{gid}/invite-code")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, _) = gw
        .post(
            &format!("/api/a/groups/{gid}/admin/promote"),
            json!({"participants": [{"id": B}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = gw.put(&setting, json!({"adminsOnly": true})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, c_view) = group_of(&gw, "c", gid).await;
    assert_eq!(c_view["membersCanSendMessages"], false);
    let (s, code) = gw.get(&format!("/api/b/groups/{gid}/invite-code")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        format!("https://chat.whatsapp.com/{}", code.as_str().expect("code")),
        code_of(&g)
    );

    for op in ["participants/remove", "admin/demote"] {
        let (s, res) = gw
            .post(
                &format!("/api/b/groups/{gid}/{op}"),
                json!({"participants": [{"id": A}]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{op}");
        assert_eq!(res[0]["success"], false, "{op}: {res}");
        assert_eq!(res[0]["error"]["code"], "is_superadmin", "{op}");
    }
    let (_, view) = group_of(&gw, "c", gid).await;
    assert_eq!(role_in(&view, A).as_deref(), Some("superadmin"));
}

#[tokio::test]
async fn when_the_last_admin_leaves_the_longest_standing_participant_becomes_admin_in_every_store()
{
    let gw = three_sessions().await;
    let g = gw.group("a", "Heirs", &[B, C]).await;
    let gid = g["id"].as_str().expect("id");
    let (s, _) = gw
        .post(&format!("/api/a/groups/{gid}/leave"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(group_of(&gw, "a", gid).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        gw.event_names("a").await,
        [
            "group.join",
            "group.v2.join",
            "group.leave",
            "group.v2.leave"
        ]
    );
    for member in ["b", "c"] {
        let (_, view) = group_of(&gw, member, gid).await;
        assert_eq!(role_in(&view, B).as_deref(), Some("admin"), "{member}");
        assert_eq!(role_in(&view, C).as_deref(), Some("participant"));
        assert_eq!(role_in(&view, A), None);
        let parts = payloads(&gw, member, "group.v2.participants").await;
        assert_eq!(parts.len(), 2, "{member}");
        assert_eq!(parts[0]["type"], "leave");
        assert_eq!(
            parts[0]["participants"],
            json!([{"id": A, "pn": A, "role": "left"}])
        );
        assert_eq!(parts[1]["type"], "promote");
        assert_eq!(
            parts[1]["participants"],
            json!([{"id": B, "pn": B, "role": "admin"}])
        );
    }
    // The heir acts as an admin at once.
    let (s, _) = gw
        .post(
            &format!("/api/b/groups/{gid}/participants/remove"),
            json!({"participants": [{"id": C}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(group_of(&gw, "c", gid).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_group_removes_it_from_every_member_store_with_a_leave_event_to_each() {
    let gw = three_sessions().await;
    let g = gw.group("a", "Doomed", &[B, C]).await;
    let gid = g["id"].as_str().expect("id");
    let (s, err) = gw
        .call("DELETE", &format!("/api/b/groups/{gid}"), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{err}");
    let (s, _) = gw
        .call("DELETE", &format!("/api/a/groups/{gid}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    for session in ["a", "b", "c"] {
        assert_eq!(group_of(&gw, session, gid).await.0, StatusCode::NOT_FOUND);
        assert_eq!(gw.get(&format!("/api/{session}/groups")).await.1, json!([]));
        let leaves = payloads(&gw, session, "group.v2.leave").await;
        assert_eq!(leaves.len(), 1, "{session}");
        assert_eq!(leaves[0]["group"]["id"], gid);
        assert_eq!(leaves[0]["by"], A);
    }
    for session in ["b", "c"] {
        assert_eq!(
            gw.event_names(session).await,
            [
                "group.join",
                "group.v2.join",
                "group.leave",
                "group.v2.leave"
            ],
            "{session}"
        );
        assert_eq!(
            payloads(&gw, session, "group.leave").await[0]["type"],
            "remove"
        );
    }
    let (s, _) = gw
        .get(&format!("/api/b/groups/join-info?code={}", code_of(&g)))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_invite_code_leads_to_the_group_while_a_local_session_holds_it() {
    let gw = three_sessions().await;
    let g = gw.group("a", "Kept", &[B, OUTSIDER]).await;
    let gid = g["id"].as_str().expect("id");
    let info = format!("/api/c/groups/join-info?code={}", code_of(&g));
    let (s, _) = gw
        .post(&format!("/api/b/groups/{gid}/leave"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(gw.get(&info).await.0, StatusCode::OK);
    // B comes back by the code: its store takes the group again.
    let (s, _) = gw
        .post("/api/b/groups/join", json!({"code": code_of(&g)}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(group_of(&gw, "b", gid).await.1["size"], 3);
    for session in ["b", "a"] {
        let (s, _) = gw
            .post(&format!("/api/{session}/groups/{gid}/leave"), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    // Only the outside contact is left: no session here holds the group any more.
    let (s, err) = gw.get(&info).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{err}");
}
