//! `Idempotency-Key` (contract §9): a write sent twice with one key acts once and answers the
//! same bytes twice — across kinds of writes, refusals, sessions, expiry and restarts.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::{gateway_in, Gateway};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use wagate::store::{FaultKind, Faults};

const FRIEND: &str = "4915112345678@c.us";
const OTHER: &str = "4915187654321@c.us";

/// One answer as the client sees it.
struct Answer {
    status: u16,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
    fn replayed(&self) -> bool {
        self.headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
    }
}

async fn send(gw: &Gateway, method: &str, path: &str, key: Option<&str>, body: Value) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let req = req.body(Body::from(body.to_string())).expect("request");
    let resp = gw.router.clone().oneshot(req).await.expect("answer");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        bytes,
    }
}

async fn with(faults: &Faults) -> Gateway {
    let dir = tempfile::tempdir().expect("dir");
    gateway_in(dir, |c| c.faults = faults.clone()).await
}

/// The same request twice with one key: the second is the first's bytes, marked replayed.
async fn twice(gw: &Gateway, method: &str, path: &str, key: &str, body: Value) -> Answer {
    let first = send(gw, method, path, Some(key), body.clone()).await;
    let again = send(gw, method, path, Some(key), body).await;
    assert_eq!(again.status, first.status, "{}", again.json());
    assert_eq!(again.bytes, first.bytes, "the same bytes");
    assert!(again.replayed(), "the replay says so");
    assert!(!first.replayed());
    first
}

/// How many events of session `s` are named `name`.
async fn events_named(gw: &Gateway, name: &str) -> usize {
    gw.event_names("s")
        .await
        .iter()
        .filter(|n| *n == name)
        .count()
}

/// A group "Team" of session `s` with FRIEND; answers its id.
async fn team(gw: &Gateway) -> String {
    let g = gw.group("s", "Team", &[FRIEND]).await;
    g["id"].as_str().expect("id").to_owned()
}

async fn group_count(gw: &Gateway, session: &str) -> u64 {
    gw.get(&format!("/api/{session}/groups/count")).await.1["count"]
        .as_u64()
        .expect("count")
}

#[tokio::test]
async fn a_retried_create_makes_one_group_with_one_set_of_events() {
    let gw = with(&Faults::default()).await;
    gw.session("s", None, None).await;
    let body = json!({"name": "Team", "participants": [{"id": FRIEND}]});
    let first = twice(&gw, "POST", "/api/s/groups", "create-1", body).await;
    assert_eq!(first.status, 201);
    assert_eq!(group_count(&gw, "s").await, 1);
    assert_eq!(gw.event_names("s").await, ["group.join", "group.v2.join"]);
}

#[tokio::test]
async fn a_retried_add_answers_the_same_per_id_results_and_adds_nothing_more() {
    let gw = with(&Faults::default()).await;
    gw.session("s", None, None).await;
    let gid = team(&gw).await;
    let path = format!("/api/s/groups/{gid}/participants/add");
    let body = json!({"participants": [{"id": OTHER}, {"id": FRIEND}]});
    let first = twice(&gw, "POST", &path, "add-1", body).await;
    let results = first.json();
    assert_eq!(results[0]["success"], true, "{results}");
    assert_eq!(results[1]["success"], false, "already a member: {results}");
    let adds = events_named(&gw, "group.join").await;
    assert_eq!(adds, 2, "the create's and one add's");
}

#[tokio::test]
async fn a_retried_setting_and_a_retried_revoke_act_once() {
    let gw = with(&Faults::default()).await;
    gw.session("s", None, None).await;
    let gid = team(&gw).await;
    let setting = format!("/api/s/groups/{gid}/settings/security/info-admin-only");
    let first = twice(&gw, "PUT", &setting, "set-1", json!({"adminsOnly": true})).await;
    assert_eq!(first.json(), json!(true));
    let revoke = format!("/api/s/groups/{gid}/invite-code/revoke");
    let code = twice(&gw, "POST", &revoke, "revoke-1", json!({}))
        .await
        .json();
    let (_, now) = gw.get(&format!("/api/s/groups/{gid}/invite-code")).await;
    assert_eq!(now, code, "the replay did not revoke again");
    let updates = events_named(&gw, "group.v2.update").await;
    assert_eq!(updates, 2, "one for the setting, one for the revoke");
}

