//! Issue #13, WAHA's exact shapes through the real router: the member-share-history-mode setting
//! (WAHA 2026.9), the capping and timelock of a session (WAHA 2026.8), join-request results
//! whose `error` is a number, and no `null` where WAHA's schema types a field as a string or an
//! object.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};

use common::groups::{alpha, assert_400_naming, id_of, participants, BOB, CAROL, ME};
use common::keys;

const SHARE: &str = "settings/security/member-share-history-mode";

/// ME's session `alpha` and BOB's session `bob`, and a group of alpha's with bob in it.
async fn alpha_and_bob() -> (common::Gateway, String) {
    let gw = alpha().await;
    gw.session("bob", Some(BOB), None).await;
    let id = id_of(&gw.group("alpha", "Team", &[BOB, CAROL]).await);
    (gw, id)
}

/// The `group.v2.update` envelopes of the session's log.
async fn updates(gw: &common::Gateway, session: &str) -> Vec<Value> {
    let all = gw.events(session).await;
    all.into_iter()
        .filter(|e| e["event"] == "group.v2.update")
        .collect()
}

#[tokio::test]
async fn share_history_is_off_by_default_and_an_admin_turns_it_on() {
    let (gw, id) = alpha_and_bob().await;
    let path = format!("/api/alpha/groups/{id}/{SHARE}");
    let (status, body) = gw.get(&path).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"membersCanShareHistory": false}))
    );
    let before = updates(&gw, "bob").await.len();

    let (status, body) = gw.put(&path, json!({"membersCanShareHistory": true})).await;
    assert_eq!((status, body), (StatusCode::OK, json!(true)));
    let (_, body) = gw.get(&path).await;
    assert_eq!(body, json!({"membersCanShareHistory": true}));
    let (_, body) = gw.get(&format!("/api/bob/groups/{id}/{SHARE}")).await;
    assert_eq!(
        body,
        json!({"membersCanShareHistory": true}),
        "every member reads the same setting"
    );

    // Each member's session hears of it, with only the changed field.
    for session in ["alpha", "bob"] {
        let ev = updates(&gw, session).await;
        let last = ev.last().expect("a group.v2.update");
        let p = &last["payload"];
        assert_eq!(keys(p), ["timestamp", "group", "by", "_data"], "{session}");
        assert_eq!(
            p["group"],
            json!({"id": id, "membersCanShareHistory": true}),
            "{session}"
        );
        assert_eq!(p["by"], ME);
        assert_eq!(p["_data"], json!({"author": ME, "operation": "settings"}));
    }
    assert_eq!(updates(&gw, "bob").await.len(), before + 1);
}

#[tokio::test]
async fn group_info_does_not_show_share_history_as_waha_has_no_such_field() {
    let (gw, id) = alpha_and_bob().await;
    gw.put(
        &format!("/api/alpha/groups/{id}/{SHARE}"),
        json!({"membersCanShareHistory": true}),
    )
    .await;
    let (_, g) = gw.get(&format!("/api/alpha/groups/{id}")).await;
    assert!(g.get("membersCanShareHistory").is_none(), "{g}");
    assert_eq!(g["membersCanAddNewMember"], false, "the others keep theirs");
}

#[tokio::test]
async fn a_non_admin_is_refused_share_history_with_403_naming_the_rule() {
    let (gw, id) = alpha_and_bob().await;
    let path = format!("/api/bob/groups/{id}/{SHARE}");
    let (status, body) = gw.put(&path, json!({"membersCanShareHistory": true})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"statusCode": 403, "error": "Forbidden",
               "message": "only admins can change group settings", "code": "not_admin"})
    );
    let (status, body) = gw.get(&path).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"membersCanShareHistory": false})),
        "refused: nothing changed, and any member may read it"
    );
}

#[tokio::test]
async fn a_bad_share_history_body_is_400_naming_the_field() {
    let (gw, id) = alpha_and_bob().await;
    let path = format!("/api/alpha/groups/{id}/{SHARE}");
    for bad in [
        json!({"membersCanShareHistory": "yes"}),
        json!({"membersCanShareHistory": null}),
        json!({}),
    ] {
        let (status, body) = gw.put(&path, bad.clone()).await;
        assert_400_naming(status, &body, "membersCanShareHistory");
    }
}

