//! Cluster mode (contract §7): nodes that share a NATS JetStream system form one gateway. This
//! module is placement only: which node owns a session, names and accounts unique cluster-wide
//! (create-only puts in KV buckets, so JetStream decides a race, not us), and which nodes exist.
//! Routing requests to an owner is HTTP and lives in `crate::api::cluster`.

pub mod config;
pub mod log;
mod upkeep;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids::{ContactId, SessionName};
pub use config::{ClusterConfig, NodeId};
pub use upkeep::spawn_upkeep;

/// Session name → where it lives.
const SESSIONS: &str = "wagate_sessions";
/// Account (`me.id`, `@` written `_`) → session name.
const ACCOUNTS: &str = "wagate_accounts";
/// Node id → `NodeEntry`.
const NODES: &str = "wagate_nodes";
/// Invite code → group id, for every group of the cluster.
const INVITES: &str = "wagate_invites";

/// Where a session lives: the value of its key in `wagate_sessions`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Placement {
    pub node: String,
    pub account: String,
}

/// What a node says of itself in `wagate_nodes`, every few seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeEntry {
    /// Its advertise URL.
    pub url: String,
    /// Unix ms of its last refresh.
    pub last_seen: u64,
    /// How many sessions it held then.
    pub sessions: usize,
}

/// How long a node's entry read for forwarding is used before it is read again: a node that
/// comes back on another URL is reached there within this time.
const NODE_TTL: Duration = Duration::from_secs(3);

/// This node's membership: its id, its URL and the three buckets.
pub struct Cluster {
    pub node: NodeId,
    pub advertise: String,
    sessions: kv::Store,
    accounts: kv::Store,
    nodes: kv::Store,
    invites: kv::Store,
    /// The per-group log (stream `WAGATE_GROUPS`).
    pub log: log::GroupLog,
    /// Node entries read for forwarding, with when: one NATS read fewer per forwarded request
    /// (measured: docs/cluster.md). A std lock: held only to copy one entry, never across an await.
    seen: Mutex<HashMap<String, (NodeEntry, Instant)>>,
}

/// A KV failure as the client sees it: 503 `unavailable`, with the detail in the log.
fn nats_down(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "cluster: {what} failed");
    ApiError::Unavailable(format!(
        "the cluster's NATS system did not answer ({what}); retry later"
    ))
}

/// A read of the buckets, waiting out a NATS system that does not answer (`log::patiently`);
/// then 503 `unavailable`.
async fn patiently<T, E, F, Fut>(what: &str, read: F) -> ApiResult<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    (log::patiently(what, |_| true, read).await).map_err(|e| nats_down(what, e))
}

/// The key of an account in `wagate_accounts`: KV keys allow no `@`.
fn account_key(account: &ContactId) -> String {
    account.to_string().replace('@', "_")
}

fn already_exists(e: &kv::CreateError) -> bool {
    e.kind() == kv::CreateErrorKind::AlreadyExists
}

