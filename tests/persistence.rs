//! What the gateway stored survives dropping it and reopening its data dir: sessions (config,
//! status, me), groups, invite codes and the event log.
//!
//! Each life of the gateway runs on its own tokio runtime, dropped at the end of that life, so
//! every task that holds a store is gone before the dir is opened again (sled locks its files).

mod common;

use common::life;

use axum::http::StatusCode;
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const ME: &str = "11111111111@c.us";
const BOB: &str = "22222222222@c.us";

fn without_activity(mut sessions: Value) -> Value {
    for s in sessions.as_array_mut().expect("array") {
        s.as_object_mut().expect("object").remove("timestamps");
    }
    sessions
}

#[test]
fn sessions_keep_config_status_and_me_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (dir, before) = life(dir, |gw| async move {
        gw.post(
            "/api/sessions",
            json!({"name": "alpha", "config": {"metadata": {"tenant": "acme"}, "proxy": "http://p:1",
                   "local": {"me": {"id": ME, "pushName": "Alpha"}}}}),
        )
        .await;
        gw.post("/api/sessions", json!({"name": "beta", "start": false}))
            .await;
        gw.session("gamma", None, None).await;
        gw.post("/api/sessions/gamma/stop", json!({})).await;
        gw.session("delta", None, None).await;
        let (_, all) = gw.get("/api/sessions?all=true").await;
        (gw, all)
    });
    let (_, ()) = life(dir, |gw| async move {
        let (status, all) = gw.get("/api/sessions?all=true").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(without_activity(all), without_activity(before.clone()));
        let statuses: Vec<(&str, &str)> = before
            .as_array()
            .expect("array")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or_default(),
                    s["status"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            statuses,
            [
                ("alpha", "WORKING"),
                ("beta", "STOPPED"),
                ("delta", "WORKING"),
                ("gamma", "STOPPED")
            ]
        );
        let (_, me) = gw.get("/api/sessions/alpha/me").await;
        assert_eq!(me, json!({"id": ME, "pushName": "Alpha"}));
        let (status, _) = gw.post("/api/alpha/groups", json!({"name": "T"})).await;
        assert_eq!(status, StatusCode::CREATED, "a WORKING session works again");
        let (status, body) = gw.get("/api/gamma/groups").await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a STOPPED one stays stopped"
        );
        assert_eq!(body["status"], "STOPPED");
        let (status, _) = gw.post("/api/sessions", json!({"name": "beta"})).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "beta still exists"
        );
        (gw, ())
    });
}

#[test]
fn groups_and_invite_codes_survive_a_restart() {
    let png = b"\x89PNG\r\n\x1a\nimage".to_vec();
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    let dir = tempfile::tempdir().expect("temp dir");
    let (dir, (gid, old_code, new_code, before_alpha, before_bob)) = life(dir, |gw| async move {
        gw.session("alpha", Some(ME), None).await;
        gw.session("bob", Some(BOB), None).await;
        gw.session("carol", Some("33333333333@c.us"), None).await;
        let g = gw.group("alpha", "Team", &[BOB, "44444444444@c.us"]).await;
        gw.group("alpha", "Other", &[]).await;
        let gid = g["id"].as_str().expect("id").to_owned();
        let at = |op: &str| format!("/api/alpha/groups/{gid}/{op}");
        gw.put(&at("description"), json!({"description": "About"}))
            .await;
        gw.put(
            &at("settings/security/member-add-mode"),
            json!({"membersCanAddNewMember": true}),
        )
        .await;
        gw.post(&at("admin/promote"), json!({"participants": [{"id": BOB}]}))
            .await;
        gw.put(
            &at("picture"),
            json!({"file": {"data": data, "mimetype": "image/png"}}),
        )
        .await;
        let (_, old) = gw.get(&at("invite-code")).await;
        let (_, new) = gw.post(&at("invite-code/revoke"), json!({})).await;
        let (_, a) = gw.get("/api/alpha/groups").await;
        let (_, b) = gw.get("/api/bob/groups").await;
        let codes = (
            old.as_str().expect("code").to_owned(),
            new.as_str().expect("code").to_owned(),
        );
        (gw, (gid, codes.0, codes.1, a, b))
    });
    let (_, ()) = life(dir, |gw| async move {
        let (_, a) = gw.get("/api/alpha/groups").await;
        assert_eq!(a, before_alpha);
        let (_, b) = gw.get("/api/bob/groups").await;
        assert_eq!(b, before_bob);
        assert_eq!(b.as_array().map(Vec::len), Some(1));
        let (_, code) = gw
            .get(&format!("/api/alpha/groups/{gid}/invite-code"))
            .await;
        assert_eq!(code, json!(new_code));
        let (status, _) = gw
            .get(&format!("/api/carol/groups/join-info?code={old_code}"))
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "a revoked code stays revoked"
        );
        let (status, info) = gw
            .get(&format!("/api/carol/groups/join-info?code={new_code}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(info["id"], json!(gid));
        let (status, body) = gw
            .post("/api/carol/groups/join", json!({"code": new_code}))
            .await;
        assert_eq!((status, body), (StatusCode::OK, json!({"id": gid})));
        let (_, g) = gw.get(&format!("/api/alpha/groups/{gid}")).await;
        assert_eq!(g["size"], 4);
        assert_eq!(g["description"], "About");
        assert_eq!(g["membersCanAddNewMember"], true);
        let req = axum::http::Request::builder()
            .uri(format!("/api/alpha/groups/{gid}/picture/file"))
            .body(axum::body::Body::empty())
            .expect("request");
        let resp = gw.router.clone().oneshot(req).await.expect("answer");
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(
            bytes.as_ref(),
            png.as_slice(),
            "the stored picture is served again"
        );
        (gw, ())
    });
}

#[test]
fn the_event_log_survives_a_restart_and_continues_after_its_last_cursor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (dir, (before, gid)) = life(dir, |gw| async move {
        gw.session("alpha", Some(ME), None).await;
        let g = gw.group("alpha", "Team", &[BOB]).await;
        let gid = g["id"].as_str().expect("id").to_owned();
        gw.put(
            &format!("/api/alpha/groups/{gid}/subject"),
            json!({"subject": "Before"}),
        )
        .await;
        let (_, log) = gw.get("/api/alpha/events?limit=1000").await;
        (gw, (log, gid))
    });
    let (_, ()) = life(dir, |gw| async move {
        let (_, log) = gw.get("/api/alpha/events?limit=1000").await;
        let n = before.as_array().expect("array").len();
        assert_eq!(n, 5, "two statuses, create's two events, one update");
        assert_eq!(
            log.as_array().expect("array")[..n],
            before.as_array().expect("array")[..],
            "the same envelopes under the same cursors"
        );
        gw.put(
            &format!("/api/alpha/groups/{gid}/subject"),
            json!({"subject": "After"}),
        )
        .await;
        let last = before[n - 1]["cursor"].as_str().expect("cursor");
        let (_, newer) = gw.get(&format!("/api/alpha/events?after={last}")).await;
        let newer = newer.as_array().expect("array");
        let update = newer.last().expect("the new update");
        assert_eq!(update["envelope"]["event"], "group.v2.update");
        assert_eq!(update["envelope"]["payload"]["group"]["subject"], "After");
        for e in newer {
            assert!(
                !before
                    .as_array()
                    .expect("array")
                    .iter()
                    .any(|b| b["cursor"] == e["cursor"]),
                "a new event never reuses a cursor"
            );
        }
        (gw, ())
    });
}