#[tokio::test]
async fn capping_and_timelock_answer_no_limit_and_no_lock() {
    let gw = alpha().await;
    let (status, body) = gw.get("/api/sessions/alpha/capping").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"cappingStatus": "NONE", "totalQuota": -1, "usedQuota": 0, "cycleStart": null,
               "cycleEnd": null, "mvStatus": null, "oteStatus": null})
    );
    let (status, body) = gw.get("/api/sessions/alpha/timelock").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"enforcementType": "DEFAULT", "isActive": false, "timeEnforcementEnds": null})
    );
}

#[tokio::test]
async fn capping_and_timelock_of_an_unknown_or_stopped_session_are_404_and_422() {
    let gw = alpha().await;
    gw.post("/api/sessions/alpha/stop", json!({})).await;
    for what in ["capping", "timelock"] {
        let (status, body) = gw.get(&format!("/api/sessions/nobody/{what}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}");
        assert_eq!(
            body,
            json!({"statusCode": 404, "error": "Not Found",
                   "message": "session \"nobody\" does not exist", "code": "session_not_found"}),
            "{what}"
        );
        let (status, body) = gw.get(&format!("/api/sessions/alpha/{what}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}");
        assert_eq!(
            body,
            json!({"statusCode": 422, "error": "Unprocessable Entity",
                   "message": "session \"alpha\" is STOPPED, expected WORKING",
                   "code": "session_not_working", "session": "alpha", "status": "STOPPED",
                   "expected": ["WORKING"]}),
            "{what}"
        );
        let (status, body) = gw.get(&format!("/api/sessions/bad.name/{what}")).await;
        assert_400_naming(status, &body, "session");
    }
}

#[tokio::test]
async fn approve_and_reject_results_carry_a_numeric_error() {
    let (gw, id) = alpha_and_bob().await;
    let at = |op: &str| format!("/api/alpha/groups/{id}/participants/join-requests/{op}");
    for op in ["approve", "reject"] {
        let (status, body) = gw.post(&at(op), participants(&["66666666666@c.us"])).await;
        assert_eq!(status, StatusCode::OK, "{op}");
        assert_eq!(
            body,
            json!([{"requesterId": "66666666666@c.us", "success": false, "error": 404}]),
            "{op}: no pending request is WAHA's 404"
        );
    }
}

#[tokio::test]
async fn a_join_request_names_no_parent_group_as_null() {
    let (gw, id) = alpha_and_bob().await;
    gw.put(
        &format!("/api/alpha/groups/{id}/settings/security/membership-approval"),
        json!({"newMembersApprovalRequired": true}),
    )
    .await;
    gw.session("dave", Some("44444444444@c.us"), None).await;
    let (_, code) = gw.get(&format!("/api/alpha/groups/{id}/invite-code")).await;
    gw.post("/api/dave/groups/join", json!({"code": code}))
        .await;
    let (_, list) = gw
        .get(&format!(
            "/api/alpha/groups/{id}/participants/join-requests"
        ))
        .await;
    let first = &list[0];
    assert_eq!(
        keys(first),
        [
            "requesterId",
            "requesterPn",
            "addedById",
            "parentGroupId",
            "requestMethod",
            "timestamp"
        ]
    );
    assert_eq!(first["parentGroupId"], Value::Null);
}

#[tokio::test]
async fn session_info_leaves_out_what_it_lacks_instead_of_null() {
    let gw = alpha().await;
    gw.post("/api/sessions", json!({"name": "beta", "start": false}))
        .await;
    let (status, body) = gw.get("/api/sessions/alpha").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys(&body),
        ["name", "status", "config", "me", "engine", "timestamps"]
    );
    let (_, body) = gw.get("/api/sessions/beta").await;
    assert_eq!(
        keys(&body),
        ["name", "status", "config", "engine", "timestamps"],
        "a stopped session has no me"
    );
    let (_, list) = gw.get("/api/sessions?all=true").await;
    for s in list.as_array().expect("array") {
        for absent in ["presence", "assignedWorker"] {
            assert!(s.get(absent).is_none(), "{absent} in {s}");
        }
        assert_ne!(s.get("me"), Some(&Value::Null), "{s}");
    }
}
