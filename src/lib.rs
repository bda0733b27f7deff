//! wagate: a WAHA-compatible WhatsApp session gateway. Groups live in an embedded sled store,
//! one per session; every change's events are committed with it and delivered to webhooks.

pub mod api;
pub mod backup;
pub mod cluster;
pub mod config;
pub mod error;
pub mod events;
pub mod groups;
pub mod ids;
pub mod json;
pub mod metrics;
pub mod networks;
pub mod reply;
pub mod sessions;
pub mod store;
pub mod webhooks;

use std::future::Future;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use api::{app, AppState};
pub use config::Config;

use api::Auth;
use events::{Environment, Worker};
use groups::service::GroupService;
use sessions::{now_ms, Registry};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub fn environment(config: &Config) -> Environment {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    Environment {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        engine: config.engine.clone(),
        tier: "CORE".to_owned(),
        browser: String::new(),
        platform: format!("{}/{arch}", std::env::consts::OS),
        worker: Worker {
            id: config.worker_id.clone().unwrap_or_else(config::hostname),
        },
    }
}

/// Opens the stores, applies interrupted fan-outs, starts the dispatcher: everything but the listener.
/// Returns the state and, when a key was generated, that key (to be printed once).
pub async fn open(config: &Config) -> Result<(AppState, Option<String>), StartError> {
    let mut config = config.clone();
    config.resolve_api_key();
    let mut generated = None;
    let auth = match (&config.api_key, config.no_api_key) {
        (_, true) => Auth::Open,
        (Some(k), false) if !k.is_empty() => Auth::from_key(k).map_err(StartError::Config)?,
        _ => {
            let key: String = {
                use rand::Rng;
                let mut rng = rand::thread_rng();
                (0..32)
                    .map(|_| format!("{:x}", rng.gen_range(0..16u8)))
                    .collect()
            };
            let auth = Auth::from_key(&key).map_err(StartError::Config)?;
            generated = Some(key);
            auth
        }
    };
    let global_hook = config.global_hook().map_err(StartError::Config)?;
    let cluster_config = config.cluster().map_err(StartError::Config)?;
    let deny = Arc::new(
        networks::DenyList::parse(&config.webhook_deny_networks).map_err(StartError::Config)?,
    );
    if let Some(hook) = &global_hook {
        if let Some(why) = deny
            .refuses(&hook.url, networks::DenyList::deadline())
            .await
        {
            return Err(StartError::Config(format!("WHATSAPP_HOOK_URL: {why}")));
        }
    }
    let (wake_tx, wake_rx) = tokio::sync::mpsc::unbounded_channel();
    let data_dir = config.data_dir.clone();
    let env = environment(&config);
    config
        .faults
        .set_flush_delay(std::time::Duration::from_millis(config.test_fsync_delay_ms));
    let storage = sessions::Storage {
        max_queued: config.max_queued_commits(),
        faults: config.faults.clone(),
        max_open: config.max_open_stores.max(1),
        reopen_after: config.store_reopen_events,
    };
    let registry = tokio::task::spawn_blocking(move || {
        Registry::open(&data_dir, env, global_hook, wake_tx, storage)
    })
    .await
    .map_err(|e| StartError::Config(e.to_string()))??;
    let registry = Arc::new(registry.with_denied_networks(deny.clone()));
    sessions::spawn_closer(&registry, config.event_retention_ms());
    sessions::spawn_archiver(&registry);
    let groups = GroupService::open(registry.clone(), config.test_abort_before_fanout).await?;
    let dispatcher = webhooks::spawn(
        registry.clone(),
        wake_rx,
        webhooks::DispatchConfig {
            timeout_seconds: config.webhook_timeout_seconds,
            concurrency: config.webhook_concurrency.max(1),
            retention_ms: config.event_retention_ms(),
            prune_every: config.prune_every(),
            deny_networks: deny,
        },
    )
    .map_err(|e| StartError::Config(format!("webhook client: {e}")))?;
    let idempotency = api::idempotency::Idempotency::open(
        &registry,
        config.idempotency_hours,
        config.clock.clone(),
    )?;
    let cluster = match &cluster_config {
        Some(c) => api::cluster::Node::join(c, &registry)
            .await
            .map_err(StartError::Config)?,
        None => api::cluster::Node::single(&config),
    };
    if let Some(joined) = &cluster.joined {
        groups
            .attach_cluster(joined.placement.clone())
            .await
            .map_err(StartError::Config)?;
    }
    let state = AppState::new(api::Shared {
        registry,
        groups,
        rendered: Arc::new(api::render::RenderCache::new(config.render_cache_bytes())),
        auth: Arc::new(auth),
        started: Instant::now(),
        started_ms: now_ms(),
        dispatcher,
        inflight: Arc::new(tokio::sync::Semaphore::new(config.max_inflight.max(1))),
        idempotency: Arc::new(idempotency),
        metrics_key: config.metrics_key,
        cluster,
    });
    Ok((state, generated))
}

/// How long a stop waits for the requests in progress to be answered.
const STOP_GRACE: Duration = Duration::from_secs(8);
/// Then how long for group changes whose clients went away.
const STOP_SETTLE: Duration = Duration::from_secs(1);

/// Serves `state` on an already-bound listener until `shutdown` completes, then stops as
/// contract §8 says: no new connections; the requests in progress answered (for at most
/// `STOP_GRACE`); the changes still running committed; deliveries in flight ended, their jobs
/// left pending for the next start.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (fired, stop_asked) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("stopping: no new connections; answering the requests in progress");
        let _ = fired.send(());
    };
    let stopping = state.clone();
    let serve = axum::serve(listener, app(state))
        .with_graceful_shutdown(signal)
        .into_future();
    tokio::pin!(serve);
    let grace_over = async {
        if stop_asked.await.is_ok() {
            tokio::time::sleep(STOP_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = &mut serve => served?,
        () = grace_over => tracing::warn!(
            "requests still in progress {}s after the stop signal: not waiting for them",
            STOP_GRACE.as_secs()
        ),
    }
    stop(&stopping).await;
    Ok(())
}

/// The end of a stop: changes still running (their clients went away) committed, then the
/// dispatcher ended.
async fn stop(state: &AppState) {
    let running = &state.groups.running;
    if tokio::time::timeout(STOP_SETTLE, running.settled())
        .await
        .is_err()
    {
        tracing::warn!(
            changes = running.count(),
            "group changes still running at exit: their requests were abandoned by their clients; a change that reached its store is fanned out at the next start"
        );
    }
    state.dispatcher.stop().await;
    // The next start reads the catalog instead of opening these stores.
    let registry = state.registry.clone();
    let closing = tokio::task::spawn_blocking(move || registry.close_all());
    match tokio::time::timeout(STOP_SETTLE, closing).await {
        Ok(Ok(n)) => tracing::debug!(closed = n, "stores closed"),
        _ => tracing::warn!("stores still closing at exit: the next start opens them"),
    }
    tracing::info!("stopped");
}