#[tokio::test]
async fn the_same_key_on_another_request_is_422_and_a_bad_key_is_400() {
    let gw = with(&Faults::default()).await;
    gw.session("s", None, None).await;
    let body = json!({"name": "Team", "participants": []});
    assert_eq!(
        send(&gw, "POST", "/api/s/groups", Some("k"), body)
            .await
            .status,
        201
    );
    let other = json!({"name": "Other", "participants": []});
    let reused = send(&gw, "POST", "/api/s/groups", Some("k"), other).await;
    assert_eq!(reused.status, 422, "{}", reused.json());
    assert_eq!(reused.json()["code"], "idempotency_key_reused");
    let refresh = send(&gw, "POST", "/api/s/groups/refresh", Some("k"), json!({})).await;
    assert_eq!(refresh.status, 422, "another path");
    assert_eq!(group_count(&gw, "s").await, 1);
    for bad in ["", &"x".repeat(256), "caf\u{e9}"] {
        let req = Request::builder()
            .method("POST")
            .uri("/api/s/groups/refresh")
            .header("idempotency-key", bad.as_bytes())
            .body(Body::empty())
            .expect("request");
        let (status, body) = gw.raw(req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert!(body["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Idempotency-Key:"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_while_the_first_request_runs_is_409() {
    let faults = Faults::default();
    let gw = with(&faults).await;
    gw.session("s", None, None).await;
    faults.set_flush_delay(Duration::from_millis(300));
    let body = json!({"name": "Team", "participants": []});
    let (a, b) = tokio::join!(
        send(&gw, "POST", "/api/s/groups", Some("slow"), body.clone()),
        send(&gw, "POST", "/api/s/groups", Some("slow"), body.clone()),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    let busy = if a.status == 409 { a } else { b };
    assert_eq!(busy.json()["code"], "idempotency_in_progress");
    faults.set_flush_delay(Duration::ZERO);
    assert!(send(&gw, "POST", "/api/s/groups", Some("slow"), body)
        .await
        .replayed());
    assert_eq!(group_count(&gw, "s").await, 1);
}

#[tokio::test]
async fn refusals_are_kept_and_replayed_but_a_5xx_is_not() {
    let faults = Faults::default();
    let gw = with(&faults).await;
    gw.session("a", Some("11111111111@c.us"), None).await;
    gw.session("b", Some("22222222222@c.us"), None).await;
    let gid = gw.group("a", "Team", &["22222222222@c.us"]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/b/groups/{gid}/invite-code/revoke");
    assert_eq!(
        twice(&gw, "POST", &path, "not-admin", json!({}))
            .await
            .status,
        403
    );
    let missing = twice(
        &gw,
        "POST",
        "/api/nobody/groups/refresh",
        "no-session",
        json!({}),
    )
    .await;
    assert_eq!(missing.status, 422);

    faults.fail_flushes(Some(FaultKind::Io));
    let body = json!({"name": "Later", "participants": []});
    assert_eq!(
        send(&gw, "POST", "/api/a/groups", Some("5xx"), body.clone())
            .await
            .status,
        503
    );
    faults.fail_flushes(None);
    let probe = format!("/api/a/groups/{gid}/subject");
    common::wait_for(5, "the store to take writes again", || async {
        send(&gw, "PUT", &probe, None, json!({"subject": "probe"}))
            .await
            .status
            == 200
    })
    .await;
    let retried = send(&gw, "POST", "/api/a/groups", Some("5xx"), body).await;
    assert_eq!(retried.status, 201, "a 5xx was not kept: the retry ran");
    assert!(!retried.replayed());
}

#[tokio::test]
async fn a_kept_answer_expires_after_the_window() {
    let dir = tempfile::tempdir().expect("dir");
    let clock = wagate::api::idempotency::Clock::default();
    let gw = gateway_in(dir, |c| c.clock = clock.clone()).await;
    gw.session("s", None, None).await;
    let body = json!({"name": "Team", "participants": []});
    let first = send(&gw, "POST", "/api/s/groups", Some("day"), body.clone()).await;
    clock.advance(23 * 3_600_000);
    assert!(
        send(&gw, "POST", "/api/s/groups", Some("day"), body.clone())
            .await
            .replayed()
    );
    clock.advance(2 * 3_600_000);
    let later = send(&gw, "POST", "/api/s/groups", Some("day"), body).await;
    assert_eq!(later.status, 201);
    assert!(!later.replayed(), "expired after 24 h");
    assert_ne!(later.json()["id"], first.json()["id"]);
    assert_eq!(group_count(&gw, "s").await, 2);
}

#[tokio::test]
async fn session_creates_are_keyed_gateway_wide_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = gateway_in(dir, |_| {}).await;
    let body = json!({"name": "made", "config": {"metadata": {"k": "v"}}});
    let first = twice(&gw, "POST", "/api/sessions", "session-1", body.clone()).await;
    assert_eq!(first.status, 201);
    let deleted = twice(&gw, "DELETE", "/api/sessions/gone", "delete-1", json!({})).await;
    assert_eq!(deleted.status, 200);
    let Gateway { dir, state, router } = gw;
    drop((state, router));
    let gw = reopen(dir).await;
    let again = send(&gw, "POST", "/api/sessions", Some("session-1"), body).await;
    assert!(again.replayed());
    assert_eq!(again.bytes, first.bytes);
    let again = send(
        &gw,
        "DELETE",
        "/api/sessions/gone",
        Some("delete-1"),
        json!({}),
    )
    .await;
    assert!(again.replayed());
    assert_eq!(again.bytes, deleted.bytes);
    let (_, list) = gw.get("/api/sessions?all=true").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
}

/// Opens the gateway again on `dir` once the dropped one has let go of its stores.
async fn reopen(dir: tempfile::TempDir) -> Gateway {
    let config = wagate::Config::for_dir(dir.path());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match wagate::open(&config).await {
            Ok((state, _)) => {
                let router = wagate::app(state.clone());
                return Gateway { dir, state, router };
            }
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "reopen: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_given_before_a_kill_dash_nine_is_replayed_after_the_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let http = reqwest::Client::new();
    let post = |base: &str, path: &str, key: Option<&str>, body: Value| {
        let mut req = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send()
    };
    let gw = common::process::start(dir.path(), &[]).await;
    let created = post(&gw.base, "/api/sessions", None, json!({"name": "s"}))
        .await
        .expect("create session");
    assert_eq!(created.status(), 201);
    let body = json!({"name": "Team", "participants": [{"id": FRIEND}]});
    let first = post(&gw.base, "/api/s/groups", Some("before-kill"), body.clone())
        .await
        .expect("create group");
    assert_eq!(first.status(), 201);
    let first = first.bytes().await.expect("body");
    drop(gw); // SIGKILL

    let gw = common::process::start(dir.path(), &[]).await;
    let again = post(&gw.base, "/api/s/groups", Some("before-kill"), body)
        .await
        .expect("replay");
    assert_eq!(again.status(), 201);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(again.bytes().await.expect("body"), first);
    let count: Value = http
        .get(format!("{}/api/s/groups/count", gw.base))
        .send()
        .await
        .expect("count")
        .json()
        .await
        .expect("json");
    assert_eq!(count["count"], 1);
}

#[tokio::test]
async fn a_key_on_a_route_or_method_that_does_not_exist_changes_nothing_about_its_404_or_405() {
    let gw = with(&Faults::default()).await;
    gw.session("s", None, None).await;
    for _ in 0..2 {
        let a = send(&gw, "DELETE", "/api/sessions", Some("k"), json!({})).await;
        assert_eq!(a.status, 405, "{}", a.json());
        assert!(!a.replayed());
        let b = send(&gw, "POST", "/api/s/nowhere", Some("k"), json!({})).await;
        assert_eq!(b.status, 404, "{}", b.json());
    }
}
