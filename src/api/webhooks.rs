//! The delivery log: pending and dead-lettered webhook deliveries, and sending a dead one again.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{At, Input, Json, Query, Target};
use super::idempotency::{Answer, Key};
use super::path::{from_path, KnownSession, SessionPath};
use super::query::{Choice, Limit, Param};
use super::{AppState, Errors};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::reply::Reply;
use crate::sessions::{now_ms, Session};
use crate::store::{split_delivery_key, DeliveryJob, JobState, Work};
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
    #[serde(default)]
    state: Param<DeliveryState>,
    /// 1-1000, default 100.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    #[serde(default)]
    limit: Param<Limit>,
}

/// Which deliveries: those still being tried, or those that ran out of retries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    #[default]
    Pending,
    Dead,
}

impl Choice for DeliveryState {
    const EXPECTED: &'static str = "pending or dead";
}

impl DeliveryState {
    fn jobs(self) -> JobState {
        match self {
            Self::Pending => JobState::Pending,
            Self::Dead => JobState::Dead,
        }
    }
}

/// A page of the delivery log: which deliveries, how many.
struct Page {
    state: DeliveryState,
    limit: Limit,
}

impl Input for Page {
    type Read = Query<DeliveriesQuery>;
    fn check(Query(q): Query<DeliveriesQuery>) -> ApiResult<Self> {
        Ok(Self {
            state: q.state.value("state")?.unwrap_or_default(),
            limit: q.limit.value("limit")?.unwrap_or_default(),
        })
    }
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
    #[schema(value_type = String)]
    state: DeliveryState,
}

impl Delivery {
    /// `job`, kept under `key` in `s`'s store, as the API shows it; `id` as the client sees it.
    fn of(
        s: &Session,
        key: &[u8],
        id: String,
        job: &DeliveryJob,
        state: DeliveryState,
    ) -> ApiResult<Self> {
        let seq = split_delivery_key(key).map_or(0, |(_, s)| s);
        Ok(Self {
            id,
            event_id: event_id(s, seq)?,
            event: job.event.clone(),
            url: redact(&job.url),
            attempts: job.attempts,
            next_attempt_at: job.next_attempt_at,
            last_error: job.last_error.clone(),
            state,
        })
    }
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
    At(KnownSession(s), page): At<KnownSession, Page>,
) -> ApiResult<Json<Vec<Delivery>>> {
    let jobs = s.store.jobs(page.state.jobs(), page.limit.0)?;
    let out = jobs
        .iter()
        .map(|(k, job)| Delivery::of(&s, k, crate::webhooks::sign::hex(k), job, page.state));
    Ok(Json(out.collect::<ApiResult<_>>()?))
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

/// The delivery a path names, in a session that exists: its key, and its id as sent.
pub struct DeliveryAt {
    session: Arc<Session>,
    key: [u8; 16],
    id: String,
}

impl Target for DeliveryAt {
    type Path = DeliveryPath;
    fn resolve(p: DeliveryPath, state: &AppState) -> ApiResult<Self> {
        let KnownSession(session) = KnownSession::named(&p.session, state)?;
        let key = parse_id(&p.id).ok_or_else(|| {
            ApiError::bad_request(format!(
                "id: expected the 32 hex digits of a delivery id from the delivery log, got {:?}",
                p.id
            ))
        })?;
        Ok(Self {
            session,
            key,
            id: p.id,
        })
    }
}

from_path!(DeliveryAt);

impl DeliveryAt {
    fn not_found(&self) -> ApiError {
        ApiError::not_found(
            ErrorCode::DeliveryNotFound,
            format!(
                "no dead delivery {:?} in session \"{}\"",
                self.id, self.session.name
            ),
        )
    }

    /// The dead delivery, ready to go again: no attempts made, the next one now.
    fn dead_job(&self) -> ApiResult<DeliveryJob> {
        let dead = self.session.store.job(JobState::Dead, &self.key)?;
        let mut job = dead.ok_or_else(|| self.not_found())?;
        job.attempts = 0;
        job.next_attempt_at = now_ms();
        Ok(job)
    }

    /// Moves `job` back to pending, keeping `reply` with the change.
    async fn requeue(&self, job: &DeliveryJob, mut reply: Reply) -> ApiResult<Reply> {
        // Checked again inside the committer's transaction: of two retries at once, one moves it.
        let work = Work::requeue(self.key, job)?;
        let remember = reply.remember.take();
        let applied = self
            .session
            .commit_answered(work, Vec::new(), remember)
            .await?;
        if applied.skipped {
            return Err(self.not_found());
        }
        Ok(reply)
    }
}

/// Send a dead delivery again: it goes back to pending at once, with a fresh set of retries.
#[utoipa::path(post, path = "/api/{session}/webhooks/deliveries/{id}/retry", tag = "Events", params(DeliveryPath),
    responses((status = 200, body = Delivery), Errors))]
async fn retry_delivery(
    State(state): State<AppState>,
    d: DeliveryAt,
    idempotency: Key,
) -> ApiResult<Answer> {
    let job = d.dead_job()?;
    let pending = DeliveryState::Pending;
    let delivery = Delivery::of(&d.session, &d.key, d.id.clone(), &job, pending)?;
    let reply = idempotency.render(StatusCode::OK, move |_: &()| delivery)(&());
    let reply = d.requeue(&job, reply).await?;
    state.registry.notify(&d.session.name);
    Ok(Answer(reply))
}

/// The id of the event logged under `seq`, or "" when it is gone.
fn event_id(s: &Session, seq: u64) -> ApiResult<String> {
    Ok(s.store
        .event(seq)?
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .unwrap_or_default())
}
