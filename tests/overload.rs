//! More work than the gateway can hold (contract §4): 300 connections rename groups for 5 s
//! against `WAGATE_MAX_INFLIGHT=16` on a disk slowed to 50 ms a flush. Every answer is 2xx or an
//! immediate 503 `overloaded` with `Retry-After: 1`, `/ping` answers throughout, memory stays
//! bounded, a write succeeds again within 5 s of the end, and after a `kill -9` every
//! acknowledged rename is in the log while no refused one is.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::history::{subject_refused, History, Outcome};
use common::http::{call, call_ok};
use common::process;
use serde_json::{json, Value};

const CONNECTIONS: usize = 300;
const FLOOD: Duration = Duration::from_secs(5);
const GROUPS: usize = 4;
/// The gateway idles at about 20 MiB. With the 300 connections open it peaked at 95 MiB here
/// (111 MiB on a branch without the limit, every request admitted): its memory follows the
/// open connections, about 0.3 MiB each. One that queued what it refuses would grow with every
/// refused request (over 100,000 in 5 s). 256 MiB leaves room for a loaded machine and an
/// allocator's moods and still catches that.
const RSS_BOUND_KIB: u64 = 256 * 1024;

/// 16 requests in progress at most, on a disk whose every flush takes 50 ms longer; the log
/// (every refused request is not worth a line) holds errors only.
const ENV: [(&str, &str); 3] = [
    ("WAGATE_MAX_INFLIGHT", "16"),
    ("WAGATE_TEST_FSYNC_DELAY_MS", "50"),
    ("RUST_LOG", "error"),
];

/// What the flood's answers were.
#[derive(Default)]
struct Tally {
    ok: usize,
    overloaded: usize,
    /// Any other answer: status and body.
    other: Vec<String>,
    /// Requests that got no answer at all.
    connection_errors: Vec<String>,
}

/// One connection's loop: renames its group as fast as answers come, until `until`.
async fn flood(
    base: String,
    groups: Arc<Vec<String>>,
    worker: usize,
    until: Instant,
    history: History,
    tally: Arc<Mutex<Tally>>,
) {
    // A client of its own: its own connection, as 300 separate clients would have.
    let http = reqwest::Client::new();
    let gi = worker % GROUPS;
    let url = format!("{base}/api/o/groups/{}/subject", groups[gi]);
    for n in 0.. {
        if Instant::now() >= until {
            return;
        }
        let subject = format!("w{worker}-{n}");
        let at = history.send(gi, &subject);
        let answer = call(&http, "PUT", &url, Some(&json!({"subject": subject}))).await;
        let mut t = tally.lock().expect("tally");
        match answer {
            Ok(a) if a.ok() => {
                history.answered(at, true);
                t.ok += 1;
            }
            Ok(a)
                if a.status == 503
                    && a.code() == "overloaded"
                    && a.headers.get("retry-after").is_some_and(|v| v == "1") =>
            {
                history.answered(at, false);
                t.overloaded += 1;
            }
            // Left in flight in the history: whether it happened is unknown.
            Ok(a) => t
                .other
                .push(format!("{} {:?} {}", a.status, a.headers, a.body)),
            Err(e) => t.connection_errors.push(e.to_string()),
        }
    }
}

/// What the watcher saw: the pings made, those not answered 200, the slowest one, the peak RSS.
#[derive(Default)]
struct Watched {
    pings: usize,
    failed: Vec<String>,
    slowest: Duration,
    peak_rss_kib: u64,
}

