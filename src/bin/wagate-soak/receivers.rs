//! The webhook receivers: one server in this process, one path per session, failing a share of
//! requests on purpose and counting every successful delivery per event id, so that the checks
//! can tell a missing or repeated delivery from a retried one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::Rng;
use serde_json::Value;

/// What the receivers saw, per session: successful deliveries per event id, and failures injected.
#[derive(Default)]
pub struct Seen {
    pub ok: HashMap<String, HashMap<String, u32>>,
    pub injected: u64,
    pub requests: u64,
}

pub type Shared = Arc<(Mutex<Seen>, u32)>;

/// Starts the receivers on a free port; answers what they see and their address.
pub async fn start(fail_percent: u32) -> Result<(Shared, SocketAddr), String> {
    let shared: Shared = Arc::new((Mutex::new(Seen::default()), fail_percent));
    let app = axum::Router::new()
        .route("/hook/{session}", axum::routing::post(receive))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let hooks: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((shared, hooks))
}

async fn receive(
    State(shared): State<Shared>,
    Path(session): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let (seen, fail_percent) = &*shared;
    let fail = rand::thread_rng().gen_range(0..100) < *fail_percent;
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    seen.requests += 1;
    if fail {
        seen.injected += 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    *seen.ok.entry(session).or_default().entry(id).or_default() += 1;
    StatusCode::OK
}
