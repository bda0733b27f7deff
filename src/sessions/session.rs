//! One session: its store, its record and account, and how its changes reach the committer.

use std::sync::{Arc, RwLock};

use super::{SessionRecord, Status};
use crate::error::{ApiError, ApiResult};
use crate::ids::{ContactId, SessionName};
use crate::store::{
    Applied, Commit, Committer, EndpointFilter, Remember, SessionStore, StoreError, Work,
};

/// One session: its store and its record.
pub struct Session {
    pub name: SessionName,
    pub store: Arc<SessionStore>,
    /// A std lock held only to clone or swap the `Arc`, never across an await: every request
    /// reads the record (status, account), so a snapshot must cost a reference count, not a copy.
    record: RwLock<Arc<SessionRecord>>,
    /// The account, parsed once per record change: the write path asks for it on every change.
    me: RwLock<ContactId>,
    /// Makes changes durable, in rounds shared with every other session (see `store::commit`).
    committer: Committer,
    /// Held (shared) by every group change this session makes, from its status check to its
    /// answer, and (exclusive) by status changes and deletion: a change never lands after
    /// STOPPED was answered. A tokio lock: held across the commit's await.
    pub gate: tokio::sync::RwLock<()>,
    /// Shares of group changes for this session that failed and are retried in the background:
    /// counted as held groups when the account would change.
    pub pending_shares: std::sync::atomic::AtomicUsize,
}

impl Session {
    pub(super) fn new(
        name: SessionName,
        store: SessionStore,
        rec: SessionRecord,
        committer: Committer,
    ) -> Self {
        let me = Self::account_of(&name, &rec);
        Self {
            name,
            store: Arc::new(store),
            record: RwLock::new(Arc::new(rec)),
            me: RwLock::new(me),
            committer,
            gate: tokio::sync::RwLock::new(()),
            pending_shares: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn account_of(name: &SessionName, rec: &SessionRecord) -> ContactId {
        ContactId::parse(&rec.me.id).unwrap_or_else(|_| ContactId::derived_from(name))
    }

    /// A snapshot of the record.
    pub fn record(&self) -> Arc<SessionRecord> {
        match self.record.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(super) fn set_record(&self, rec: SessionRecord) {
        let me = Self::account_of(&self.name, &rec);
        match self.me.write() {
            Ok(mut m) => *m = me,
            Err(poisoned) => *poisoned.into_inner() = me,
        }
        match self.record.write() {
            Ok(mut r) => *r = Arc::new(rec),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(rec),
        }
    }

    pub fn me_id(&self) -> ContactId {
        match self.me.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn status(&self) -> Status {
        self.record().status
    }

    /// 422 unless the session is WORKING.
    pub fn require_working(&self) -> ApiResult<()> {
        let status = self.status();
        if status == Status::Working {
            Ok(())
        } else {
            Err(ApiError::SessionNotWorking {
                name: self.name.to_string(),
                status: status.as_str().into(),
            })
        }
    }

    /// Makes all committed writes durable, off the async threads.
    pub async fn flush(self: &Arc<Self>) -> ApiResult<()> {
        self.durable().await.map_err(ApiError::from)
    }

    /// Makes every write made before this call durable.
    pub async fn durable(self: &Arc<Self>) -> Result<(), StoreError> {
        self.commit(Work::Flush, Vec::new()).await.map(|_| ())
    }

    /// Commits `work` in this session's store and answers once it is durable, with the
    /// sequence numbers of its events. The commit is queued at once (before the first poll),
    /// so changes submitted one after the other share a round. This completes something
    /// already under way (a fan-out share, a delivery's bookkeeping): it is never refused for
    /// load; a new change from a client goes through `commit_new`.
    pub fn commit(
        &self,
        work: Work,
        endpoints: Vec<EndpointFilter>,
    ) -> impl std::future::Future<Output = Result<Applied, StoreError>> + Send + 'static {
        self.queue(work, endpoints, false, None)
    }

    /// As `commit`, for a change a client asked for: refused at once with
    /// `StoreError::Overloaded` when the committer's queue is full.
    pub fn commit_new(
        &self,
        work: Work,
        endpoints: Vec<EndpointFilter>,
    ) -> impl std::future::Future<Output = Result<Applied, StoreError>> + Send + 'static {
        self.queue(work, endpoints, true, None)
    }

    /// As `commit_new`, keeping `remember` (an idempotent request's answer) in the same
    /// transaction as the change.
    pub fn commit_answered(
        &self,
        work: Work,
        endpoints: Vec<EndpointFilter>,
        remember: Option<Remember>,
    ) -> impl std::future::Future<Output = Result<Applied, StoreError>> + Send + 'static {
        self.queue(work, endpoints, true, remember)
    }

    /// As `commit_answered`, for a pipelined group change: written only onto version `base` of
    /// its group, else answered `Applied::stale` (see `Commit::based_on`). Queued at once, or
    /// refused at once (`StoreError::Overloaded` when the committer's queue is full).
    pub fn commit_on(
        &self,
        work: Work,
        endpoints: Vec<EndpointFilter>,
        remember: Option<Remember>,
        base: u64,
    ) -> Result<
        impl std::future::Future<Output = Result<Applied, StoreError>> + Send + 'static,
        StoreError,
    > {
        let commit = Commit::new(work, &endpoints);
        let commit = commit.remembering(remember).based_on(Some(base));
        self.committer.send(&self.store, commit, true)
    }

    /// Keeps an answer to a request that changed nothing (durably, in the committer's round).
    pub async fn remember(&self, remember: Remember) -> Result<(), StoreError> {
        self.queue(Work::Flush, Vec::new(), false, Some(remember))
            .await
            .map(|_| ())
    }

    fn queue(
        &self,
        work: Work,
        endpoints: Vec<EndpointFilter>,
        fresh: bool,
        remember: Option<Remember>,
    ) -> impl std::future::Future<Output = Result<Applied, StoreError>> + Send + 'static {
        let commit = Commit::new(work, &endpoints).remembering(remember);
        self.committer.submit(&self.store, commit, fresh)
    }
}
