//! The durable dispatcher: one worker per (session, endpoint) reading that endpoint's
//! `deliveries` in commit order. A worker is a step function (`Worker::step`) plus a thin loop.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::client::{redact, Answer, Transport};
use super::retry::{parse_retry_after, Schedule};
use super::sign::Prepared;
use crate::ids::SessionName;
use crate::sessions::{now_ms, Registry, Session, SessionRecord};
use crate::store::{Applied, StoreResult, Work};

mod load;
mod owner;
mod slot;
#[cfg(test)]
mod tests;

pub use slot::Attempt;
#[cfg(test)]
use slot::Stamp;
use slot::{lock, Shared, Slot};

pub use owner::{prune, Dispatcher};

/// Why a job whose webhook left the session's config was dead-lettered.
pub const REMOVED: &str = "webhook removed from the session's config";
/// Why a job whose event the webhook no longer subscribes to was dead-lettered.
pub const UNSUBSCRIBED: &str = "event no longer in the webhook's events";

/// Jobs one worker holds in memory at most; the rest wait in the store until there is room.
const MAX_QUEUED: usize = 5_000;
/// Free room below which the worker does not look for more jobs in the store.
const MIN_LOAD: usize = 256;
/// Jobs in memory below which the worker reads the store even with every slot taken, and a
/// slot that takes the queue below it wakes the worker to do so.
pub(crate) const LOW_WATER: usize = 256;
/// Jobs read from the store in one step at most: a backlog of thousands is read in several
/// steps, between which attempts start, rather than all while every slot waits.
const LOAD_CHUNK: usize = 512;

/// Unix ms that move with tokio's clock, so that paused-time tests drive due times and
/// timeouts alike. Anchored to the wall clock once; a restart anchors it again.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    base_ms: u64,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            base_ms: now_ms(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.base_ms + self.base.elapsed().as_millis() as u64
    }

    /// `now_ms` rounded up: a wait counted from it never ends before the wait has passed
    /// (counted from the floor, a `Retry-After: 2` could be honoured in 1.9998 s).
    pub fn now_ms_ceil(&self) -> u64 {
        let micros = self.base.elapsed().as_micros();
        self.base_ms + micros.div_ceil(1000) as u64
    }

    fn instant_at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms.saturating_sub(self.base_ms))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// What a step ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// The session is gone, or the webhook is gone and all its jobs are dead-lettered.
    Stop,
}

/// Delivers one endpoint's jobs of one session.
pub struct Worker {
    /// Weak, like `session`: a worker must not keep a dropped gateway's stores open (their
    /// files stay locked until the last handle goes). Upgraded for the sync part of a step.
    registry: Weak<Registry>,
    session: Weak<Session>,
    name: SessionName,
    endpoint: [u8; 8],
    transport: Arc<dyn Transport>,
    clock: Clock,
    concurrency: usize,
    wake: Arc<Notify>,
    /// The jobs (and the slots' task ids and the attempt metrics), shared with the slots,
    /// which take the next ready job themselves after a delivery.
    shared: Arc<Mutex<Shared>>,
    /// Every job record and event up to this sequence number has been read from the store.
    loaded_upto: u64,
    /// The endpoint's record and cursor in the store, once it has them.
    known: Option<crate::store::KnownEndpoint>,
    /// Every event up to here that the endpoint takes was delivered or has a job record.
    cursor: u64,
    /// The cursor as last saved.
    saved: u64,
    /// The store's durable sequence number when it was last read to the end: no new job can
    /// be there while it has not moved (jobs come with commits; requeues are counted apart).
    read_at_durable: u64,
    requeues_seen: u64,
    /// The last read filled its chunk with room to spare: there may be more to read at once.
    more_to_load: bool,
    in_flight: JoinSet<(u64, Attempt)>,
    /// The record the webhook was last looked up in, and what was found.
    hook_cache: Option<(Arc<SessionRecord>, Option<Arc<Prepared>>)>,
    /// Moves to the dead letters queued at the committer, awaited by `settle`.
    burials: Vec<Burial>,
}

type Burial = std::pin::Pin<Box<dyn std::future::Future<Output = StoreResult<Applied>> + Send>>;

