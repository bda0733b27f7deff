//! The gateway's Prometheus metrics (contract §8): every name, label and bucket in one place,
//! recorded through the `metrics` facade and rendered by `metrics-exporter-prometheus` at
//! `GET /metrics`. Speaks no HTTP: the domain records here, the API renders.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request latencies: a read answers in 0.1–1 ms, a write waits for its round's fsync (1–20 ms
/// on these machines; seconds when a disk stalls). docs/benchmarks.md has the measured figures.
/// Webhook attempts too: a receiver on the same host answers in about a millisecond, a remote
/// one in tens to hundreds, and the timeout ends an attempt at 10 s by default.
const REQUEST_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// A commit round and one store's fsync: 0.2–10 ms measured, longer under a flood.
const STORE_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Changes per commit round: 1 when idle, hundreds under load.
const ROUND_CHANGES: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use: `None` if another recorder was installed
/// first (then `/metrics` says so instead of answering empty).
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE.get_or_init(install).clone()
}

fn install() -> Option<PrometheusHandle> {
    let buckets = [
        ("wagate_http_request_duration_seconds", REQUEST_SECONDS),
        ("wagate_commit_duration_seconds", STORE_SECONDS),
        ("wagate_fsync_duration_seconds", STORE_SECONDS),
        ("wagate_commit_round_changes", ROUND_CHANGES),
        ("wagate_webhook_attempt_duration_seconds", REQUEST_SECONDS),
    ];
    let mut builder = PrometheusBuilder::new();
    for (name, bounds) in buckets {
        builder = match builder.set_buckets_for_metric(Matcher::Full(name.into()), bounds) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("metrics: buckets of {name}: {e}");
                return None;
            }
        };
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if let Err(e) = metrics::set_global_recorder(recorder) {
        tracing::error!("metrics: another recorder is installed: {e}");
        return None;
    }
    describe();
    // Histogram samples wait in buckets until drained; drain them even when nobody scrapes.
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            upkeep.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!("metrics: no upkeep thread ({e}); histograms drain on scrape only");
    }
    Some(handle)
}

fn describe() {
    describe_counter!(
        "wagate_http_requests_total",
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        "wagate_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route template"
    );
    describe_histogram!(
        "wagate_commit_duration_seconds",
        metrics::Unit::Seconds,
        "One commit round: every store's transaction and flush"
    );
    describe_histogram!(
        "wagate_fsync_duration_seconds",
        metrics::Unit::Seconds,
        "One store's flush to disk in a commit round"
    );
    describe_histogram!(
        "wagate_commit_round_changes",
        "Changes made durable together in one commit round"
    );
    describe_counter!("wagate_events_total", "Events made durable, by event name");
    describe_counter!(
        "wagate_webhook_attempts_total",
        "Webhook attempts by session, webhook (URL without user-info or query) and outcome"
    );
    describe_histogram!(
        "wagate_webhook_attempt_duration_seconds",
        metrics::Unit::Seconds,
        "Time a webhook attempt took, answer or timeout, by session and webhook"
    );
    describe_gauge!(
        "wagate_webhook_pending",
        "Deliveries waiting to be sent, by session and webhook"
    );
    describe_gauge!(
        "wagate_webhook_dead",
        "Dead deliveries (retries used up), by session and webhook"
    );
    describe_gauge!(
        "wagate_webhook_oldest_pending_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest pending delivery's event, by session and webhook (0 when none)"
    );
    describe_gauge!("wagate_sessions", "Sessions by status");
    describe_gauge!(
        "wagate_open_stores",
        "Sessions' stores open now (the rest are closed until used; cap WAGATE_MAX_OPEN_STORES)"
    );
    describe_counter!(
        "wagate_store_closes_total",
        "Sessions' stores closed, by reason: cap, idle, worn (reopened to free memory), all"
    );
    describe_counter!(
        "wagate_overloaded_total",
        "Requests refused with 503 overloaded (beyond WAGATE_MAX_INFLIGHT)"
    );
    // Shown from the start: an alert on its rate needs the series before the first refusal.
    counter!("wagate_overloaded_total").increment(0);
}

