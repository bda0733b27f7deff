//! Abuse cases: hostile names, ids, bodies and headers each get one exact answer, and none of
//! them writes anything to the store.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::Gateway;

const ALICE: &str = "11111111111@c.us";
const BOB: &str = "22222222222@c.us";

/// The session folders on disk, sorted.
fn folders(gw: &Gateway) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(gw.dir.path().join("sessions"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The session names the registry lists, sorted.
async fn listed(gw: &Gateway) -> Vec<String> {
    let (status, body) = gw.get("/api/sessions?all=true").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut out: Vec<String> = body
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect();
    out.sort();
    out
}

/// A gateway with session `default` (account ALICE) and one group with BOB; answers the group id.
async fn with_group() -> (Gateway, String) {
    let gw = common::gateway().await;
    gw.session("default", Some(ALICE), None).await;
    let g = gw.group("default", "Team", &[BOB]).await;
    let id = g["id"].as_str().expect("id").to_owned();
    (gw, id)
}

/// Everything a refused request could have touched: folders, registry, the group, the event log.
async fn snapshot(gw: &Gateway, group: &str) -> (Vec<String>, Vec<String>, Value, Vec<Value>) {
    let (_, g) = gw.get(&format!("/api/default/groups/{group}")).await;
    (folders(gw), listed(gw).await, g, gw.events("default").await)
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["statusCode"], want.as_u16(), "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

/// The answer is exactly `want` in the error shape, with this message and code.
fn assert_exact_error(
    (status, body): (StatusCode, &Value),
    want: StatusCode,
    message: &str,
    code: &str,
    context: &str,
) {
    let error = want.canonical_reason().unwrap_or_default();
    assert_eq!(
        *body,
        json!({"statusCode": want.as_u16(), "error": error, "message": message, "code": code}),
        "{context}"
    );
    assert_eq!(status, want, "{context}");
}

async fn raw(
    gw: &Gateway,
    method: &str,
    path: &str,
    ct: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    gw.raw(req.body(Body::from(body)).expect("request")).await
}

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
async fn json_nested_ten_thousand_deep_is_a_400_not_a_stack_overflow() {
    let (gw, group) = with_group().await;
    let before = snapshot(&gw, &group).await;
    let deep = format!(
        "{{\"name\":\"x\",\"config\":{{\"metadata\":{{\"a\":{}1{}}}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let (status, body) = raw(
        &gw,
        "POST",
        "/api/sessions",
        Some("application/json"),
        deep.into_bytes(),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("recursion limit exceeded"),
        "{body}"
    );
    let deep_obj = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let (status, body) = raw(
        &gw,
        "PUT",
        &format!("/api/default/groups/{group}/subject"),
        Some("application/json"),
        deep_obj.into_bytes(),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(snapshot(&gw, &group).await, before);
}

#[tokio::test]
async fn a_two_mebibyte_body_is_413_in_the_error_shape() {
    let (gw, group) = with_group().await;
    let before = snapshot(&gw, &group).await;
    let big = json!({"description": "x".repeat(2 * 1024 * 1024)}).to_string();
    let (status, body) = raw(
        &gw,
        "PUT",
        &format!("/api/default/groups/{group}/description"),
        Some("application/json"),
        big.into_bytes(),
    )
    .await;
    assert_exact_error(
        (status, &body),
        StatusCode::PAYLOAD_TOO_LARGE,
        "request body is larger than 1 MiB",
        "payload_too_large",
        "",
    );
    assert_eq!(snapshot(&gw, &group).await, before);
}

#[tokio::test]
async fn a_two_mebibyte_body_over_real_http_is_413_in_the_error_shape() {
    let gw = common::gateway().await;
    let addr = gw.serve().await;
    let big = json!({"name": "x".repeat(2 * 1024 * 1024)}).to_string();
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/sessions"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
    assert_eq!(body["code"], "payload_too_large", "{body}");
    assert!(folders(&gw).is_empty());
}

#[tokio::test]
async fn wrong_content_types_are_415_and_write_nothing() {
    let (gw, group) = with_group().await;
    let before = snapshot(&gw, &group).await;
    let subject = format!("/api/default/groups/{group}/subject");
    let body = br#"{"subject":"Changed"}"#.to_vec();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        Some("json"),
    ] {
        let (status, answer) = raw(&gw, "PUT", &subject, ct, body.clone()).await;
        assert_exact_error(
            (status, &answer),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected a body with content-type: application/json",
            "unsupported_media_type",
            &format!("{ct:?}"),
        );
        let (status, answer) = raw(
            &gw,
            "POST",
            "/api/sessions",
            ct,
            br#"{"name":"ct"}"#.to_vec(),
        )
        .await;
        assert_error(
            status,
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    assert_eq!(snapshot(&gw, &group).await, before);
    // The charset parameter and a +json suffix are still JSON.
    let (status, answer) = raw(
        &gw,
        "PUT",
        &subject,
        Some("application/json; charset=utf-8"),
        body.clone(),
    )
    .await;
    assert_eq!((status, answer), (StatusCode::OK, json!(true)));
    let (status, answer) = raw(
        &gw,
        "PUT",
        &subject,
        Some("application/merge-patch+json"),
        body,
    )
    .await;
    assert_eq!((status, answer), (StatusCode::OK, json!(true)));
}

#[tokio::test]
async fn a_json_array_where_an_object_belongs_is_400_and_creates_no_session() {
    let gw = common::gateway().await;
    for body in ["[]", "[\"x\"]", "[\"x\", true]", "null", "\"default\"", "1"] {
        let (status, answer) = raw(
            &gw,
            "POST",
            "/api/sessions",
            Some("application/json"),
            body.into(),
        )
        .await;
        assert_exact_error(
            (status, &answer),
            StatusCode::BAD_REQUEST,
            "body: expected a JSON object",
            "bad_request",
            body,
        );
    }
    let nested = json!({"name": "x", "config": {"webhooks": [{"url": "http://127.0.0.1:9/", "events": ["*"], "retries": [null, null]}]}});
    let (status, answer) = gw.post("/api/sessions", nested).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    let (status, answer) = gw
        .post(
            "/api/sessions",
            json!({"name": "y", "config": [null, null, {"me": null}]}),
        )
        .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    assert!(folders(&gw).is_empty(), "{:?}", folders(&gw));
    assert!(listed(&gw).await.is_empty());
}

#[tokio::test]
async fn ten_thousand_participants_in_one_add_are_refused_whole() {
    let (gw, group) = with_group().await;
    let before = snapshot(&gw, &group).await;
    let many: Vec<Value> = (0..10_000u64)
        .map(|i| json!({"id": format!("{}@c.us", 50_000_000_000u64 + i)}))
        .collect();
    let (status, body) = gw
        .post(
            &format!("/api/default/groups/{group}/participants/add"),
            json!({"participants": many}),
        )
        .await;
    assert_exact_error(
        (status, &body),
        StatusCode::BAD_REQUEST,
        "participants: at most 1024 ids per request",
        "bad_request",
        "",
    );
    assert_eq!(snapshot(&gw, &group).await, before);
}

#[tokio::test]
async fn invalid_utf8_in_the_body_is_400_and_writes_nothing() {
    let (gw, group) = with_group().await;
    let before = snapshot(&gw, &group).await;
    let mut body = br#"{"subject":"ab"#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    body.extend_from_slice(br#""}"#);
    let (status, answer) = raw(
        &gw,
        "PUT",
        &format!("/api/default/groups/{group}/subject"),
        Some("application/json"),
        body.clone(),
    )
    .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("body: "),
        "{answer}"
    );
    let mut name = br#"{"name":"x"#.to_vec();
    name.push(0x80);
    name.extend_from_slice(br#""}"#);
    let (status, answer) = raw(&gw, "POST", "/api/sessions", Some("application/json"), name).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(snapshot(&gw, &group).await, before);
}

/// Sends one HTTP/1.1 request with exactly these header lines; answers status and JSON body.
async fn exact_http(addr: std::net::SocketAddr, head: &str) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn api_key_header_names_are_case_blind_and_key_values_are_case_sensitive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gw = common::gateway_in(dir, |c| {
        c.no_api_key = false;
        c.api_key = Some("Secret-Key-1".into());
    })
    .await;
    let addr = gw.serve().await;
    let unauthorized = |msg: &str| json!({"statusCode": 401, "error": "Unauthorized", "message": msg, "code": "unauthorized"});
    for name in ["X-Api-Key", "x-api-key", "X-API-KEY", "x-Api-kEY"] {
        let (status, body) = exact_http(
            addr,
            &format!("GET /api/sessions HTTP/1.1\r\n{name}: Secret-Key-1"),
        )
        .await;
        assert_eq!((status, body), (200, json!([])), "{name}");
    }
    for (head, msg) in [
        ("GET /api/sessions HTTP/1.1", "send the API key in the X-Api-Key header"),
        ("GET /api/sessions HTTP/1.1\r\nX-Api-Key: secret-key-1", "the API key is wrong"),
        ("GET /api/sessions HTTP/1.1\r\nX-Api-Key: SECRET-KEY-1", "the API key is wrong"),
        ("GET /api/sessions HTTP/1.1\r\nX-Api-Key: Secret-Key-1 x", "the API key is wrong"),
        ("GET /api/sessions HTTP/1.1\r\nX-Api-Key: Secret-Key-", "the API key is wrong"),
        ("GET /api/sessions HTTP/1.1\r\nX-Api-Key:", "the API key is wrong"),
        ("GET /api/sessions HTTP/1.1\r\nAuthorization: Bearer Secret-Key-1", "send the API key in the X-Api-Key header"),
        ("POST /api/sessions HTTP/1.1\r\nX-Api-Key: secret-key-1\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"name\":\"evil\"}", "the API key is wrong"),
    ] {
        let head = head.split("\r\n\r\n").next().unwrap_or(head);
        let (status, body) = exact_http(addr, head).await;
        assert_eq!((status, body), (401, unauthorized(msg)), "{head}");
    }
    // The query form is accepted too, with the same case rules for the value.
    let (status, _) = exact_http(addr, "GET /api/sessions?x-api-key=Secret-Key-1 HTTP/1.1").await;
    assert_eq!(status, 200);
    let (status, _) = exact_http(addr, "GET /api/sessions?x-api-key=secret-key-1 HTTP/1.1").await;
    assert_eq!(status, 401);
    // /ping stays open.
    let (status, body) = exact_http(addr, "GET /ping HTTP/1.1").await;
    assert_eq!((status, body), (200, json!({"message": "pong"})));
    assert!(folders(&gw).is_empty());
}

#[tokio::test]
async fn a_webhook_url_with_a_non_http_scheme_is_400_naming_the_field() {
    let gw = common::gateway().await;
    for url in [
        "ftp://127.0.0.1/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://127.0.0.1:70/",
        "unix:/var/run/docker.sock",
        "127.0.0.1:8000/hook",
        "",
    ] {
        let config = json!({"webhooks": [{"url": url, "events": ["*"]}]});
        let (status, body) = gw
            .post("/api/sessions", json!({"name": "hooked", "config": config}))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("config.webhooks[0].url: "),
            "{url}: {body}"
        );
    }
    assert!(folders(&gw).is_empty());
    // Nor can an existing session be switched to one.
    gw.session("hooked", None, None).await;
    let (status, body) = gw
        .put(
            "/api/sessions/hooked",
            json!({"config": {"webhooks": [{"url": "file:///etc/passwd", "events": ["*"]}]}}),
        )
        .await;
    assert_exact_error(
        (status, &body),
        StatusCode::BAD_REQUEST,
        "config.webhooks[0].url: must be an http or https URL",
        "bad_request",
        "",
    );
    let (_, info) = gw.get("/api/sessions/hooked").await;
    assert_eq!(info["config"], json!({}));
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

#[tokio::test]
async fn a_picture_file_with_both_url_and_data_or_of_the_wrong_shape_is_400() {
    let (gw, group) = with_group().await;
    let before = snapshot(&gw, &group).await;
    let path = format!("/api/default/groups/{group}/picture");
    for (file, msg) in [
        (
            json!({"url": "https://example.com/a.jpg", "data": "AAAA", "mimetype": "image/jpeg"}),
            "give exactly one of url or data",
        ),
        (
            json!({"mimetype": "image/jpeg"}),
            "give exactly one of url or data",
        ),
        (json!(["https://example.com/a.jpg"]), "expected an object"),
        (
            json!({"data": "AAAA", "mimetype": "image/gif"}),
            "file.mimetype: must be image/jpeg or image/png",
        ),
        (
            json!({"url": "file:///etc/passwd"}),
            "file.url: must be an http or https URL",
        ),
    ] {
        let (status, body) = gw.put(&path, json!({"file": file})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            body["message"].as_str().unwrap_or("").contains(msg),
            "{file}: {body}"
        );
    }
    assert_eq!(snapshot(&gw, &group).await, before);
}
