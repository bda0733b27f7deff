//! The durable dispatcher: one worker per (session, endpoint) reading that endpoint's
//! `deliveries` in commit order. A worker is a step function (`Worker::step`) plus a thin loop.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::client::{redact, Answer, Request, Transport};
use super::queue::Queue;
use super::retry::{parse_retry_after, Schedule};
use super::sign::{self, Prepared};
use crate::ids::SessionName;
use crate::metrics::AttemptMetrics;
use crate::sessions::{now_ms, Registry, Session, SessionRecord};
use crate::store::{Applied, StoreResult, Work};

mod owner;
#[cfg(test)]
mod tests;

pub use owner::{prune, Dispatcher};

/// Why a job whose webhook left the session's config was dead-lettered.
pub const REMOVED: &str = "webhook removed from the session's config";
/// Why a job whose event the webhook no longer subscribes to was dead-lettered.
pub const UNSUBSCRIBED: &str = "event no longer in the webhook's events";

/// Jobs one worker holds in memory at most; the rest wait in the store until there is room.
const MAX_QUEUED: usize = 5_000;
/// Free room below which the worker does not look for more jobs in the store.
const MIN_LOAD: usize = 256;
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

/// The envelope fields a request carries in its headers.
#[derive(Deserialize)]
struct Stamp {
    id: String,
    timestamp: u64,
}

