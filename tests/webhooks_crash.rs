//! The real binary killed with SIGKILL in the middle of a burst of changes while the receiver
//! is down: after a restart on the same data, every acknowledged change's events arrive.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::process::start;
use common::wait_for;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

/// One call: status and JSON body, or Err when the process is gone.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> reqwest::Result<(u16, Value)> {
    let a = common::http::call(client, method.as_str(), url, body.as_ref()).await?;
    Ok((a.status, a.body))
}

/// A receiver that is down (503) until `up` is set; it reports each body and whether it was accepted.
async fn receiver(up: Arc<AtomicBool>) -> (String, UnboundedReceiver<(bool, Value)>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let ok = up.load(Ordering::SeqCst);
        let _ = tx.send((ok, serde_json::from_slice(&body).unwrap_or(Value::Null)));
        async move {
            if ok {
                axum::http::StatusCode::OK
            } else {
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            }
        }
    });
    let addr = common::serve_app(app).await;
    (format!("http://{addr}/hook"), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_is_delivered_after_a_kill_dash_nine() {
    let dir = tempfile::tempdir().expect("dir");
    let up = Arc::new(AtomicBool::new(false));
    let (hook_url, mut rx) = receiver(up.clone()).await;
    let client = reqwest::Client::new();
    let gw = start(dir.path(), &[]).await;

    let hook = json!({"url": hook_url, "events": ["group.v2.update"],
        "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 100}});
    let (status, body) = call(
        &client,
        reqwest::Method::POST,
        &format!("{}/api/sessions", gw.base),
        Some(json!({"name": "crash", "config": {"webhooks": [hook]}})),
    )
    .await
    .expect("create session");
    assert_eq!(status, 201, "{body}");
    let mut groups = Vec::new();
    for subject in ["one", "two"] {
        let (status, body) = call(
            &client,
            reqwest::Method::POST,
            &format!("{}/api/crash/groups", gw.base),
            Some(json!({"name": subject, "participants": [{"id": "4915112345678@c.us"}]})),
        )
        .await
        .expect("create group");
        assert_eq!(status, 201, "{body}");
        groups.push(body["id"].as_str().expect("id").to_owned());
    }

    // The burst: each group renamed s0, s1, ... until the process dies under it.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut writers = Vec::new();
    for g in groups.clone() {
        let (client, acked) = (client.clone(), acked.clone());
        let url = format!("{}/api/crash/groups/{g}/subject", gw.base);
        writers.push(tokio::spawn(async move {
            for i in 0..5_000 {
                let subject = format!("s{i}");
                match call(
                    &client,
                    reqwest::Method::PUT,
                    &url,
                    Some(json!({"subject": subject})),
                )
                .await
                {
                    Ok((200, _)) => acked.lock().expect("lock").push((g.clone(), subject)),
                    Ok((status, body)) => panic!("unexpected {status}: {body}"),
                    Err(_) => break,
                }
            }
        }));
    }
    wait_for(15, "a good part of the burst to be acknowledged", || {
        let acked = acked.clone();
        async move { acked.lock().expect("lock").len() >= 150 }
    })
    .await;
    drop(gw); // SIGKILL, mid-burst
    for w in writers {
        w.await.expect("writer ends when the server dies");
    }
    let acked: Vec<(String, String)> = acked.lock().expect("lock").clone();
    assert!(acked.len() >= 150);

    let gw = start(dir.path(), &[]).await;
    up.store(true, Ordering::SeqCst);

    // Every update the log holds (a superset of the acknowledged ones) must arrive.
    let mut logged = HashSet::new();
    let mut after = String::new();
    loop {
        let (status, page) = call(
            &client,
            reqwest::Method::GET,
            &format!("{}/api/crash/events?limit=1000&after={after}", gw.base),
            None,
        )
        .await
        .expect("events");
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().expect("array").clone();
        let Some(last) = page.last() else { break };
        after = last["cursor"].as_str().expect("cursor").to_owned();
        for e in &page {
            if e["envelope"]["event"] == "group.v2.update" {
                logged.insert(e["envelope"]["id"].as_str().expect("id").to_owned());
            }
        }
    }
    let mut seen_ids = HashSet::new();
    let mut seen = HashSet::new();
    while !(acked.iter().all(|a| seen.contains(a)) && logged.is_subset(&seen_ids)) {
        let (accepted, body) = tokio::time::timeout(std::time::Duration::from_secs(15), rx.recv())
            .await
            .expect("deliveries keep coming until all arrived")
            .expect("receiver open");
        if !accepted {
            continue;
        }
        seen_ids.insert(body["id"].as_str().expect("id").to_owned());
        seen.insert((
            body["payload"]["group"]["id"]
                .as_str()
                .expect("group")
                .to_owned(),
            body["payload"]["group"]["subject"]
                .as_str()
                .expect("subject")
                .to_owned(),
        ));
    }
    assert!(logged.len() >= acked.len());
}
