//! `/api/sessions...`: create, list, configure, start and stop sessions, as WAHA.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::cluster::lifecycle as cluster;
use super::extract::{At, Json, Query};
use super::idempotency::{Answer, Key};
use super::path::SessionPath;
use super::query::Param;
use super::{field_err, AppState, BodyErrors, Errors};
use crate::error::ApiResult;
use crate::events::Me;
use crate::ids::SessionName;
use crate::reply::Render;
use crate::sessions::config::SessionConfig;
use crate::sessions::{session_404, Session, SessionRecord, Status};

mod deprecated;

pub use deprecated::{allow_of, OLD_OPERATIONS};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(deprecated::Doc::openapi())
        .routes(routes!(create_session, list_sessions))
        .routes(routes!(get_session, update_session, delete_session))
        .route("/api/sessions/{session}", post(deprecated::dispatch))
        .routes(routes!(start_session))
        .routes(routes!(stop_session))
        .routes(routes!(restart_session))
        .routes(routes!(logout_session))
        .routes(routes!(get_me))
        .routes(routes!(get_capping))
        .routes(routes!(get_timelock))
}

#[derive(Serialize, ToSchema)]
pub struct EngineInfo {
    #[schema(example = "LOCAL")]
    engine: String,
}

#[derive(Serialize, ToSchema)]
pub struct Timestamps {
    /// Unix ms of the last change.
    activity: u64,
}

/// A session, as WAHA's SessionInfo. WAHA types `me` and `presence` as objects and
/// `assignedWorker` as a string: what LOCAL has none of is left out, never sent as null.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"name": "default", "status": "WORKING", "config": {}, "me": {"id": "11111111111@c.us", "pushName": "default"}, "engine": {"engine": "LOCAL"}, "timestamps": {"activity": 1763769600000u64}}))]
pub struct SessionInfo {
    name: String,
    status: Status,
    config: SessionConfig,
    /// The account; left out while the session is not WORKING.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Me)]
    me: Option<Me>,
    engine: EngineInfo,
    timestamps: Timestamps,
}

fn info(state: &AppState, s: &Session) -> SessionInfo {
    info_of(&state.registry.environment.engine, &s.record())
}

/// How the answer to a change of a session is rendered from its new record.
fn render_info(state: &AppState, key: &Key, status: StatusCode) -> Render<SessionRecord> {
    let engine = state.registry.environment.engine.clone();
    key.render(status, move |rec: &SessionRecord| info_of(&engine, rec))
}

fn info_of(engine: &str, rec: &SessionRecord) -> SessionInfo {
    SessionInfo {
        name: rec.name.clone(),
        status: rec.status,
        config: rec.config.masked(),
        me: (rec.status == Status::Working).then(|| rec.me.clone()),
        engine: EngineInfo {
            engine: engine.to_owned(),
        },
        timestamps: Timestamps {
            activity: rec.activity,
        },
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "default", "start": true, "config": {"webhooks": [{"url": "http://127.0.0.1:8000/webhook", "events": ["*"]}]}}))]
pub struct CreateSession {
    /// Defaults to `default`.
    #[schema(pattern = "^[a-zA-Z0-9_-]{1,54}$")]
    name: Option<String>,
    /// Start at once (default true).
    start: Option<bool>,
    #[serde(default, deserialize_with = "crate::api::extract::object")]
    config: Option<SessionConfig>,
}

/// Create a session (started at once unless `start` is false).
#[utoipa::path(post, path = "/api/sessions", tag = "Sessions", request_body = CreateSession,
    responses((status = 201, body = SessionInfo), Errors, BodyErrors))]
async fn create_session(
    State(state): State<AppState>,
    key: Key,
    Json(b): Json<CreateSession>,
) -> ApiResult<Answer> {
    let name = SessionName::parse(b.name.as_deref().unwrap_or("default"))
        .map_err(|e| field_err("name", e))?;
    let render = render_info(&state, &key, StatusCode::CREATED);
    let (config, start) = (b.config.unwrap_or_default(), b.start.unwrap_or(true));
    let reply = cluster::create(&state, name.clone(), config, start, render).await?;
    if let Key(Some(keyed)) = &key {
        state.idempotency.created(keyed, &name);
    }
    Ok(Answer(reply))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Include stopped sessions: `true` (or empty) or `false`.
    #[param(value_type = Option<String>, pattern = "^(true|false)?$")]
    #[serde(default)]
    all: Param<bool>,
}

