//! Contract §4's webhook rows from outside, in process: a receiver's `Retry-After` far in the
//! future or unparsable never parks a delivery beyond a day, and answer bodies within the 64 KiB
//! the gateway reads let it keep its connection to the receiver.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use common::raw::{raw_receiver, Reply};
use common::{gateway, wait_for, Gateway};
use serde_json::{json, Value};

const FRIEND: &str = "4915112345678@c.us";
const DAY_MS: u64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

async fn pending(gw: &Gateway, session: &str) -> Vec<Value> {
    let (status, body) = gw
        .get(&format!("/api/{session}/webhooks/deliveries?state=pending"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().expect("array").clone()
}

/// A receiver that answers every request 503 with the `n`-th of `retry_after` (the last one
/// again when they run out), and counts the requests.
async fn refusing_receiver(retry_after: &'static [&'static str]) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let value = retry_after[n.min(retry_after.len() - 1)];
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", value.parse().expect("header value"));
            (StatusCode::SERVICE_UNAVAILABLE, headers)
        }
    });
    let addr = common::serve_app(app).await;
    (format!("http://{addr}/hook"), count)
}

/// Waits until the one pending delivery of `session` has `attempts` failed attempts; answers it.
async fn after_attempts(gw: &Gateway, session: &str, attempts: u64) -> Value {
    wait_for(
        10,
        &format!("attempt {attempts} to be recorded"),
        || async {
            pending(gw, session)
                .await
                .first()
                .map(|d| d["attempts"].clone())
                == Some(json!(attempts))
        },
    )
    .await;
    pending(gw, session).await.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_far_in_the_future_or_unparsable_never_parks_a_delivery_beyond_a_day() {
    let gw = gateway().await;
    let (url, count) = refusing_receiver(&[
        "soon",
        "Fri, 01 Jan 999999999999 00:00:00 GMT",
        "99999999999",
    ])
    .await;
    gw.session(
        "later",
        None,
        Some(json!([{"url": url, "events": ["group.v2.join"],
            "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 5}}])),
    )
    .await;
    gw.group("later", "Later", &[FRIEND]).await;

    // Unparsable values are ignored: the policy's one second applies, and the retries come.
    for attempts in [1, 2] {
        let before = now_ms();
        let d = after_attempts(&gw, "later", attempts).await;
        let next = d["nextAttemptAt"].as_u64().expect("ms");
        // The worker's clock rounds up and is anchored apart from the wall clock: a few ms of slack.
        assert!(next <= now_ms() + 1_100, "attempt {attempts}: {d}");
        assert!(next + 5_000 >= before, "attempt {attempts}: {d}");
    }
    // Eleven digits of seconds (3,000 years) become one day.
    let before = now_ms();
    let d = after_attempts(&gw, "later", 3).await;
    let next = d["nextAttemptAt"].as_u64().expect("ms");
    assert!(next <= now_ms() + DAY_MS, "at most a day ahead: {d}");
    assert!(
        next + 10_000 >= before + DAY_MS,
        "the receiver's wait, capped: {d}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(d["lastError"], "HTTP 503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_bodies_up_to_64_kib_are_read_to_their_end_so_one_connection_carries_every_delivery()
{
    let gw = gateway().await;
    // 40 KiB: more than arrives with the headers, so only reading it frees the connection.
    let mut rx = raw_receiver(|_| Reply::Full {
        status: 200,
        headers: Vec::new(),
        body: vec![b' '; 40 * 1024],
    })
    .await;
    gw.session(
        "reuse",
        None,
        Some(json!([{"url": rx.url, "events": ["group.v2.join", "group.v2.update"]}])),
    )
    .await;
    let gid = gw.group("reuse", "Reuse", &[FRIEND]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for i in 0..5 {
        rx.next(5).await;
        wait_for(5, "the delivery to be recorded", || async {
            pending(&gw, "reuse").await.is_empty()
        })
        .await;
        let (status, body) = gw
            .put(
                &format!("/api/reuse/groups/{gid}/subject"),
                json!({"subject": format!("s{i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    rx.next(5).await;
    assert_eq!(rx.connections.load(Ordering::SeqCst), 1);
}
