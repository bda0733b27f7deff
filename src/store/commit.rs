//! The committer: one thread that makes every change of the gateway durable, in rounds.
//!
//! Why a thread of its own: sled guards its transactions with a process-wide lock that its
//! `flush` holds (shared) for as long as the fsync takes. A transaction started while any store
//! flushes waits for that fsync, and every read queued behind the waiting transaction waits too;
//! with writers committing and flushing on their own, the gateway spent most of its time in that
//! queue (CPU 45 % idle at 1,500 writes/s, see docs/benchmarks.md). Here the two never overlap:
//! a round takes every change queued so far, commits each store's share in ONE transaction,
//! then flushes the touched stores in parallel, then answers. Changes queued during a round's
//! fsync go together in the next round: group commit of transactions as well as of flushes.
//!
//! A round that fails for a store (a full disk, a failed fsync) is taken back there (see
//! `recover.rs`); the store refuses writes until it recovers, which this thread tries every
//! `RETRY_EVERY` and whenever a write for it comes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};

use tokio::sync::oneshot;

use super::fault::Undo;
use super::recover::RETRY_EVERY;
use super::work::{Applied, Commit};
use super::write::{RoundWrites, WriteFailed};
use super::{SessionStore, StoreError, StoreResult};

/// The most changes one round takes, so that one round's answer is not held back too long.
const MAX_ROUND: usize = 4_096;
/// Threads flushing stores of one round at once.
const FLUSH_THREADS: usize = 8;

struct Job {
    store: Arc<SessionStore>,
    commit: Commit,
    reply: oneshot::Sender<StoreResult<Applied>>,
}

/// What the committer thread is sent: a change to commit, or work to run between two rounds.
/// Not boxed: nearly every message is a change, and boxing would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Message {
    Commit(Job),
    /// Runs on the committer thread while no round is in progress (a consistent snapshot).
    Between(Box<dyn FnOnce() + Send>),
}

/// A handle on the committer thread; cheap to clone. The thread ends when the last handle goes.
#[derive(Clone)]
pub struct Committer {
    tx: Sender<Message>,
    /// Changes queued and not yet taken by a round: the queue's bound is checked against it.
    queued: Arc<AtomicUsize>,
    /// The most changes that may wait; new changes beyond it are refused at once.
    max_queued: usize,
}

impl Committer {
    pub fn start(max_queued: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let counter = queued.clone();
        std::thread::Builder::new()
            .name("wagate-commit".into())
            .spawn(move || run(rx, counter))?;
        Ok(Self {
            tx,
            queued,
            max_queued: max_queued.max(1),
        })
    }

    /// Queues `commit` on `store` now; the answer comes once the change is durable. Sending
    /// first and awaiting later lets a caller put several stores' changes in the same round.
    /// A `fresh` change (one the client has not been answered for) is refused with
    /// `StoreError::Overloaded` when the queue is full; the rest complete changes already made.
    pub fn submit(
        &self,
        store: &Arc<SessionStore>,
        commit: Commit,
        fresh: bool,
    ) -> impl std::future::Future<Output = StoreResult<Applied>> + Send + 'static {
        let sent = self.send(store, commit, fresh);
        async move { sent?.await }
    }

    /// As `submit`, telling at once whether the change was queued: a pipelined change is kept
    /// as the group's latest state only once it is.
    pub fn send(
        &self,
        store: &Arc<SessionStore>,
        commit: Commit,
        fresh: bool,
    ) -> StoreResult<impl std::future::Future<Output = StoreResult<Applied>> + Send + 'static> {
        let (reply, answer) = oneshot::channel();
        if fresh && self.queued.load(Ordering::Relaxed) >= self.max_queued {
            return Err(StoreError::Overloaded);
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            store: store.clone(),
            commit,
            reply,
        };
        self.tx.send(Message::Commit(job)).map_err(|_| stopped())?;
        Ok(async move {
            // Unit tests run the dispatcher under paused time, which jumps to the next timer
            // whenever the runtime is idle, unless a blocking task is running: wait in one there,
            // so that time stands still while the committer works, as it does for a real flush.
            #[cfg(test)]
            let answer = tokio::task::spawn_blocking(move || answer.blocking_recv())
                .await
                .map_err(|_| stopped())?;
            #[cfg(not(test))]
            let answer = answer.await;
            answer.map_err(|_| stopped())?
        })
    }
}

impl Committer {
    /// Runs `work` on the committer thread after the round in progress and before the next
    /// one: what it reads of any store is a state between two rounds, every change it sees
    /// whole. Commits wait while it runs; keep it short.
    pub async fn between_rounds<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(move || {
            let _ = reply.send(work());
        });
        self.tx.send(Message::Between(job)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    StoreError::Io(std::io::Error::other("the committer thread has stopped"))
}

fn run(rx: Receiver<Message>, queued: Arc<AtomicUsize>) {
    // Weak: a deleted session's store must close (its files are removed, its name reused).
    let mut failed: Vec<Weak<SessionStore>> = Vec::new();
    loop {
        let first = match rx.recv_timeout(RETRY_EVERY) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => {
                // Idle: give failed stores their chance to take writes again.
                failed.retain(|s| s.upgrade().is_some_and(|s| s.recover().is_err()));
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let (mut jobs, mut between) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Commit(j) => jobs.push(j),
                Message::Between(work) => between.push(work),
            }
            if jobs.len() < MAX_ROUND {
                next = rx.try_recv().ok();
            }
        }
        queued.fetch_sub(jobs.len(), Ordering::Relaxed);
        if !jobs.is_empty() {
            for store in round(jobs) {
                if !failed.iter().any(|s| s.ptr_eq(&store)) {
                    failed.push(store);
                }
            }
        }
        for work in between {
            work();
        }
        failed.retain(|s| s.upgrade().is_some_and(|s| s.is_failed()));
    }
}

