//! Abuse cases, ids and names: hostile session names, group ids, contact ids and invite codes
//! each get one exact answer and write nothing to the store; racing creates and deletes of one
//! session name leave the folders on disk matching the registry.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use common::abuse::{assert_error, folders, listed, snapshot, with_group, BOB};

#[tokio::test]
async fn session_names_that_could_leave_the_data_folder_are_refused_and_create_nothing() {
    let gw = common::gateway().await;
    let long = "a".repeat(55);
    for name in [
        "..",
        ".",
        "a/b",
        "../x",
        "a%2Fb",
        "a\0b",
        "a b",
        long.as_str(),
        "",
    ] {
        let (status, body) = gw.post("/api/sessions", json!({"name": name})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            body["message"].as_str().unwrap_or("").starts_with("name: "),
            "{body}"
        );
    }
    assert!(folders(&gw).is_empty(), "{:?}", folders(&gw));
    assert!(listed(&gw).await.is_empty());
}

#[tokio::test]
async fn session_names_in_the_path_are_refused_with_400_naming_the_session() {
    let gw = common::gateway().await;
    let long = "a".repeat(55);
    let paths = [
        "/api/sessions/..".to_owned(),
        "/api/sessions/%2E%2E".to_owned(),
        "/api/sessions/a%2Fb".to_owned(),
        "/api/sessions/..%2F..%2Fetc".to_owned(),
        "/api/sessions/a%00b".to_owned(),
        format!("/api/sessions/{long}"),
        "/api/sessions/%2E%2E/start".to_owned(),
        "/api/..%2F/groups".to_owned(),
        "/api/a%00/groups".to_owned(),
    ];
    for path in &paths {
        for method in ["GET", "POST", "DELETE"] {
            let body = (method == "POST").then(|| json!({"name": "x", "participants": []}));
            let (status, body) = gw.call(method, path, body).await;
            if status == StatusCode::METHOD_NOT_ALLOWED {
                assert_eq!(body["code"], "method_not_allowed", "{path} {body}");
                continue;
            }
            assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("session: invalid session name"),
                "{method} {path}: {body}"
            );
        }
    }
    assert!(folders(&gw).is_empty(), "{:?}", folders(&gw));
}

#[tokio::test]
async fn a_54_character_name_is_the_longest_that_passes() {
    let gw = common::gateway().await;
    let name = "a".repeat(54);
    gw.session(&name, None, None).await;
    assert_eq!(folders(&gw), vec![name.clone()]);
    let (status, body) = gw
        .post("/api/sessions", json!({"name": format!("{name}b")}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(folders(&gw), vec![name]);
}

#[tokio::test]
async fn group_ids_of_every_wrong_shape_are_400_naming_the_id() {
    let (gw, group) = with_group().await;
    let before = snapshot(&gw, &group).await;
    for bad in [
        "123@g.us",
        "120363000000000001",
        "120363000000000001@c.us",
        "12036300000000000@g.us",
        "1203630000000000011@g.us",
        "220363000000000001@g.us",
        "12036300000000000a@g.us",
        "..",
        "%2E%2E",
        "120363000000000001%40g.us%2F..",
        "%00",
        "120363000000000001@g.us%00",
    ] {
        for (method, suffix, body) in [
            ("GET", "", None),
            ("DELETE", "", None),
            ("PUT", "/subject", Some(json!({"subject": "x"}))),
            (
                "POST",
                "/participants/add",
                Some(json!({"participants": [{"id": BOB}]})),
            ),
        ] {
            let path = format!("/api/default/groups/{bad}{suffix}");
            let (status, answer) = gw.call(method, &path, body).await;
            assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("id: invalid group id"),
                "{method} {path}: {answer}"
            );
        }
    }
    assert_eq!(snapshot(&gw, &group).await, before);
}

#[tokio::test]
async fn contact_ids_of_every_wrong_shape_are_400_naming_the_index() {
    let (gw, group) = with_group().await;
    let before = snapshot(&gw, &group).await;
    let long = format!("{}@c.us", "1".repeat(21));
    for bad in [
        "",
        "1234@c.us",
        "abcde@c.us",
        "33333333333",
        "33333333333@g.us",
        "33333333333@c.us ",
        " 33333333333@c.us",
        "+33333333333@c.us",
        "33333333333@C.US",
        "33333333333@c.us\u{0}",
        "120363000000000001@g.us",
        long.as_str(),
    ] {
        let body = json!({"participants": [{"id": "33333333333@c.us"}, {"id": bad}]});
        for op in [
            "participants/add",
            "participants/remove",
            "admin/promote",
            "admin/demote",
        ] {
            let (status, answer) = gw
                .post(&format!("/api/default/groups/{group}/{op}"), body.clone())
                .await;
            assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("participants[1].id: invalid contact id"),
                "{op} {bad:?}: {answer}"
            );
        }
        let (status, answer) = gw
            .post(
                "/api/default/groups",
                json!({"name": "New", "participants": [{"id": bad}]}),
            )
            .await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    }
    assert_eq!(snapshot(&gw, &group).await, before);
    let (_, count) = gw.get("/api/default/groups/count").await;
    assert_eq!(count, json!({"count": 1}));
}

