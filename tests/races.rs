//! Check-then-act races: a stop against changes in flight, two retries of one dead delivery,
//! an account change against a group add. Each holds for every interleaving; the store's flush
//! is slowed (fault seam) to widen the windows in which the old code broke.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::{gateway_in, receiver, wait_for, Gateway};
use serde_json::{json, Value};
use wagate::store::Faults;

const FRIEND: &str = "4915112345678@c.us";

async fn slow_gateway(flush: Duration) -> Gateway {
    let faults = Faults::default();
    faults.set_flush_delay(flush);
    let dir = tempfile::tempdir().expect("dir");
    gateway_in(dir, |c| c.faults = faults).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_group_change_lands_after_a_stop_was_answered() {
    let gw = Arc::new(slow_gateway(Duration::from_millis(20)).await);
    gw.session("s", None, None).await;
    let gid = gw.group("s", "Team", &[FRIEND]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let done = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..16 {
        let (gw, gid, done) = (gw.clone(), gid.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let (status, body) = gw
                    .put(
                        &format!("/api/s/groups/{gid}/subject"),
                        json!({"subject": format!("w{w}-{i}")}),
                    )
                    .await;
                match status.as_u16() {
                    200 => done.fetch_add(1, Ordering::SeqCst),
                    422 => return body["code"].clone(),
                    other => panic!("a change answered {other}: {body}"),
                };
            }
            Value::Null
        }));
    }
    wait_for(10, "changes to be made", || async {
        done.load(Ordering::SeqCst) >= 32
    })
    .await;
    let (status, body) = gw.post("/api/sessions/s/stop", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "STOPPED");
    for w in writers {
        assert_eq!(w.await.expect("writer"), "session_not_working");
    }
    let log = gw.events("s").await;
    let stopped = log
        .iter()
        .position(|e| e["event"] == "session.status" && e["payload"]["status"] == "STOPPED")
        .expect("the STOPPED event");
    let late: Vec<&Value> = log[stopped..]
        .iter()
        .filter(|e| e["event"] == "group.v2.update")
        .map(|e| &e["payload"]["group"]["subject"])
        .collect();
    assert!(late.is_empty(), "changes landed after STOPPED: {late:?}");
}

async fn dead(gw: &Gateway) -> Vec<Value> {
    let (_, body) = gw.get("/api/dl/webhooks/deliveries?state=dead").await;
    body.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_retries_of_one_dead_delivery_at_once_move_it_once() {
    let gw = slow_gateway(Duration::from_millis(20)).await;
    let mut rx = receiver(|n| if n == 0 { 500 } else { 200 }).await;
    gw.session(
        "dl",
        None,
        Some(json!([{"url": rx.url, "events": ["group.v2.join"], "retries": {"attempts": 0}}])),
    )
    .await;
    gw.group("dl", "Dead", &[FRIEND]).await;
    let first = rx.next(5).await;
    wait_for(5, "the delivery to be dead-lettered", || async {
        dead(&gw).await.len() == 1
    })
    .await;
    let id = dead(&gw).await[0]["id"].as_str().expect("id").to_owned();
    let path = format!("/api/dl/webhooks/deliveries/{id}/retry");
    let (one, two) = tokio::join!(gw.post(&path, json!({})), gw.post(&path, json!({})));
    let mut statuses = [one.0.as_u16(), two.0.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 404], "{} / {}", one.1, two.1);
    let again = rx.next(5).await;
    assert_eq!(again.body, first.body);
    wait_for(5, "nothing pending or dead", || async {
        let (_, p) = gw.get("/api/dl/webhooks/deliveries").await;
        p.as_array().is_some_and(Vec::is_empty) && dead(&gw).await.is_empty()
    })
    .await;
    assert!(rx.rx.try_recv().is_err(), "the event went out twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_change_never_leaves_a_session_holding_a_group_of_its_old_account() {
    let gw = Arc::new(slow_gateway(Duration::from_millis(10)).await);
    gw.session("a", Some("11111111111@c.us"), None).await;
    gw.session("b", Some("20000000000@c.us"), None).await;
    let gid = gw.group("a", "Team", &[]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut account = 20_000_000_000u64;
    for _ in 0..12 {
        let (old, new) = (format!("{account}@c.us"), format!("{}@c.us", account + 1));
        let add = {
            let (gw, gid, old) = (gw.clone(), gid.clone(), old.clone());
            tokio::spawn(async move {
                gw.post(
                    &format!("/api/a/groups/{gid}/participants/add"),
                    json!({"participants": [{"id": old}]}),
                )
                .await
            })
        };
        let config = json!({"config": {"local": {"me": {"id": new}}}});
        let (status, body) = gw.put("/api/sessions/b", config).await;
        let (added, result) = add.await.expect("add");
        assert_eq!(added, StatusCode::OK, "{result}");
        let (_, held) = gw.get("/api/b/groups").await;
        let held = held.as_array().map_or(0, Vec::len);
        match status.as_u16() {
            200 => {
                assert_eq!(held, 0, "b took account {new} but holds a group as {old}");
                account += 1;
            }
            409 => {
                assert_eq!(body["code"], "session_in_groups", "{body}");
                assert_eq!(held, 1, "refused because b holds the group");
            }
            other => panic!("the account change answered {other}: {body}"),
        }
        let (status, body) = gw
            .post(
                &format!("/api/a/groups/{gid}/participants/remove"),
                json!({"participants": [{"id": old}]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
