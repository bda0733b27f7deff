//! Reads the `/events` logs of a gateway continuously, across restarts (the test points it at
//! each new process), and remembers every event it saw and every pass that caught up with a log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http::{call, now_ms};

/// An event the poller saw in a log.
#[derive(Debug, Clone)]
pub struct Seen {
    pub session: String,
    pub cursor: String,
    /// The envelope's `timestamp` (unix ms), which pruning goes by.
    pub ts: u64,
    /// The event's name, and the subject a `group.v2.update` carries if any.
    pub what: String,
}

/// A pass over one session's log that read every page up to an empty one, on one process.
#[derive(Debug, Clone)]
pub struct Pass {
    pub session: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Default)]
struct Inner {
    base: Mutex<String>,
    seen: Mutex<HashMap<String, Seen>>,
    passes: Mutex<Vec<Pass>>,
    stop: AtomicBool,
}

#[derive(Clone)]
pub struct Poller {
    inner: Arc<Inner>,
}

impl Poller {
    /// Starts polling each of `sessions` every `every` on the gateway at `base`.
    pub fn start(
        base: &str,
        sessions: &[&str],
        every: Duration,
    ) -> (Poller, tokio::task::JoinHandle<()>) {
        let poller = Poller {
            inner: Arc::default(),
        };
        poller.point_at(base);
        let sessions: Vec<String> = sessions.iter().map(|s| (*s).to_owned()).collect();
        let p = poller.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut cursors: HashMap<String, String> = HashMap::new();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !p.inner.stop.load(Ordering::SeqCst) {
                tick.tick().await;
                for s in &sessions {
                    let cursor = cursors.entry(s.clone()).or_default();
                    p.pass(&http, s, cursor).await;
                }
            }
        });
        (poller, task)
    }

    /// One pass over `session`'s log from `cursor`; recorded only if it caught up.
    async fn pass(&self, http: &reqwest::Client, session: &str, cursor: &mut String) {
        let base = self.inner.base.lock().expect("base").clone();
        let start_ms = now_ms();
        loop {
            let url = format!("{base}/api/{session}/events?limit=1000&after={cursor}");
            let Ok(page) = call(http, "GET", &url, None).await else {
                return;
            };
            let Some(entries) = page.body.as_array().filter(|_| page.status == 200) else {
                return;
            };
            let Some(last) = entries.last() else {
                let end_ms = now_ms();
                let pass = Pass {
                    session: session.to_owned(),
                    start_ms,
                    end_ms,
                };
                self.inner.passes.lock().expect("passes").push(pass);
                return;
            };
            let mut seen = self.inner.seen.lock().expect("seen");
            for e in entries {
                let env = &e["envelope"];
                seen.insert(
                    env["id"].as_str().unwrap_or_default().to_owned(),
                    Seen {
                        session: session.to_owned(),
                        cursor: e["cursor"].as_str().unwrap_or_default().to_owned(),
                        ts: env["timestamp"].as_u64().unwrap_or_default(),
                        what: format!(
                            "{} {}",
                            env["event"].as_str().unwrap_or_default(),
                            env["payload"]["group"]["subject"]
                                .as_str()
                                .unwrap_or_default()
                        ),
                    },
                );
            }
            last["cursor"]
                .as_str()
                .unwrap_or_default()
                .clone_into(cursor);
        }
    }

    /// Polls the gateway at `base` from now on (a restarted process listens elsewhere).
    pub fn point_at(&self, base: &str) {
        base.clone_into(&mut self.inner.base.lock().expect("base"));
    }

    pub fn seen(&self) -> HashMap<String, Seen> {
        self.inner.seen.lock().expect("seen").clone()
    }

    pub fn passes(&self) -> Vec<Pass> {
        self.inner.passes.lock().expect("passes").clone()
    }

    /// Whether a pass over `session`'s log started after `after_ms` and ended before `before_ms`:
    /// an event visible at `after_ms` and kept until `before_ms` was then read.
    pub fn caught_up_between(&self, session: &str, after_ms: u64, before_ms: u64) -> bool {
        self.passes()
            .iter()
            .any(|p| p.session == session && p.start_ms > after_ms && p.end_ms < before_ms)
    }

    /// The longest time, over every session, from the start of a complete pass to the end of
    /// the next one: an event committed meanwhile is read within it.
    pub fn longest_gap_ms(&self) -> u64 {
        let passes = self.passes();
        let mut by_session: HashMap<&str, Vec<&Pass>> = HashMap::new();
        for p in &passes {
            by_session.entry(&p.session).or_default().push(p);
        }
        by_session
            .values()
            .flat_map(|ps| ps.windows(2).map(|w| w[1].end_ms - w[0].start_ms))
            .max()
            .unwrap_or(0)
    }

    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
    }
}
