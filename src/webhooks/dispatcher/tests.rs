//! The worker driven under paused time with a scripted transport: schedules, order, limits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Semaphore;

use super::*;
use crate::sessions::config::SessionConfig;
use crate::sessions::endpoint_id;
use crate::sessions::Storage;
use crate::store::{split_delivery_key, DeliveryJob, EventRecord, Faults, JobState, Work};
use crate::webhooks::client::{AnswerFuture, Request};
use tokio::task::JoinHandle;

mod cursor;

const URL: &str = "http://127.0.0.1:9/hook";

type Script = Box<dyn Fn(&str, usize) -> Answer + Send + Sync>;

/// Records every request with the (paused) time it was sent, and answers from a script of
/// (event id, how many times this id was sent before).
struct Fake {
    tx: UnboundedSender<(Instant, Request)>,
    script: Script,
    counts: Mutex<HashMap<String, usize>>,
    /// When set, each answer waits for a permit: the test decides when requests finish.
    gate: Option<Arc<Semaphore>>,
    out: Arc<AtomicUsize>,
    max_out: Arc<AtomicUsize>,
}

impl Transport for Fake {
    fn send(&self, req: Request) -> AnswerFuture {
        let id = header(&req, "x-webhook-request-id");
        let n = {
            let mut c = self.counts.lock().expect("lock");
            let n = c.entry(id.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let answer = (self.script)(&id, n);
        let _ = self.tx.send((Instant::now(), req));
        let gate = self.gate.clone();
        let out = self.out.clone();
        let now_out = out.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_out.fetch_max(now_out, Ordering::SeqCst);
        Box::pin(async move {
            if let Some(g) = gate {
                g.acquire().await.expect("gate").forget();
            }
            out.fetch_sub(1, Ordering::SeqCst);
            answer
        })
    }
}

fn header(req: &Request, name: &str) -> String {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn fail(error: &str) -> Answer {
    Answer::Failed {
        error: error.into(),
        retry_after: None,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    registry: Arc<Registry>,
    session: Arc<Session>,
    rx: UnboundedReceiver<(Instant, Request)>,
    max_out: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    fake: Arc<Fake>,
    clock: Clock,
    concurrency: usize,
    worker: Option<JoinHandle<()>>,
}

async fn session_with(dir: &tempfile::TempDir, hooks: Value) -> (Arc<Registry>, Arc<Session>) {
    let config = crate::Config::for_dir(dir.path());
    let (wake_tx, _wake_rx) = unbounded_channel();
    let registry = Arc::new(
        Registry::open(
            dir.path(),
            crate::environment(&config),
            None,
            wake_tx,
            Storage {
                max_queued: 1024,
                faults: Faults::default(),
                max_open: 256,
                reopen_after: 10_000,
            },
        )
        .expect("registry"),
    );
    let session_config: SessionConfig =
        serde_json::from_value(json!({ "webhooks": hooks })).expect("config");
    let name = SessionName::parse("s").expect("name");
    let unanswered: crate::reply::Render<_> = Box::new(|_| crate::reply::Reply {
        status: 201,
        body: Vec::new(),
        remember: None,
    });
    registry
        .create(name.clone(), session_config, true, unanswered)
        .await
        .expect("session");
    let session = registry.get(&name).expect("created");
    (registry, session)
}

async fn setup(retries: Value, concurrency: usize, gated: bool, script: Script) -> Setup {
    let dir = tempfile::tempdir().expect("dir");
    let (registry, session) = session_with(
        &dir,
        json!([{"url": URL, "events": ["group.v2.update"], "retries": retries}]),
    )
    .await;
    let (tx, rx) = unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let max_out = Arc::new(AtomicUsize::new(0));
    let fake = Arc::new(Fake {
        tx,
        script,
        counts: Mutex::new(HashMap::new()),
        gate: gated.then(|| gate.clone()),
        out: Arc::new(AtomicUsize::new(0)),
        max_out: max_out.clone(),
    });
    let mut t = Setup {
        _dir: dir,
        registry,
        session,
        rx,
        max_out,
        gate,
        fake,
        clock: Clock::new(),
        concurrency,
        worker: None,
    };
    t.start_worker();
    t
}

impl Setup {
    /// Starts a worker as a restart would: nothing in memory, everything from the store.
    fn start_worker(&mut self) {
        if let Some(w) = self.worker.take() {
            w.abort();
        }
        let worker = Worker::new(
            self.registry.clone(),
            self.session.clone(),
            endpoint_id(URL),
            self.fake.clone(),
            self.clock,
            self.concurrency,
            Arc::new(Notify::new()),
        );
        self.worker = Some(tokio::spawn(worker.run()));
    }

    /// Commits one `group.v2.update` per (group, event id), in order.
    fn commit(&self, events: &[(&str, &str)]) {
        let rec = self.session.record();
        let evs: Vec<EventRecord> = events
            .iter()
            .map(|(g, id)| EventRecord {
                name: "group.v2.update".into(),
                group: Some((*g).into()),
                body:
                    json!({"id": id, "timestamp": 1_700_000_000_000u64, "event": "group.v2.update"})
                        .to_string(),
            })
            .collect();
        self.session
            .store
            .commit_record(&rec, &evs, &self.registry.endpoints(&rec))
            .expect("commit");
    }

    async fn next(&mut self) -> (Instant, Request) {
        tokio::time::timeout(Duration::from_secs(3600), self.rx.recv())
            .await
            .expect("a request in time")
            .expect("open")
    }

    /// The dead jobs: (seq, job).
    async fn dead_after_waiting(&self, n: usize) -> Vec<(u64, DeliveryJob)> {
        for _ in 0..10_000 {
            if self.session.store.job_count(JobState::Dead).expect("count") >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.session
            .store
            .jobs(JobState::Dead, usize::MAX)
            .expect("dead jobs")
            .into_iter()
            .map(|(k, job)| (split_delivery_key(&k).expect("key").1, job))
            .collect()
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test(start_paused = true)]
async fn a_failing_receiver_is_retried_on_the_constant_schedule_then_dead_lettered() {
    let mut t = setup(
        json!({"policy": "constant", "delaySeconds": 2, "attempts": 3}),
        8,
        false,
        Box::new(|_, _| fail("HTTP 500")),
    )
    .await;
    t.commit(&[("g1", "evt_a")]);
    let (t0, first) = t.next().await;
    let mut gaps = Vec::new();
    let mut prev = t0;
    for _ in 0..3 {
        let (at, req) = t.next().await;
        assert_eq!(req.body, first.body, "every retry carries the same bytes");
        assert_eq!(header(&req, "x-webhook-request-id"), "evt_a");
        gaps.push(ms(at - prev));
        prev = at;
    }
    assert!(gaps.iter().all(|g| (2000..2010).contains(g)), "{gaps:?}");
    let dead = t.dead_after_waiting(1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].1.attempts, 4);
    assert_eq!(dead[0].1.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(
        t.session.store.job_count(JobState::Pending).expect("count"),
        0
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(600), t.rx.recv())
            .await
            .is_err(),
        "nothing more is sent after the last attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn exponential_retries_double_with_at_most_twenty_percent_jitter() {
    let mut t = setup(
        json!({"policy": "exponential", "delaySeconds": 1, "attempts": 3}),
        8,
        false,
        Box::new(|_, n| {
            if n < 3 {
                fail("HTTP 503")
            } else {
                Answer::Delivered
            }
        }),
    )
    .await;
    t.commit(&[("g1", "evt_a")]);
    let (mut prev, _) = t.next().await;
    for want in [2000u128, 4000, 8000] {
        let (at, _) = t.next().await;
        let gap = ms(at - prev);
        assert!(
            gap >= want && gap <= want * 12 / 10 + 10,
            "gap {gap} ms, want {want} ms + at most 20 %"
        );
        prev = at;
    }
    for _ in 0..10_000 {
        if t.session.store.job_count(JobState::Pending).expect("count") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        (t.session.store.job_count(JobState::Pending).expect("count") == 0),
        "delivered on the 4th try"
    );
    assert!((t.session.store.job_count(JobState::Dead).expect("count") == 0));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_over_a_shorter_policy_delay() {
    let mut t = setup(
        json!({"policy": "constant", "delaySeconds": 1, "attempts": 5}),
        8,
        false,
        Box::new(|_, n| {
            if n == 0 {
                Answer::Failed {
                    error: "HTTP 429".into(),
                    retry_after: Some("7".into()),
                }
            } else {
                Answer::Delivered
            }
        }),
    )
    .await;
    t.commit(&[("g1", "evt_a")]);
    let (t0, _) = t.next().await;
    let (t1, _) = t.next().await;
    assert!((7000..7010).contains(&ms(t1 - t0)), "{:?}", t1 - t0);
}

#[tokio::test(start_paused = true)]
async fn a_job_waiting_for_a_retry_holds_back_only_its_own_group() {
    let mut t = setup(
        json!({"policy": "constant", "delaySeconds": 5, "attempts": 5}),
        8,
        false,
        Box::new(|id, n| {
            if id == "evt_a1" && n == 0 {
                fail("HTTP 500")
            } else {
                Answer::Delivered
            }
        }),
    )
    .await;
    t.commit(&[
        ("a", "evt_a1"),
        ("b", "evt_b1"),
        ("a", "evt_a2"),
        ("b", "evt_b2"),
    ]);
    let (t0, first) = t.next().await;
    let mut sent = vec![(header(&first, "x-webhook-request-id"), 0)];
    for _ in 0..4 {
        let (at, req) = t.next().await;
        sent.push((header(&req, "x-webhook-request-id"), ms(at - t0) / 1000));
    }
    let sent: Vec<(&str, u128)> = sent.iter().map(|(i, s)| (i.as_str(), *s)).collect();
    assert_eq!(
        sent,
        [
            ("evt_a1", 0),
            ("evt_b1", 0),
            ("evt_b2", 0),
            ("evt_a1", 5),
            ("evt_a2", 5),
        ],
        "group b goes on while a waits; a2 only after a1 got through"
    );
}

#[tokio::test(start_paused = true)]
async fn no_more_than_the_concurrency_limit_is_in_flight_and_never_two_of_one_group() {
    let mut t = setup(
        json!({"attempts": 0}),
        3,
        true,
        Box::new(|_, _| Answer::Delivered),
    )
    .await;
    let ids: Vec<String> = (0..10).map(|i| format!("evt_{i}")).collect();
    // Four groups of two, then two more in a fifth group.
    let events: Vec<(&str, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (["g0", "g1", "g2", "g3", "g4"][(i / 2) % 5], id.as_str()))
        .collect();
    t.commit(&events);
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(header(&t.next().await.1, "x-webhook-request-id"));
    }
    assert_eq!(
        first,
        ["evt_0", "evt_2", "evt_4"],
        "the heads of three groups, not a group's second event"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(60), t.rx.recv())
            .await
            .is_err(),
        "a fourth request waits for a free slot"
    );
    t.gate.add_permits(100);
    let mut n = 3;
    while n < 10 {
        t.next().await;
        n += 1;
    }
    assert_eq!(t.max_out.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_worker_resumes_from_the_persisted_attempt_count_and_time() {
    let mut t = setup(
        json!({"policy": "constant", "delaySeconds": 2, "attempts": 3}),
        8,
        false,
        Box::new(|_, _| fail("HTTP 502")),
    )
    .await;
    t.commit(&[("g1", "evt_a")]);
    let (t0, _) = t.next().await;
    t.next().await;
    let key = crate::store::delivery_key(endpoint_id(URL), t.session.store.last_seq());
    for _ in 0..10_000 {
        let job = t.session.store.job(JobState::Pending, &key).expect("read");
        if job.is_some_and(|j| j.attempts == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.start_worker();
    let (t2, _) = t.next().await;
    let (t3, _) = t.next().await;
    assert!(
        (4000..4020).contains(&ms(t2 - t0)),
        "third try keeps its time: {:?}",
        t2 - t0
    );
    assert!((6000..6030).contains(&ms(t3 - t0)), "{:?}", t3 - t0);
    let dead = t.dead_after_waiting(1).await;
    assert_eq!(
        dead[0].1.attempts, 4,
        "four tries in all, across the restart"
    );
}

#[tokio::test]
async fn old_events_are_pruned_unless_a_pending_or_dead_delivery_needs_them() {
    let dir = tempfile::tempdir().expect("dir");
    let (registry, session) =
        session_with(&dir, json!([{"url": URL, "events": ["group.v2.update"]}])).await;
    // Pruning stops at the first event inside the window (the log is in time order), so
    // the window is placed after everything but one event stamped in the future.
    let now = now_ms() + 7_200_000;
    let ev = |name: &str, id: &str, timestamp: u64| EventRecord {
        name: name.into(),
        group: Some("g".into()),
        body: json!({"id": id, "timestamp": timestamp, "event": name}).to_string(),
    };
    let rec = session.record();
    let seqs = session
        .store
        .commit_record(
            &rec,
            &[
                ev("group.v2.leave", "evt_unwanted", now_ms()),
                ev("group.v2.update", "evt_pending", now_ms()),
                ev("group.v2.update", "evt_dead", now_ms()),
                ev("group.v2.leave", "evt_recent", now),
            ],
            &registry.endpoints(&rec),
        )
        .expect("commit");
    let dead_key = crate::store::delivery_key(endpoint_id(URL), seqs[2]);
    let pending = session.store.jobs(JobState::Pending, 100).expect("read");
    let (_, job) = pending
        .into_iter()
        .find(|(k, _)| *k == dead_key)
        .expect("job");
    session
        .commit(Work::bury(dead_key, &job).expect("work"), Vec::new())
        .await
        .expect("to dead");
    let before = session.store.events_after(0, 100).expect("events").len();

    let (pruned, _) = prune(&registry, 3_600_000, now).expect("prune");

    let left: Vec<u64> = session
        .store
        .events_after(0, 100)
        .expect("events")
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(
        left,
        seqs[1..],
        "kept: the pending, the dead and the recent one"
    );
    assert_eq!(
        pruned,
        before - 3,
        "the session.status events and the unwanted one"
    );
}

#[test]
fn the_stamp_is_read_from_the_envelope_head_or_else_parsed() {
    let quick = Stamp::of(br#"{"id":"evt_1","timestamp":1700000000123,"event":"x"}"#)
        .expect("the gateway's own key order");
    assert_eq!(
        (quick.id.as_str(), quick.timestamp),
        ("evt_1", 1_700_000_000_123)
    );
    let other =
        Stamp::of(br#"{"timestamp":5,"event":"x","id":"evt_\u0032"}"#).expect("any key order");
    assert_eq!((other.id.as_str(), other.timestamp), ("evt_2", 5));
    let escaped = Stamp::of(br#"{"id":"evt_\u0033","timestamp":7}"#).expect("escaped id");
    assert_eq!((escaped.id.as_str(), escaped.timestamp), ("evt_3", 7));
    assert!(Stamp::of(br#"{"id":"evt_1","timestamp":"soon"}"#).is_none());
    assert!(Stamp::of(b"not json").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_wait_counted_from_the_clock_never_ends_early_between_milliseconds() {
    let clock = Clock::new();
    tokio::time::advance(Duration::from_micros(1_500)).await;
    let started = Instant::now();
    let due = clock.instant_at(clock.now_ms_ceil() + 2_000);
    assert!(
        due - started >= Duration::from_secs(2),
        "{:?}",
        due - started
    );
    // The floor is what due checks compare with: a job due now is not due a millisecond early.
    assert_eq!(clock.now_ms() + 1, clock.now_ms_ceil());
}
