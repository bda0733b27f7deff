//! Storage faults (contract §4): a flush that fails, a read-only data dir, a disk that fills up
//! (a real tmpfs), a member's store that fails during a fan-out. Each: the client is told the
//! truth, no event of a change that was not made is ever listed or delivered, reads keep
//! working, and writes come back without a restart.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::groups::{delivered_until, subject_of};
use common::{gateway_in, receiver, wait_for, Gateway, Receiver};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use wagate::store::{FaultKind, Faults};

const FRIEND: &str = "4915112345678@c.us";

/// A request through the router: status, `Retry-After` and JSON body.
async fn send(gw: &Gateway, method: &str, path: &str, body: Value) -> (u16, Option<String>, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = gw.router.clone().oneshot(req).await.expect("answer");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, retry_after, json)
}

async fn rename(
    gw: &Gateway,
    session: &str,
    gid: &str,
    subject: &str,
) -> (u16, Option<String>, Value) {
    send(
        gw,
        "PUT",
        &format!("/api/{session}/groups/{gid}/subject"),
        json!({ "subject": subject }),
    )
    .await
}

/// The subjects of the session's `group.v2.update` events, oldest first.
async fn logged_subjects(gw: &Gateway, session: &str) -> Vec<String> {
    gw.events(session)
        .await
        .iter()
        .filter(|e| e["event"] == "group.v2.update")
        .filter_map(|e| e["payload"]["group"]["subject"].as_str().map(str::to_owned))
        .collect()
}

