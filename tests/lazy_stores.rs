//! Sessions' stores opened on first use and closed when idle (`WAGATE_MAX_OPEN_STORES`), with the
//! real binary: the open ones stay under the cap while every session keeps working, a restart
//! after a stop opens none of them (the catalog describes them) and still finds every group,
//! invite code and pending delivery, and a write to a store reopened from the catalog survives
//! `kill -9` (its summary was forgotten before the write); busy stores are closed and opened
//! again as they log (`WAGATE_STORE_REOPEN_EVENTS`) without a change refused or an event lost.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use common::process::{start, Wagate};

fn account(i: usize) -> String {
    format!("4915100000{i:03}@c.us")
}

async fn call(gw: &Wagate, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, text) = gw.call(method, path, body, &[]).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn ok(gw: &Wagate, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, v) = call(gw, method.clone(), path, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

async fn create_session(gw: &Wagate, name: &str, me: &str, webhooks: Value) {
    let body = json!({"name": name, "config": {"local": {"me": {"id": me}}, "webhooks": webhooks}});
    ok(gw, Method::POST, "/api/sessions", Some(body)).await;
}

/// The value of the `/metrics` line that starts with `series ` (name and labels), if shown.
async fn metric(gw: &Wagate, series: &str) -> Option<u64> {
    let (status, text) = gw.call(Method::GET, "/metrics", None, &[]).await;
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// `wagate_open_stores` as `/metrics` shows it now.
async fn open_stores(gw: &Wagate) -> u64 {
    metric(gw, "wagate_open_stores")
        .await
        .unwrap_or_else(|| panic!("no wagate_open_stores in /metrics"))
}

async fn open_stores_at_most(gw: &Wagate, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let open = open_stores(gw).await;
        if open <= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{open} stores still open, expected at most {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM, then waits for exit 0.
fn stop(mut gw: Wagate) {
    let pid = gw.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = gw.child.try_wait().expect("try_wait") {
            assert_eq!(status.code(), Some(0), "{}", gw.log_text());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn group_ids(groups: &Value) -> Vec<String> {
    let list = groups.as_array().expect("a list of groups");
    list.iter()
        .filter_map(|g| g["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_sessions_under_a_cap_of_two_share_a_group_across_a_restart_that_opens_no_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [("WAGATE_MAX_OPEN_STORES", "2")];
    let gw = start(dir.path(), &env).await;
    for i in 0..6 {
        create_session(&gw, &format!("s{i}"), &account(i), json!([])).await;
    }
    let members: Vec<Value> = (1..5).map(|i| json!({"id": account(i)})).collect();
    let body = json!({"name": "Everyone", "participants": members});
    let g = ok(&gw, Method::POST, "/api/s0/groups", Some(body)).await;
    let gid = g["id"].as_str().expect("id").to_owned();
    let invite = g["invite"]
        .as_str()
        .expect("the creator sees the invite")
        .to_owned();
    open_stores_at_most(&gw, 2).await;
    // Every member's store opens again on use, and its copy of the group is there.
    for i in 0..5 {
        let groups = ok(&gw, Method::GET, &format!("/api/s{i}/groups"), None).await;
        assert_eq!(group_ids(&groups), std::slice::from_ref(&gid), "s{i}");
    }
    open_stores_at_most(&gw, 2).await;
    stop(gw);

    let gw = start(dir.path(), &env).await;
    assert_eq!(
        open_stores(&gw).await,
        0,
        "a start after a stop opens no store"
    );
    let all = ok(&gw, Method::GET, "/api/sessions?all=true", None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(6), "{all}");
    // The invite index came from the catalog: s5 joins by the code, and a member whose store is
    // closed gets the change.
    let joined = ok(
        &gw,
        Method::POST,
        "/api/s5/groups/join",
        Some(json!({"code": invite})),
    )
    .await;
    assert_eq!(joined["id"], gid);
    let s3 = ok(&gw, Method::GET, &format!("/api/s3/groups/{gid}"), None).await;
    let ids: Vec<&str> = s3["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(ids.contains(&account(5).as_str()), "{s3}");
    open_stores_at_most(&gw, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_a_store_reopened_from_the_catalog_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [("WAGATE_MAX_OPEN_STORES", "1")];
    let gw = start(dir.path(), &env).await;
    create_session(&gw, "a", &account(1), json!([])).await;
    create_session(&gw, "b", &account(2), json!([])).await;
    stop(gw);

    let gw = start(dir.path(), &env).await;
    assert_eq!(open_stores(&gw).await, 0);
    let body = json!({"config": {"local": {"me": {"id": account(1)}}, "metadata": {"v": "2"}}});
    ok(&gw, Method::PUT, "/api/sessions/a", Some(body)).await;
    let g = ok(
        &gw,
        Method::POST,
        "/api/a/groups",
        Some(json!({"name": "Late"})),
    )
    .await;
    let gid = g["id"].as_str().expect("id").to_owned();
    let invite = g["invite"].as_str().expect("invite").to_owned();
    drop(gw); // kill -9

    let gw = start(dir.path(), &env).await;
    let a = ok(&gw, Method::GET, "/api/sessions/a", None).await;
    assert_eq!(a["config"]["metadata"], json!({"v": "2"}), "{a}");
    let groups = ok(&gw, Method::GET, "/api/a/groups", None).await;
    assert_eq!(group_ids(&groups), std::slice::from_ref(&gid));
    let joined = ok(
        &gw,
        Method::POST,
        "/api/b/groups/join",
        Some(json!({"code": invite})),
    )
    .await;
    assert_eq!(joined["id"], gid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_pending_when_its_store_closed_goes_out_after_a_restart() {
    let accept = Arc::new(AtomicBool::new(false));
    let gate = accept.clone();
    let mut recv = common::receiver(move |_| {
        if gate.load(Ordering::SeqCst) {
            200
        } else {
            503
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [("WAGATE_MAX_OPEN_STORES", "1")];
    let gw = start(dir.path(), &env).await;
    let hook = json!([{"url": recv.url, "events": ["group.v2.join"],
        "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 100}}]);
    create_session(&gw, "a", &account(1), hook).await;
    create_session(&gw, "b", &account(2), json!([])).await;
    let g = ok(
        &gw,
        Method::POST,
        "/api/a/groups",
        Some(json!({"name": "Held"})),
    )
    .await;
    let refused = recv.next(10).await;
    assert_eq!(refused.json()["payload"]["group"]["id"], g["id"]);
    stop(gw);

    accept.store(true, Ordering::SeqCst);
    let gw = start(dir.path(), &env).await;
    let again = recv.next(10).await;
    assert_eq!(
        again.json()["id"],
        refused.json()["id"],
        "the same event, sent again"
    );
    drop(gw);
}

/// `wagate_store_closes_total{reason="worn"}` as `/metrics` shows it now (none yet: 0).
async fn worn_closes(gw: &Wagate) -> u64 {
    metric(gw, "wagate_store_closes_total{reason=\"worn\"}")
        .await
        .unwrap_or(0)
}

/// Four sessions change their groups without pause while their stores are closed every 20
/// events (and under a cap of two open): every change is answered 2xx, and each session's
/// webhook gets every subject, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_stores_reopened_every_few_events_refuse_no_change_and_lose_no_event() {
    let mut recv = common::receiver(|_| 200).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("WAGATE_MAX_OPEN_STORES", "2"),
        ("WAGATE_STORE_REOPEN_EVENTS", "20"),
    ];
    let gw = Arc::new(start(dir.path(), &env).await);
    let hook = json!([{"url": recv.url, "events": ["group.v2.update"]}]);
    let mut gids = Vec::new();
    for i in 0..4 {
        create_session(&gw, &format!("s{i}"), &account(i), hook.clone()).await;
        let body = json!({"name": "n0"});
        let g = ok(&gw, Method::POST, &format!("/api/s{i}/groups"), Some(body)).await;
        gids.push(g["id"].as_str().expect("id").to_owned());
    }
    // Rounds of 10 changes per session, all sessions at once, until the closer has closed
    // worn stores at least 8 times (each store logs 10 events a round).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    while worn_closes(&gw).await < 8 {
        assert!(Instant::now() < deadline, "no store closed as worn in 60 s");
        let tasks: Vec<_> = gids
            .iter()
            .enumerate()
            .map(|(i, gid)| {
                let (gw, gid) = (gw.clone(), gid.clone());
                tokio::spawn(async move {
                    for k in sent + 1..=sent + 10 {
                        let path = format!("/api/s{i}/groups/{gid}/subject");
                        let body = json!({"subject": format!("n{k}")});
                        ok(&gw, Method::PUT, &path, Some(body)).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("a writer");
        }
        sent += 10;
    }
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); 4];
    while seen.iter().map(Vec::len).sum::<usize>() < 4 * sent {
        let e = recv.next(20).await.json();
        let gid = e["payload"]["group"]["id"].as_str().unwrap_or_default();
        let i = gids
            .iter()
            .position(|g| g == gid)
            .expect("one of the groups");
        let subject = e["payload"]["group"]["subject"]
            .as_str()
            .unwrap_or_default();
        seen[i].push(subject.to_owned());
    }
    let all: Vec<String> = (1..=sent).map(|k| format!("n{k}")).collect();
    for (i, subjects) in seen.iter().enumerate() {
        assert_eq!(subjects, &all, "s{i}'s webhook");
    }
}
