//! The sessions of the gateway: name → handle (store, record), persisted in each session's
//! own store, plus the index of accounts (`me`) that makes sessions members of each other's groups.

pub mod config;
mod session;
mod stores;

pub use session::Session;
pub use stores::{prune_store, spawn_archiver, spawn_closer};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedSender;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::events::{self, Environment, Me};
use crate::ids::{ContactId, SessionName};
use crate::networks::DenyList;
use crate::reply::{Render, Reply};
use crate::store::{
    Catalog, Commit, Committer, EndpointFilter, EventRecord, Faults, OpenStores, Remember,
    SessionStore, StoreError, Work,
};
use config::{SessionConfig, WebhookConfig};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Stopped,
    Starting,
    Working,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stopped => "STOPPED",
            Status::Starting => "STARTING",
            Status::Working => "WORKING",
            Status::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusEntry {
    pub status: Status,
    /// Unix ms.
    pub timestamp: u64,
}

/// What the store keeps of a session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionRecord {
    pub name: String,
    pub config: SessionConfig,
    pub status: Status,
    pub me: Me,
    /// The last few status changes, newest last.
    pub statuses: Vec<StatusEntry>,
    /// Unix ms of the last change.
    pub activity: u64,
}

/// The id of a webhook endpoint: the first 8 bytes of sha256(url); the global one's is fixed.
pub fn endpoint_id(url: &str) -> [u8; 8] {
    let h = Sha256::digest(url.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[..8]);
    id
}
pub const GLOBAL_ENDPOINT: [u8; 8] = [0xff; 8];

struct Inner {
    sessions: BTreeMap<SessionName, Arc<Session>>,
    by_me: HashMap<ContactId, SessionName>,
}

/// All sessions of the gateway.
pub struct Registry {
    data_dir: PathBuf,
    /// A std lock: lookups are short and never await.
    inner: RwLock<Inner>,
    /// Serialises create / delete / start / stop so that two of them on one name cannot interleave.
    lifecycle: tokio::sync::Mutex<()>,
    pub environment: Environment,
    /// The global webhook from the environment: added to every session, never shown in its config.
    pub global_hook: Option<WebhookConfig>,
    /// Wakes the dispatcher for a session after a commit.
    wake: UnboundedSender<SessionName>,
    committer: Committer,
    /// The store layer's fault seam, given to every store opened.
    faults: Faults,
    /// Held (shared) by every group change, (exclusive) by a change of a session's account:
    /// which sessions a change reaches is decided by the accounts, so they must not move under it.
    pub accounts: tokio::sync::RwLock<()>,
    /// Networks a webhook may not be configured to reach (`Arc`: the webhook client holds it too).
    deny: Arc<DenyList>,
    /// The gateway's own store (`<data>/gateway/`): answers of idempotent requests that belong
    /// to no existing session.
    gateway: Arc<SessionStore>,
    /// Summaries of the closed stores (`<data>/catalog/`), so that start-up opens none.
    catalog: Arc<Catalog>,
    /// The open stores, counted against `WAGATE_MAX_OPEN_STORES`.
    stores: Arc<OpenStores>,
}