/// A gateway with the fault seam, a session `s` whose webhook takes `group.v2.update`, a group.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_flush_fails_is_answered_503_and_none_of_its_events_is_listed_or_delivered()
{
    let faults = Faults::default();
    let (gw, mut rx, gid) = setup(&faults).await;
    assert_eq!(rename(&gw, "s", &gid, "one").await.0, 200);

    faults.fail_flushes(Some(FaultKind::Io));
    let (status, retry_after, body) = rename(&gw, "s", &gid, "lost").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "storage_unavailable");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(subject_of(&gw, "s", &gid).await, "one");
    let (status, health) = gw.get("/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["store"], "failing");
    assert_eq!(logged_subjects(&gw, "s").await, ["one"]);

    faults.fail_flushes(None);
    wait_for(5, "writes to work again without a restart", || async {
        rename(&gw, "s", &gid, "two").await.0 == 200
    })
    .await;
    assert_eq!(subject_of(&gw, "s", &gid).await, "two");
    assert_eq!(logged_subjects(&gw, "s").await, ["one", "two"]);
    // One group's events arrive in order: had "lost" gone out, it would come before "two".
    assert_eq!(delivered_until(&mut rx, "two").await, ["one", "two"]);
    assert_eq!(gw.get("/health").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_dir_is_answered_503_and_reads_keep_working() {
    let faults = Faults::default();
    let (gw, _rx, gid) = setup(&faults).await;
    faults.fail_flushes(Some(FaultKind::ReadOnly));
    let (status, _, body) = rename(&gw, "s", &gid, "never").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "storage_unavailable");
    assert!(
        body["message"].as_str().unwrap_or("").contains("read-only"),
        "{body}"
    );
    let (status, _, body) = send(
        &gw,
        "POST",
        "/api/s/groups",
        json!({"name": "New", "participants": []}),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(subject_of(&gw, "s", &gid).await, "Team");
    let (status, list) = gw.get("/api/s/groups").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "the refused create left no group"
    );
    faults.fail_flushes(None);
    wait_for(5, "writes to work again", || async {
        rename(&gw, "s", &gid, "back").await.0 == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_never_leaves_before_its_change_is_durable() {
    // The worker is busy while the change's flush is slow and then fails: a retry of another
    // group's event falls due, and its own bookkeeping shares the failing round and makes it
    // reload its jobs from the store. The failed change's job is in sled's memory meanwhile; it
    // must never be seen, then or later (it would come before "kept": one group, in order).
    let faults = Faults::default();
    let dir = tempfile::tempdir().expect("dir");
    let gw = gateway_in(dir, |c| c.faults = faults.clone()).await;
    let mut rx = receiver(|n| if n == 0 { 500 } else { 200 }).await;
    let hooks = json!([{"url": rx.url, "events": ["group.v2.update"],
        "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 5}}]);
    gw.session("s", None, Some(hooks)).await;
    let other = gw.group("s", "Other", &[FRIEND]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let gid = gw.group("s", "Team", &[FRIEND]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(rename(&gw, "s", &other, "retried").await.0, 200);
    let first = rx.next(5).await.json();
    assert_eq!(
        first["payload"]["group"]["subject"], "retried",
        "the first try, refused"
    );

    faults.set_flush_delay(Duration::from_millis(1500));
    faults.fail_flushes(Some(FaultKind::Io));
    let (status, _, body) = rename(&gw, "s", &gid, "lost").await;
    assert_eq!(status, 503, "{body}");
    faults.set_flush_delay(Duration::ZERO);
    faults.fail_flushes(None);
    wait_for(5, "writes to work again", || async {
        rename(&gw, "s", &gid, "kept").await.0 == 200
    })
    .await;
    let mut got = Vec::new();
    while !got.iter().any(|s| s == "kept") {
        let r = rx.next(10).await.json();
        got.push(
            r["payload"]["group"]["subject"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    assert!(
        !got.iter().any(|s| s == "lost"),
        "a change that was not made went out: {got:?}"
    );
}

/// A tmpfs mounted by the test; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u32) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { dir }),
            Ok(o) => {
                println!(
                    "SKIPPED: cannot mount a tmpfs here: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file until the filesystem is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_answered_507_and_writes_resume_when_space_is_freed() {
    let Some(fs) = Tmpfs::mount(24) else {
        return;
    };
    let data = tempfile::tempdir_in(fs.dir.path()).expect("data dir on the tmpfs");
    let gw = gateway_in(data, |_| {}).await;
    let mut rx = receiver(|_| 200).await;
    gw.session(
        "s",
        None,
        Some(json!([{"url": rx.url, "events": ["group.v2.update"]}])),
    )
    .await;
    let gid = gw.group("s", "Team", &[FRIEND]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(rename(&gw, "s", &gid, "before").await.0, 200);
    assert_eq!(delivered_until(&mut rx, "before").await, ["before"]);

    let filler = fs.dir.path().join("filler");
    fill(&filler);
    let mut acked = vec!["before".to_owned()];
    let mut refused = Vec::new();
    for i in 0..500 {
        let subject = format!("full-{i}");
        let (status, _, body) = rename(&gw, "s", &gid, &subject).await;
        match status {
            200 => acked.push(subject),
            507 => {
                assert_eq!(body["code"], "storage_full", "{body}");
                refused.push(subject);
                break;
            }
            other => panic!("a full disk answered {other}: {body}"),
        }
    }
    assert!(!refused.is_empty(), "the disk never filled up");
    let last = acked.last().cloned().unwrap_or_default();
    assert_eq!(
        subject_of(&gw, "s", &gid).await,
        last,
        "reads keep working, without the refused change"
    );
    assert_eq!(logged_subjects(&gw, "s").await, acked);

    std::fs::remove_file(&filler).expect("free the space");
    wait_for(10, "writes to resume once there is space", || async {
        rename(&gw, "s", &gid, "after").await.0 == 200
    })
    .await;
    acked.push("after".into());
    assert_eq!(logged_subjects(&gw, "s").await, acked);
    let delivered = delivered_until(&mut rx, "after").await;
    assert_eq!(
        delivered,
        acked[1..],
        "every acknowledged change's event, no refused one"
    );
}

/// Sessions `a` and `b` (accounts A and B) in one group, `b` with a webhook.
async fn two_members(faults: &Faults, dir: tempfile::TempDir) -> (Gateway, Receiver, String) {
    let gw = gateway_in(dir, |c| c.faults = faults.clone()).await;
    let rx = receiver(|_| 200).await;
    gw.session("a", Some("11111111111@c.us"), None).await;
    gw.session(
        "b",
        Some("22222222222@c.us"),
        Some(json!([{"url": rx.url, "events": ["group.v2.update"]}])),
    )
    .await;
    let gid = gw.group("a", "Team", &["22222222222@c.us"]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    (gw, rx, gid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_share_that_fails_is_applied_in_the_background_and_holds_later_changes() {
    let faults = Faults::default();
    let dir = tempfile::tempdir().expect("dir");
    let b_store = dir.path().join("sessions").join("b");
    let (gw, mut rx, gid) = two_members(&faults, dir).await;
    faults.fail_flushes_under(Some(FaultKind::Io), Some(&b_store));
    let (status, _, body) = rename(&gw, "a", &gid, "x").await;
    assert_eq!(
        status, 200,
        "a committed change is answered as such: {body}"
    );
    assert_eq!(subject_of(&gw, "a", &gid).await, "x");
    assert_eq!(
        subject_of(&gw, "b", &gid).await,
        "Team",
        "b's copy is behind"
    );
    let (status, retry_after, body) = rename(&gw, "a", &gid, "y").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "group_catching_up");
    assert_eq!(retry_after.as_deref(), Some("1"));

    faults.fail_flushes(None);
    wait_for(10, "b's copy to catch up", || async {
        subject_of(&gw, "b", &gid).await == "x"
    })
    .await;
    assert_eq!(rename(&gw, "a", &gid, "y").await.0, 200);
    let (_, a) = gw.get(&format!("/api/a/groups/{gid}")).await;
    let (_, b) = gw.get(&format!("/api/b/groups/{gid}")).await;
    assert_eq!(a["subject"], b["subject"]);
    assert_eq!(a["participants"], b["participants"]);
    assert_eq!(delivered_until(&mut rx, "y").await, ["x", "y"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_still_failing_at_start_up_is_retried_in_the_background() {
    let faults = Faults::default();
    let dir = tempfile::tempdir().expect("dir");
    let b_store = dir.path().join("sessions").join("b");
    let (gw, _rx, gid) = two_members(&faults, dir).await;
    faults.fail_flushes_under(Some(FaultKind::Io), Some(&b_store));
    assert_eq!(rename(&gw, "a", &gid, "x").await.0, 200);
    let Gateway { dir, state, router } = gw;
    drop(router);
    drop(state);

    // The stores close once the dropped gateway's tasks have let go of them.
    let mut config = wagate::Config::for_dir(dir.path());
    config.faults = faults.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let state = loop {
        match wagate::open(&config).await {
            Ok((state, _)) => break state,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the gateway did not open again: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let gw = Gateway {
        router: wagate::app(state.clone()),
        state,
        dir,
    };
    assert_eq!(
        subject_of(&gw, "b", &gid).await,
        "Team",
        "still failing: b's copy is behind"
    );
    faults.fail_flushes(None);
    wait_for(10, "b's copy to catch up after the start", || async {
        subject_of(&gw, "b", &gid).await == "x"
    })
    .await;
    assert_eq!(rename(&gw, "b", &gid, "from b").await.0, 200);
    assert_eq!(subject_of(&gw, "a", &gid).await, "from b");
}
