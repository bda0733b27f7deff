//! Contract §0 and §1 through the real router: sessions CRUD and lifecycle, auth, server
//! endpoints and the one error shape for every kind of bad request.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use common::keys;

fn is_derived_id(id: &str) -> bool {
    id.strip_suffix("@c.us")
        .is_some_and(|d| d.len() == 11 && d.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test]
async fn create_answers_201_with_the_session_info_of_a_working_session() {
    let gw = common::gateway().await;
    let (status, body) = gw
        .post(
            "/api/sessions",
            json!({"name": "alpha", "config": {"metadata": {"tenant": "acme"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        keys(&body),
        ["name", "status", "config", "me", "engine", "timestamps"],
        "no presence or assignedWorker: WAHA types them as object and string, never null"
    );
    assert_eq!(body["name"], "alpha");
    assert_eq!(body["status"], "WORKING");
    assert_eq!(body["config"], json!({"metadata": {"tenant": "acme"}}));
    assert_eq!(body["engine"], json!({"engine": "LOCAL"}));
    assert!(body["timestamps"]["activity"]
        .as_u64()
        .is_some_and(|t| t > 1_700_000_000_000));
    assert_eq!(body["me"]["pushName"], "alpha");
    assert!(
        is_derived_id(body["me"]["id"].as_str().unwrap_or_default()),
        "{body}"
    );
}

#[tokio::test]
async fn create_without_a_name_makes_the_default_session() {
    let gw = common::gateway().await;
    let (status, body) = gw.post("/api/sessions", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "default");
    let (status, _) = gw.get("/api/sessions/default").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn create_with_a_taken_name_is_422_session_exists() {
    let gw = common::gateway().await;
    gw.session("alpha", None, None).await;
    let (status, body) = gw.post("/api/sessions", json!({"name": "alpha"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"statusCode": 422, "error": "Unprocessable Entity",
               "message": "session \"alpha\" already exists", "code": "session_exists", "session": "alpha"})
    );
}

#[tokio::test]
async fn create_refuses_bad_names_and_bad_configs_naming_the_field() {
    let gw = common::gateway().await;
    for (body, field) in [
        (json!({"name": "../etc"}), "name:"),
        (json!({"name": "a".repeat(55)}), "name:"),
        (
            json!({"name": "x", "config": {"local": {"me": {"id": "bob"}}}}),
            "config.local.me.id:",
        ),
        (
            json!({"name": "x", "config": {"webhooks": [{"url": "ftp://h/", "events": ["*"]}]}}),
            "config.webhooks[0].url:",
        ),
    ] {
        let (status, answer) = gw.post("/api/sessions", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(answer["code"], "bad_request");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{message} should name {field}");
    }
    let (_, list) = gw.get("/api/sessions?all=true").await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn list_shows_stopped_sessions_only_with_all_true() {
    let gw = common::gateway().await;
    gw.session("alpha", None, None).await;
    let (status, body) = gw
        .post("/api/sessions", json!({"name": "beta", "start": false}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["status"], "STOPPED");
    assert!(
        body.get("me").is_none(),
        "a stopped session has no me: {body}"
    );
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (_, running) = gw.get("/api/sessions").await;
    assert_eq!(names(&running), ["alpha"]);
    let (_, all) = gw.get("/api/sessions?all=true").await;
    assert_eq!(names(&all), ["alpha", "beta"]);
    let (status, body) = gw.get("/api/sessions?all=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("all:"));
}

#[tokio::test]
async fn get_of_a_missing_session_is_404() {
    let gw = common::gateway().await;
    let (status, body) = gw.get("/api/sessions/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"statusCode": 404, "error": "Not Found",
               "message": "session \"nobody\" does not exist", "code": "session_not_found"})
    );
    let (status, _) = gw.post("/api/sessions/nobody/start", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn put_replaces_the_config_and_a_running_session_keeps_running() {
    let gw = common::gateway().await;
    gw.post(
        "/api/sessions",
        json!({"name": "alpha", "config": {"metadata": {"a": "1"}, "proxy": "http://p"}}),
    )
    .await;
    let (status, body) = gw
        .put(
            "/api/sessions/alpha",
            json!({"config": {"metadata": {"b": "2"}, "local": {"me": {"id": "12345678901@c.us", "pushName": "Al"}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let want = json!({"metadata": {"b": "2"}, "local": {"me": {"id": "12345678901@c.us", "pushName": "Al"}}});
    assert_eq!(body["config"], want);
    assert_eq!(body["status"], "WORKING");
    assert_eq!(
        body["me"],
        json!({"id": "12345678901@c.us", "pushName": "Al"})
    );
    let (_, got) = gw.get("/api/sessions/alpha").await;
    assert_eq!(got["config"], want);
    let (status, _) = gw.put("/api/sessions/nobody", json!({"config": {}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_removes_the_session_and_its_folder_and_is_idempotent() {
    let gw = common::gateway().await;
    gw.session("alpha", None, None).await;
    gw.group("alpha", "Team", &["22222222222@c.us"]).await;
    let folder = gw.dir.path().join("sessions").join("alpha");
    assert!(folder.exists());
    for _ in 0..2 {
        let (status, body) = gw.call("DELETE", "/api/sessions/alpha", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"success": true}));
    }
    assert!(!folder.exists(), "the session's store is gone");
    let (status, _) = gw.get("/api/sessions/alpha").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A new session of the same name starts empty.
    gw.session("alpha", None, None).await;
    let (_, count) = gw.get("/api/alpha/groups/count").await;
    assert_eq!(count, json!({"count": 0}));
}

#[tokio::test]
async fn start_stop_restart_and_logout_answer_201_with_the_new_status() {
    let gw = common::gateway().await;
    gw.session("alpha", None, None).await;
    for (action, status_after) in [
        ("stop", "STOPPED"),
        ("start", "WORKING"),
        ("restart", "WORKING"),
        ("logout", "WORKING"),
        ("stop", "STOPPED"),
        ("restart", "WORKING"),
    ] {
        let (status, body) = gw
            .post(&format!("/api/sessions/alpha/{action}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{action}: {body}");
        assert_eq!(body["status"], status_after, "{action}");
        let (_, got) = gw.get("/api/sessions/alpha").await;
        assert_eq!(got["status"], status_after, "{action}");
    }
}

#[tokio::test]
async fn me_is_derived_stable_from_the_name_or_configured() {
    let gw = common::gateway().await;
    let first = gw.session("alpha", None, None).await["me"].clone();
    gw.call("DELETE", "/api/sessions/alpha", None).await;
    let again = gw.session("alpha", None, None).await["me"].clone();
    assert_eq!(first, again, "same name, same account");
    let other = gw.session("beta", None, None).await["me"].clone();
    assert_ne!(first["id"], other["id"]);
    assert!(is_derived_id(other["id"].as_str().unwrap_or_default()));

    let body = gw
        .session("gamma", Some("4915112345678@s.whatsapp.net"), None)
        .await;
    assert_eq!(
        body["me"],
        json!({"id": "4915112345678@c.us", "pushName": "gamma"})
    );
    let (status, me) = gw.get("/api/sessions/gamma/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, json!({"id": "4915112345678@c.us", "pushName": "gamma"}));

    gw.post("/api/sessions/gamma/stop", json!({})).await;
    let (status, me) = gw.get("/api/sessions/gamma/me").await;
    assert_eq!((status, me), (StatusCode::OK, Value::Null));
    let (status, _) = gw.get("/api/sessions/nobody/me").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_second_session_cannot_take_an_account_already_in_use() {
    let gw = common::gateway().await;
    gw.session("alpha", Some("12345678901@c.us"), None).await;
    let (status, body) = gw
        .post(
            "/api/sessions",
            json!({"name": "beta", "config": {"local": {"me": {"id": "12345678901@c.us"}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "account_in_use");
}

#[tokio::test]
async fn server_endpoints_answer_as_the_contract_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gw = common::gateway_in(dir, |c| c.worker_id = Some("worker-7".into())).await;
    let (status, health) = gw.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");

    let (status, v) = gw.get("/api/server/version").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys(&v),
        ["version", "engine", "tier", "browser", "platform", "worker"]
    );
    for k in ["version", "engine", "tier", "browser", "platform"] {
        assert!(v[k].is_string(), "{k} is a string: {v}");
    }
    assert_eq!(v["engine"], "LOCAL");
    assert_eq!(v["tier"], "CORE");
    assert_eq!(v["browser"], "");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["platform"].as_str().unwrap_or_default().contains('/'));
    assert_eq!(v["worker"], json!({"id": "worker-7"}));

    let (status, s) = gw.get("/api/server/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&s), ["startTimestamp", "uptime", "worker"]);
    assert!(s["startTimestamp"]
        .as_u64()
        .is_some_and(|t| t > 1_700_000_000_000));
    assert!(s["uptime"].is_u64());
    assert_eq!(s["worker"], json!({"id": "worker-7"}));
}

#[tokio::test]
async fn the_worker_id_defaults_to_a_non_empty_host_name() {
    let gw = common::gateway().await;
    let (_, v) = gw.get("/api/server/version").await;
    assert!(!v["worker"]["id"].as_str().unwrap_or_default().is_empty());
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_the_error_shape() {
    let gw = common::gateway().await;
    let (status, body) = gw.get("/api/nothing/here/at/all").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"statusCode": 404, "error": "Not Found",
               "message": "no route for /api/nothing/here/at/all", "code": "route_not_found"})
    );
    let (status, body) = gw.call("DELETE", "/api/server/version", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        body,
        json!({"statusCode": 405, "error": "Method Not Allowed",
               "message": "DELETE is not allowed on /api/server/version", "code": "method_not_allowed"})
    );
}

async fn post_text(gw: &common::Gateway, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request");
    gw.raw(req).await
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400_naming_the_field() {
    let gw = common::gateway().await;
    let (status, body) = post_text(&gw, "/api/sessions", "{\"name\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("body: malformed JSON"),
        "{body}"
    );
    let (status, body) = gw.post("/api/sessions", json!({"name": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("name"),
        "{body}"
    );
    let (status, body) = gw
        .post("/api/sessions", json!({"name": "a", "start": "yes"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("start"),
        "{body}"
    );
    let req = Request::builder()
        .method("POST")
        .uri("/api/sessions")
        .body(Body::from("{}"))
        .expect("request");
    let (status, body) = gw.raw(req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn a_body_over_1_mib_is_413_in_the_error_shape() {
    let gw = common::gateway().await;
    gw.session("alpha", None, None).await;
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    for path in ["/api/sessions", "/api/alpha/groups"] {
        let (status, body) = post_text(&gw, path, big.clone()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(
            body,
            json!({"statusCode": 413, "error": "Payload Too Large",
                   "message": "request body is larger than 1 MiB", "code": "payload_too_large"})
        );
    }
}

#[tokio::test]
async fn group_calls_on_a_stopped_session_are_422_session_not_working() {
    let gw = common::gateway().await;
    gw.session("alpha", None, None).await;
    let g = gw.group("alpha", "Team", &[]).await;
    gw.post("/api/sessions/alpha/stop", json!({})).await;
    let want = json!({"statusCode": 422, "error": "Unprocessable Entity",
        "message": "session \"alpha\" is STOPPED, expected WORKING", "code": "session_not_working",
        "session": "alpha", "status": "STOPPED", "expected": ["WORKING"]});
    let id = g["id"].as_str().unwrap_or_default();
    for (method, path, body) in [
        ("GET", "/api/alpha/groups".to_owned(), None),
        ("GET", format!("/api/alpha/groups/{id}"), None),
        (
            "POST",
            "/api/alpha/groups".to_owned(),
            Some(json!({"name": "X"})),
        ),
        (
            "PUT",
            format!("/api/alpha/groups/{id}/subject"),
            Some(json!({"subject": "X"})),
        ),
    ] {
        let (status, answer) = gw.call(method, &path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path}");
        assert_eq!(answer, want, "{method} {path}");
    }
    gw.post("/api/sessions/alpha/start", json!({})).await;
    let (status, _) = gw.get(&format!("/api/alpha/groups/{id}")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the group is there again once started"
    );
}

#[tokio::test]
async fn group_calls_on_a_missing_session_are_422_session_not_found() {
    let gw = common::gateway().await;
    let (status, body) = gw.get("/api/nobody/groups").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"statusCode": 422, "error": "Unprocessable Entity",
               "message": "session \"nobody\" does not exist", "code": "session_not_found", "session": "nobody"})
    );
}

#[tokio::test]
async fn a_bad_session_name_in_the_path_is_400_naming_the_session() {
    let gw = common::gateway().await;
    for path in [
        "/api/sessions/bad.name",
        "/api/sessions/bad.name/me",
        "/api/bad.name/groups",
        "/api/bad.name/events",
    ] {
        let (status, body) = gw.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("session:"),
            "{path}: {body}"
        );
    }
}
