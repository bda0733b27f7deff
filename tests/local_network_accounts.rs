//! The local network's accounts: a session is in a group through the account it acts as. One
//! account belongs to one session, a session in groups keeps its account, a session created
//! later sees only the groups it is added to later, and a deleted session's account stays a
//! plain participant.

mod common;

use axum::http::StatusCode;
use serde_json::json;

use common::local_network::{group_of, payloads, role_in, three_sessions, A, B, C};

#[tokio::test]
async fn one_account_cannot_belong_to_two_sessions() {
    let gw = common::gateway().await;
    gw.session("a", Some(A), None).await;
    let (s, err) = gw
        .post(
            "/api/sessions",
            json!({"name": "b", "config": {"local": {"me": {"id": A}}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "account_in_use");
    gw.session("b", Some(B), None).await;
    let (s, err) = gw
        .put(
            "/api/sessions/b",
            json!({"config": {"local": {"me": {"id": A}}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "account_in_use");
}

#[tokio::test]
async fn a_session_in_groups_keeps_its_account() {
    let gw = common::gateway().await;
    gw.session("a", Some(A), None).await;
    gw.session("b", Some(B), None).await;
    gw.group("a", "Ties", &[B]).await;
    let (s, err) = gw
        .put(
            "/api/sessions/b",
            json!({"config": {"local": {"me": {"id": C}}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "session_in_groups");
    let (s, body) = gw
        .put(
            "/api/sessions/b",
            json!({"config": {"local": {"me": {"id": B, "pushName": "Bee"}}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["me"]["pushName"], "Bee");
}

#[tokio::test]
async fn a_session_created_after_a_group_lists_its_account_sees_only_groups_it_is_added_to_later() {
    let gw = common::gateway().await;
    gw.session("a", Some(A), None).await;
    let early = gw.group("a", "Early", &[B]).await;
    let early_id = early["id"].as_str().expect("id");
    gw.session("b", Some(B), None).await;
    let (s, _) = gw
        .put(
            &format!("/api/a/groups/{early_id}/subject"),
            json!({"subject": "Early, renamed"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(gw.get("/api/b/groups").await.1, json!([]));
    assert!(gw.event_names("b").await.is_empty());

    let late = gw.group("a", "Late", &[B]).await;
    let (_, list) = gw.get("/api/b/groups").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["id"], late["id"]);

    // Removed and added again, B's account is added from B's point of view too.
    for op in ["remove", "add"] {
        let (s, _) = gw
            .post(
                &format!("/api/a/groups/{early_id}/participants/{op}"),
                json!({"participants": [{"id": B}]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, view) = group_of(&gw, "b", early_id).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(view["subject"], "Early, renamed");
    assert_eq!(payloads(&gw, "b", "group.v2.join").await.len(), 2);
}

#[tokio::test]
async fn deleting_a_member_session_leaves_its_account_a_plain_participant_and_the_others_working() {
    let gw = three_sessions().await;
    let g = gw.group("a", "Survivors", &[B, C]).await;
    let gid = g["id"].as_str().expect("id");
    let (s, _) = gw.call("DELETE", "/api/sessions/b", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = gw
        .put(
            &format!("/api/a/groups/{gid}/subject"),
            json!({"subject": "Without b"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, view) = group_of(&gw, "c", gid).await;
    assert_eq!(view["subject"], "Without b");
    assert_eq!(role_in(&view, B).as_deref(), Some("participant"));
    let (s, res) = gw
        .post(
            &format!("/api/a/groups/{gid}/participants/remove"),
            json!({"participants": [{"id": B}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(res[0]["success"], true, "{res}");
    let parts = payloads(&gw, "c", "group.v2.participants").await;
    assert_eq!(
        parts[0]["participants"],
        json!([{"id": B, "pn": B, "role": "left"}])
    );
}
