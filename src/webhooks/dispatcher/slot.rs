//! One slot of a worker: an attempt (the envelope from the log, its signatures, the request,
//! the job's removal after a 2xx) run in a task of its own, which after a delivery takes the
//! next ready job itself instead of going back through the worker's loop. Every answer used to
//! wake the worker, which then planned and spawned the next attempt: the slot's request sat idle
//! for that round trip. Anything but a delivery (a failure, a refusal, a store error, a changed
//! config, nothing ready) ends the task and the worker records it as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde::Deserialize;

use super::Clock;
use crate::ids::SessionName;
use crate::metrics::{AttemptMetrics, Outcome};
use crate::sessions::{now_ms, Registry, Session, SessionRecord};
use crate::webhooks::client::{redact, Answer, Request, Transport};
use crate::webhooks::queue::Queue;
use crate::webhooks::sign::{self, Prepared};

/// What a worker shares with its slots, under one lock held only for a few map operations.
#[derive(Default)]
pub struct Shared {
    pub queue: Queue,
    /// Task id → the sequence number it is sending, to find the job of a slot that panicked.
    pub tasks: HashMap<tokio::task::Id, u64>,
    /// Queued jobs of events beyond the endpoint's cursor that have no record in the store:
    /// until they are delivered (or get a record) the cursor stays before the first of them.
    pub virtuals: std::collections::BTreeSet<u64>,
    /// The attempt metrics of the job URL last counted.
    metrics: Option<(String, AttemptMetrics)>,
}

impl Shared {
    /// Counts and times an attempt for the metrics, labelled with the webhook as logs show it.
    /// The handles are kept for the last URL seen (a job carries its own), not redacted and
    /// looked up again for every attempt.
    pub fn count(&mut self, session: &SessionName, seq: u64, outcome: Outcome, took: Duration) {
        let Some(job) = self.queue.job(seq) else {
            return;
        };
        let fresh = match &self.metrics {
            Some((url, _)) => *url != job.url,
            None => true,
        };
        if fresh {
            let handles = AttemptMetrics::new(session.as_str(), &redact(&job.url));
            self.metrics = Some((job.url.clone(), handles));
        }
        if let Some((_, handles)) = &self.metrics {
            handles.record(outcome, took);
        }
    }
}

/// Locks what the worker and its slots share; a panic elsewhere does not stop delivery.
pub fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a slot needs to take the next job itself. Weak, like the worker's: a slot waiting for
/// its answer must not keep a dropped gateway's stores open.
pub struct Slot {
    pub shared: Arc<Mutex<Shared>>,
    pub registry: Weak<Registry>,
    pub session: Weak<Session>,
    pub name: SessionName,
    /// The record `hook` was prepared from: once the session's record is replaced, the worker
    /// looks the webhook up again before anything else is sent.
    pub record: Arc<SessionRecord>,
    pub store: Weak<crate::store::SessionStore>,
    pub endpoint: [u8; 8],
    pub hook: Arc<Prepared>,
    pub transport: Arc<dyn Transport>,
    pub clock: Clock,
    pub concurrency: usize,
    /// The worker's: woken when the queue runs low, so that it reads on from the store.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Slot {
    /// Sends `seq`, then, while each attempt is delivered, the next ready job; answers the last
    /// job sent and what came of it. A delivered job that the slot went on from is recorded here
    /// (counted, out of the queue); the one it ends with is recorded by the worker.
    pub async fn run(self, first: u64) -> (u64, Attempt) {
        let mut seq = first;
        loop {
            let (hook, transport) = (self.hook.clone(), self.transport.clone());
            let (record, body) = {
                let shared = lock(&self.shared);
                let body = shared.queue.job(seq).and_then(|j| j.body.clone());
                (!shared.virtuals.contains(&seq), body)
            };
            let job = (self.endpoint, seq, record, body);
            let outcome = attempt(self.store.clone(), job, hook, transport).await;
            let next = match &outcome {
                Attempt::Sent(Answer::Delivered, took) => self.next(seq, *took),
                _ => None,
            };
            match next {
                Some(next) => seq = next,
                None => return (seq, outcome),
            }
        }
    }

    /// After `seq` was delivered: the next job to send, if one is ready and may go out with
    /// the same webhook config; the planner's rules hold (it starts at most one, never a second
    /// of a group, never more than `concurrency` in flight).
    fn next(&self, seq: u64, took: Duration) -> Option<u64> {
        let id = tokio::task::try_id()?;
        if !self.current() {
            return None;
        }
        let mut shared = lock(&self.shared);
        shared.count(&self.name, seq, Outcome::Ok, took);
        shared.queue.remove(seq);
        shared.virtuals.remove(&seq);
        if shared.queue.len() + 1 == super::LOW_WATER {
            self.wake.notify_one();
        }
        let cap = (shared.queue.in_flight() + 1).min(self.concurrency);
        let next = *shared.queue.plan(self.clock.now_ms(), cap).start.first()?;
        let event = shared.queue.job(next).map(|j| j.event.clone());
        let subscribed = event.is_some_and(|event| {
            let events = &self.hook.config.events;
            events.iter().any(|e| e == "*" || *e == event)
        });
        if !subscribed {
            // The worker dead-letters it when it plans again.
            shared.queue.landed(next);
            return None;
        }
        shared.tasks.insert(id, next);
        Some(next)
    }

    /// Whether the session is still the registered one, with the record the hook came from.
    fn current(&self) -> bool {
        let (Some(registry), Some(session)) = (self.registry.upgrade(), self.session.upgrade())
        else {
            return false;
        };
        registry
            .get(&self.name)
            .is_some_and(|s| Arc::ptr_eq(&s, &session))
            && Arc::ptr_eq(&session.record(), &self.record)
    }
}

/// The envelope fields a request carries in its headers.
#[derive(Deserialize)]
pub struct Stamp {
    pub id: String,
    pub timestamp: u64,
}

impl Stamp {
    /// Read from the envelope's head, which the gateway writes as `{"id":"…","timestamp":N,`
    /// (the contract's key order), without parsing the whole body; any other shape is parsed.
    pub fn of(body: &[u8]) -> Option<Stamp> {
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

/// One attempt: the envelope from the log, its signatures, the request; after a 2xx, the removal
/// of the job's record from the store when it has one (`record`; here, in parallel with the other
/// attempts, rather than in the worker's loop, which every answer goes through). Not flushed on
/// its own: a crash after it only means the event is sent again. A job without a record (an
/// event beyond the cursor, at its first attempt) writes nothing: the worker moves the cursor.
pub async fn attempt(
    store: Weak<crate::store::SessionStore>,
    (endpoint, seq, record, body): ([u8; 8], u64, bool, Option<sled::IVec>),
    hook: Arc<Prepared>,
    transport: Arc<dyn Transport>,
) -> Attempt {
    let Some(url) = hook.url.clone() else {
        return Attempt::Unsendable("the webhook's URL does not parse");
    };
    let read = match store.upgrade() {
        Some(_) if body.is_some() => Ok(body),
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
    if record && matches!(answer, Answer::Delivered) {
        if let Some(Err(e)) = store.upgrade().map(|s| s.remove_job(endpoint, seq)) {
            return Attempt::Store(e);
        }
    }
    Attempt::Sent(answer, took)
}
