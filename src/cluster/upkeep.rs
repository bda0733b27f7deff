//! The node's background work in the cluster: its entry in `wagate_nodes`, refreshed every few
//! seconds, and the placement of the sessions it already held when it started.

use std::sync::Arc;
use std::time::Duration;

use super::Cluster;
use crate::sessions::Registry;

/// How often a node refreshes its entry (its `lastSeen`).
pub const REFRESH: Duration = Duration::from_secs(3);

/// Announces the node at once, places the sessions it holds, then refreshes its entry every
/// `REFRESH` until the process ends.
pub fn spawn_upkeep(cluster: Arc<Cluster>, registry: Arc<Registry>) {
    tokio::spawn(async move {
        // A failure is logged by `announce`; the next refresh tries again.
        let _ = cluster.announce(registry.list().len()).await;
        place_local(&cluster, &registry).await;
        let mut every = tokio::time::interval(REFRESH);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let _ = cluster.announce(registry.list().len()).await;
        }
    });
}

/// The sessions this node held before it started (or before cluster mode was turned on) are
/// placed here, unless another node holds the name: then the conflict is logged, and requests
/// that reach this node for it are still answered here.
async fn place_local(cluster: &Cluster, registry: &Registry) {
    for session in registry.list() {
        let name = &session.name;
        let account = session.me_id();
        let placed = match cluster.owner(name).await {
            Ok(p) => p,
            Err(_) => continue,
        };
        let result = match placed {
            Some(p) if p.node != cluster.node.as_str() => {
                tracing::warn!(session = %name, owner = %p.node, "cluster: a session of this node's store is placed on another node; requests through other nodes go there");
                continue;
            }
            Some(p) if p.account == account.as_str() => Ok(()),
            Some(_) => cluster.moved_account(name, &account).await,
            None => cluster.claim(name, &account).await,
        };
        let claimed = match result {
            Ok(()) => cluster.claim_account(name, &account).await,
            Err(e) => Err(e),
        };
        if let Err(e) = claimed {
            tracing::warn!(session = %name, error = %e, "cluster: cannot place a session of this node");
        }
    }
}
