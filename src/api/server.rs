//! Server endpoints: ping, health, version, status.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::Json;
use super::{AppState, KeyErrors};
use crate::events::{Environment, Worker};
use crate::sessions::now_ms;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ping))
        .routes(routes!(health))
        .routes(routes!(version))
        .routes(routes!(status))
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"message": "pong"}))]
pub struct Pong {
    message: String,
}

/// Liveness: always `pong`, no key needed.
#[utoipa::path(get, path = "/ping", tag = "Server", security(()), responses((status = 200, body = Pong)))]
async fn ping() -> Json<Pong> {
    Json(Pong {
        message: "pong".into(),
    })
}

/// Health: the stores answer and the dispatcher runs; 503 when a check fails.
#[utoipa::path(get, path = "/health", tag = "Server",
    responses((status = 200, body = Object, example = json!({"status": "ok", "store": "ok", "dispatcher": "ok", "sessions": 1})),
              (status = 503, body = Object), KeyErrors))]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let sessions = state.registry.list();
    // In memory: a store that failed a write says so until it has recovered (no I/O here).
    let store_ok = sessions.iter().all(|s| !s.store.is_failed());
    let dispatcher_ok = state.dispatcher.is_running();
    let ok = store_ok && dispatcher_ok;
    let word = |b: bool| if b { "ok" } else { "failing" };
    let body = json!({"status": word(ok), "store": word(store_ok), "dispatcher": word(dispatcher_ok), "sessions": sessions.len()});
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}

/// The server's version and environment (the `environment` object of every webhook).
#[utoipa::path(get, path = "/api/server/version", tag = "Server", responses((status = 200, body = Environment), KeyErrors))]
async fn version(State(state): State<AppState>) -> Json<Environment> {
    Json(state.registry.environment.clone())
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"startTimestamp": 1763769600000u64, "uptime": 12000, "worker": {"id": "host-1"}}))]
pub struct ServerStatus {
    /// Unix ms.
    start_timestamp: u64,
    /// Milliseconds.
    uptime: u64,
    worker: Worker,
}

/// When the server started and how long it has run.
#[utoipa::path(get, path = "/api/server/status", tag = "Server", responses((status = 200, body = ServerStatus), KeyErrors))]
async fn status(State(state): State<AppState>) -> Json<ServerStatus> {
    Json(ServerStatus {
        start_timestamp: state.started_ms,
        uptime: now_ms().saturating_sub(state.started_ms),
        worker: state.registry.environment.worker.clone(),
    })
}