/// One store's part of a round.
struct Part {
    store: Arc<SessionStore>,
    commits: Vec<Commit>,
    replies: Vec<oneshot::Sender<StoreResult<Applied>>>,
}

/// One round: a transaction per store, then the flushes, then the answers. Answers the stores
/// that failed in it.
fn round(jobs: Vec<Job>) -> Vec<Weak<SessionStore>> {
    let started = std::time::Instant::now();
    let changes = jobs.len();
    let mut index: HashMap<*const SessionStore, usize> = HashMap::new();
    let mut parts: Vec<Part> = Vec::new();
    for job in jobs {
        let i = *index.entry(Arc::as_ptr(&job.store)).or_insert_with(|| {
            parts.push(Part {
                store: job.store.clone(),
                commits: Vec::new(),
                replies: Vec::new(),
            });
            parts.len() - 1
        });
        parts[i].commits.push(job.commit);
        parts[i].replies.push(job.reply);
    }
    let written: Vec<Result<RoundWrites, WriteFailed>> = parts
        .iter()
        .map(|p| {
            p.store.recover().map_err(|error| WriteFailed {
                error,
                round: 0,
                undo: Undo::default(),
            })?;
            p.store.write_round(&p.commits)
        })
        .collect();
    let flushed = flush_all(&parts, &written);
    let mut failed = Vec::new();
    for ((part, written), flushed) in parts.into_iter().zip(written).zip(flushed) {
        let store = part.store;
        let result = match (written, flushed) {
            (Ok(w), Ok(())) => {
                store.round_durable(&w);
                count_events(&part.commits);
                Ok(w.applied)
            }
            (Ok(w), Err(e)) => Err(store.round_failed(&e, w.round, w.undo)),
            (Err(f), _) if f.error.fault().is_some() && !store.is_failed() => {
                Err(store.round_failed(&f.error, f.round, f.undo))
            }
            (Err(f), _) => Err(f.error),
        };
        if store.is_failed() {
            failed.push(Arc::downgrade(&store));
        }
        // Let go of the store before answering: a caller that drops the gateway on the answer
        // may open the same store again at once (sled locks its files while one handle lives).
        drop(store);
        answer(part.replies, result);
    }
    crate::metrics::commit_round(changes, started.elapsed());
    failed
}

/// The events of a store's durable share of a round, counted by name.
fn count_events(commits: &[Commit]) {
    let mut by_name: HashMap<&str, u64> = HashMap::new();
    for e in commits.iter().flat_map(|c| c.work.events()) {
        *by_name.entry(e.name.as_str()).or_default() += 1;
    }
    for (name, n) in by_name {
        crate::metrics::events(name, n);
    }
}

/// One store's flush, timed.
fn timed_flush(store: &SessionStore) -> StoreResult<()> {
    let started = std::time::Instant::now();
    let flushed = store.flush();
    crate::metrics::fsync(started.elapsed());
    flushed
}

/// Flushes every store whose transaction was written, in parallel; one result per part.
fn flush_all(parts: &[Part], written: &[Result<RoundWrites, WriteFailed>]) -> Vec<StoreResult<()>> {
    let to_flush: Vec<usize> = (0..parts.len()).filter(|&i| written[i].is_ok()).collect();
    let mut flushed: HashMap<usize, StoreResult<()>> = HashMap::new();
    if to_flush.len() == 1 {
        flushed.insert(to_flush[0], timed_flush(&parts[to_flush[0]].store));
    } else if !to_flush.is_empty() {
        let chunk = to_flush.len().div_ceil(FLUSH_THREADS);
        std::thread::scope(|scope| {
            let handles: Vec<_> = to_flush
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|&i| (i, timed_flush(&parts[i].store)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                match h.join() {
                    Ok(done) => flushed.extend(done),
                    Err(_) => tracing::error!("a flush thread panicked"),
                }
            }
        });
    }
    (0..parts.len())
        .map(|i| flushed.remove(&i).unwrap_or(Err(StoreError::Poisoned)))
        .collect()
}

/// Sends each change of a part its answer.
fn answer(replies: Vec<oneshot::Sender<StoreResult<Applied>>>, result: StoreResult<Vec<Applied>>) {
    match result {
        Ok(applied) => {
            for (reply, a) in replies.into_iter().zip(applied) {
                let _ = reply.send(Ok(a));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(same(&e)));
            }
        }
    }
}

/// A copy of a round's error for each change it answers.
fn same(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable { kind, detail } => StoreError::Unavailable {
            kind: *kind,
            detail: detail.clone(),
        },
        StoreError::Overloaded => StoreError::Overloaded,
        other => match other.fault() {
            Some(kind) => StoreError::Unavailable {
                kind,
                detail: other.to_string(),
            },
            None => StoreError::Io(std::io::Error::other(other.to_string())),
        },
    }
}
