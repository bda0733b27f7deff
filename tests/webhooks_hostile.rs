//! Hostile receivers against the real binary (contract §4): a 300 MiB body, an endless one, a
//! trickling one, headers that never come, a redirect. Each attempt ends within the timeout,
//! the gateway's memory stays put, a redirect is never followed, and the other groups and
//! webhooks of the session are delivered meanwhile.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::process::{self, Wagate};
use common::raw::{raw_receiver, RawReceiver, RawRequest, Reply};
use reqwest::Method;
use serde_json::{json, Value};

const FRIEND: &str = "4915112345678@c.us";
const TIMEOUT: Duration = Duration::from_secs(2);
/// What an attempt may take beyond the timeout on a loaded machine.
const SLACK: Duration = Duration::from_millis(1500);
const MAX_GROWTH_KIB: u64 = 32 * 1024;

fn subject(r: &RawRequest) -> String {
    r.json()["payload"]["group"]["subject"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn ok() -> Reply {
    Reply::Full {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// A receiver that answers the group named "Hostile" with `hostile()`, and any other at once.
async fn hostile(hostile: impl Fn() -> Reply + Send + Sync + 'static) -> RawReceiver {
    raw_receiver(move |r| {
        if subject(r) == "Hostile" {
            hostile()
        } else {
            ok()
        }
    })
    .await
}

async fn dead(gw: &Wagate) -> Vec<Value> {
    let (status, body) = gw
        .call(
            Method::GET,
            "/api/h/webhooks/deliveries?state=dead",
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .expect("json")
        .as_array()
        .expect("array")
        .clone()
}

async fn group(gw: &Wagate, name: &str) {
    let (status, body) = gw
        .call(
            Method::POST,
            "/api/h/groups",
            Some(json!({"name": name, "participants": [{"id": FRIEND}]})),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// The next request of each receiver, which must be about the group `name`: when it came.
async fn each_gets(receivers: &mut [&mut RawReceiver], name: &str) -> Vec<Instant> {
    let mut at = Vec::new();
    for r in receivers.iter_mut() {
        let req = r.next(10).await;
        assert_eq!(subject(&req), name, "{}", req.head);
        at.push(req.at);
    }
    at
}

/// The next `n` requests of a receiver, in whatever order they come: when each group's came.
async fn gets(r: &mut RawReceiver, n: usize) -> HashMap<String, Instant> {
    let mut at = HashMap::new();
    for _ in 0..n {
        let req = r.next(10).await;
        at.insert(subject(&req), req.at);
    }
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_receivers_cost_one_timeout_and_no_memory_and_hold_back_nothing_else() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = process::start(dir.path(), &[("WAGATE_WEBHOOK_TIMEOUT_SECONDS", "2")]).await;
    let mut target = raw_receiver(|_| ok()).await;
    let location = target.url.clone();
    let mut huge = hostile(|| Reply::Huge {
        status: 500,
        len: 300 * 1024 * 1024,
    })
    .await;
    let mut endless = hostile(|| Reply::Endless { status: 500 }).await;
    let mut trickle = hostile(|| Reply::Trickle {
        status: 500,
        every: Duration::from_millis(100),
    })
    .await;
    let mut silent = hostile(|| Reply::Silent).await;
    let mut redirect = hostile(move || Reply::Full {
        status: 307,
        headers: vec![("location", location.clone())],
        body: Vec::new(),
    })
    .await;
    let mut good = raw_receiver(|_| ok()).await;
    let expected = [
        (&huge.url, "HTTP 500"),
        (&endless.url, "HTTP 500"),
        (&trickle.url, "HTTP 500"),
        (&silent.url, "timeout: no answer within 2 s"),
        (&redirect.url, "HTTP 307"),
    ]
    .map(|(u, e)| (u.clone(), e));
    let hooks: Vec<Value> = [&huge, &endless, &trickle, &silent, &redirect, &good]
        .iter()
        .map(|r| json!({"url": r.url, "events": ["group.v2.join"], "retries": {"attempts": 0}}))
        .collect();
    let (status, body) = gw
        .call(
            Method::POST,
            "/api/sessions",
            Some(json!({"name": "h", "config": {"webhooks": hooks}})),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // A first round that every receiver answers well: the client, its pool and its buffers
    // exist before the baseline is taken.
    group(&gw, "Warm-up").await;
    let mut all = [
        &mut huge,
        &mut endless,
        &mut trickle,
        &mut silent,
        &mut redirect,
        &mut good,
    ];
    each_gets(&mut all, "Warm-up").await;
    let baseline = gw.rss_kib();

    group(&gw, "Hostile").await;
    group(&gw, "Other").await;
    let mut hostile_at = Vec::new();
    let mut other_at = Vec::new();
    for r in all.iter_mut() {
        let at = gets(r, 2).await;
        hostile_at.push(at["Hostile"]);
        other_at.push(at["Other"]);
    }
    // Every webhook got the other group while the slowest hostile attempts (the trickle, the
    // silence) could not have ended yet.
    let still_running = hostile_at[2].min(hostile_at[3]) + TIMEOUT;
    for at in &other_at {
        assert!(
            *at < still_running,
            "delivered while the hostile attempts ran"
        );
    }

    let mut peak = baseline;
    let mut ended = vec![None; expected.len()];
    let deadline = Instant::now() + TIMEOUT + SLACK + Duration::from_secs(3);
    while ended.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "attempts still running: {:?}",
            dead(&gw).await
        );
        peak = peak.max(gw.rss_kib());
        let dead = dead(&gw).await;
        for (i, (url, error)) in expected.iter().enumerate() {
            if ended[i].is_some() {
                continue;
            }
            if let Some(d) = dead.iter().find(|d| d["url"] == url.as_str()) {
                assert_eq!(d["lastError"], *error, "{url}");
                ended[i] = Some(Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (i, end) in ended.iter().enumerate() {
        let took = end.map(|e| e - hostile_at[i]).unwrap_or_default();
        eprintln!("{}: ended after {took:?}", expected[i].0);
        assert!(took < TIMEOUT + SLACK, "{}: {took:?}", expected[i].0);
    }
    eprintln!("RSS {baseline} KiB, at most {peak} KiB");
    assert!(
        peak.saturating_sub(baseline) < MAX_GROWTH_KIB,
        "RSS grew from {baseline} KiB to {peak} KiB"
    );
    assert!(
        target.rx.try_recv().is_err() && target.connections.load(Ordering::SeqCst) == 0,
        "the redirect's target never gets the POST"
    );
    assert_eq!(
        dead(&gw).await.len(),
        expected.len(),
        "only the hostile answers failed"
    );
}
