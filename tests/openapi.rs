//! The committed `openapi/openapi.json` is exactly what the server serves.

mod common;

#[tokio::test]
async fn committed_openapi_equals_the_served_document() {
    let gw = common::gateway().await;
    let (status, served) = gw.get("/openapi.json").await;
    assert_eq!(status, 200);
    let (status, waha_path) = gw.get("/-json").await;
    assert_eq!(status, 200);
    assert_eq!(
        served, waha_path,
        "/-json and /openapi.json serve the same document"
    );
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    let committed: serde_json::Value =
        serde_json::from_str(&committed).expect("committed spec is JSON");
    assert!(
        committed == served,
        "openapi/openapi.json is stale: regenerate it with `cargo run --bin wagate -- --print-openapi > openapi/openapi.json`"
    );
}
