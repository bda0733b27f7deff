//! What the abuse tests share: a gateway with one group, what a refused request could have
//! touched (the session folders, the registry, the group, the event log) and the error shape.

use axum::http::StatusCode;
use serde_json::Value;

use super::Gateway;

const ALICE: &str = "11111111111@c.us";
pub const BOB: &str = "22222222222@c.us";

/// The session folders on disk, sorted.
pub fn folders(gw: &Gateway) -> Vec<String> {
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
pub async fn listed(gw: &Gateway) -> Vec<String> {
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
pub async fn with_group() -> (Gateway, String) {
    let gw = super::gateway().await;
    gw.session("default", Some(ALICE), None).await;
    let g = gw.group("default", "Team", &[BOB]).await;
    let id = g["id"].as_str().expect("id").to_owned();
    (gw, id)
}

/// Everything a refused request could have touched: folders, registry, the group, the event log.
pub async fn snapshot(gw: &Gateway, group: &str) -> (Vec<String>, Vec<String>, Value, Vec<Value>) {
    let (_, g) = gw.get(&format!("/api/default/groups/{group}")).await;
    (folders(gw), listed(gw).await, g, gw.events("default").await)
}

pub fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["statusCode"], want.as_u16(), "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
}