/// How the stores are written: the committer's queue bound and the fault seam.
#[derive(Debug, Clone)]
pub struct Storage {
    /// New changes that may wait for the committer; more are refused as overloaded.
    pub max_queued: usize,
    pub faults: Faults,
    /// Sessions' stores open at once at most (beyond it the least recently used close).
    pub max_open: usize,
    /// Events a store logs before the closer reopens it (`WAGATE_STORE_REOPEN_EVENTS`).
    pub reopen_after: u64,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Registry {
    /// Opens every session found under `<data>/sessions/`.
    pub fn open(
        data_dir: &Path,
        environment: Environment,
        global_hook: Option<WebhookConfig>,
        wake: UnboundedSender<SessionName>,
        storage: Storage,
    ) -> Result<Self, StoreError> {
        let committer = Committer::start(storage.max_queued)?;
        let faults = &storage.faults;
        let root = data_dir.join("sessions");
        std::fs::create_dir_all(&root)?;
        let mut inner = Inner {
            sessions: BTreeMap::new(),
            by_me: HashMap::new(),
        };
        let mut dirs: Vec<_> = std::fs::read_dir(&root)?.collect::<Result<_, _>>()?;
        dirs.sort_by_key(|d| d.file_name());
        let named: Vec<(SessionName, PathBuf)> = dirs
            .into_iter()
            .filter_map(|entry| {
                let name = entry.file_name().to_str().and_then(|n| SessionName::parse(n).ok());
                if name.is_none() {
                    tracing::warn!(path = %entry.path().display(), "skipping a folder that is not a session name");
                }
                name.map(|n| (n, entry.path()))
            })
            .collect();
        let catalog = Arc::new(Catalog::open(&data_dir.join("catalog"))?);
        let stores = Arc::new(OpenStores::new(storage.max_open, storage.reopen_after));
        let opener = stores::Opener {
            committer: &committer,
            faults,
            catalog: &catalog,
            stores: &stores,
        };
        let opened = opener.all(named)?;
        for session in opened {
            let session = Arc::new(session);
            inner.by_me.insert(session.me_id(), session.name.clone());
            inner.sessions.insert(session.name.clone(), session);
        }
        Ok(Self {
            data_dir: data_dir.to_owned(),
            inner: RwLock::new(inner),
            lifecycle: tokio::sync::Mutex::new(()),
            environment,
            global_hook,
            wake,
            committer,
            gateway: Arc::new(SessionStore::open(
                &data_dir.join("gateway"),
                storage.faults.clone(),
            )?),
            faults: storage.faults.clone(),
            accounts: tokio::sync::RwLock::new(()),
            deny: Arc::default(),
            catalog,
            stores,
        })
    }

    /// Refuses, from now on, webhooks whose host is in one of `deny`'s networks.
    pub fn with_denied_networks(mut self, deny: Arc<DenyList>) -> Self {
        self.deny = deny;
        self
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The gateway's own store.
    pub fn gateway(&self) -> &Arc<SessionStore> {
        &self.gateway
    }

    /// The committer every store's changes go through.
    pub fn committer(&self) -> &Committer {
        &self.committer
    }

    /// Keeps an answer in the gateway's own store (durably, in the committer's round).
    pub async fn remember(&self, remember: Remember) -> Result<(), StoreError> {
        let commit = Commit::new(Work::Flush, &[]).remembering(Some(remember));
        self.committer
            .submit(&self.gateway, commit, false)
            .await
            .map(|_| ())
    }

    pub fn get(&self, name: &SessionName) -> Option<Arc<Session>> {
        self.read().sessions.get(name).cloned()
    }

    /// The session, or 422 `session_not_found`.
    pub fn require(&self, name: &SessionName) -> ApiResult<Arc<Session>> {
        self.get(name)
            .ok_or_else(|| ApiError::SessionNotFound(name.to_string()))
    }

    pub fn list(&self) -> Vec<Arc<Session>> {
        self.read().sessions.values().cloned().collect()
    }

    /// The local session whose account is `id`.
    pub fn by_me(&self, id: &ContactId) -> Option<Arc<Session>> {
        let inner = self.read();
        inner
            .by_me
            .get(id)
            .and_then(|n| inner.sessions.get(n))
            .cloned()
    }

    pub fn notify(&self, name: &SessionName) {
        // The receiver lives as long as the dispatcher; if it is gone we are shutting down.
        let _ = self.wake.send(name.clone());
    }

    /// The webhook endpoints of a session: its own, then the global one.
    pub fn webhooks(&self, rec: &SessionRecord) -> Vec<([u8; 8], WebhookConfig)> {
        let mut out: Vec<_> = rec
            .config
            .webhooks
            .iter()
            .flatten()
            .map(|w| (endpoint_id(&w.url), w.clone()))
            .collect();
        if let Some(g) = &self.global_hook {
            out.push((GLOBAL_ENDPOINT, g.clone()));
        }
        out
    }

    pub fn endpoints(&self, rec: &SessionRecord) -> Vec<EndpointFilter> {
        self.webhooks(rec)
            .into_iter()
            .map(|(id, w)| EndpointFilter {
                id,
                url: w.url.clone(),
                events: if w.events.iter().any(|e| e == "*") {
                    None
                } else {
                    Some(w.events.clone())
                },
            })
            .collect()
    }

    pub fn event_context<'a>(&'a self, rec: &'a SessionRecord) -> events::Context<'a> {
        events::Context {
            session: &rec.name,
            metadata: rec.config.metadata.as_ref(),
            me: &rec.me,
            engine: &self.environment.engine,
            environment: &self.environment,
        }
    }

    fn me_for(name: &SessionName, config: &SessionConfig, me: Option<ContactId>) -> Me {
        let push_name = config
            .local
            .as_ref()
            .and_then(|l| l.me.as_ref())
            .and_then(|m| m.push_name.clone())
            .unwrap_or_else(|| name.to_string());
        Me {
            id: me
                .unwrap_or_else(|| ContactId::derived_from(name))
                .to_string(),
            push_name,
        }
    }

    fn check_me_free(&self, me: &str, name: &SessionName) -> ApiResult<()> {
        let Ok(id) = ContactId::parse(me) else {
            return Ok(());
        };
        match self.read().by_me.get(&id) {
            Some(other) if other != name => Err(ApiError::conflict(
                ErrorCode::AccountInUse,
                format!("config.local.me.id: {me} is already the account of session \"{other}\""),
            )),
            _ => Ok(()),
        }
    }

    /// Writes a new record with the status changes it went through, each as a `session.status` event.
    /// The answer, rendered by `render` from the new record, is kept with it.
    async fn commit_statuses(
        &self,
        session: &Arc<Session>,
        mut rec: SessionRecord,
        path: &[Status],
        render: Render<SessionRecord>,
    ) -> ApiResult<Reply> {
        let now = now_ms();
        let mut evs = Vec::new();
        for status in path {
            rec.status = *status;
            rec.statuses.push(StatusEntry {
                status: *status,
                timestamp: now,
            });
            let excess = rec.statuses.len().saturating_sub(10);
            rec.statuses.drain(..excess);
            let statuses = serde_json::to_value(&rec.statuses).unwrap_or(Value::Null);
            let payload = events::session_status(&rec.name, status.as_str(), &statuses);
            let ctx = self.event_context(&rec);
            let e = events::envelope(&ctx, "session.status", None, &payload, now);
            evs.push(EventRecord {
                name: e.name,
                group: e.group,
                body: e.body,
            });
        }
        rec.activity = now;
        let endpoints = self.endpoints(&rec);
        let mut reply = render(&rec);
        session
            .commit_answered(Work::record(&rec, evs)?, endpoints, reply.remember.take())
            .await?;
        session.set_record(rec);
        self.notify(&session.name);
        Ok(reply)
    }

    pub async fn create(
        &self,
        name: SessionName,
        mut config: SessionConfig,
        start: bool,
        render: Render<SessionRecord>,
    ) -> ApiResult<Reply> {
        config.keep_secrets(None)?;
        let me_id = config.validate()?;
        config.check_networks(&self.deny).await?;
        let _guard = self.lifecycle.lock().await;
        if self.get(&name).is_some() {
            return Err(ApiError::SessionExists(name.to_string()));
        }
        let me = Self::me_for(&name, &config, me_id);
        self.check_me_free(&me.id, &name)?;
        let path = self.data_dir.join("sessions").join(name.as_str());
        let store = {
            let (path, name) = (path.clone(), name.clone());
            let (committer, faults) = (self.committer.clone(), self.faults.clone());
            let (catalog, stores) = (self.catalog.clone(), self.stores.clone());
            tokio::task::spawn_blocking(move || {
                let opener = stores::Opener {
                    committer: &committer,
                    faults: &faults,
                    catalog: &catalog,
                    stores: &stores,
                };
                opener.store(&name, &path)
            })
            .await
            .map_err(ApiError::internal)??
        };
        let rec = SessionRecord {
            name: name.to_string(),
            config,
            status: Status::Stopped,
            me,
            statuses: Vec::new(),
            activity: now_ms(),
        };
        let session = Arc::new(Session::new(
            name.clone(),
            store,
            rec.clone(),
            self.committer.clone(),
        ));
        let path_statuses: &[Status] = if start {
            &[Status::Starting, Status::Working]
        } else {
            &[Status::Stopped]
        };
        let reply = self
            .commit_statuses(&session, rec, path_statuses, render)
            .await?;
        let mut inner = self.write();
        inner.by_me.insert(session.me_id(), name.clone());
        inner.sessions.insert(name.clone(), session.clone());
        drop(inner);
        // The commit's wake-up may have reached the dispatcher before the session was listed.
        self.notify(&name);
        Ok(reply)
    }

    /// Replaces the session's config; the answer, rendered by `render`, is kept with it.
    pub async fn update_config(
        &self,
        name: &SessionName,
        mut config: SessionConfig,
        render: Render<SessionRecord>,
    ) -> ApiResult<Reply> {
        let me_id = config.validate()?;
        config.check_networks(&self.deny).await?;
        let _guard = self.lifecycle.lock().await;
        let session = self.get(name).ok_or_else(|| session_404(name))?;
        let mut rec = SessionRecord::clone(&session.record());
        // Under the lock: the secrets kept are those of the config this one replaces.
        config.keep_secrets(Some(&rec.config))?;
        let old_me = session.me_id();
        rec.me = Self::me_for(name, &config, me_id);
        self.check_me_free(&rec.me.id, name)?;
        let moves = rec.me.id != old_me.as_str();
        // No group change may decide who it reaches by the old account meanwhile.
        let _accounts = match moves {
            true => Some(self.accounts.write().await),
            false => None,
        };
        let held = session.store.group_count()
            + session
                .pending_shares
                .load(std::sync::atomic::Ordering::Acquire);
        if moves && held > 0 {
            // Its groups list the old account; another account cannot take over its copies.
            return Err(ApiError::conflict(
                ErrorCode::SessionInGroups,
                format!(
                    "config.local.me.id: session \"{name}\" is in {held} group(s) as {old_me}; leave them or delete the session to change its account"
                ),
            ));
        }
        rec.config = config;
        rec.activity = now_ms();
        let endpoints = self.endpoints(&rec);
        let mut reply = render(&rec);
        let work = Work::record(&rec, Vec::new())?;
        session
            .commit_answered(work, endpoints, reply.remember.take())
            .await?;
        session.set_record(rec);
        let mut inner = self.write();
        inner.by_me.remove(&old_me);
        inner.by_me.insert(session.me_id(), name.clone());
        drop(inner);
        // Deliveries not yet sent follow the new webhook settings.
        self.notify(name);
        Ok(reply)
    }

    /// Moves a session along `path` (e.g. STARTING → WORKING) with its events.
    /// The answer, rendered by `render` from the new record, is kept with it.
    pub async fn transition(
        &self,
        name: &SessionName,
        path: &[Status],
        render: Render<SessionRecord>,
    ) -> ApiResult<Reply> {
        let _guard = self.lifecycle.lock().await;
        let session = self.get(name).ok_or_else(|| session_404(name))?;
        // Changes in progress end first; later ones see the new status.
        let _gate = session.gate.write().await;
        let rec = SessionRecord::clone(&session.record());
        self.commit_statuses(&session, rec, path, render).await
    }

    /// Removes a session and its store. Idempotent.
    pub async fn delete(&self, name: &SessionName) -> ApiResult<Option<Arc<Session>>> {
        let _guard = self.lifecycle.lock().await;
        // Changes in progress end before the store goes.
        let current = self.get(name);
        let _gate = match &current {
            Some(s) => Some(s.gate.write().await),
            None => None,
        };
        let removed = {
            let mut inner = self.write();
            let removed = inner.sessions.remove(name);
            if let Some(s) = &removed {
                let me = s.me_id();
                if inner.by_me.get(&me) == Some(name) {
                    inner.by_me.remove(&me);
                }
            }
            removed
        };
        if let Some(s) = &removed {
            let path = s.store.path().to_owned();
            let (catalog, key) = (self.catalog.clone(), name.to_string());
            tokio::task::spawn_blocking(move || {
                // Its summary first: a summary without its folder is ignored, not the reverse.
                catalog.forget(&key).map_err(std::io::Error::other)?;
                std::fs::remove_dir_all(&path)
            })
            .await
            .map_err(ApiError::internal)?
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(ApiError::internal)?;
            // Its delivery workers stop.
            self.notify(name);
        }
        Ok(removed)
    }
}

pub fn session_404(name: &SessionName) -> ApiError {
    ApiError::not_found(
        ErrorCode::SessionNotFound,
        format!("session \"{name}\" does not exist"),
    )
}
