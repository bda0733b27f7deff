//! One hot group: many changes to ONE group at once are pipelined (queued to the committer in
//! order, answered once durable). Every change lands exactly once, in the order the answers
//! imply; and when a commit round fails, every change queued on top of the failed one fails
//! too, none of their events is listed or delivered, and the group is its last durable self.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use common::groups::{delivered_until, subject_of};
use common::{gateway_in, receiver, wait_for, Gateway, Receiver};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use wagate::ids::SessionName;
use wagate::store::{FaultKind, Faults};

const FRIEND: &str = "4915112345678@c.us";

/// `PUT subject` through the router: status and JSON body.
async fn rename(router: &axum::Router, gid: &str, subject: &str) -> (u16, Value) {
    let req = Request::builder()
        .method("PUT")
        .uri(format!("/api/s/groups/{gid}/subject"))
        .header("content-type", "application/json")
        .body(Body::from(json!({ "subject": subject }).to_string()))
        .expect("request");
    let resp = router.clone().oneshot(req).await.expect("answer");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A gateway with the fault seam, a session `s` whose webhook takes `group.v2.update`, a group
/// no other local session is in (so its subject changes are pipelined).
async fn setup(faults: &Faults) -> (Gateway, Receiver, String) {
    let dir = tempfile::tempdir().expect("dir");
    let gw = gateway_in(dir, |c| c.faults = faults.clone()).await;
    let rx = receiver(|_| 200).await;
    let hooks = json!([{"url": rx.url, "events": ["group.v2.update"]}]);
    gw.session("s", None, Some(hooks)).await;
    let gid = gw.group("s", "Team", &[FRIEND]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    (gw, rx, gid)
}

/// The group's version as the session's store holds it.
fn stored_version(gw: &Gateway, gid: &str) -> u64 {
    let name = SessionName::parse("s").expect("name");
    let session = gw.state.registry.get(&name).expect("session");
    let bytes = session.store.group(gid).expect("read").expect("held");
    let group: Value = serde_json::from_slice(&bytes).expect("json");
    group["version"].as_u64().expect("version")
}

/// The session's logged `group.v2.update`s: (cursor, subject), oldest first.
async fn logged(gw: &Gateway) -> Vec<(u64, String)> {
    let (status, body) = gw.get("/api/s/events?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .expect("array")
        .iter()
        .filter(|e| e["envelope"]["event"] == "group.v2.update")
        .map(|e| {
            let cursor = e["cursor"].as_str().expect("cursor").parse().expect("seq");
            let subject = e["envelope"]["payload"]["group"]["subject"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            (cursor, subject)
        })
        .collect()
}

/// One rename sent at `sent` and answered at `answered`.
struct Answered {
    subject: String,
    sent: Instant,
    answered: Instant,
    status: u16,
    body: Value,
}

/// Renames the group to each of `subjects`, all at once; answers each rename's times.
async fn burst(router: &axum::Router, gid: &str, subjects: Vec<String>) -> Vec<Answered> {
    let gid: Arc<str> = gid.into();
    let tasks: Vec<_> = subjects
        .into_iter()
        .map(|subject| {
            let (router, gid) = (router.clone(), gid.clone());
            tokio::spawn(async move {
                let sent = Instant::now();
                let (status, body) = rename(&router, &gid, &subject).await;
                assert!(status == 200 || status == 503, "{status} {body}");
                let answered = Instant::now();
                Answered {
                    subject,
                    sent,
                    answered,
                    status,
                    body,
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("rename task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_changes_to_one_group_each_land_once_in_the_order_the_answers_imply() {
    let faults = Faults::default();
    let (gw, mut rx, gid) = setup(&faults).await;
    let from = stored_version(&gw, &gid);
    let subjects: Vec<String> = (0..200).map(|i| format!("subject {i}")).collect();
    let answers = burst(&gw.router, &gid, subjects.clone()).await;
    assert!(
        answers.iter().all(|a| a.status == 200),
        "every change succeeds"
    );

    let log = logged(&gw).await;
    assert_eq!(log.len(), subjects.len(), "one event per change: {log:?}");
    for pair in log.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "no gap in the log: {pair:?}");
    }
    let place = |s: &str| log.iter().position(|(_, l)| l == s);
    let mut places = Vec::new();
    for a in &answers {
        places.push(place(&a.subject).expect("every change is logged"));
    }
    // A change answered before another was sent comes before it, in the log as in the group.
    for (a, pa) in answers.iter().zip(&places) {
        for (b, pb) in answers.iter().zip(&places) {
            if a.answered < b.sent {
                assert!(
                    pa < pb,
                    "{} was answered before {} was sent",
                    a.subject,
                    b.subject
                );
            }
        }
    }
    let last = &log.last().expect("logged").1;
    assert_eq!(&subject_of(&gw, "s", &gid).await, last);
    assert_eq!(
        stored_version(&gw, &gid),
        from + subjects.len() as u64,
        "one version per change"
    );
    let delivered = delivered_until(&mut rx, last).await;
    let in_log: Vec<String> = log.into_iter().map(|(_, s)| s).collect();
    assert_eq!(delivered, in_log, "delivered once each, in the log's order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_round_fails_every_change_queued_on_it_and_the_group_stays_its_last_durable_self()
{
    let faults = Faults::default();
    let (gw, mut rx, gid) = setup(&faults).await;
    assert_eq!(rename(&gw.router, &gid, "durable").await.0, 200);
    let durable = stored_version(&gw, &gid);

    // The first change's round is slow to flush, then fails: the changes sent meanwhile are
    // decided against the state it would leave and queued behind it.
    faults.set_flush_delay(Duration::from_millis(600));
    faults.fail_flushes(Some(FaultKind::Io));
    let first = {
        let router = gw.router.clone();
        let gid = gid.clone();
        tokio::spawn(async move { rename(&router, &gid, "failed").await })
    };
    wait_for(
        5,
        "the first change to be written, its flush pending",
        || async { subject_of(&gw, "s", &gid).await == "failed" },
    )
    .await;
    let queued: Vec<String> = (0..8).map(|i| format!("built on it {i}")).collect();
    let later = {
        let router = gw.router.clone();
        let gid = gid.clone();
        let queued = queued.clone();
        tokio::spawn(async move { burst(&router, &gid, queued).await })
    };
    let (status, body) = first.await.expect("first change");
    assert_eq!(status, 503, "{body}");
    // Flushes work again for the next rounds: those changes fail because of the first.
    faults.fail_flushes(None);
    let later = later.await.expect("later changes");
    for a in &later {
        assert_eq!(a.status, 503, "{} was built on a failed change", a.subject);
        // Refused by the store, still recovering from the failed round when the next round
        // comes, or (in a round after it recovered) as built on a version it never held.
        assert_eq!(a.body["code"], "storage_unavailable", "{}", a.body);
    }
    faults.set_flush_delay(Duration::ZERO);

    assert_eq!(
        subject_of(&gw, "s", &gid).await,
        "durable",
        "the last durable state"
    );
    assert_eq!(stored_version(&gw, &gid), durable);
    let subjects = |log: Vec<(u64, String)>| log.into_iter().map(|(_, s)| s).collect::<Vec<_>>();
    assert_eq!(subjects(logged(&gw).await), ["durable"]);

    wait_for(5, "writes to work again", || async {
        rename(&gw.router, &gid, "after").await.0 == 200
    })
    .await;
    assert_eq!(subject_of(&gw, "s", &gid).await, "after");
    assert_eq!(stored_version(&gw, &gid), durable + 1);
    assert_eq!(subjects(logged(&gw).await), ["durable", "after"]);
    // One group's events arrive in order: had any failed change gone out, it would come first.
    assert_eq!(
        delivered_until(&mut rx, "after").await,
        ["durable", "after"]
    );
}
