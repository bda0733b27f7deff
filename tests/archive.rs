//! The event log's old part leaves sled for the session's archive once its webhook has taken it
//! (docs/architecture.md, "The archive"). A user sees none of it: `/events` lists the whole log
//! in commit order, before and after a kill -9 that lands while events are being moved, and the
//! webhook gets every event.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::process::{start, Wagate};
use common::recorder::{Mode, Recorder};
use common::wait_for;
use serde_json::{json, Value};

/// Renames group `gid` `S{from}`… `S{to-1}` over 8 connections; the subjects answered 200.
async fn renames(base: &str, gid: &str, from: usize, to: usize, acked: Arc<Mutex<Vec<String>>>) {
    let next = Arc::new(Mutex::new(from));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (base, gid, next, acked) =
            (base.to_owned(), gid.to_owned(), next.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let i = {
                    let mut n = next.lock().expect("lock");
                    *n += 1;
                    *n - 1
                };
                if i >= to {
                    return;
                }
                let subject = format!("S{i}");
                let url = format!("{base}/api/arch/groups/{gid}/subject");
                let Ok(r) = client
                    .put(url)
                    .json(&json!({"subject": subject}))
                    .send()
                    .await
                else {
                    return; // the process is gone
                };
                if r.status() == 200 {
                    acked.lock().expect("lock").push(subject);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
}

/// The whole log through `/events`: each envelope.
async fn whole_log(gw: &Wagate) -> Vec<Value> {
    common::whole_log("arch", |path| async move {
        let (status, text) = gw.call(reqwest::Method::GET, &path, None, &[]).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
    .await
}

/// The subjects of the log's renames, in log order.
fn subjects(log: &[Value]) -> Vec<String> {
    log.iter()
        .filter(|e| e["event"] == "group.v2.update")
        .filter_map(|e| e["payload"]["group"]["subject"].as_str().map(str::to_owned))
        .collect()
}

fn archive_files(data: &Path) -> usize {
    std::fs::read_dir(data.join("sessions/arch/archive"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
            })
            .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_log_lists_whole_and_in_order_across_a_kill_dash_nine() {
    let dir = tempfile::tempdir().expect("dir");
    let rec = Recorder::start(Mode::Accept).await;
    let gw = start(dir.path(), &[]).await;
    let hook = json!({"url": rec.url, "events": ["*"]});
    let body = json!({"name": "arch", "config": {"webhooks": [hook]}});
    let (status, text) = gw
        .call(reqwest::Method::POST, "/api/sessions", Some(body), &[])
        .await;
    assert_eq!(status, 201, "{text}");
    let body = json!({"name": "Archive", "participants": [{"id": "4915112345678@c.us"}]});
    let (status, text) = gw
        .call(reqwest::Method::POST, "/api/arch/groups", Some(body), &[])
        .await;
    assert_eq!(status, 201, "{text}");
    let gid = serde_json::from_str::<Value>(&text).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    renames(&gw.base, &gid, 0, 1500, acked.clone()).await;
    wait_for(60, "old events to reach the archive", || async {
        archive_files(dir.path()) > 0
    })
    .await;
    let before = whole_log(&gw).await;
    let first: Vec<String> = (0..1500).map(|i| format!("S{i}")).collect();
    let mut listed = subjects(&before);
    listed.sort();
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "each rename listed once");

    // More renames, and a kill -9 while the archiver moves them.
    let (base, g, a) = (gw.base.clone(), gid.clone(), acked.clone());
    let burst = tokio::spawn(async move { renames(&base, &g, 1500, 6000, a).await });
    wait_for(60, "the archive to take more", || async {
        archive_files(dir.path()) > 1 || acked.lock().expect("lock").len() > 3000
    })
    .await;
    let mut gw = gw;
    gw.child.kill().expect("kill -9");
    gw.child.wait().expect("reaped");
    burst.await.expect("burst");
    drop(gw);

    let gw = start(dir.path(), &[]).await;
    let after = whole_log(&gw).await;
    assert_eq!(
        after[..before.len()],
        before[..],
        "the log as listed before the kill"
    );
    let ids: Vec<&str> = after.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "no event listed twice"
    );
    let listed: HashSet<String> = subjects(&after).into_iter().collect();
    for s in acked.lock().expect("lock").iter() {
        assert!(
            listed.contains(s),
            "{s} was answered 200 but is not in the log"
        );
    }
    let wanted: HashSet<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    wait_for(60, "the webhook to get every listed event", || {
        let (rec, wanted) = (rec.clone(), wanted.clone());
        async move {
            let got: HashSet<String> = rec
                .hits()
                .iter()
                .filter(|h| h.accepted)
                .map(|h| h.id().to_owned())
                .collect();
            wanted.is_subset(&got)
        }
    })
    .await;
}
