//! Webhook delivery: signing, retry schedules, and the durable dispatcher.

pub mod backlog;
pub mod client;
pub mod dispatcher;
pub mod queue;
pub mod retry;
pub mod sign;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::ids::SessionName;
use crate::sessions::{now_ms, Registry};
use client::{HttpTransport, Transport};
use dispatcher::{Clock, Dispatcher};

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub timeout_seconds: u64,
    pub concurrency: usize,
    /// Events older than this (ms) are pruned unless a pending or dead delivery needs them; 0 keeps all.
    pub retention_ms: u64,
    /// How often old events are pruned (10 minutes but in tests).
    pub prune_every: Duration,
    /// Networks no delivery may reach, whatever its host's name resolves to at the time.
    pub deny_networks: Arc<crate::networks::DenyList>,
}

/// A handle on the running dispatcher.
#[derive(Clone, Default)]
pub struct Handle {
    /// Set while the dispatcher's task lives; cleared when it ends or panics.
    running: Arc<AtomicBool>,
    /// The dispatcher's task, for `stop`.
    task: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Handle {
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Ends the dispatcher and with it every worker and the attempts in flight: their jobs stay
    /// pending (a job leaves only once its delivery is confirmed), for the next start.
    pub async fn stop(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            // Cancelled: the dispatcher, its workers and their attempts are dropped by now.
            let _ = task.await;
        }
    }
}

/// Clears `running` when the dispatcher's task ends, whether it returns or panics.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Starts the dispatcher with the real HTTP client, and the pruning of old events.
pub fn spawn(
    registry: Arc<Registry>,
    wake: UnboundedReceiver<SessionName>,
    cfg: DispatchConfig,
) -> Result<Handle, reqwest::Error> {
    let timeout = Duration::from_secs(cfg.timeout_seconds.max(1));
    let transport = HttpTransport::new(timeout, cfg.deny_networks.clone())?;
    // Always: kept idempotent answers expire even when events are kept for ever (retention 0).
    tokio::spawn(prune_loop(
        Arc::downgrade(&registry),
        cfg.retention_ms,
        cfg.prune_every,
    ));
    Ok(spawn_with(
        registry,
        wake,
        Arc::new(transport),
        cfg.concurrency,
    ))
}

/// Starts the dispatcher over any transport.
pub fn spawn_with(
    registry: Arc<Registry>,
    wake: UnboundedReceiver<SessionName>,
    transport: Arc<dyn Transport>,
    concurrency: usize,
) -> Handle {
    let handle = Handle::default();
    handle.running.store(true, Ordering::Relaxed);
    let running = Running(handle.running.clone());
    let dispatcher = Dispatcher::new(registry, transport, Clock::new(), concurrency.max(1));
    let task = tokio::spawn(async move {
        let _running = running;
        dispatcher.run(wake).await;
    });
    *handle.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    handle
}

/// Holds the registry weakly: it ends with the gateway.
async fn prune_loop(registry: std::sync::Weak<Registry>, retention_ms: u64, every: Duration) {
    let mut tick = tokio::time::interval(every);
    // A prune that took longer than `every` is followed by the next one, not by a catch-up burst.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(r) = registry.upgrade() else {
            return;
        };
        match tokio::task::spawn_blocking(move || dispatcher::prune(&r, retention_ms, now_ms()))
            .await
        {
            Ok(Ok((0, 0))) => {}
            Ok(Ok((events, answers))) => tracing::info!(
                "pruned {events} events older than the retention window, {answers} expired idempotent answers"
            ),
            Ok(Err(e)) => tracing::error!("pruning old events: {e}"),
            Err(e) => tracing::error!("pruning old events: {e}"),
        }
    }
}
