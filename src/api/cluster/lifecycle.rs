//! Creating, reconfiguring and deleting a session in cluster mode: the name and account are
//! claimed in NATS before the local store is touched and freed again if the local change
//! fails, so that two nodes can never both create one name or give one account twice. On a
//! single node these are the registry's own calls.

use crate::error::ApiResult;
use crate::ids::{ContactId, SessionName};
use crate::reply::{Render, Reply};
use crate::sessions::config::SessionConfig;
use crate::sessions::SessionRecord;

use super::super::AppState;
use super::Joined;

/// The account a session of `name` with `config` acts as: its configured one, else the one
/// derived from its name (as the registry decides it). 400 naming the field for a bad config.
fn account_of(name: &SessionName, config: &SessionConfig) -> ApiResult<ContactId> {
    Ok(config
        .validate()?
        .unwrap_or_else(|| ContactId::derived_from(name)))
}

/// After a create or delete, the node's entry says its new count at once (not only at the
/// next refresh), so that other nodes list the session without delay.
async fn recount(state: &AppState, joined: &Joined) {
    let _ = joined.placement.announce(state.registry.list().len()).await;
}

pub async fn create(
    state: &AppState,
    name: SessionName,
    config: SessionConfig,
    start: bool,
    render: Render<SessionRecord>,
) -> ApiResult<Reply> {
    let Some(joined) = &state.cluster.joined else {
        return state.registry.create(name, config, start, render).await;
    };
    let _one = joined.lifecycle.lock().await;
    if state.registry.get(&name).is_some() {
        return Err(crate::error::ApiError::SessionExists(name.to_string()));
    }
    let account = account_of(&name, &config)?;
    joined.placement.claim(&name, &account).await?;
    let created = state
        .registry
        .create(name.clone(), config, start, render)
        .await;
    if created.is_err() {
        joined.placement.release(&name).await;
    }
    recount(state, joined).await;
    created
}

pub async fn update(
    state: &AppState,
    name: &SessionName,
    config: SessionConfig,
    render: Render<SessionRecord>,
) -> ApiResult<Reply> {
    let Some(joined) = &state.cluster.joined else {
        return state.registry.update_config(name, config, render).await;
    };
    let _one = joined.lifecycle.lock().await;
    let Some(old) = state.registry.get(name).map(|s| s.me_id()) else {
        return state.registry.update_config(name, config, render).await;
    };
    let new = account_of(name, &config)?;
    if new == old {
        return state.registry.update_config(name, config, render).await;
    }
    joined.placement.claim_account(name, &new).await?;
    let updated = state.registry.update_config(name, config, render).await;
    let (keep, free) = match &updated {
        Ok(_) => (&new, &old),
        Err(_) => (&old, &new),
    };
    if let Err(e) = joined.placement.moved_account(name, keep).await {
        tracing::warn!(session = %name, error = %e, "cluster: the session's placement keeps its old account");
    }
    joined.placement.release_account(name, free.as_str()).await;
    updated
}

pub async fn delete(state: &AppState, name: &SessionName) -> ApiResult<()> {
    let Some(joined) = &state.cluster.joined else {
        return state.registry.delete(name).await.map(|_| ());
    };
    let _one = joined.lifecycle.lock().await;
    state.registry.delete(name).await?;
    joined.placement.release(name).await;
    recount(state, joined).await;
    Ok(())
}
