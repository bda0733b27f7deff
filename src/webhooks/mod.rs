//! Webhook delivery: signing, retry schedules, and the durable dispatcher.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::ids::SessionName;
use crate::sessions::Registry;

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub timeout_seconds: u64,
    pub concurrency: usize,
}

/// A handle on the running dispatcher.
#[derive(Clone, Default)]
pub struct Handle {
    running: Arc<AtomicBool>,
}

impl Handle {
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

/// Starts the dispatcher. (Delivery itself is not built yet: wakes are drained.)
pub fn spawn(
    _registry: Arc<Registry>,
    mut wake: UnboundedReceiver<SessionName>,
    _cfg: DispatchConfig,
) -> Handle {
    let handle = Handle::default();
    handle.running.store(true, Ordering::Relaxed);
    tokio::spawn(async move { while wake.recv().await.is_some() {} });
    handle
}
