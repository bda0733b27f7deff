//! `GET /metrics` (Prometheus text format) and the layer that times every request by its route
//! template. Names, labels and buckets: `crate::metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;
use crate::sessions::now_ms;

/// The exposition: the delivery-log and session gauges read from the stores now, then every
/// series.
pub async fn exposition(State(state): State<AppState>) -> Response {
    let Some(handle) = crate::metrics::handle() else {
        return ApiError::Unavailable("metrics are not recorded in this process".into())
            .into_response();
    };
    let registry = state.registry.clone();
    let read = tokio::task::spawn_blocking(move || {
        crate::webhooks::backlog::record(&registry, now_ms());
    });
    if let Err(e) = read.await {
        return ApiError::internal(format!("reading the delivery logs: {e}")).into_response();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Counts and times each request under its route's template (`unmatched` for no route).
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    crate::metrics::http_request(
        method.as_str(),
        route,
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}