/// The sessions (stopped ones only with `all=true`).
#[utoipa::path(get, path = "/api/sessions", tag = "Sessions", params(ListQuery),
    responses((status = 200, body = Vec<SessionInfo>), Errors))]
async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let all = q.all.value("all")?.unwrap_or(false);
    let out: Vec<SessionInfo> = state
        .registry
        .list()
        .iter()
        .filter(|s| all || s.status() != Status::Stopped)
        .map(|s| info(&state, s))
        .collect();
    super::cluster::list_all(&state, &headers, &uri, out).await
}

/// The session named `name`; 404 `session_not_found` (the sessions API's own answer).
fn existing(state: &AppState, name: &SessionName) -> ApiResult<std::sync::Arc<Session>> {
    state.registry.get(name).ok_or_else(|| session_404(name))
}

/// One session.
#[utoipa::path(get, path = "/api/sessions/{session}", tag = "Sessions", params(SessionPath),
    responses((status = 200, body = SessionInfo), Errors))]
async fn get_session(
    State(state): State<AppState>,
    name: SessionName,
) -> ApiResult<Json<SessionInfo>> {
    let s = existing(&state, &name)?;
    Ok(Json(info(&state, &s)))
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateSession {
    #[serde(default, deserialize_with = "crate::api::extract::object")]
    config: Option<SessionConfig>,
}

/// Replace the session's config; a running session keeps running.
#[utoipa::path(put, path = "/api/sessions/{session}", tag = "Sessions", params(SessionPath), request_body = UpdateSession,
    responses((status = 200, body = SessionInfo), Errors, BodyErrors))]
async fn update_session(
    State(state): State<AppState>,
    key: Key,
    At(name, Json(b)): At<SessionName, Json<UpdateSession>>,
) -> ApiResult<Answer> {
    let render = render_info(&state, &key, StatusCode::OK);
    let config = b.config.unwrap_or_default();
    Ok(Answer(
        cluster::update(&state, &name, config, render).await?,
    ))
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true}))]
pub struct Deleted {
    success: bool,
}

/// Delete the session and its store (groups, events, pending deliveries). Idempotent.
#[utoipa::path(delete, path = "/api/sessions/{session}", tag = "Sessions", params(SessionPath),
    responses((status = 200, body = Deleted), Errors))]
async fn delete_session(
    State(state): State<AppState>,
    name: SessionName,
) -> ApiResult<Json<Deleted>> {
    cluster::delete(&state, &name).await?;
    Ok(Json(Deleted { success: true }))
}

async fn transition(
    state: &AppState,
    name: &SessionName,
    key: Key,
    path: &[Status],
) -> ApiResult<Answer> {
    let render = render_info(state, &key, StatusCode::CREATED);
    Ok(Answer(state.registry.transition(name, path, render).await?))
}

/// Start the session (LOCAL: STARTING, then WORKING at once).
#[utoipa::path(post, path = "/api/sessions/{session}/start", tag = "Sessions", params(SessionPath),
    responses((status = 201, body = SessionInfo), Errors))]
async fn start_session(
    State(state): State<AppState>,
    name: SessionName,
    key: Key,
) -> ApiResult<Answer> {
    transition(&state, &name, key, &[Status::Starting, Status::Working]).await
}

/// Stop the session.
#[utoipa::path(post, path = "/api/sessions/{session}/stop", tag = "Sessions", params(SessionPath),
    responses((status = 201, body = SessionInfo), Errors))]
async fn stop_session(
    State(state): State<AppState>,
    name: SessionName,
    key: Key,
) -> ApiResult<Answer> {
    transition(&state, &name, key, &[Status::Stopped]).await
}

/// Restart the session.
#[utoipa::path(post, path = "/api/sessions/{session}/restart", tag = "Sessions", params(SessionPath),
    responses((status = 201, body = SessionInfo), Errors))]
