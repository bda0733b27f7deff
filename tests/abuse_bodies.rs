//! Abuse cases, bodies, content types and keys: deep, huge, ill-shaped or invalid bodies, wrong
//! content types, differently cased API keys and non-http URLs each get one exact answer, and
//! none of them writes anything to the store.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::abuse::{assert_error, folders, listed, snapshot, with_group};
use common::Gateway;

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
