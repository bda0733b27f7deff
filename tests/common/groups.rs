//! What the groups API tests share: session `alpha` acting as ME, the accounts they add, and
//! reading a group's id, a list of participants and a 400 that names its field.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::Gateway;

pub const ME: &str = "11111111111@c.us";
pub const BOB: &str = "22222222222@c.us";
pub const CAROL: &str = "33333333333@c.us";

/// A gateway with session `alpha` acting as ME.
pub async fn alpha() -> Gateway {
    let gw = super::gateway().await;
    gw.session("alpha", Some(ME), None).await;
    gw
}

pub fn id_of(g: &Value) -> String {
    g["id"].as_str().expect("group id").to_owned()
}

pub fn msg(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

pub fn assert_400_naming(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "bad_request", "{body}");
    assert!(
        msg(body).starts_with(&format!("{field}:")),
        "{body} should name {field}"
    );
}

pub fn participants(ids: &[&str]) -> Value {
    json!({"participants": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()})
}