/// Pings every 100 ms until `until`, sampling the gateway's memory (`VmRSS`) at each.
async fn watch(base: String, pid: u32, until: Instant) -> Watched {
    let http = reqwest::Client::new();
    let mut w = Watched::default();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while Instant::now() < until {
        tick.tick().await;
        let t = Instant::now();
        w.pings += 1;
        match call(&http, "GET", &format!("{base}/ping"), None).await {
            Ok(a) if a.status == 200 => w.slowest = w.slowest.max(t.elapsed()),
            Ok(a) => w.failed.push(format!("{} {}", a.status, a.body)),
            Err(e) => w.failed.push(e.to_string()),
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        w.peak_rss_kib = w.peak_rss_kib.max(kib);
    }
    w
}

/// The subjects of the session's `group.v2.update` events, read from the whole log.
async fn logged_subjects(http: &reqwest::Client, base: &str) -> HashSet<String> {
    let (mut out, mut after) = (HashSet::new(), String::new());
    loop {
        let url = format!("{base}/api/o/events?limit=1000&after={after}");
        let page = call_ok(http, "GET", &url, None).await;
        let page = page.as_array().expect("array");
        let Some(last) = page.last() else {
            return out;
        };
        after = last["cursor"].as_str().expect("cursor").to_owned();
        for e in page {
            if e["envelope"]["event"] == "group.v2.update" {
                let subject = &e["envelope"]["payload"]["group"]["subject"];
                out.extend(subject.as_str().map(str::to_owned));
            }
        }
    }
}

/// Session `o` with `GROUPS` groups of one outside contact; answers their ids.
async fn setup(http: &reqwest::Client, base: &str, history: &History) -> Arc<Vec<String>> {
    let url = format!("{base}/api/sessions");
    call_ok(http, "POST", &url, Some(json!({"name": "o"}))).await;
    let mut groups = Vec::new();
    for gi in 0..GROUPS {
        let name = format!("created-g{gi}");
        let body = json!({"name": name, "participants": [{"id": "4915112345678@c.us"}]});
        let info = call_ok(http, "POST", &format!("{base}/api/o/groups"), Some(body)).await;
        history.created(gi, &name);
        groups.push(info["id"].as_str().expect("id").to_owned());
    }
    Arc::new(groups)
}

/// What the flood saw: its answers, and what the watcher saw meanwhile.
struct Flooded {
    tally: Tally,
    watched: Watched,
}

/// `CONNECTIONS` connections renaming for `FLOOD` while `/ping` and the memory are watched.
async fn flood_all(base: &str, pid: u32, groups: &Arc<Vec<String>>, history: &History) -> Flooded {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let until = Instant::now() + FLOOD;
    let watcher = tokio::spawn(watch(base.to_owned(), pid, until));
    let mut workers = Vec::new();
    for w in 0..CONNECTIONS {
        let (history, tally) = (history.clone(), tally.clone());
        let task = flood(base.to_owned(), groups.clone(), w, until, history, tally);
        workers.push(tokio::spawn(task));
    }
    for w in workers {
        w.await.expect("a flood connection");
    }
    let watched = watcher.await.expect("the watcher");
    let tally = std::mem::take(&mut *tally.lock().expect("tally"));
    Flooded { tally, watched }
}

/// Renames group `id` (index 0) until a rename is acknowledged, for at most 5 s; answers how
/// long it took.
async fn write_again(http: &reqwest::Client, base: &str, id: &str, history: &History) -> Duration {
    let start = Instant::now();
    let mut n = 0;
    common::wait_for(5, "a write to succeed after the flood", || {
        n += 1;
        let subject = format!("after-{n}");
        let at = history.send(0, &subject);
        let url = format!("{base}/api/o/groups/{id}/subject");
        async move {
            let a = call(http, "PUT", &url, Some(&json!({"subject": subject}))).await;
            let ok = a.as_ref().is_ok_and(|a| a.ok());
            if a.is_ok() {
                history.answered(at, ok);
            }
            ok
        }
    })
    .await;
    start.elapsed()
}

/// What the flood must not have seen.
fn flood_failures(f: &Flooded) -> Vec<String> {
    let t = &f.tally;
    let checks = [
        (
            !t.other.is_empty(),
            format!(
                "answers other than 2xx and 503 overloaded with Retry-After: 1 ({}), e.g. {:?}",
                t.other.len(),
                t.other.first()
            ),
        ),
        (
            !t.connection_errors.is_empty(),
            format!(
                "{} requests got no answer, e.g. {:?}",
                t.connection_errors.len(),
                t.connection_errors.first()
            ),
        ),
        (
            t.overloaded == 0,
            "no request was refused as overloaded: nothing limits the requests in progress"
                .to_owned(),
        ),
        (
            t.ok == 0,
            "no rename was acknowledged during the flood".to_owned(),
        ),
        (
            !f.watched.failed.is_empty(),
            format!("/ping failed during the flood: {:?}", f.watched.failed),
        ),
        (
            f.watched.peak_rss_kib >= RSS_BOUND_KIB,
            format!(
                "peak RSS {} MiB, bound {} MiB",
                f.watched.peak_rss_kib / 1024,
                RSS_BOUND_KIB / 1024
            ),
        ),
    ];
    checks
        .into_iter()
        .filter(|(bad, _)| *bad)
        .map(|(_, why)| why)
        .collect()
}

/// After a kill -9 and a restart: every acknowledged rename is in the log, no refused one is,
/// and each group's subject is its last acknowledged one or one sent after it.
async fn restart_failures(
    http: &reqwest::Client,
    base: &str,
    groups: &[String],
    history: &History,
) -> Vec<String> {
    let logged = logged_subjects(http, base).await;
    let renames = history.snapshot();
    let renamed = |o: Outcome| {
        renames
            .iter()
            .filter(move |a| a.outcome == o && !a.subject.starts_with("created-"))
    };
    let lost: Vec<&str> = renamed(Outcome::Acked)
        .filter(|a| !logged.contains(&a.subject))
        .map(|a| a.subject.as_str())
        .collect();
    let leaked: Vec<&str> = renamed(Outcome::Refused)
        .filter(|a| logged.contains(&a.subject))
        .map(|a| a.subject.as_str())
        .collect();
    let mut stale = Vec::new();
    for (gi, id) in groups.iter().enumerate() {
        let info: Value = call_ok(http, "GET", &format!("{base}/api/o/groups/{id}"), None).await;
        let subject = info["subject"].as_str().expect("subject");
        stale.extend(subject_refused(&renames, gi, subject).map(|why| format!("g{gi}: {why}")));
    }
    let checks = [
        (
            !lost.is_empty(),
            format!(
                "{} acknowledged renames are not in the log after the kill, e.g. {:?}",
                lost.len(),
                lost.first()
            ),
        ),
        (
            !leaked.is_empty(),
            format!(
                "{} renames refused as overloaded are in the log, e.g. {:?}",
                leaked.len(),
                leaked.first()
            ),
        ),
        (
            !stale.is_empty(),
            format!("subjects older than an acknowledged rename: {stale:?}"),
        ),
    ];
    checks
        .into_iter()
        .filter(|(bad, _)| *bad)
        .map(|(_, why)| why)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_max_inflight_is_refused_at_once_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gw = process::start(dir.path(), &ENV).await;
    let (http, history) = (reqwest::Client::new(), History::default());
    let groups = setup(&http, &gw.base, &history).await;
    let f = flood_all(&gw.base, gw.child.id(), &groups, &history).await;
    let recovered = write_again(&http, &gw.base, &groups[0], &history).await;
    let counted = overloaded_total(&http, &gw.base).await;
    drop(gw); // SIGKILL
    history.killed(Instant::now());
    let gw = process::start(dir.path(), &ENV).await;
    let mut failures = flood_failures(&f);
    failures.extend(restart_failures(&http, &gw.base, &groups, &history).await);
    let t = &f.tally;
    if counted < t.overloaded as f64 {
        failures.push(format!(
            "/metrics counts {counted} refused as overloaded, the clients saw {}",
            t.overloaded
        ));
    }
    println!(
        "{CONNECTIONS} connections for {FLOOD:?}: {} answered 2xx, {} 503 overloaded, {} other, {} connection errors; {} pings, slowest {:?}; peak RSS {} MiB; a write succeeded {recovered:?} after the flood",
        t.ok,
        t.overloaded,
        t.other.len(),
        t.connection_errors.len(),
        f.watched.pings,
        f.watched.slowest,
        f.watched.peak_rss_kib / 1024,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `wagate_overloaded_total` as `/metrics` shows it.
async fn overloaded_total(http: &reqwest::Client, base: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("body");
    text.lines()
        .find_map(|l| l.strip_prefix("wagate_overloaded_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no wagate_overloaded_total in {text}"))
}
