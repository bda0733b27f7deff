//! WAHA's deprecated `POST /api/sessions/start`, `/stop` and `/logout` (name in the body), as an
//! older WAHA client calls them, and the sessions named `start`, `stop` and `logout`, which
//! keep every route of their own.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};

async fn status_of(gw: &common::Gateway, name: &str) -> Value {
    let (status, body) = gw.get(&format!("/api/sessions/{name}")).await;
    match status {
        StatusCode::OK => body["status"].clone(),
        _ => Value::Null,
    }
}

#[tokio::test]
async fn start_creates_a_missing_session_with_its_config_and_starts_it() {
    let gw = common::gateway().await;
    let (status, body) = gw
        .post(
            "/api/sessions/start",
            json!({"name": "old", "config": {"metadata": {"team": "bots"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "old");
    assert_eq!(body["status"], "WORKING");
    assert_eq!(body["config"], json!({"metadata": {"team": "bots"}}));
    let (status, groups) = gw.get("/api/old/groups").await;
    assert_eq!(status, StatusCode::OK, "the session works: {groups}");
}

#[tokio::test]
async fn start_replaces_the_config_of_a_stopped_session_and_refuses_a_running_one() {
    let gw = common::gateway().await;
    gw.session("old", None, None).await;
    let (status, body) = gw.post("/api/sessions/start", json!({"name": "old"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "session_exists");

    let (status, _) = gw.post("/api/sessions/old/stop", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let config = json!({"metadata": {"v": "2"}});
    let (status, body) = gw
        .post(
            "/api/sessions/start",
            json!({"name": "old", "config": config}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "WORKING");
    assert_eq!(body["config"], config);

    // Without a config, a stopped session starts with the one it has.
    gw.post("/api/sessions/old/stop", json!({})).await;
    let (status, body) = gw.post("/api/sessions/start", json!({"name": "old"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["config"], config);
}

#[tokio::test]
async fn stop_stops_and_with_logout_deletes_the_session_answering_201_without_a_body() {
    let gw = common::gateway().await;
    gw.session("old", None, None).await;
    gw.group("old", "Kept", &["22222222222@c.us"]).await;
    let (status, body) = gw.post("/api/sessions/stop", json!({"name": "old"})).await;
    assert_eq!((status, body), (StatusCode::CREATED, Value::Null));
    assert_eq!(status_of(&gw, "old").await, "STOPPED");
    // Stopping again, or stopping a session that does not exist, is nothing to do (as WAHA).
    let (status, _) = gw.post("/api/sessions/stop", json!({"name": "old"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = gw
        .post("/api/sessions/stop", json!({"name": "never"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(status_of(&gw, "never").await, Value::Null, "not created");

    let (status, _) = gw
        .post("/api/sessions/stop", json!({"name": "old", "logout": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(status_of(&gw, "old").await, Value::Null, "deleted");
}

#[tokio::test]
async fn logout_deletes_the_session_and_is_idempotent() {
    let gw = common::gateway().await;
    gw.session("old", None, None).await;
    for _ in 0..2 {
        let (status, body) = gw
            .post("/api/sessions/logout", json!({"name": "old"}))
            .await;
        assert_eq!((status, body), (StatusCode::CREATED, Value::Null));
        assert_eq!(status_of(&gw, "old").await, Value::Null);
    }
}

#[tokio::test]
async fn the_old_operations_answer_400_naming_the_field() {
    let gw = common::gateway().await;
    for op in ["start", "stop", "logout"] {
        let path = format!("/api/sessions/{op}");
        let (status, body) = gw.post(&path, json!({})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{op}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("name")),
            "{op}: {body}"
        );
        let (status, body) = gw.post(&path, json!({"name": "no/slash"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{op}: {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("name: ")),
            "{op}: {body}"
        );
    }
    let (status, body) = gw
        .post("/api/sessions/stop", json!({"name": "x", "logout": "yes"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn sessions_named_start_stop_and_logout_keep_every_route_of_their_own() {
    let gw = common::gateway().await;
    for name in ["start", "stop", "logout"] {
        gw.session(name, None, None).await;
        let base = format!("/api/sessions/{name}");
        let (status, body) = gw.get(&base).await;
        assert_eq!((status, &body["name"]), (StatusCode::OK, &json!(name)));
        let (status, body) = gw
            .put(&base, json!({"config": {"metadata": {"k": name}}}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = gw.get(&format!("{base}/me")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["pushName"], name);
        let (status, body) = gw.post(&format!("{base}/stop"), json!({})).await;
        assert_eq!(
            (status, &body["status"]),
            (StatusCode::CREATED, &json!("STOPPED"))
        );
        let (status, body) = gw.post(&format!("{base}/start"), json!({})).await;
        assert_eq!(
            (status, &body["status"]),
            (StatusCode::CREATED, &json!("WORKING"))
        );
        let (status, _) = gw.call("DELETE", &base, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(status_of(&gw, name).await, Value::Null);
    }
    // POST on any other session's path is what it was: 405.
    gw.session("other", None, None).await;
    let (status, body) = gw.post("/api/sessions/other", json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["code"], "method_not_allowed");
}

#[tokio::test]
async fn the_old_operations_are_documented_as_deprecated() {
    let gw = common::gateway().await;
    let (_, doc) = gw.get("/openapi.json").await;
    for op in ["start", "stop", "logout"] {
        let post = &doc["paths"][format!("/api/sessions/{op}")]["post"];
        assert_eq!(post["deprecated"], true, "{op}: {post}");
        assert_eq!(post["tags"], json!(["Sessions"]));
    }
    assert!(doc["paths"]["/api/sessions/{session}"]["post"].is_null());
}

/// Status and `Allow` of `method` on `path`, with an optional Idempotency-Key and body.
async fn allow(
    gw: &common::Gateway,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let req = req
        .body(axum::body::Body::from(body.to_owned()))
        .expect("request");
    let resp = gw.router.clone().oneshot(req).await.expect("answer");
    let allow = resp
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap_or("?").to_owned());
    (resp.status(), allow.unwrap_or_default())
}

#[tokio::test]
async fn a_sessions_path_allows_what_it_answers_and_a_key_does_not_turn_a_405_into_a_422() {
    let gw = common::gateway().await;
    gw.session("other", None, None).await;
    let plain = (
        StatusCode::METHOD_NOT_ALLOWED,
        "GET,HEAD,PUT,DELETE".to_owned(),
    );
    for method in ["OPTIONS", "PATCH", "POST"] {
        let got = allow(&gw, method, "/api/sessions/other", None, "{}").await;
        assert_eq!(got, plain, "{method}");
    }
    // The same key with two bodies: a 405 each time, never kept (422 idempotency_key_reused).
    for body in [r#"{"config": null}"#, r#"{"config": {}}"#] {
        let got = allow(&gw, "POST", "/api/sessions/other", Some("k-1"), body).await;
        assert_eq!(got, plain, "{body}");
    }
    // Where the old operations are, POST is allowed too, beside a session of that name's methods.
    let (status, allowed) = allow(&gw, "OPTIONS", "/api/sessions/start", None, "{}").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(allowed.split(',').any(|m| m == "POST"), "{allowed}");
}
