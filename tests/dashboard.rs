//! The dashboard (#17): served from the binary, open without the key like the Swagger UI, with a
//! Content-Security-Policy that allows only this origin, and kept out of the OpenAPI document.

mod common;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A gateway that refuses the API without its key.
async fn keyed() -> common::Gateway {
    let dir = tempfile::tempdir().expect("temp dir");
    common::gateway_in(dir, |c| {
        c.no_api_key = false;
        c.api_key = Some("s3cret".into());
    })
    .await
}

async fn fetch(gw: &common::Gateway, path: &str) -> (Response<Body>, String) {
    let req = Request::builder()
        .uri(path)
        .body(Body::empty())
        .expect("request");
    let resp = gw
        .router
        .clone()
        .oneshot(req)
        .await
        .expect("router answers");
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (Response::from_parts(parts, Body::empty()), text)
}

fn header_of(resp: &Response<Body>, name: header::HeaderName) -> &str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn assert_policy(resp: &Response<Body>, path: &str) {
    let csp = header_of(resp, header::CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{path}: {directive} in {csp:?}");
    }
    assert!(!csp.contains("unsafe-inline"), "{path}: {csp:?}");
    assert_eq!(header_of(resp, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
}

#[tokio::test]
async fn the_page_is_html_with_the_policy_and_needs_no_key_when_one_is_configured() {
    let gw = keyed().await;
    let (status, _) = gw.get("/api/sessions").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the API itself still needs the key"
    );
    for path in ["/dashboard", "/dashboard/"] {
        let (resp, body) = fetch(&gw, path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(
            header_of(&resp, header::CONTENT_TYPE).starts_with("text/html"),
            "{path}"
        );
        assert_policy(&resp, path);
        assert!(body.contains(r#"<script type="module" src="/dashboard/app.js">"#));
        assert!(
            !body.contains("<script>") && !body.contains(" style="),
            "no inline script or style: the policy would block it"
        );
    }
}

#[tokio::test]
async fn every_asset_has_its_content_type_and_the_policy() {
    let gw = keyed().await;
    let assets = [
        ("app.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
        ("app.js", "text/javascript"),
        ("api.js", "text/javascript"),
        ("dom.js", "text/javascript"),
        ("sessions.js", "text/javascript"),
        ("groups.js", "text/javascript"),
        ("deliveries.js", "text/javascript"),
        ("events.js", "text/javascript"),
    ];
    for (name, kind) in assets {
        let path = format!("/dashboard/{name}");
        let (resp, body) = fetch(&gw, &path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(
            header_of(&resp, header::CONTENT_TYPE).starts_with(kind),
            "{path}: {:?}",
            resp.headers()
        );
        assert_policy(&resp, &path);
        assert!(!body.is_empty(), "{path}");
    }
}

#[tokio::test]
async fn the_scripts_never_put_api_values_in_as_markup() {
    let gw = keyed().await;
    for name in [
        "app",
        "api",
        "dom",
        "sessions",
        "groups",
        "deliveries",
        "events",
    ] {
        let (_, js) = fetch(&gw, &format!("/dashboard/{name}.js")).await;
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.contains(sink), "{name}.js uses {sink}");
        }
    }
}

#[tokio::test]
async fn an_unknown_file_is_404_in_the_error_shape_key_or_not() {
    let gw = keyed().await;
    for path in [
        "/dashboard/nope.js",
        "/dashboard/app.js.map",
        "/dashboard/..%2FCargo.toml",
        "/dashboard/%2e%2e",
    ] {
        let (resp, body) = fetch(&gw, path).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
        assert_eq!(body["statusCode"], 404, "{path}");
        assert_eq!(body["code"], "route_not_found", "{path}");
    }
}

#[tokio::test]
async fn the_page_is_served_when_the_gateway_runs_without_a_key() {
    let gw = common::gateway().await;
    let (resp, _) = fetch(&gw, "/dashboard").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) = gw.get("/api/sessions").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_dashboard_is_not_in_the_openapi_document() {
    let gw = keyed().await;
    let (resp, spec) = fetch(&gw, "/openapi.json").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let spec: serde_json::Value = serde_json::from_str(&spec).expect("JSON document");
    let paths = spec["paths"].as_object().expect("paths");
    assert!(
        paths.contains_key("/api/sessions"),
        "the document is the real one"
    );
    assert!(
        paths.keys().all(|p| !p.starts_with("/dashboard")),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    assert!(!spec.to_string().contains("/dashboard"));
}