impl Worker {
    pub fn new(
        registry: Arc<Registry>,
        session: Arc<Session>,
        endpoint: [u8; 8],
        transport: Arc<dyn Transport>,
        clock: Clock,
        concurrency: usize,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            registry: Arc::downgrade(&registry),
            name: session.name.clone(),
            session: Arc::downgrade(&session),
            endpoint,
            transport,
            clock,
            concurrency: concurrency.max(1),
            wake,
            shared: Arc::default(),
            loaded_upto: 0,
            known: None,
            cursor: 0,
            saved: 0,
            read_at_durable: u64::MAX,
            requeues_seen: u64::MAX,
            more_to_load: false,
            in_flight: JoinSet::new(),
            hook_cache: None,
            burials: Vec::new(),
        }
    }

    /// The thin loop: steps until told to stop; a store error resets the worker to what the
    /// store holds (in-flight attempts are dropped and will be sent again: at-least-once).
    pub async fn run(mut self) {
        // A storage fault is logged once per episode (the store logs it too), not every second.
        let mut faulted = false;
        loop {
            match self.step().await {
                Ok(Step::Continue) => faulted = false,
                Ok(Step::Stop) => break,
                Err(e) => {
                    match e.fault() {
                        Some(_) if faulted => {}
                        Some(_) => {
                            faulted = true;
                            tracing::warn!(session = %self.name, "webhook worker paused by a storage fault: {e}; retrying every second");
                        }
                        None => {
                            tracing::error!(session = %self.name, "webhook worker: {e}; reloading in 1 s")
                        }
                    }
                    self.in_flight.abort_all();
                    self.in_flight = JoinSet::new();
                    self.burials.clear();
                    // The aborted slots may still hold the old one for a moment.
                    self.shared = Arc::default();
                    self.loaded_upto = 0;
                    self.known = None;
                    self.read_at_durable = u64::MAX;
                    self.requeues_seen = u64::MAX;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One round: take in new jobs, read the webhook's current config, start what is due,
    /// then wait for one thing (an answer, a wake-up, a due time) and record what came of it.
    pub async fn step(&mut self) -> StoreResult<Step> {
        let Some(live) = self.live() else {
            return Ok(Step::Stop);
        };
        let mut wrote = false;
        let mut next_due = None;
        // With every slot taken nothing can start: during a burst of commits, skip reading
        // the store and the config on every wake-up while the slots have jobs enough to go on
        // with; a slot wakes us when the queue runs low (`slot.rs`).
        let full =
            self.in_flight.len() >= self.concurrency && lock(&self.shared).queue.len() >= LOW_WATER;
        let hook = if full {
            None
        } else {
            let hook = self.current_hook(&live);
            self.load(&live)?;
            hook
        };
        match &hook {
            None if full => {}
            None => {
                let stored = self.gone(&live)?;
                // Beyond the in-memory window there may be more: read on until none is left.
                loop {
                    let idle = lock(&self.shared).queue.idle_seqs();
                    if idle.is_empty() {
                        break;
                    }
                    for seq in idle {
                        self.discard(&live, seq, REMOVED)?;
                        wrote = true;
                    }
                    self.load(&live)?;
                }
                if lock(&self.shared).queue.is_empty() && self.in_flight.is_empty() {
                    self.settle(&live, wrote).await?;
                    if let Some(record) = stored {
                        live.session.store.forget_endpoint(self.endpoint, &record)?;
                    }
                    return Ok(Step::Stop);
                }
            }
            Some(hook) => loop {
                let now = self.clock.now_ms();
                let plan = lock(&self.shared).queue.plan(now, self.concurrency);
                next_due = plan.next_due;
                let mut buried = false;
                for seq in plan.start {
                    if !self.start(&live, seq, hook.clone())? {
                        buried = true;
                    }
                }
                wrote |= buried;
                // A dead-lettered head frees its group and a slot: plan again.
                if !buried {
                    break;
                }
            },
        }
        // Burials first: the cursor may pass a dead-lettered event only once its dead letter is
        // committed, or pruning (and a crash) could take the event with neither left.
        self.settle(&live, wrote).await?;
        self.advance(&live)?;
        // Hold nothing strong while waiting (see `registry`).
        drop(live);
        let sleep = until(next_due.map(|ms| self.clock.instant_at(ms)));
        tokio::select! {
            Some(done) = self.in_flight.join_next_with_id(), if !self.in_flight.is_empty() => {
                let Some(live) = self.live() else {
                    return Ok(Step::Stop);
                };
                let mut wrote = self.land(&live, done)?;
                while let Some(done) = self.in_flight.try_join_next_with_id() {
                    wrote |= self.land(&live, done)?;
                }
                self.settle(&live, wrote).await?;
                self.advance(&live)?;
            }
            _ = self.wake.notified() => {}
            _ = sleep => {}
            // The next chunk of a backlog, once the attempts just started have had their turn.
            _ = tokio::task::yield_now(), if self.more_to_load && self.in_flight.len() < self.concurrency => {}
        }
        Ok(Step::Continue)
    }

    /// The registry and the session, while the session is still the registered one.
    fn live(&self) -> Option<Live> {
        let registry = self.registry.upgrade()?;
        let session = self.session.upgrade()?;
        let current = registry.get(&self.name)?;
        Arc::ptr_eq(&current, &session).then_some(Live { registry, session })
    }

    /// The webhook as configured now: settings changed by PUT apply to the next attempt.
    /// Looked up again only when the session's record changed (a record is never modified in
    /// place, only replaced), since every step asks.
    fn current_hook(&mut self, live: &Live) -> Option<Arc<Prepared>> {
        let rec = live.session.record();
        if let Some((seen, hook)) = &self.hook_cache {
            if Arc::ptr_eq(seen, &rec) {
                return hook.clone();
            }
        }
        let hook = live
            .registry
            .webhooks(&rec)
            .into_iter()
            .find(|(id, _)| *id == self.endpoint)
            .map(|(_, w)| Arc::new(Prepared::new(w)));
        self.hook_cache = Some((rec, hook.clone()));
        hook
    }

    /// Starts one attempt, or dead-letters the job when its webhook no longer takes its event
    /// (answers false). Reading the envelope, signing and sending run in a slot's own task, in
    /// parallel with the other attempts, and the slot goes on with the next ready job after a
    /// delivery (`slot.rs`): this loop decides what goes out and records what did not arrive.
    fn start(&mut self, live: &Live, seq: u64, hook: Arc<Prepared>) -> StoreResult<bool> {
        let subscribed = lock(&self.shared).queue.job(seq).map(|job| {
            let events = &hook.config.events;
            events.iter().any(|e| e == "*" || *e == job.event)
        });
        match subscribed {
            None => return Ok(true),
            Some(false) => {
                self.discard(live, seq, UNSUBSCRIBED)?;
                return Ok(false);
            }
            Some(true) => {}
        }
        let Some(record) = self.hook_cache.as_ref().map(|(rec, _)| rec.clone()) else {
            return Ok(true);
        };
        let slot = Slot {
            shared: self.shared.clone(),
            registry: self.registry.clone(),
            session: self.session.clone(),
            name: self.name.clone(),
            record,
            // Weak: an attempt waiting for its answer must not keep a dropped gateway's store open.
            store: Arc::downgrade(&live.session.store),
            endpoint: self.endpoint,
            hook,
            transport: self.transport.clone(),
            clock: self.clock,
            concurrency: self.concurrency,
            wake: self.wake.clone(),
        };
        // Held across the spawn, so that the slot's own entry (when it goes on) comes after this one.
        let mut shared = lock(&self.shared);
        let handle = self.in_flight.spawn(slot.run(seq));
        shared.tasks.insert(handle.id(), seq);
        Ok(true)
    }

    /// Records an answer; true when something was written that should be flushed.
    fn land(
        &mut self,
        live: &Live,
        done: Result<(tokio::task::Id, (u64, Attempt)), tokio::task::JoinError>,
    ) -> StoreResult<bool> {
        let (seq, answer) = match done {
            Ok((id, (seq, outcome))) => {
                {
                    let mut shared = lock(&self.shared);
                    shared.tasks.remove(&id);
                    if let Attempt::Sent(answer, took) = &outcome {
                        shared.count(&self.name, seq, answer.outcome(), *took);
                    }
                }
                match outcome {
                    Attempt::Sent(answer, _) => (seq, answer),
                    Attempt::Unsendable(reason) => {
                        self.discard(live, seq, reason)?;
                        return Ok(true);
                    }
                    Attempt::Store(e) => return Err(e),
                }
            }
            Err(e) => {
                let Some(seq) = lock(&self.shared).tasks.remove(&e.id()) else {
                    return Ok(false);
                };
                let answer = Answer::Failed {
                    error: format!("internal error while sending: {e}"),
                    retry_after: None,
                };
                (seq, answer)
            }
        };
        let (error, retry_after) = match answer {
            Answer::Delivered => {
                // The attempt's task removed its record from the store, if it had one (see `attempt`).
                let mut shared = lock(&self.shared);
                shared.queue.remove(seq);
                shared.virtuals.remove(&seq);
                return Ok(false);
            }
            Answer::Failed { error, retry_after } => (error, retry_after),
            Answer::Refused(reason) => {
                self.discard(live, seq, reason)?;
                return Ok(true);
            }
        };
        self.failed(live, seq, error, retry_after)
    }

    /// Records a failed attempt: the job's next time by its webhook's policy, or the dead letters.
    fn failed(
        &mut self,
        live: &Live,
        seq: u64,
        error: String,
        retry_after: Option<String>,
    ) -> StoreResult<bool> {
        let now = self.clock.now_ms_ceil();
        let hook = self.current_hook(live);
        let mut job = {
            let mut shared = lock(&self.shared);
            let Some(job) = shared.queue.job_mut(seq) else {
                return Ok(false);
            };
            job.attempts = job.attempts.saturating_add(1);
            job.last_error = Some(error.clone());
            job.clone()
        };
        let tries = job.attempts;
        let Some(hook) = hook else {
            tracing::warn!(
                session = %self.name,
                url = %redact(&job.url),
                "webhook attempt {tries} failed: {error}; dead-lettered: {REMOVED}"
            );
            self.bury(live, seq, REMOVED)?;
            return Ok(true);
        };
        let schedule = Schedule::of(&hook.config);
        let wait = retry_after.and_then(|v| parse_retry_after(&v, now));
        let next = schedule.next_attempt(tries, now, wait, rand::random());
        let then = match next {
            Some(at) => format!("next in {} ms", at.saturating_sub(now)),
            None => "dead-lettered".to_owned(),
        };
        tracing::warn!(
            session = %self.name,
            url = %redact(&hook.config.url),
            "webhook attempt {tries} of {} failed: {error}; {then}",
            schedule.tries()
        );
        match next {
            Some(at) => {
                job.next_attempt_at = at;
                live.session.store.save_job(self.endpoint, seq, &job)?;
                // It and the jobs of its group that wait behind it have records of their own
                // now: the cursor may pass them.
                self.hold_group(live, seq)?;
                let mut shared = lock(&self.shared);
                if let Some(queued) = shared.queue.job_mut(seq) {
                    queued.next_attempt_at = at;
                }
                shared.queue.landed(seq);
            }
            None => self.bury(live, seq, &error)?,
        }
        Ok(true)
    }

    /// Dead-letters a job that is not sent at all (its webhook or event was dropped), with a log line.
    fn discard(&mut self, live: &Live, seq: u64, reason: &str) -> StoreResult<()> {
        if let Some(job) = lock(&self.shared).queue.job(seq) {
            tracing::warn!(
                session = %self.name,
                url = %redact(&job.url),
                event = %job.event,
                "webhook delivery dead-lettered: {reason}"
            );
        }
        self.bury(live, seq, reason)
    }

    /// Moves a job to the dead letters with its reason; it stays there until retried by hand.
    /// The move is a transaction, so it goes through the committer (never on this async
    /// thread, where it would wait behind a flush); `settle` waits for it.
    fn bury(&mut self, live: &Live, seq: u64, reason: &str) -> StoreResult<()> {
        let removed = {
            let mut shared = lock(&self.shared);
            shared.virtuals.remove(&seq);
            shared.queue.remove(seq)
        };
        let Some(mut job) = removed else {
            return Ok(());
        };
        job.last_error = Some(reason.to_owned());
        job.next_attempt_at = 0;
        let key = crate::store::delivery_key(self.endpoint, seq);
        let work = Work::bury(key, &job)?;
        self.burials
            .push(Box::pin(live.session.commit(work, Vec::new())));
        Ok(())
    }

    /// Makes this step's writes durable: the burials (each commit flushes, and so covers the
    /// jobs rewritten before it), else a flush when a job was rewritten.
    async fn settle(&mut self, live: &Live, wrote: bool) -> StoreResult<()> {
        if self.burials.is_empty() {
            if wrote {
                flush(&live.session).await?;
            }
            return Ok(());
        }
        for burial in std::mem::take(&mut self.burials) {
            burial.await?;
        }
        Ok(())
    }
}

/// Ends at `at`, or never.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Makes the worker's writes durable, off the async threads.
async fn flush(session: &Arc<Session>) -> StoreResult<()> {
    session.durable().await
}

/// What a step works on, held only for its sync part and flushes.
struct Live {
    registry: Arc<Registry>,
    session: Arc<Session>,
}
