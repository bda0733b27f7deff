//! Contract §0, the API key: in the header in any letter case or in the query, plain or as a
//! SHA-512 digest, generated when none is configured, and off with no key at all.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

async fn keyed(tweak: impl FnOnce(&mut wagate::Config)) -> common::Gateway {
    let dir = tempfile::tempdir().expect("temp dir");
    common::gateway_in(dir, |c| {
        c.no_api_key = false;
        tweak(c);
    })
    .await
}

async fn with_header(gw: &common::Gateway, path: &str, name: &str, value: &str) -> StatusCode {
    let req = Request::builder()
        .uri(path)
        .header(name, value)
        .body(Body::empty())
        .expect("request");
    gw.raw(req).await.0
}

#[tokio::test]
async fn a_plain_key_is_accepted_in_the_header_in_any_case_and_in_the_query() {
    let gw = keyed(|c| c.api_key = Some("s3cret".into())).await;
    for name in ["X-Api-Key", "x-api-key", "X-API-KEY"] {
        assert_eq!(
            with_header(&gw, "/api/sessions", name, "s3cret").await,
            StatusCode::OK,
            "{name}"
        );
    }
    let (status, _) = gw.get("/api/sessions?x-api-key=s3cret").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = gw.get("/api/sessions?all=true&x-api-key=s3cret").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_in_the_error_shape() {
    let gw = keyed(|c| c.api_key = Some("s3cret".into())).await;
    let (status, body) = gw.get("/api/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"statusCode": 401, "error": "Unauthorized",
               "message": "send the API key in the X-Api-Key header", "code": "unauthorized"})
    );
    let req = Request::builder()
        .uri("/api/sessions")
        .header("X-Api-Key", "wrong")
        .body(Body::empty())
        .expect("request");
    let (status, body) = gw.raw(req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"statusCode": 401, "error": "Unauthorized",
               "message": "the API key is wrong", "code": "unauthorized"})
    );
    let (status, _) = gw.get("/api/sessions?x-api-key=s3cre").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for path in ["/api/server/version", "/health", "/api/default/groups"] {
        let (status, _) = gw.get(path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn a_sha512_key_accepts_the_plain_key_whose_digest_it_is() {
    // sha512("s3cret"), as `echo -n s3cret | sha512sum` prints it.
    let digest = {
        use std::fmt::Write;
        let d = <sha2::Sha512 as sha2::Digest>::digest(b"s3cret");
        d.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    };
    let gw = keyed(|c| c.api_key = Some(format!("sha512:{digest}"))).await;
    assert_eq!(
        with_header(&gw, "/api/sessions", "X-Api-Key", "s3cret").await,
        StatusCode::OK
    );
    assert_eq!(
        with_header(
            &gw,
            "/api/sessions",
            "X-Api-Key",
            &format!("sha512:{digest}")
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "the digest itself is not the key"
    );
}

#[tokio::test]
async fn ping_the_spec_and_swagger_are_open_without_a_key() {
    let gw = keyed(|c| c.api_key = Some("s3cret".into())).await;
    let (status, body) = gw.get("/ping").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"message": "pong"})));
    for path in ["/openapi.json", "/-json"] {
        let (status, body) = gw.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body["openapi"].is_string(), "{path}");
    }
    let (status, _) = gw.get("/swagger/").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = gw.get("/").await;
    assert!(status.is_redirection());
}

#[tokio::test]
async fn without_a_configured_key_one_is_generated_and_works() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = wagate::Config::for_dir(dir.path());
    config.no_api_key = false;
    let (state, key) = wagate::open(&config).await.expect("opens");
    let key = key.expect("a key was generated");
    let gw = common::Gateway {
        dir,
        router: wagate::app(state.clone()),
        state,
    };
    let (status, _) = gw.get("/api/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        with_header(&gw, "/api/sessions", "X-Api-Key", &key).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn with_no_api_key_everything_is_open() {
    let gw = keyed(|c| c.no_api_key = true).await;
    let (status, _) = gw.get("/api/sessions").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_key_with_reserved_characters_works_url_encoded_in_the_query() {
    let gw = keyed(|c| c.api_key = Some("p@ss word+1&x".into())).await;
    let (status, _) = gw
        .get("/api/sessions?all=true&x-api-key=p%40ss%20word%2B1%26x")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = gw.get("/api/sessions?x-api-key=p%40ss").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
