//! What the groups API tests share: session `alpha` acting as ME, the accounts they add, and
//! reading a group's id, its subject, a list of participants and a 400 that names its field;
//! the renames a receiver got.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{Gateway, Receiver};

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

/// The group's subject as `session` reads it (reads work even while writes fail).
pub async fn subject_of(gw: &Gateway, session: &str, gid: &str) -> String {
    let (status, body) = gw.get(&format!("/api/{session}/groups/{gid}")).await;
    assert_eq!(status, StatusCode::OK, "reads keep working: {body}");
    body["subject"].as_str().expect("subject").to_owned()
}

/// Receives `group.v2.update`s until one renames to `last`; answers the subjects, one per event id.
pub async fn delivered_until(rx: &mut Receiver, last: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    loop {
        let r = rx.next(10).await.json();
        let subject = r["payload"]["group"]["subject"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if r["event"] == "group.v2.update" && seen.insert(r["id"].to_string()) {
            out.push(subject.clone());
        }
        if subject == last {
            return out;
        }
    }
}
