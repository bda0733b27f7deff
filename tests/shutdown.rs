//! SIGTERM, as Docker, systemd and Kubernetes stop a process (contract §8): the request in
//! progress is answered and its change kept, the delivery in flight is ended with its job left
//! pending, and the process exits 0 within 10 s; after a restart that delivery goes out.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{start, Wagate};
use common::wait_for;
use serde_json::{json, Value};
use tokio::sync::Notify;

/// A receiver that holds every request open while `stall` is set (never answering it), and
/// answers 200 otherwise; it records the event id of every request that reached it.
struct Receiver {
    url: String,
    stall: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn receiver() -> Receiver {
    let stall = Arc::new(AtomicBool::new(true));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (s, r) = (stall.clone(), seen.clone());
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        r.lock()
            .expect("lock")
            .push(v["id"].as_str().unwrap_or_default().to_owned());
        let stalled = s.load(Ordering::SeqCst);
        async move {
            if stalled {
                // Held until the gateway gives up on it: it never comes.
                Notify::new().notified().await;
            }
            axum::http::StatusCode::OK
        }
    });
    let addr = common::serve_app(app).await;
    Receiver {
        url: format!("http://{addr}/hook"),
        stall,
        seen,
    }
}

fn seen(r: &Receiver) -> Vec<String> {
    r.seen.lock().expect("lock").clone()
}

async fn json_call(gw: &Wagate, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = gw.call(method, path, Some(body), &[]).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A session whose webhook takes `group.v2.update`, and one group of it: answers the group id.
async fn session_with_group(gw: &Wagate, hook_url: &str) -> String {
    let hook = json!({"url": hook_url, "events": ["group.v2.update"],
        "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 100}});
    let body = json!({"name": "s", "config": {"webhooks": [hook]}});
    let (status, answer) = json_call(gw, reqwest::Method::POST, "/api/sessions", body).await;
    assert_eq!(status, 201, "{answer}");
    let body = json!({"name": "team", "participants": [{"id": "4915112345678@c.us"}]});
    let (status, group) = json_call(gw, reqwest::Method::POST, "/api/s/groups", body).await;
    assert_eq!(status, 201, "{group}");
    group["id"].as_str().expect("id").to_owned()
}

/// Waits up to `secs` for the process to exit; answers its exit code.
fn exit_code_within(gw: &mut Wagate, secs: u64) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = gw.child.try_wait().expect("try_wait") {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "still running {secs} s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_the_request_in_progress_ends_the_delivery_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().expect("dir");
    let hook = receiver().await;
    // Every flush takes 800 ms: a change stays in progress long enough to be caught in it.
    let env = [
        ("WAGATE_TEST_FSYNC_DELAY_MS", "800"),
        ("RUST_LOG", "info,wagate=debug"),
    ];
    let mut gw = start(dir.path(), &env).await;
    let id = session_with_group(&gw, &hook.url).await;

    // A delivery in flight: the rename's event reaches the receiver, which never answers.
    let path = format!("/api/s/groups/{id}/subject");
    let (status, _) = json_call(&gw, reqwest::Method::PUT, &path, json!({"subject": "a"})).await;
    assert_eq!(status, 200);
    wait_for(15, "the rename's delivery to reach the receiver", || {
        let n = seen(&hook).len();
        async move { n == 1 }
    })
    .await;
    let in_flight = seen(&hook)[0].clone();

    // A request in progress: its id's `started` line is in the log, its answer not yet sent.
    let path = format!("/api/s/groups/{id}/description");
    let slow = {
        let (base, path) = (gw.base.clone(), path.clone());
        tokio::spawn(async move {
            let r = reqwest::Client::new()
                .put(format!("{base}{path}"))
                .header("X-Request-Id", "slow-1")
                .json(&json!({"description": "kept"}))
                .send()
                .await
                .expect("answered, not cut off");
            (r.status().as_u16(), r.text().await.expect("body"))
        })
    };
    wait_for(15, "the description change to be in progress", || {
        let log = gw.log_text();
        async move {
            log.lines()
                .any(|l| l.contains("request_id=slow-1") && l.ends_with("started"))
        }
    })
    .await;
    assert!(!slow.is_finished(), "answered before the stop signal");

    let pid = gw.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    assert_eq!(
        slow.await.expect("task"),
        (200, "true".to_owned()),
        "the request in progress is answered"
    );
    assert_eq!(exit_code_within(&mut gw, 10), Some(0));
    let log = gw.log_text();
    assert!(log.contains("stopped"), "{log}");
    drop(gw);

    // After a restart: the change answered before the exit is there, and the delivery that was
    // in flight goes out again (its job stayed pending), then the description's.
    hook.stall.store(false, Ordering::SeqCst);
    let gw = start(dir.path(), &[]).await;
    let (status, text) = gw
        .call(
            reqwest::Method::GET,
            &format!("/api/s/groups/{id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let group: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(group["description"], "kept");
    wait_for(15, "both events delivered after the restart", || {
        let n = seen(&hook).len();
        async move { n >= 3 }
    })
    .await;
    let got = seen(&hook);
    assert_eq!(got[1], in_flight, "the delivery in flight is sent again");
    assert_ne!(got[2], in_flight, "then the description's event");
}
