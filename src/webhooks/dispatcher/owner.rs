//! The owner of the delivery workers: one per (session, endpoint), started at start-up and on a
//! session's first wake-up, woken after commits, stopped with their session; and pruning.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Clock, Worker};
use crate::ids::SessionName;
use crate::sessions::{Registry, Session};
use crate::store::StoreResult;
use crate::webhooks::client::Transport;

/// One worker's wake-up and task.
struct Link {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

struct SessionWorkers {
    /// Weak: only to tell a re-created session of the same name from this one.
    session: Weak<Session>,
    requeues_seen: u64,
    workers: HashMap<[u8; 8], Link>,
}

impl Drop for SessionWorkers {
    fn drop(&mut self) {
        for link in self.workers.values() {
            link.task.abort();
        }
    }
}

/// Owns the workers: starts them for every session at start-up and on a session's first
/// wake-up, wakes them after commits, stops them when their session is deleted.
pub struct Dispatcher {
    /// Weak: the dispatcher must not keep a dropped gateway (and its store files) alive.
    registry: Weak<Registry>,
    transport: Arc<dyn Transport>,
    clock: Clock,
    concurrency: usize,
    sessions: HashMap<SessionName, SessionWorkers>,
}

impl Dispatcher {
    pub fn new(
        registry: Arc<Registry>,
        transport: Arc<dyn Transport>,
        clock: Clock,
        concurrency: usize,
    ) -> Self {
        Self {
            registry: Arc::downgrade(&registry),
            transport,
            clock,
            concurrency,
            sessions: HashMap::new(),
        }
    }

    /// Serves wake-ups until the registry (the sender) is gone.
    pub async fn run(mut self, mut wake: UnboundedReceiver<SessionName>) {
        // A store closed without pending deliveries is left closed until a change wakes it.
        let names: Vec<SessionName> = match self.registry.upgrade() {
            Some(r) => r
                .list()
                .iter()
                .filter(|s| s.store.may_have_pending())
                .map(|s| s.name.clone())
                .collect(),
            None => return,
        };
        for name in names {
            self.wake(&name);
        }
        while let Some(name) = wake.recv().await {
            // Commits come in bursts: one look per session per burst.
            let mut names = HashSet::from([name]);
            while let Ok(n) = wake.try_recv() {
                names.insert(n);
            }
            for n in names {
                self.wake(&n);
            }
        }
    }

    pub fn wake(&mut self, name: &SessionName) {
        let Some(registry) = self.registry.upgrade() else {
            self.sessions.clear();
            return;
        };
        let Some(session) = registry.get(name) else {
            // Deleted: dropping its workers aborts them.
            self.sessions.remove(name);
            return;
        };
        let same = self
            .sessions
            .get(name)
            .is_some_and(|sw| std::ptr::eq(sw.session.as_ptr(), Arc::as_ptr(&session)));
        if !same {
            self.sessions.insert(
                name.clone(),
                SessionWorkers {
                    session: Arc::downgrade(&session),
                    requeues_seen: u64::MAX,
                    workers: HashMap::new(),
                },
            );
        }
        let Some(sw) = self.sessions.get_mut(name) else {
            return;
        };
        let mut endpoints: Vec<[u8; 8]> = registry
            .webhooks(&session.record())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        // Jobs of endpoints no longer configured still need a worker (to dead-letter them);
        // look for them when the session is new to us or a dead job was put back.
        let requeues = session.store.requeues();
        if requeues != sw.requeues_seen {
            match session.store.endpoints_with_jobs() {
                Ok(found) => {
                    sw.requeues_seen = requeues;
                    endpoints.extend(found);
                }
                Err(e) => tracing::error!(session = %name, "listing pending deliveries: {e}"),
            }
        }
        for ep in endpoints {
            let alive = sw.workers.get(&ep).is_some_and(|l| !l.task.is_finished());
            if alive {
                continue;
            }
            let wake = Arc::new(Notify::new());
            let worker = Worker::new(
                registry.clone(),
                session.clone(),
                ep,
                self.transport.clone(),
                self.clock,
                self.concurrency,
                wake.clone(),
            );
            let task = tokio::spawn(worker.run());
            sw.workers.insert(ep, Link { wake, task });
        }
        for link in sw.workers.values() {
            link.wake.notify_one();
        }
    }
}

/// Prunes, in every session, the events older than the retention window that no pending or
/// dead delivery needs. Blocking: call from `spawn_blocking`.
/// Also forgets expired idempotent answers. A retention of 0 keeps every event. Answers the
/// events and the answers pruned.
pub fn prune(registry: &Registry, retention_ms: u64, now_ms: u64) -> StoreResult<(usize, usize)> {
    let (mut events, mut answers) = (0, registry.gateway().prune_remembered(now_ms)?);
    // A closed store was pruned when it closed (`Registry::close_idle`).
    for s in registry.list().iter().filter(|s| s.store.is_open()) {
        let (e, a) = crate::sessions::prune_store(&s.store, retention_ms, now_ms)?;
        events += e;
        answers += a;
    }
    Ok((events, answers))
}
