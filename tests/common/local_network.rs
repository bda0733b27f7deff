//! What the local-network tests share: three sessions a, b, c acting as accounts A, B, C, and
//! one session's view of a group: the group itself, a member's role, the payloads it was sent.

use axum::http::StatusCode;
use serde_json::Value;

use super::Gateway;

pub const A: &str = "11111111111@c.us";
pub const B: &str = "22222222222@c.us";
pub const C: &str = "33333333333@c.us";

/// The payloads of `event` in `session`'s log, oldest first.
pub async fn payloads(gw: &Gateway, session: &str, event: &str) -> Vec<Value> {
    gw.events(session)
        .await
        .into_iter()
        .filter(|e| e["event"] == event)
        .map(|e| e["payload"].clone())
        .collect()
}

/// Three WORKING sessions a, b, c acting as accounts A, B, C.
pub async fn three_sessions() -> Gateway {
    let gw = super::gateway().await;
    gw.session("a", Some(A), None).await;
    gw.session("b", Some(B), None).await;
    gw.session("c", Some(C), None).await;
    gw
}

pub fn role_in(info: &Value, who: &str) -> Option<String> {
    info["participants"]
        .as_array()?
        .iter()
        .find(|p| p["id"] == who)
        .map(|p| p["role"].as_str().unwrap_or_default().to_owned())
}

pub async fn group_of(gw: &Gateway, session: &str, gid: &str) -> (StatusCode, Value) {
    gw.get(&format!("/api/{session}/groups/{gid}")).await
}
