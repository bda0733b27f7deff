//! `GET /api/{session}/events`: the session's event log, for receivers catching up.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{Json, Path, Query};
use super::groups::SessionPath;
use super::{field_err, AppState, Errors};
use crate::error::{ApiError, ApiResult};
use crate::ids::SessionName;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The cursor of the last event already seen; absent: from the oldest kept.
    #[param(value_type = Option<String>, pattern = "^[0-9]*$")]
    after: Option<String>,
    /// 1-1000, default 100.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"cursor": "42", "envelope": {"id": "evt_01jd0000000000000000000000", "timestamp": 1763769600123u64, "event": "group.v2.join", "session": "default", "me": {"id": "11111111111@c.us", "pushName": "default"}, "payload": {}, "engine": "LOCAL", "environment": {}}}))]
pub struct LoggedEvent {
    /// Opaque; pass it as `after` to read what came later.
    cursor: String,
    /// The exact envelope that was (or will be) sent to webhooks.
    #[schema(value_type = Object)]
    envelope: Box<RawValue>,
}

/// The session's events, oldest first.
#[utoipa::path(get, path = "/api/{session}/events", tag = "Events", params(SessionPath, EventsQuery),
    responses((status = 200, body = Vec<LoggedEvent>), Errors))]
async fn list_events(
    State(state): State<AppState>,
    Path(p): Path<SessionPath>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Vec<LoggedEvent>>> {
    let name = SessionName::parse(&p.session).map_err(|e| field_err("session", e))?;
    let s = state.registry.require(&name)?;
    let after = match q.after.as_deref() {
        None | Some("") => 0,
        // A cursor past u64::MAX is past every event.
        Some(c) if c.bytes().all(|b| b.is_ascii_digit()) => c.parse::<u64>().unwrap_or(u64::MAX),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "after: not a cursor from this log: {c:?}"
            )))
        }
    };
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit: expected an integer from 1 to 1000, got {l:?}"
                )))
            }
        },
    };
    let mut out = Vec::new();
    for (seq, bytes) in s.store.events_after(after, limit)? {
        let text = String::from_utf8(bytes.to_vec()).map_err(ApiError::internal)?;
        let envelope = RawValue::from_string(text).map_err(ApiError::internal)?;
        out.push(LoggedEvent {
            cursor: seq.to_string(),
            envelope,
        });
    }
    Ok(Json(out))
}
