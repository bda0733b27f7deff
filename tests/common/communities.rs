//! What the communities tests share: creating a community, linking groups, reading a
//! community's participants as `(id, role)` pairs.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::Gateway;

/// Creates community `name` in `session` with `participants`; answers its CommunityInfo.
pub async fn community(gw: &Gateway, session: &str, name: &str, participants: &[&str]) -> Value {
    let parts: Vec<Value> = participants.iter().map(|p| json!({"id": p})).collect();
    let (status, body) = gw
        .post(
            &format!("/api/{session}/communities"),
            json!({"name": name, "participants": parts}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// `{"groups": [{"id": ..}, ...]}`.
pub fn groups(ids: &[&str]) -> Value {
    json!({"groups": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()})
}

/// Links `ids` to community `cid` as `session`; answers status and body.
pub async fn link(gw: &Gateway, session: &str, cid: &str, ids: &[&str]) -> (StatusCode, Value) {
    gw.post(
        &format!("/api/{session}/communities/{cid}/groups/link"),
        groups(ids),
    )
    .await
}

/// Unlinks `ids` from community `cid` as `session`; answers status and body.
pub async fn unlink(gw: &Gateway, session: &str, cid: &str, ids: &[&str]) -> (StatusCode, Value) {
    gw.post(
        &format!("/api/{session}/communities/{cid}/groups/unlink"),
        groups(ids),
    )
    .await
}

/// The community's participants as `session` sees them, sorted: `(id, role)`.
pub async fn members(gw: &Gateway, session: &str, cid: &str) -> Vec<(String, String)> {
    let (status, body) = gw
        .get(&format!("/api/{session}/communities/{cid}/participants"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    pairs(&body)
}

/// A list of participants as sorted `(id, role)` pairs.
pub fn pairs(list: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            (s("id"), s("role"))
        })
        .collect();
    out.sort();
    out
}

/// `(id, role)` pairs, sorted, from literals.
pub fn roles(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .iter()
        .map(|(i, r)| ((*i).to_owned(), (*r).to_owned()))
        .collect();
    out.sort();
    out
}

pub fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// A 403 with `code` whose message says `words`.
pub fn assert_403(status: StatusCode, body: &Value, code: &str, words: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(words), "{body} should say {words:?}");
}
