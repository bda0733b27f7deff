//! The delivery log: pending and dead-lettered webhook deliveries, and sending a dead one again.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{Json, Path, Query};
use super::groups::SessionPath;
use super::idempotency::{Answer, Key};
use super::{field_err, AppState, Errors};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids::SessionName;
use crate::sessions::now_ms;
use crate::store::{split_delivery_key, JobState, Work};
use crate::webhooks::client::redact;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// `pending` (default) or `dead`.
    #[param(value_type = Option<String>, pattern = "^(pending|dead)$")]
    state: Option<String>,
    /// 1-1000, default 100.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": "a1b2c3d4e5f6a7b80000000000000007", "eventId": "evt_01jd0000000000000000000000", "event": "group.v2.join", "url": "http://127.0.0.1:8000/webhook", "attempts": 16, "nextAttemptAt": 0, "lastError": "HTTP 500", "state": "dead"}))]
pub struct Delivery {
    id: String,
    event_id: String,
    event: String,
    /// The webhook's URL without its user-info, query (shown as `?…`) or fragment.
    url: String,
    attempts: u32,
    /// Unix ms.
    next_attempt_at: u64,
    last_error: Option<String>,
    state: String,
}

fn parse_id(id: &str) -> Option<[u8; 16]> {
    if id.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(id.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Pending or dead-lettered deliveries of the session's events.
#[utoipa::path(get, path = "/api/{session}/webhooks/deliveries", tag = "Events", params(SessionPath, DeliveriesQuery),
    responses((status = 200, body = Vec<Delivery>), Errors))]
async fn list_deliveries(
    State(state): State<AppState>,
    Path(p): Path<SessionPath>,
    Query(q): Query<DeliveriesQuery>,
) -> ApiResult<Json<Vec<Delivery>>> {
    let name = SessionName::parse(&p.session).map_err(|e| field_err("session", e))?;
    let s = state.registry.require(&name)?;
    let dead = match q.state.as_deref() {
        None | Some("pending") => false,
        Some("dead") => true,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "state: expected pending or dead, got {o:?}"
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
    let state = if dead {
        JobState::Dead
    } else {
        JobState::Pending
    };
    let mut out = Vec::new();
    for (k, job) in s.store.jobs(state, limit)? {
        let seq = split_delivery_key(&k).map_or(0, |(_, s)| s);
        out.push(Delivery {
            id: crate::webhooks::sign::hex(&k),
            event_id: event_id(&s, seq)?,
            event: job.event,
            url: redact(&job.url),
            attempts: job.attempts,
            next_attempt_at: job.next_attempt_at,
            last_error: job.last_error,
            state: if dead { "dead" } else { "pending" }.into(),
        });
    }
    Ok(Json(out))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryPath {
    /// Session name.
    #[param(example = "default", pattern = "^[a-zA-Z0-9_-]{1,54}$")]
    session: String,
    /// Delivery id, from the delivery log.
    #[param(
        pattern = "^[0-9a-fA-F]{32}$",
        example = "a1b2c3d4e5f6a7b80000000000000007"
    )]
    id: String,
}

/// Send a dead delivery again: it goes back to pending at once, with a fresh set of retries.
#[utoipa::path(post, path = "/api/{session}/webhooks/deliveries/{id}/retry", tag = "Events", params(DeliveryPath),
    responses((status = 200, body = Delivery), Errors))]
async fn retry_delivery(
    State(state): State<AppState>,
    Path(p): Path<DeliveryPath>,
    idempotency: Key,
) -> ApiResult<Answer> {
    let name = SessionName::parse(&p.session).map_err(|e| field_err("session", e))?;
    let s = state.registry.require(&name)?;
    let not_found = || {
        ApiError::not_found(
            ErrorCode::DeliveryNotFound,
            format!("no dead delivery {:?} in session \"{name}\"", p.id),
        )
    };
    let key = parse_id(&p.id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "id: expected the 32 hex digits of a delivery id from the delivery log, got {:?}",
            p.id
        ))
    })?;
    let mut job = s.store.job(JobState::Dead, &key)?.ok_or_else(not_found)?;
    job.attempts = 0;
    job.next_attempt_at = now_ms();
    let seq = split_delivery_key(&key).map(|(_, s)| s).unwrap_or(0);
    let delivery = Delivery {
        id: p.id.clone(),
        event_id: event_id(&s, seq)?,
        event: job.event.clone(),
        url: redact(&job.url),
        attempts: 0,
        next_attempt_at: job.next_attempt_at,
        last_error: job.last_error.clone(),
        state: "pending".into(),
    };
    let mut reply = idempotency.render(StatusCode::OK, move |_: &()| delivery)(&());
    // Checked again inside the committer's transaction: of two retries at once, one moves it.
    let work = Work::requeue(key, &job)?;
    let applied = s
        .commit_answered(work, Vec::new(), 0, reply.remember.take())
        .await?;
    if applied.skipped {
        return Err(not_found());
    }
    state.registry.notify(&name);
    Ok(Answer(reply))
}

/// The id of the event logged under `seq`, or "" when it is gone.
fn event_id(s: &crate::sessions::Session, seq: u64) -> ApiResult<String> {
    Ok(s.store
        .event(seq)?
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .unwrap_or_default())
}