async fn restart_session(
    State(state): State<AppState>,
    name: SessionName,
    key: Key,
) -> ApiResult<Answer> {
    transition(
        &state,
        &name,
        key,
        &[Status::Stopped, Status::Starting, Status::Working],
    )
    .await
}

/// Log out (LOCAL has no phone to unlink: the session restarts and keeps its groups).
#[utoipa::path(post, path = "/api/sessions/{session}/logout", tag = "Sessions", params(SessionPath),
    responses((status = 201, body = SessionInfo), Errors))]
async fn logout_session(
    State(state): State<AppState>,
    name: SessionName,
    key: Key,
) -> ApiResult<Answer> {
    transition(
        &state,
        &name,
        key,
        &[Status::Stopped, Status::Starting, Status::Working],
    )
    .await
}

/// The session's account, or null when it is not WORKING.
#[utoipa::path(get, path = "/api/sessions/{session}/me", tag = "Sessions", params(SessionPath),
    responses((status = 200, body = Option<Me>), Errors))]
async fn get_me(State(state): State<AppState>, name: SessionName) -> ApiResult<Json<Option<Me>>> {
    let s = existing(&state, &name)?;
    let rec = s.record();
    Ok(Json(
        (rec.status == Status::Working).then(|| rec.me.clone()),
    ))
}

/// WAHA's MessageCappingData: the account's per-cycle quota of messages to new chats.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"cappingStatus": "NONE", "totalQuota": -1, "usedQuota": 0, "cycleStart": null, "cycleEnd": null, "mvStatus": null, "oteStatus": null}))]
pub struct MessageCapping {
    /// `NONE`, `FIRST_WARNING`, `SECOND_WARNING` or `CAPPED` (an open set, as WAHA says).
    #[schema(example = "NONE")]
    capping_status: &'static str,
    /// New-chat messages allowed in the cycle; -1: no cap.
    total_quota: i64,
    used_quota: u64,
    /// Unix seconds; null: no cycle.
    #[schema(required = true)]
    cycle_start: Option<u64>,
    #[schema(required = true)]
    cycle_end: Option<u64>,
    /// Meta Verified status; null: unknown.
    #[schema(required = true)]
    mv_status: Option<String>,
    /// One-time engagement status; null: unknown.
    #[schema(required = true)]
    ote_status: Option<String>,
}

/// LOCAL's truth: no WhatsApp behind it, so no quota and no cycle.
const NO_CAPPING: MessageCapping = MessageCapping {
    capping_status: "NONE",
    total_quota: -1,
    used_quota: 0,
    cycle_start: None,
    cycle_end: None,
    mv_status: None,
    ote_status: None,
};

/// The account's new-chat message capping (LOCAL: never capped). 422 while not WORKING.
#[utoipa::path(get, path = "/api/sessions/{session}/capping", tag = "Sessions", params(SessionPath),
    responses((status = 200, body = MessageCapping), Errors))]
async fn get_capping(
    State(state): State<AppState>,
    name: SessionName,
) -> ApiResult<Json<MessageCapping>> {
    existing(&state, &name)?.require_working()?;
    Ok(Json(NO_CAPPING))
}

/// WAHA's ReachoutTimelockData: whether WhatsApp keeps the account from messaging new contacts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"enforcementType": "DEFAULT", "isActive": false, "timeEnforcementEnds": null}))]
pub struct ReachoutTimelock {
    /// WhatsApp's enforcement type (an open set); `DEFAULT`: no restriction.
    #[schema(example = "DEFAULT")]
    enforcement_type: &'static str,
    is_active: bool,
    /// Unix seconds when the enforcement ends; null: none.
    #[schema(required = true)]
    time_enforcement_ends: Option<u64>,
}

/// The account's reachout timelock (LOCAL: never locked). 422 while not WORKING.
#[utoipa::path(get, path = "/api/sessions/{session}/timelock", tag = "Sessions", params(SessionPath),
    responses((status = 200, body = ReachoutTimelock), Errors))]
async fn get_timelock(
    State(state): State<AppState>,
    name: SessionName,
) -> ApiResult<Json<ReachoutTimelock>> {
    existing(&state, &name)?.require_working()?;
    Ok(Json(ReachoutTimelock {
        enforcement_type: "DEFAULT",
        is_active: false,
        time_enforcement_ends: None,
    }))
}
