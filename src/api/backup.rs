//! `GET /api/server/export`: a backup of the running gateway, streamed as it is read; what
//! `wagate export` fetches when a gateway runs on the data dir.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, KeyErrors};
use crate::backup::{export_running, BackupError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export))
}

/// Every store of the gateway as JSON lines (`wagate import` reads them back), each store
/// copied between two commit rounds. Commits wait while one session's store is copied. A
/// file without its last line (`{"end":…}`) was cut short and is refused by an import.
#[utoipa::path(get, path = "/api/server/export", tag = "Server",
    responses(
        (status = 200, description = "The export, as JSON lines", content_type = "application/x-ndjson", body = String),
        KeyErrors
    ))]
async fn export(State(state): State<AppState>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let registry = state.registry.clone();
    tokio::spawn(async move {
        let sent = export_running(&registry, |chunk| {
            let tx = tx.clone();
            async move {
                tx.send(chunk)
                    .await
                    .map_err(|_| BackupError::Refused("the client went away".into()))
            }
        })
        .await;
        match sent {
            Ok(totals) => tracing::info!(
                stores = totals.stores,
                entries = totals.entries,
                "export sent"
            ),
            Err(e) => tracing::warn!("export ended early: {e}"),
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(chunk), rx))
    });
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"wagate-export.ndjson\"",
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}
