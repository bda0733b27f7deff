//! The group changes running to their end: a change runs in a task of its own (a client that
//! hangs up cannot cut it in half), and a shutdown waits for those tasks before the process ends.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tracing::Instrument;

use crate::error::{ApiError, ApiResult};

/// How many changes are running, and a wake-up for whoever waits for none.
#[derive(Default)]
pub struct Running {
    count: AtomicUsize,
    idle: Notify,
}

/// Counts one change for as long as it lives, however its task ends.
struct Counted(Arc<Running>);

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Running {
    /// Runs `change` to its end even when the caller's future is dropped; counted until it ends.
    pub async fn detached<T: Send + 'static>(
        self: &Arc<Self>,
        change: impl Future<Output = ApiResult<T>> + Send + 'static,
    ) -> ApiResult<T> {
        self.count.fetch_add(1, Ordering::AcqRel);
        let counted = Counted(self.clone());
        // The change logs in the span of the request that asked for it (its request id).
        let change = async move {
            let _counted = counted;
            change.await
        };
        tokio::spawn(change.in_current_span())
            .await
            .map_err(ApiError::internal)?
    }

    /// Waits until no change is running.
    pub async fn settled(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn settled_waits_for_a_change_whose_caller_went_away() {
        let running = Arc::new(Running::default());
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let r = running.clone();
        let caller = tokio::spawn(async move {
            r.detached(async move {
                let _ = wait.await;
                Ok(())
            })
            .await
        });
        while running.count() == 0 {
            tokio::task::yield_now().await;
        }
        caller.abort();
        let _ = caller.await;
        assert_eq!(running.count(), 1, "the change outlives its caller");
        let settled = tokio::spawn({
            let r = running.clone();
            async move { r.settled().await }
        });
        tokio::task::yield_now().await;
        assert!(
            !settled.is_finished(),
            "settled returned with a change running"
        );
        let _ = go.send(());
        tokio::time::timeout(Duration::from_secs(5), settled)
            .await
            .expect("settled after the change ended")
            .expect("task");
        assert_eq!(running.count(), 0);
    }
}