#[tokio::test]
async fn invite_codes_of_every_wrong_shape_are_400_naming_the_code() {
    let (gw, group) = with_group().await;
    let before = snapshot(&gw, &group).await;
    for bad in [
        "",
        "short",
        "AbCdEfGhIjKlMnOpQrStU",
        "AbCdEfGhIjKlMnOpQrStUvW",
        "AbCdEfGhIjKlMnOpQrSt-v",
        "AbCdEfGhIjKlMnOpQrSt v",
        "https://chat.whatsapp.com/short",
        "https://evil.example/AbCdEfGhIjKlMnOpQrStUv",
        "ftp://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv",
        "../../AbCdEfGhIjKlMnOpQrStUv",
    ] {
        let (status, answer) = gw
            .post("/api/default/groups/join", json!({"code": bad}))
            .await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("code: invalid invite code"),
            "{bad:?}: {answer}"
        );
    }
    for query in [
        "",
        "?code=",
        "?code=short",
        "?code=%00",
        "?code=AbCdEfGhIjKlMnOpQrSt%2Fv",
    ] {
        let (status, answer) = gw
            .get(&format!("/api/default/groups/join-info{query}"))
            .await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("code: "),
            "{query}: {answer}"
        );
    }
    // A well-formed code that leads nowhere is a 404, not a 400.
    let (status, answer) = gw
        .get("/api/default/groups/join-info?code=AbCdEfGhIjKlMnOpQrStUv")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(snapshot(&gw, &group).await, before);
}

#[tokio::test]
async fn concurrent_create_and_delete_of_one_session_never_fail_and_leave_disk_matching_the_registry(
) {
    let gw = common::gateway().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let router = gw.router.clone();
        tasks.push(tokio::spawn(async move {
            let (method, uri, body) = if i % 2 == 0 {
                (
                    "POST",
                    "/api/sessions",
                    Body::from(r#"{"name":"contested"}"#),
                )
            } else {
                ("DELETE", "/api/sessions/contested", Body::empty())
            };
            let req = Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(body)
                .expect("request");
            let resp = tower::ServiceExt::oneshot(router, req)
                .await
                .expect("answer");
            let status = resp.status();
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .expect("body")
                .to_bytes();
            (
                method,
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }));
    }
    for t in tasks {
        let (method, status, body) = t.await.expect("task");
        match method {
            "POST" => assert!(
                status == StatusCode::CREATED
                    || (status == StatusCode::UNPROCESSABLE_ENTITY
                        && body["code"] == "session_exists"),
                "POST: {status} {body}"
            ),
            _ => assert_eq!((status, body), (StatusCode::OK, json!({"success": true}))),
        }
    }
    let names = listed(&gw).await;
    assert_eq!(folders(&gw), names, "folders on disk match the registry");
    // Whatever state it ended in, the session is usable or creatable again.
    if names.is_empty() {
        gw.session("contested", None, None).await;
    }
    let g = gw.group("contested", "After the race", &[BOB]).await;
    assert_eq!(g["subject"], "After the race");
    let (status, _) = gw.call("DELETE", "/api/sessions/contested", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(folders(&gw).is_empty());
    assert!(listed(&gw).await.is_empty());
}
