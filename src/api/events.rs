//! `GET /api/{session}/events`: the session's event log, for receivers catching up.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{At, Input, Json, Query};
use super::path::{KnownSession, SessionPath};
use super::query::{Limit, Param, QueryValue};
use super::{AppState, Errors};
use crate::error::{ApiError, ApiResult};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The cursor of the last event already seen; absent: from the oldest kept.
    #[param(value_type = Option<String>, pattern = "^[0-9]*$")]
    #[serde(default)]
    after: Param<Cursor>,
    /// 1-1000, default 100.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    #[serde(default)]
    limit: Param<Limit>,
}

/// Where a page of the log starts: after the event with this sequence number (0: the oldest).
struct Cursor(u64);

impl QueryValue for Cursor {
    fn parse(text: &str) -> Option<Self> {
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Empty: from the oldest. A cursor past u64::MAX is past every event.
        Some(Self(if text.is_empty() {
            0
        } else {
            text.parse().unwrap_or(u64::MAX)
        }))
    }
    fn refusal(name: &str, text: &str) -> String {
        format!("{name}: not a cursor from this log: {text:?}")
    }
}

/// A page of the log: after which event, how many.
struct Page {
    after: u64,
    limit: Limit,
}

impl Input for Page {
    type Read = Query<EventsQuery>;
    fn check(Query(q): Query<EventsQuery>) -> ApiResult<Self> {
        Ok(Self {
            after: q.after.value("after")?.map_or(0, |c| c.0),
            limit: q.limit.value("limit")?.unwrap_or_default(),
        })
    }
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
    At(KnownSession(s), page): At<KnownSession, Page>,
) -> ApiResult<Json<Vec<LoggedEvent>>> {
    let events = s.store.events_after(page.after, page.limit.0)?;
    Ok(Json(
        events.into_iter().map(logged).collect::<ApiResult<_>>()?,
    ))
}

/// One event of the log as the API shows it.
fn logged((seq, bytes): (u64, sled::IVec)) -> ApiResult<LoggedEvent> {
    let text = String::from_utf8(bytes.to_vec()).map_err(ApiError::internal)?;
    let envelope = RawValue::from_string(text).map_err(ApiError::internal)?;
    Ok(LoggedEvent {
        cursor: seq.to_string(),
        envelope,
    })
}