/// One HTTP request answered. `route` is the route's template (`/api/{session}/groups`), never
/// the raw path, so that the series stay few.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    counter!("wagate_http_requests_total", "method" => method.to_owned(),
        "route" => route.to_owned(), "status" => status.to_string())
    .increment(1);
    histogram!("wagate_http_request_duration_seconds", "route" => route.to_owned())
        .record(took.as_secs_f64());
}

/// One commit round: how long, and how many changes it made durable.
pub fn commit_round(changes: usize, took: Duration) {
    histogram!("wagate_commit_duration_seconds").record(took.as_secs_f64());
    histogram!("wagate_commit_round_changes").record(changes as f64);
}

/// One store's flush.
pub fn fsync(took: Duration) {
    histogram!("wagate_fsync_duration_seconds").record(took.as_secs_f64());
}

/// `n` events named `event` made durable.
pub fn events(event: &str, n: u64) {
    counter!("wagate_events_total", "event" => event.to_owned()).increment(n);
}

/// How an attempt ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    HttpError,
    Timeout,
    ConnectError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::HttpError => "http_error",
            Self::Timeout => "timeout",
            Self::ConnectError => "connect_error",
        }
    }
}

/// One webhook's attempt metrics (`session` to `webhook`, its URL without user-info or query):
/// each attempt's outcome, and how long the receiver took (whatever the outcome). The handles
/// are registered once, not per attempt: a worker records tens of thousands of attempts a
/// second, and building the labelled key and looking it up was 2 % of a drain's CPU.
pub struct AttemptMetrics {
    session: String,
    webhook: String,
    /// By `Outcome as usize`; registered on first use, so that an outcome never seen is not
    /// rendered as a zero.
    counts: [OnceLock<metrics::Counter>; 4],
    duration: metrics::Histogram,
}

impl AttemptMetrics {
    pub fn new(session: &str, webhook: &str) -> Self {
        // Handles taken before the recorder exists would record nowhere.
        let _ = handle();
        let duration = histogram!("wagate_webhook_attempt_duration_seconds",
            "session" => session.to_owned(), "webhook" => webhook.to_owned());
        Self {
            session: session.to_owned(),
            webhook: webhook.to_owned(),
            counts: Default::default(),
            duration,
        }
    }

    pub fn record(&self, outcome: Outcome, took: Duration) {
        let count = self.counts[outcome as usize].get_or_init(|| {
            counter!("wagate_webhook_attempts_total", "session" => self.session.clone(),
                "webhook" => self.webhook.clone(), "outcome" => outcome.as_str())
        });
        count.increment(1);
        self.duration.record(took.as_secs_f64());
    }
}

/// One webhook's delivery log as a scrape sees it.
pub fn webhook_backlog(session: &str, webhook: &str, pending: usize, dead: usize, oldest_s: f64) {
    let labels = [
        ("session", session.to_owned()),
        ("webhook", webhook.to_owned()),
    ];
    gauge!("wagate_webhook_pending", &labels).set(pending as f64);
    gauge!("wagate_webhook_dead", &labels).set(dead as f64);
    gauge!("wagate_webhook_oldest_pending_seconds", &labels).set(oldest_s);
}

/// How many sessions are in `status`.
pub fn sessions(status: &str, n: usize) {
    gauge!("wagate_sessions", "status" => status.to_owned()).set(n as f64);
}

/// How many sessions' stores are open now.
pub fn open_stores(n: usize) {
    gauge!("wagate_open_stores").set(n as f64);
}

/// A session's store closed by the closer: `cap` (too many open), `idle`, `worn` (it had logged
/// `WAGATE_STORE_REOPEN_EVENTS` since it opened) or `all` (at a stop).
pub fn store_closed(reason: &'static str) {
    counter!("wagate_store_closes_total", "reason" => reason).increment(1);
}

/// A request refused with 503 `overloaded`.
pub fn overloaded() {
    counter!("wagate_overloaded_total").increment(1);
}
