//! WAHA's deprecated `POST /api/sessions/start`, `/stop` and `/logout`, the session's name in
//! the body. Older WAHA clients still call them.
//!
//! They are served from the POST of `/api/sessions/{session}`, not from routes of their own:
//! a static `/api/sessions/start` would take `GET`, `PUT` and `DELETE /api/sessions/start`
//! away from a session named `start`. Any other name there answers 405, as before.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header::ALLOW;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{existing, render_info, SessionInfo};
use crate::api::cluster::lifecycle as cluster;
use crate::api::extract::Json;
use crate::api::idempotency::{Answer, Key};
use crate::api::{field_err, AppState, BodyErrors, Errors};
use crate::error::{ApiError, ApiResult};
use crate::ids::SessionName;
use crate::sessions::config::SessionConfig;
use crate::sessions::Status;

/// The operations of WAHA's old API, documented at their own paths.
#[derive(utoipa::OpenApi)]
#[openapi(paths(start, stop, logout))]
pub struct Doc;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "old-api", "config": {"metadata": {"team": "bots"}}}))]
pub struct SessionStartDeprecatedRequest {
    /// The session's name.
    #[schema(pattern = "^[a-zA-Z0-9_-]{1,54}$")]
    name: String,
    #[serde(default, deserialize_with = "crate::api::extract::object")]
    config: Option<SessionConfig>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "old-api", "logout": false}))]
pub struct SessionStopDeprecatedRequest {
    /// The session's name.
    #[schema(pattern = "^[a-zA-Z0-9_-]{1,54}$")]
    name: String,
    /// Also log out, which in WAHA's old API deletes the session (its store and groups).
    #[serde(default)]
    logout: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "old-api"}))]
pub struct SessionLogoutDeprecatedRequest {
    /// The session's name.
    #[schema(pattern = "^[a-zA-Z0-9_-]{1,54}$")]
    name: String,
}

/// The names under `/api/sessions/` whose POST is one of WAHA's old operations.
pub const OLD_OPERATIONS: [&str; 3] = ["start", "stop", "logout"];

/// What `/api/sessions/{session}` answers for a session of any other name.
const SESSION_METHODS: &str = "GET,HEAD,PUT,DELETE";

/// The methods `/api/sessions/{name}` allows, for a 405 there: the router's own list has POST,
/// which only the three old operations answer.
pub fn allow_of(path: &str) -> Option<&'static str> {
    let name = path.strip_prefix("/api/sessions/")?;
    let plain = !name.is_empty() && !name.contains('/');
    (plain && !OLD_OPERATIONS.contains(&name)).then_some(SESSION_METHODS)
}

/// POST on `/api/sessions/{session}`: `start`, `stop` and `logout` are WAHA's old operations.
pub(super) async fn dispatch(
    State(state): State<AppState>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    answer(&state, &path, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn answer(state: &AppState, path: &str, req: Request) -> ApiResult<Response> {
    match path {
        "start" => {
            let Json(b) = Json::<SessionStartDeprecatedRequest>::from_request(req, state).await?;
            Ok(start_session(state, b).await?.into_response())
        }
        "stop" => {
            let Json(b) = Json::<SessionStopDeprecatedRequest>::from_request(req, state).await?;
            stop_session(state, b).await
        }
        "logout" => {
            let Json(b) = Json::<SessionLogoutDeprecatedRequest>::from_request(req, state).await?;
            delete(state, &b.name).await
        }
        _ => {
            let refused =
                ApiError::MethodNotAllowed(format!("POST is not allowed on /api/sessions/{path}"));
            Ok(([(ALLOW, SESSION_METHODS)], refused).into_response())
        }
    }
}

/// How these answers are rendered. An `Idempotency-Key` on them is kept by the middleware
/// after the answer (under the scope of the path's name), not with the change: their changes
/// are several commits, and the session they act on is named by the body.
fn unkept(
    state: &AppState,
    status: StatusCode,
) -> crate::reply::Render<crate::sessions::SessionRecord> {
    render_info(state, &Key(None), status)
}

fn name_of(text: &str) -> ApiResult<SessionName> {
    SessionName::parse(text).map_err(|e| field_err("name", e))
}

/// Upsert and start a session (WAHA's old API).
///
/// Creates the session when it is missing, or replaces its config when one is given, and
/// starts it. 422 `session_exists` when it is already running, as WAHA.
#[utoipa::path(post, path = "/api/sessions/start", tag = "Sessions", operation_id = "start_session_deprecated", request_body = SessionStartDeprecatedRequest,
    responses((status = 201, body = SessionInfo), Errors, BodyErrors))]
#[allow(dead_code)]
#[deprecated = "use POST /api/sessions and POST /api/sessions/{session}/start"]
async fn start() {}

async fn start_session(state: &AppState, b: SessionStartDeprecatedRequest) -> ApiResult<Answer> {
    let name = name_of(&b.name)?;
    let render = unkept(state, StatusCode::CREATED);
    let Ok(session) = existing(state, &name) else {
        let config = b.config.unwrap_or_default();
        return Ok(Answer(
            cluster::create(state, name, config, true, render).await?,
        ));
    };
    if matches!(session.status(), Status::Starting | Status::Working) {
        return Err(ApiError::SessionExists(name.to_string()));
    }
    if let Some(config) = b.config {
        let render = unkept(state, StatusCode::OK);
        cluster::update(state, &name, config, render).await?;
    }
    let path = [Status::Starting, Status::Working];
    Ok(Answer(
        state.registry.transition(&name, &path, render).await?,
    ))
}

/// Stop a session, and delete it with `logout: true` (WAHA's old API).
///
/// With `logout: true` the session is stopped and deleted with its store and groups, as WAHA's
/// old API removed it entirely. A missing session is nothing to stop. 201 with an empty body,
/// as WAHA.
#[utoipa::path(post, path = "/api/sessions/stop", tag = "Sessions", operation_id = "stop_session_deprecated", request_body = SessionStopDeprecatedRequest,
    responses((status = 201, description = "Stopped (or deleted); no body"), Errors, BodyErrors))]
#[allow(dead_code)]
#[deprecated = "use POST /api/sessions/{session}/stop or DELETE /api/sessions/{session}"]
async fn stop() {}

async fn stop_session(state: &AppState, b: SessionStopDeprecatedRequest) -> ApiResult<Response> {
    if b.logout.unwrap_or(false) {
        return delete(state, &b.name).await;
    }
    let name = name_of(&b.name)?;
    if let Ok(session) = existing(state, &name) {
        if session.status() != Status::Stopped {
            let render = unkept(state, StatusCode::CREATED);
            state
                .registry
                .transition(&name, &[Status::Stopped], render)
                .await?;
        }
    }
    Ok(StatusCode::CREATED.into_response())
}

/// Stop and delete a session (WAHA's old API).
///
/// The session goes with its store and its groups. Idempotent. 201 with an empty body, as WAHA.
#[utoipa::path(post, path = "/api/sessions/logout", tag = "Sessions", operation_id = "logout_session_deprecated", request_body = SessionLogoutDeprecatedRequest,
    responses((status = 201, description = "Deleted; no body"), Errors, BodyErrors))]
#[allow(dead_code)]
#[deprecated = "use DELETE /api/sessions/{session}"]
async fn logout() {}

async fn delete(state: &AppState, name: &str) -> ApiResult<Response> {
    let name = name_of(name)?;
    cluster::delete(state, &name).await?;
    Ok(StatusCode::CREATED.into_response())
}
