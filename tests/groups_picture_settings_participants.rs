//! Contract §2 through the real router, a group's picture (by URL or by data), its four security
//! settings and its participants (add, remove, promote, demote, the 1024 cap); each success path
//! and each refusal.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use common::groups::{alpha, assert_400_naming, id_of, msg, participants, BOB, CAROL, ME};

async fn get_bytes(gw: &common::Gateway, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let req = Request::builder()
        .uri(path)
        .header("host", "gw.test")
        .body(Body::empty())
        .expect("request");
    let resp = gw.router.clone().oneshot(req).await.expect("answer");
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, ct, bytes.to_vec())
}

#[tokio::test]
async fn a_picture_by_url_is_kept_as_given_and_delete_clears_it() {
    let gw = alpha().await;
    let id = id_of(&gw.group("alpha", "Team", &[]).await);
    let path = format!("/api/alpha/groups/{id}/picture");
    let (status, body) = gw.get(&path).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"url": null})));
    let url = "https://example.com/p.jpg?size=640";
    let (status, body) = gw
        .put(
            &path,
            json!({"file": {"url": url, "mimetype": "image/jpeg"}}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (_, body) = gw.get(&path).await;
    assert_eq!(body, json!({"url": url}));
    let (status, body) = gw.get(&format!("{path}/file")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = gw.call("DELETE", &path, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (_, body) = gw.get(&path).await;
    assert_eq!(body, json!({"url": null}));
}

#[tokio::test]
async fn a_picture_by_data_is_stored_and_served_with_its_content_type() {
    let gw = alpha().await;
    let id = id_of(&gw.group("alpha", "Team", &[]).await);
    let path = format!("/api/alpha/groups/{id}/picture");
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n-not-really-a-png".to_vec();
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    let (status, body) = gw
        .put(
            &path,
            json!({"file": {"data": data, "mimetype": "image/png"}}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, _, bytes) = get_bytes(&gw, &path).await;
    assert_eq!(status, StatusCode::OK);
    let url: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        url,
        json!({"url": format!("http://gw.test/api/alpha/groups/{id}/picture/file")})
    );
    let (status, ct, bytes) = get_bytes(&gw, &format!("{path}/file")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("image/png"));
    assert_eq!(bytes, png);
}

#[tokio::test]
async fn a_bad_picture_is_400_naming_the_field() {
    let gw = alpha().await;
    let id = id_of(&gw.group("alpha", "Team", &[]).await);
    let path = format!("/api/alpha/groups/{id}/picture");
    let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
    let cases = [
        (
            json!({"file": {"data": b64(10), "mimetype": "image/gif"}}),
            "file.mimetype",
        ),
        (json!({"file": {"data": b64(10)}}), "file.mimetype"),
        (
            json!({"file": {"data": b64(512 * 1024 + 1), "mimetype": "image/jpeg"}}),
            "file.data",
        ),
        (
            json!({"file": {"data": "***", "mimetype": "image/jpeg"}}),
            "file.data",
        ),
        (
            json!({"file": {"url": "ftp://example.com/p.jpg"}}),
            "file.url",
        ),
        (
            json!({"file": {"url": "https://e.com/p.jpg", "data": b64(10), "mimetype": "image/png"}}),
            "file",
        ),
        (json!({"file": {"mimetype": "image/png"}}), "file"),
    ];
    for (body, field) in cases {
        let (status, answer) = gw.put(&path, body).await;
        assert_400_naming(status, &answer, field);
    }
    let (status, _) = gw
        .put(
            &path,
            json!({"file": {"data": b64(512 * 1024), "mimetype": "image/jpeg"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "exactly 512 KiB fits");
}

#[tokio::test]
async fn the_four_settings_read_back_what_was_put() {
    let gw = alpha().await;
    let id = id_of(&gw.group("alpha", "Team", &[BOB]).await);
    let base = format!("/api/alpha/groups/{id}/settings/security");
    for (name, key, default, info_key, info_when_on) in [
        (
            "info-admin-only",
            "adminsOnly",
            false,
            "infoAdminOnly",
            true,
        ),
        (
            "messages-admin-only",
            "adminsOnly",
            false,
            "membersCanSendMessages",
            false,
        ),
        (
            "member-add-mode",
            "membersCanAddNewMember",
            false,
            "membersCanAddNewMember",
            true,
        ),
        (
            "membership-approval",
            "newMembersApprovalRequired",
            false,
            "newMembersApprovalRequired",
            true,
        ),
    ] {
        let path = format!("{base}/{name}");
        let (status, body) = gw.get(&path).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({key: default})),
            "{name}"
        );
        let (status, body) = gw.put(&path, json!({key: true})).await;
        assert_eq!((status, body), (StatusCode::OK, json!(true)), "{name}");
        let (_, body) = gw.get(&path).await;
        assert_eq!(body, json!({key: true}), "{name}");
        let (_, g) = gw.get(&format!("/api/alpha/groups/{id}")).await;
        assert_eq!(g[info_key], info_when_on, "{name}");
        let (status, body) = gw.put(&path, json!({key: "yes"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert!(msg(&body).contains(key), "{body}");
    }
}

#[tokio::test]
async fn participants_and_participants_v2_show_the_same_roles() {
    let gw = alpha().await;
    let id = id_of(&gw.group("alpha", "Team", &[BOB, CAROL]).await);
    gw.post(
        &format!("/api/alpha/groups/{id}/admin/promote"),
        participants(&[CAROL]),
    )
    .await;
    let want = json!([
        {"id": ME, "pn": ME, "role": "superadmin"},
        {"id": BOB, "pn": BOB, "role": "participant"},
        {"id": CAROL, "pn": CAROL, "role": "admin"},
    ]);
    for suffix in ["participants", "participants/v2"] {
        let (status, body) = gw.get(&format!("/api/alpha/groups/{id}/{suffix}")).await;
        assert_eq!((status, body), (StatusCode::OK, want.clone()), "{suffix}");
    }
}

#[tokio::test]
async fn add_remove_promote_demote_answer_one_result_per_id_in_request_order() {
    let gw = alpha().await;
    let id = id_of(&gw.group("alpha", "Team", &[BOB]).await);
    let at = |op: &str| format!("/api/alpha/groups/{id}/{op}");
    let (status, body) = gw
        .post(
            &at("participants/add"),
            participants(&[CAROL, BOB, "44444444444@s.whatsapp.net"]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([
            {"id": CAROL, "success": true},
            {"id": BOB, "success": false, "error": {"code": "already_member", "message": format!("{BOB} is already a member")}},
            {"id": "44444444444@c.us", "success": true},
        ])
    );
    let (_, body) = gw
        .post(
            &at("admin/promote"),
            participants(&[BOB, "55555555555@c.us", ME]),
        )
        .await;
    assert_eq!(
        body,
        json!([
            {"id": BOB, "success": true},
            {"id": "55555555555@c.us", "success": false, "error": {"code": "not_a_member", "message": "55555555555@c.us is not a member"}},
            {"id": ME, "success": false, "error": {"code": "already_admin", "message": format!("{ME} is already an admin")}},
        ])
    );
    let (_, body) = gw
        .post(&at("admin/demote"), participants(&[ME, BOB, CAROL]))
        .await;
    assert_eq!(
        body,
        json!([
            {"id": ME, "success": false, "error": {"code": "is_superadmin", "message": "the superadmin cannot be demoted"}},
            {"id": BOB, "success": true},
            {"id": CAROL, "success": false, "error": {"code": "not_an_admin", "message": format!("{CAROL} is not an admin")}},
        ])
    );
    let (_, body) = gw
        .post(
            &at("participants/remove"),
            participants(&[CAROL, ME, "55555555555@c.us"]),
        )
        .await;
    assert_eq!(
        body,
        json!([
            {"id": CAROL, "success": true},
            {"id": ME, "success": false, "error": {"code": "is_superadmin", "message": "the superadmin cannot be removed"}},
            {"id": "55555555555@c.us", "success": false, "error": {"code": "not_a_member", "message": "55555555555@c.us is not a member"}},
        ])
    );
    let (_, list) = gw.get(&at("participants")).await;
    assert_eq!(
        list,
        json!([
            {"id": ME, "pn": ME, "role": "superadmin"},
            {"id": BOB, "pn": BOB, "role": "participant"},
            {"id": "44444444444@c.us", "pn": "44444444444@c.us", "role": "participant"},
        ])
    );
    for op in [
        "participants/add",
        "participants/remove",
        "admin/promote",
        "admin/demote",
    ] {
        let (status, body) = gw.post(&at(op), json!({"participants": []})).await;
        assert_400_naming(status, &body, "participants");
        let (status, body) = gw.post(&at(op), participants(&[BOB, "nope"])).await;
        assert_400_naming(status, &body, "participants[1].id");
    }
}

#[tokio::test]
async fn the_add_that_would_pass_1024_participants_fails_only_for_the_extra_ids() {
    let gw = alpha().await;
    let others: Vec<String> = (0..1022u64)
        .map(|i| format!("{}@c.us", 50_000_000_000 + i))
        .collect();
    let refs: Vec<&str> = others.iter().map(String::as_str).collect();
    let g = gw.group("alpha", "Big", &refs).await;
    assert_eq!(g["size"], 1023);
    let (status, body) = gw
        .post(
            &format!("/api/alpha/groups/{}/participants/add", id_of(&g)),
            participants(&["66666666666@c.us", "77777777777@c.us"]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0], json!({"id": "66666666666@c.us", "success": true}));
    assert_eq!(body[1]["success"], false);
    assert_eq!(body[1]["error"]["code"], "group_full");
    let (_, g) = gw.get(&format!("/api/alpha/groups/{}", id_of(&g))).await;
    assert_eq!(g["size"], 1024);
}