impl Stamp {
    /// Read from the envelope's head, which the gateway writes as `{"id":"…","timestamp":N,`
    /// (the contract's key order), without parsing the whole body; any other shape is parsed.
    fn of(body: &[u8]) -> Option<Stamp> {
        let quick = || {
            let rest = body.strip_prefix(b"{\"id\":\"")?;
            let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
            let (id, rest) = rest.split_at(end);
            let rest = rest.strip_prefix(b"\",\"timestamp\":")?;
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if rest.get(digits) != Some(&b',') {
                return None;
            }
            Some(Stamp {
                id: std::str::from_utf8(id).ok()?.to_owned(),
                timestamp: std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?,
            })
        };
        quick().or_else(|| serde_json::from_slice(body).ok())
    }
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
    queue: Queue,
    /// The highest sequence number read from the store so far.
    loaded_upto: u64,
    /// The store's durable sequence number when it was last read to the end: no new job can
    /// be there while it has not moved (jobs come with commits; requeues are counted apart).
    read_at_durable: u64,
    requeues_seen: u64,
    /// The last read filled its chunk with room to spare: there may be more to read at once.
    more_to_load: bool,
    in_flight: JoinSet<(u64, Attempt)>,
    /// Task id → sequence number, to find the job of an attempt that panicked.
    tasks: HashMap<tokio::task::Id, u64>,
    /// The record the webhook was last looked up in, and what was found.
    hook_cache: Option<(Arc<SessionRecord>, Option<Arc<Prepared>>)>,
    /// Moves to the dead letters queued at the committer, awaited by `settle`.
    burials: Vec<Burial>,
    /// The attempt metrics of the job URL last counted.
    metrics: Option<(String, AttemptMetrics)>,
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
            queue: Queue::default(),
            loaded_upto: 0,
            read_at_durable: u64::MAX,
            requeues_seen: u64::MAX,
            more_to_load: false,
            in_flight: JoinSet::new(),
            tasks: HashMap::new(),
            hook_cache: None,
            burials: Vec::new(),
            metrics: None,
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
                    self.tasks.clear();
                    self.burials.clear();
                    self.queue = Queue::default();
                    self.loaded_upto = 0;
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
        // the store and the config on every wake-up; the next answer brings us back here.
        let full = self.in_flight.len() >= self.concurrency;
        let hook = if full {
            None
        } else {
            self.load(&live)?;
            self.current_hook(&live)
        };
        match &hook {
            None if full => {}
            None => {
                // Beyond the in-memory window there may be more: read on until none is left.
                loop {
                    let idle = self.queue.idle_seqs();
                    if idle.is_empty() {
                        break;
                    }
                    for seq in idle {
                        self.discard(&live, seq, REMOVED)?;
                        wrote = true;
                    }
                    self.load(&live)?;
                }
                if self.queue.is_empty() && self.in_flight.is_empty() {
                    self.settle(&live, wrote).await?;
                    return Ok(Step::Stop);
                }
            }
            Some(hook) => loop {
                let now = self.clock.now_ms();
                let plan = self.queue.plan(now, self.concurrency);
                next_due = plan.next_due;
                let mut buried = false;
                for seq in plan.start {
                    if !self.start(&live, seq, hook)? {
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
        self.settle(&live, wrote).await?;
        // Hold nothing strong while waiting (see `registry`).
        drop(live);
        let sleep = {
            let at = next_due.map(|ms| self.clock.instant_at(ms));
            async move {
                match at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            }
        };
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

    /// Reads jobs committed since the last look, and (after a retry from the dead letters)
    /// those behind it.
    fn load(&mut self, live: &Live) -> StoreResult<()> {
        let store = &live.session.store;
        let requeues = store.requeues();
        if requeues != self.requeues_seen {
            self.requeues_seen = requeues;
            for (seq, job) in store.pending_jobs(self.endpoint, 0, self.loaded_upto, usize::MAX)? {
                self.queue.insert(seq, job);
            }
        }
        // A nearly full queue is topped up in chunks, not one job per answer.
        let room = MAX_QUEUED.saturating_sub(self.queue.len());
        let durable = store.durable_seq();
        self.more_to_load = false;
        if room >= MIN_LOAD && durable != self.read_at_durable {
            let from = self.loaded_upto.saturating_add(1);
            let want = room.min(LOAD_CHUNK);
            let jobs = store.pending_jobs(self.endpoint, from, u64::MAX, want)?;
            // Read to the end (fewer than asked for): nothing new until the next commit. (For a
            // store this read opened, `durable` was not yet known: it moves, and we read again.)
            if jobs.len() < want {
                self.read_at_durable = durable;
            }
            self.more_to_load = jobs.len() == want && want < room;
            for (seq, job) in jobs {
                self.loaded_upto = seq;
                self.queue.insert(seq, job);
            }
        }
        Ok(())
    }

    /// Starts one attempt, or dead-letters the job when its webhook no longer takes its event
    /// (answers false). Reading the envelope, signing and sending run in the attempt's own task,
    /// in parallel with the other attempts: this loop only decides what goes out.
    fn start(&mut self, live: &Live, seq: u64, hook: &Arc<Prepared>) -> StoreResult<bool> {
        let Some(job) = self.queue.job(seq) else {
            return Ok(true);
        };
        if !hook
            .config
            .events
            .iter()
            .any(|e| e == "*" || *e == job.event)
        {
            self.discard(live, seq, UNSUBSCRIBED)?;
            return Ok(false);
        }
        // Weak: an attempt waiting for its answer must not keep a dropped gateway's store open.
        let store = Arc::downgrade(&live.session.store);
        let (hook, transport, endpoint) = (hook.clone(), self.transport.clone(), self.endpoint);
        let handle = self
            .in_flight
            .spawn(async move { (seq, attempt(store, (endpoint, seq), hook, transport).await) });
        self.tasks.insert(handle.id(), seq);
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
                self.tasks.remove(&id);
                match outcome {
                    Attempt::Sent(answer, took) => {
                        self.count_attempt(seq, &answer, took);
                        (seq, answer)
                    }
                    Attempt::Unsendable(reason) => {
                        self.discard(live, seq, reason)?;
                        return Ok(true);
                    }
                    Attempt::Store(e) => return Err(e),
                }
            }
            Err(e) => {
                let Some(seq) = self.tasks.remove(&e.id()) else {
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
                // The attempt's task removed the job from the store (see `attempt`).
                self.queue.remove(seq);
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

    /// Counts and times an attempt for the metrics, labelled with the webhook as logs show it.
    /// The handles are kept for the last URL seen (a job carries its own), not redacted and
    /// looked up again for every attempt.
    fn count_attempt(&mut self, seq: u64, answer: &Answer, took: Duration) {
        let Some(job) = self.queue.job(seq) else {
            return;
        };
        let fresh = match &self.metrics {
            Some((url, _)) => *url != job.url,
            None => true,
        };
        if fresh {
            let handles = AttemptMetrics::new(self.name.as_str(), &redact(&job.url));
            self.metrics = Some((job.url.clone(), handles));
        }
        if let Some((_, handles)) = &self.metrics {
            handles.record(answer.outcome(), took);
        }
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
        let Some(job) = self.queue.job_mut(seq) else {
            return Ok(false);
        };
        job.attempts = job.attempts.saturating_add(1);
        job.last_error = Some(error.clone());
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
                let job = job.clone();
                live.session.store.save_job(self.endpoint, seq, &job)?;
                self.queue.landed(seq);
            }
            None => self.bury(live, seq, &error)?,
        }
        Ok(true)
    }

    /// Dead-letters a job that is not sent at all (its webhook or event was dropped), with a log line.
    fn discard(&mut self, live: &Live, seq: u64, reason: &str) -> StoreResult<()> {
        if let Some(job) = self.queue.job(seq) {
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
        let Some(mut job) = self.queue.remove(seq) else {
            return Ok(());
        };
        job.last_error = Some(reason.to_owned());
        job.next_attempt_at = 0;
        let key = crate::store::delivery_key(self.endpoint, seq);
        let work = Work::bury(key, &job)?;
        self.burials
            .push(Box::pin(live.session.commit(work, Vec::new(), 0)));
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

/// What came of one attempt's task.
pub enum Attempt {
    /// The request went out; the receiver's answer (or why there was none), and how long the
    /// attempt took.
    Sent(Answer, Duration),
    /// The job cannot be sent at all: dead-letter it with this reason.
    Unsendable(&'static str),
    /// Reading the envelope failed: the worker reloads from the store.
    Store(crate::store::StoreError),
}

/// One attempt: the envelope from the log, its signatures, the request; after a 2xx, the job's
/// removal from the store (here, in parallel with the other attempts, rather than in the worker's
/// loop, which every answer goes through). Not flushed on its own: a crash after it only means
/// the event is sent again.
async fn attempt(
    store: Weak<crate::store::SessionStore>,
    (endpoint, seq): ([u8; 8], u64),
    hook: Arc<Prepared>,
    transport: Arc<dyn Transport>,
) -> Attempt {
    let Some(url) = hook.url.clone() else {
        return Attempt::Unsendable("the webhook's URL does not parse");
    };
    let read = match store.upgrade() {
        Some(store) => store.event(seq),
        // The session is gone; its worker stops without looking at this answer.
        None => return Attempt::Unsendable("the session was deleted"),
    };
    let body = match read {
        Ok(Some(body)) => body,
        Ok(None) => return Attempt::Unsendable("the event is no longer in the session's log"),
        Err(e) => return Attempt::Store(e),
    };
    let Some(stamp) = Stamp::of(&body) else {
        return Attempt::Unsendable("the logged event is not a valid envelope");
    };
    // The wall clock, not the worker's: receivers check this against theirs (a 5-minute window).
    let now_s = now_ms() / 1000;
    let req = Request {
        url,
        headers: sign::headers(&hook, &stamp.id, stamp.timestamp, &body, now_s),
        body: body.to_vec(),
    };
    let started = std::time::Instant::now();
    let answer = transport.send(req).await;
    let took = started.elapsed();
    if matches!(answer, Answer::Delivered) {
        if let Some(Err(e)) = store.upgrade().map(|s| s.remove_job(endpoint, seq)) {
            return Attempt::Store(e);
        }
    }
    Attempt::Sent(answer, took)
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