impl Cluster {
    /// Connects to NATS and opens (or creates) the buckets. Fails with a message naming
    /// `WAGATE_NATS_URL` when NATS cannot be reached or has no JetStream.
    pub async fn join(config: &ClusterConfig) -> Result<Self, String> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("wagate {}", config.node))
            .connection_timeout(Duration::from_secs(5))
            .connect(config.servers.clone())
            .await
            .map_err(|e| format!("WAGATE_NATS_URL: cannot connect to NATS: {e}"))?;
        let js = jetstream::new(client);
        Ok(Self {
            node: config.node.clone(),
            advertise: config.advertise.clone(),
            sessions: bucket(&js, SESSIONS, config.replicas).await?,
            accounts: bucket(&js, ACCOUNTS, config.replicas).await?,
            nodes: bucket(&js, NODES, config.replicas).await?,
            invites: bucket(&js, INVITES, config.replicas).await?,
            log: log::GroupLog::open(js.clone(), config.replicas).await?,
            seen: Mutex::default(),
        })
    }

    /// Where `name` lives, if any node holds it.
    pub async fn owner(&self, name: &SessionName) -> ApiResult<Option<Placement>> {
        let raw = patiently("owner", || self.sessions.get(name.as_str())).await?;
        Ok(raw.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// What node `id` last said of itself.
    pub async fn node(&self, id: &str) -> ApiResult<Option<NodeEntry>> {
        let raw = patiently("node", || self.nodes.get(id)).await?;
        Ok(raw.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// What node `id` said of itself at most `NODE_TTL` ago.
    pub async fn node_recent(&self, id: &str) -> ApiResult<Option<NodeEntry>> {
        let hit = (self.seen().get(id))
            .filter(|(_, at)| at.elapsed() < NODE_TTL)
            .map(|(entry, _)| entry.clone());
        if hit.is_some() {
            return Ok(hit);
        }
        let entry = self.node(id).await?;
        if let Some(e) = &entry {
            self.seen()
                .insert(id.to_owned(), (e.clone(), Instant::now()));
        }
        Ok(entry)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, (NodeEntry, Instant)>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every node that ever joined, by id.
    pub async fn nodes(&self) -> ApiResult<Vec<(String, NodeEntry)>> {
        // The bucket's subjects, from its stream's info: unlike `keys()`, no consumer is
        // created, so the list answers as soon as the stream has a leader (a NATS cluster
        // that lost a server elects one in seconds; a consumer waits for more).
        let prefix = format!("$KV.{NODES}.");
        let keys: Vec<String> = patiently("nodes", || async {
            let info = (self
                .nodes
                .stream
                .info_with_subjects(format!("{prefix}>"))
                .await)
                .map_err(|e| e.to_string())?;
            let subjects: Vec<(String, usize)> =
                info.try_collect().await.map_err(|e| e.to_string())?;
            let ids = subjects.into_iter();
            Ok::<_, String>(
                ids.filter_map(|(s, _)| Some(s.strip_prefix(&prefix)?.to_owned()))
                    .collect(),
            )
        })
        .await?;
        let mut out = Vec::with_capacity(keys.len());
        for id in keys {
            if let Some(entry) = self.node(&id).await? {
                out.push((id, entry));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Refreshes this node's entry in `wagate_nodes`.
    pub async fn announce(&self, sessions: usize) -> ApiResult<()> {
        let entry = NodeEntry {
            url: self.advertise.clone(),
            last_seen: crate::sessions::now_ms(),
            sessions,
        };
        let bytes = serde_json::to_vec(&entry).map_err(ApiError::internal)?;
        (self.nodes.put(self.node.as_str(), bytes.into()).await)
            .map_err(|e| nats_down("announce", e))?;
        Ok(())
    }

    /// Takes `name` and `account` for a session about to be created here: 422 `session_exists`
    /// if another node holds the name, 409 `account_in_use` if another session has the account
    /// (the answers of a single gateway). A name this node held (a create cut short) is taken
    /// over. On an error nothing stays claimed.
    pub async fn claim(&self, name: &SessionName, account: &ContactId) -> ApiResult<()> {
        let placement = Placement {
            node: self.node.to_string(),
            account: account.to_string(),
        };
        let bytes = serde_json::to_vec(&placement).map_err(ApiError::internal)?;
        match self
            .sessions
            .create(name.as_str(), bytes.clone().into())
            .await
        {
            Ok(_) => {}
            Err(e) if already_exists(&e) => match self.owner(name).await? {
                Some(p) if p.node == self.node.as_str() => {
                    (self.sessions.put(name.as_str(), bytes.into()).await)
                        .map_err(|e| nats_down("claim", e))?;
                }
                _ => return Err(ApiError::SessionExists(name.to_string())),
            },
            Err(e) => return Err(nats_down("claim", e)),
        }
        if let Err(e) = self.claim_account(name, account).await {
            self.release(name).await;
            return Err(e);
        }
        Ok(())
    }

    /// Takes `account` for session `name` (held by this node): 409 `account_in_use` when
    /// another session has it.
    pub async fn claim_account(&self, name: &SessionName, account: &ContactId) -> ApiResult<()> {
        let key = account_key(account);
        match self
            .accounts
            .create(&key, name.as_str().to_owned().into())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if already_exists(&e) => {
                let holder =
                    (self.accounts.get(&key).await).map_err(|e| nats_down("account", e))?;
                let holder = holder.map(|b| String::from_utf8_lossy(&b).into_owned());
                match holder {
                    Some(other) if other != name.as_str() => Err(ApiError::conflict(
                        ErrorCode::AccountInUse,
                        format!("config.local.me.id: {account} is already the account of session \"{other}\""),
                    )),
                    _ => Ok(()),
                }
            }
            Err(e) => Err(nats_down("claim account", e)),
        }
    }

    /// Records that session `name` (held here) now acts as `account`.
    pub async fn moved_account(&self, name: &SessionName, account: &ContactId) -> ApiResult<()> {
        let placement = Placement {
            node: self.node.to_string(),
            account: account.to_string(),
        };
        let bytes = serde_json::to_vec(&placement).map_err(ApiError::internal)?;
        (self.sessions.put(name.as_str(), bytes.into()).await)
            .map_err(|e| nats_down("move account", e))?;
        Ok(())
    }

    /// Frees `account` if session `name` holds it. A failure is logged: the entry then stays
    /// until the account is claimed by `name` again.
    pub async fn release_account(&self, name: &SessionName, account: &str) {
        let Ok(id) = ContactId::parse(account) else {
            return;
        };
        let key = account_key(&id);
        let held = match self.accounts.entry(key.clone()).await {
            Ok(Some(e)) if e.operation == kv::Operation::Put => e,
            Ok(_) => return,
            Err(e) => {
                return tracing::warn!(session = %name, %account, error = %e, "cluster: cannot read an account to free it")
            }
        };
        if held.value.as_ref() != name.as_str().as_bytes() {
            return;
        }
        if let Err(e) = self
            .accounts
            .delete_expect_revision(&key, Some(held.revision))
            .await
        {
            tracing::warn!(session = %name, %account, error = %e, "cluster: cannot free an account");
        }
    }

    /// Frees `name` and its account if this node holds them (after a delete, or a create that
    /// failed). A failure is logged: the name then stays taken until this node frees it again.
    pub async fn release(&self, name: &SessionName) {
        let held = match self.sessions.entry(name.as_str()).await {
            Ok(Some(e)) if e.operation == kv::Operation::Put => e,
            Ok(_) => return,
            Err(e) => {
                return tracing::warn!(session = %name, error = %e, "cluster: cannot read a session's placement to free it")
            }
        };
        let Ok(placement) = serde_json::from_slice::<Placement>(&held.value) else {
            return;
        };
        if placement.node != self.node.as_str() {
            return;
        }
        self.release_account(name, &placement.account).await;
        if let Err(e) = (self.sessions)
            .delete_expect_revision(name.as_str(), Some(held.revision))
            .await
        {
            tracing::warn!(session = %name, error = %e, "cluster: cannot free a session's name");
        }
    }
}

impl Cluster {
    /// The group invite code `code` leads to, on any node.
    pub async fn invite(&self, code: &str) -> Result<Option<String>, String> {
        let raw = self.invites.get(code).await.map_err(|e| e.to_string())?;
        Ok(raw.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Keeps `wagate_invites` in step with a change of group `group`: its old code forgotten,
    /// its new one (if the group still exists) leading to it.
    pub async fn reindex_invite(
        &self,
        group: &str,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<(), String> {
        if old == new {
            return Ok(());
        }
        if let Some(old) = old {
            self.invites.delete(old).await.map_err(|e| e.to_string())?;
        }
        if let Some(new) = new {
            (self.invites.put(new, group.to_owned().into()).await).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Opens bucket `name`, creating it the first time (creating it again with the same settings,
/// as two nodes starting together may, is not an error in JetStream).
async fn bucket(js: &jetstream::Context, name: &str, replicas: usize) -> Result<kv::Store, String> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: name.to_owned(),
        history: 1,
        num_replicas: replicas,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("WAGATE_NATS_URL: cannot open the KV bucket {name} (is JetStream enabled, nats-server -js?): {e}"))
}
