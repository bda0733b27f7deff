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

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Commit, SessionStore, StoreError, StoreResult};

/// The most changes one round takes, so that one round's answer is not held back too long.
const MAX_ROUND: usize = 4_096;
/// Threads flushing stores of one round at once.
const FLUSH_THREADS: usize = 8;

struct Job {
    store: Arc<SessionStore>,
    commit: Commit,
    reply: oneshot::Sender<StoreResult<Vec<u64>>>,
}

/// A handle on the committer thread; cheap to clone. The thread ends when the last handle goes.
#[derive(Clone)]
pub struct Committer {
    tx: Sender<Job>,
}

impl Committer {
    pub fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("wagate-commit".into())
            .spawn(move || run(rx))?;
        Ok(Self { tx })
    }

    /// Queues `commit` on `store` now; the answer (the events' sequence numbers) comes once the
    /// change is durable. Sending first and awaiting later lets a caller put several stores'
    /// changes in the same round.
    pub fn submit(
        &self,
        store: &Arc<SessionStore>,
        commit: Commit,
    ) -> impl std::future::Future<Output = StoreResult<Vec<u64>>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let sent = self.tx.send(Job {
            store: store.clone(),
            commit,
            reply,
        });
        async move {
            sent.map_err(|_| stopped())?;
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
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Io(std::io::Error::other("the committer thread has stopped"))
}

fn run(rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_ROUND {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        round(jobs);
    }
}

/// One round: a transaction per store, then the flushes, then the answers.
fn round(jobs: Vec<Job>) {
    let mut index: HashMap<*const SessionStore, usize> = HashMap::new();
    let mut by_store: Vec<(Arc<SessionStore>, Vec<Commit>, Vec<oneshot::Sender<_>>)> = Vec::new();
    for job in jobs {
        let key = Arc::as_ptr(&job.store);
        let i = *index.entry(key).or_insert_with(|| {
            by_store.push((job.store.clone(), Vec::new(), Vec::new()));
            by_store.len() - 1
        });
        by_store[i].1.push(job.commit);
        by_store[i].2.push(job.reply);
    }
    let committed: Vec<StoreResult<Vec<Vec<u64>>>> = by_store
        .iter()
        .map(|(store, commits, _)| store.commit_many(commits))
        .collect();
    let to_flush: Vec<usize> = committed
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    let mut flushed: HashMap<usize, StoreResult<()>> = HashMap::new();
    if to_flush.len() == 1 {
        let i = to_flush[0];
        flushed.insert(i, by_store[i].0.flush());
    } else if !to_flush.is_empty() {
        let chunk = to_flush.len().div_ceil(FLUSH_THREADS);
        std::thread::scope(|scope| {
            let handles: Vec<_> = to_flush
                .chunks(chunk)
                .map(|part| {
                    let by_store = &by_store;
                    scope.spawn(move || {
                        part.iter()
                            .map(|&i| (i, by_store[i].0.flush()))
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
    for (i, ((store, _, replies), result)) in by_store.into_iter().zip(committed).enumerate() {
        let result = result.and_then(|seqs| {
            flushed
                .remove(&i)
                .unwrap_or(Err(StoreError::Poisoned))
                .map(|()| seqs)
        });
        match result {
            Ok(seqs) => {
                for (reply, seqs) in replies.into_iter().zip(seqs) {
                    let _ = reply.send(Ok(seqs));
                }
            }
            Err(e) => {
                tracing::error!(store = %store.path().display(), "commit failed: {e}");
                let msg = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Io(std::io::Error::other(msg.clone()))));
                }
            }
        }
    }
}
