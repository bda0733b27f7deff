//! Webhook delivery end to end: real receivers on port 0, signatures checked by independent
//! code, retries, order, dead letters and the delivery log.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use common::{gateway, gateway_in, receiver, wait_for, Gateway, Received};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Sha256, Sha512};

const FRIEND: &str = "4915112345678@c.us";

fn h<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// WAHA's signature, computed here without the product's code.
fn expected_waha_hmac(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Standard Webhooks check a receiver would run.
fn standard_webhooks_verifies(key: &str, r: &Received) -> bool {
    let secret = match key.strip_prefix("whsec_") {
        Some(rest) => base64::engine::general_purpose::STANDARD
            .decode(rest)
            .expect("whsec base64"),
        None => key.as_bytes().to_vec(),
    };
    let id = h(&r.headers, "webhook-id");
    let ts = h(&r.headers, "webhook-timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).expect("key");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    h(&r.headers, "webhook-signature")
        .split(' ')
        .any(|s| s == want)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

async fn deliveries(gw: &Gateway, session: &str, state: &str) -> Vec<Value> {
    let (status, body) = gw
        .get(&format!("/api/{session}/webhooks/deliveries?state={state}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().expect("array").clone()
}

/// A receiver that answers with `answer(n)`: a status, a Retry-After, or no answer at all.
enum Reply {
    Status(u16),
    RetryAfter(u16, &'static str),
    Hang,
}

async fn scripted_receiver(
    answer: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(Instant, Received)>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let count = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
        let tx = tx.clone();
        let n = count.fetch_add(1, Ordering::SeqCst);
        let answer = answer.clone();
        async move {
            let _ = tx.send((
                Instant::now(),
                Received {
                    headers,
                    body: body.to_vec(),
                },
            ));
            match answer(n) {
                Reply::Status(s) => (StatusCode::from_u16(s).expect("status"), HeaderMap::new()),
                Reply::RetryAfter(s, after) => {
                    let mut hm = HeaderMap::new();
                    hm.insert("retry-after", after.parse().expect("value"));
                    (StatusCode::from_u16(s).expect("status"), hm)
                }
                Reply::Hang => std::future::pending().await,
            }
        }
    });
    let addr = common::serve_app(app).await;
    (format!("http://{addr}/hook"), rx)
}

async fn next_of(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(Instant, Received)>,
    secs: u64,
) -> (Instant, Received) {
    tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .expect("a request in time")
        .expect("open")
}

#[tokio::test]
async fn signed_deliveries_verify_with_independently_computed_signatures() {
    let gw = gateway().await;
    let mut plain = receiver(|_| 200).await;
    let mut whsec = receiver(|_| 200).await;
    let key2 = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    gw.session(
        "signed",
        None,
        Some(json!([
            {"url": plain.url, "events": ["group.v2.join"], "hmac": {"key": "my-secret-key"},
             "customHeaders": [{"name": "X-Tenant", "value": "acme"}]},
            {"url": whsec.url, "events": ["group.v2.join"], "hmac": {"key": key2}}
        ])),
    )
    .await;
    let group = gw.group("signed", "Signed", &[FRIEND]).await;
    for (r, key) in [
        (plain.next(5).await, "my-secret-key"),
        (whsec.next(5).await, key2),
    ] {
        let body = r.json();
        assert_eq!(body["event"], "group.v2.join");
        assert_eq!(body["payload"]["group"]["id"], group["id"]);
        assert_eq!(h(&r.headers, "content-type"), "application/json");
        assert_eq!(
            h(&r.headers, "user-agent"),
            format!("wagate/{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(h(&r.headers, "x-webhook-request-id"), body["id"]);
        assert_eq!(h(&r.headers, "webhook-id"), body["id"]);
        assert_eq!(
            h(&r.headers, "x-webhook-timestamp"),
            body["timestamp"].to_string()
        );
        assert_eq!(
            h(&r.headers, "x-webhook-hmac"),
            expected_waha_hmac(key, &r.body)
        );
        assert_eq!(h(&r.headers, "x-webhook-hmac-algorithm"), "sha512");
        let ts: u64 = h(&r.headers, "webhook-timestamp").parse().expect("unix s");
        assert!(
            ts.abs_diff(unix_now()) < 60,
            "webhook-timestamp is this attempt's time"
        );
        assert!(
            standard_webhooks_verifies(key, &r),
            "webhook-signature verifies"
        );
    }
    // Only the first webhook has the custom header.
    let again = gw.group("signed", "Second", &[FRIEND]).await;
    let r = plain.next(5).await;
    assert_eq!(r.json()["payload"]["group"]["id"], again["id"]);
    assert_eq!(h(&r.headers, "x-tenant"), "acme");
    assert_eq!(h(&whsec.next(5).await.headers, "x-tenant"), "");
}

#[tokio::test]
async fn unsigned_webhooks_carry_no_signature_headers() {
    let gw = gateway().await;
    let mut rx = receiver(|_| 200).await;
    gw.session(
        "plain",
        None,
        Some(json!([{"url": rx.url, "events": ["*"]}])),
    )
    .await;
    let r = rx.next(5).await;
    assert_eq!(r.json()["event"], "session.status");
    for name in ["x-webhook-hmac", "webhook-signature", "webhook-id"] {
        assert!(r.headers.get(name).is_none(), "{name} is absent");
    }
    assert_eq!(h(&r.headers, "x-webhook-request-id"), r.json()["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_the_same_id_and_bytes_until_it_accepts() {
    let gw = gateway().await;
    let mut rx = receiver(|n| if n < 2 { 500 } else { 200 }).await;
    gw.session(
        "flaky",
        None,
        Some(json!([{"url": rx.url, "events": ["group.v2.join"],
            "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 5}}])),
    )
    .await;
    gw.group("flaky", "Flaky", &[FRIEND]).await;
    let first = rx.next(5).await;
    let pending = deliveries(&gw, "flaky", "pending").await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["eventId"], first.json()["id"]);
    for _ in 0..2 {
        let r = rx.next(5).await;
        assert_eq!(r.body, first.body, "same bytes");
        assert_eq!(
            h(&r.headers, "x-webhook-request-id"),
            h(&first.headers, "x-webhook-request-id")
        );
    }
    wait_for(5, "the delivered job to leave the log", || async {
        deliveries(&gw, "flaky", "pending").await.is_empty()
    })
    .await;
    assert!(deliveries(&gw, "flaky", "dead").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_times_out_and_holds_back_no_other_session() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = gateway_in(dir, |c| c.webhook_timeout_seconds = 3).await;
    let (hang_url, mut hang) = scripted_receiver(|n| {
        if n == 0 {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let mut good = receiver(|_| 200).await;
    let hook = |url: &str| {
        json!([{"url": url, "events": ["group.v2.join"],
            "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 3}}])
    };
    gw.session("slow", None, Some(hook(&hang_url))).await;
    gw.session("quick", None, Some(hook(&good.url))).await;
    gw.group("slow", "Slow", &[FRIEND]).await;
    let (t0, first) = next_of(&mut hang, 5).await;
    gw.group("quick", "Quick", &[FRIEND]).await;
    good.next(5).await;
    let pending = deliveries(&gw, "slow", "pending").await;
    assert_eq!(
        pending[0]["attempts"], 0,
        "the other session was served while the first attempt still hangs"
    );
    let (t1, retry) = next_of(&mut hang, 10).await;
    assert!(t1 - t0 >= Duration::from_secs(3), "not before the timeout");
    assert_eq!(retry.body, first.body);
    wait_for(5, "the retry to be recorded as delivered", || async {
        deliveries(&gw, "slow", "pending").await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_attempt_is_logged_with_its_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = gateway_in(dir, |c| c.webhook_timeout_seconds = 1).await;
    let (url, mut rx) = scripted_receiver(|_| Reply::Hang).await;
    gw.session(
        "hang",
        None,
        Some(json!([{"url": url, "events": ["group.v2.join"],
            "retries": {"policy": "constant", "delaySeconds": 60, "attempts": 3}}])),
    )
    .await;
    gw.group("hang", "Hang", &[FRIEND]).await;
    next_of(&mut rx, 5).await;
    wait_for(5, "the timeout to be recorded", || async {
        let p = deliveries(&gw, "hang", "pending").await;
        p.len() == 1 && p[0]["attempts"] == 1
    })
    .await;
    let p = deliveries(&gw, "hang", "pending").await;
    let err = p[0]["lastError"].as_str().expect("error");
    assert!(err.contains("timeout"), "{err}");
    assert!(p[0]["nextAttemptAt"].as_u64().expect("ms") > unix_now() * 1000 + 30_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_each_group_arrive_in_order_through_random_failures() {
    let gw = gateway().await;
    let mut rx = receiver(|_| {
        if rand::random::<f64>() < 0.2 {
            500
        } else {
            200
        }
    })
    .await;
    gw.session(
        "order",
        None,
        Some(json!([{"url": rx.url, "events": ["group.v2.update"],
            "retries": {"policy": "constant", "delaySeconds": 0, "attempts": 100}}])),
    )
    .await;
    let g1 = gw.group("order", "one", &[FRIEND]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let g2 = gw.group("order", "two", &[FRIEND]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    const N: usize = 200;
    let gw = Arc::new(gw);
    let mut writers = Vec::new();
    for g in [g1.clone(), g2.clone()] {
        let gw = gw.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..N {
                let (status, body) = gw
                    .put(
                        &format!("/api/order/groups/{g}/subject"),
                        json!({"subject": format!("s{i}")}),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let mut seen = HashSet::new();
    let mut order: HashMap<String, Vec<String>> = HashMap::new();
    while seen.len() < 2 * N {
        let r = rx.next(15).await;
        let body = r.json();
        if seen.insert(body["id"].as_str().expect("id").to_owned()) {
            let group = body["payload"]["group"]["id"].as_str().expect("group");
            let subject = body["payload"]["group"]["subject"]
                .as_str()
                .expect("subject");
            order
                .entry(group.to_owned())
                .or_default()
                .push(subject.to_owned());
        }
    }
    let want: Vec<String> = (0..N).map(|i| format!("s{i}")).collect();
    assert_eq!(order[&g1], want);
    assert_eq!(order[&g2], want);
}

#[tokio::test]
async fn a_dead_letter_is_delivered_after_a_retry_by_hand() {
    let gw = gateway().await;
    let mut rx = receiver(|n| if n == 0 { 500 } else { 200 }).await;
    gw.session(
        "dl",
        None,
        Some(json!([{"url": rx.url, "events": ["group.v2.join"], "retries": {"attempts": 0}}])),
    )
    .await;
    gw.group("dl", "Dead", &[FRIEND]).await;
    let first = rx.next(5).await;
    wait_for(5, "the failed delivery to be dead-lettered", || async {
        deliveries(&gw, "dl", "dead").await.len() == 1
    })
    .await;
    let dead = deliveries(&gw, "dl", "dead").await;
    assert_eq!(dead[0]["eventId"], first.json()["id"]);
    assert_eq!(dead[0]["event"], "group.v2.join");
    assert_eq!(dead[0]["url"], rx.url.as_str());
    assert_eq!(dead[0]["attempts"], 1);
    assert_eq!(dead[0]["lastError"], "HTTP 500");
    assert_eq!(dead[0]["state"], "dead");
    assert!(deliveries(&gw, "dl", "pending").await.is_empty());

    let id = dead[0]["id"].as_str().expect("id");
    let (status, body) = gw
        .post(
            &format!("/api/dl/webhooks/deliveries/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "pending");
    let again = rx.next(5).await;
    assert_eq!(again.body, first.body);
    wait_for(5, "the retried delivery to be done", || async {
        deliveries(&gw, "dl", "pending").await.is_empty()
            && deliveries(&gw, "dl", "dead").await.is_empty()
    })
    .await;
    let (status, body) = gw
        .post(
            &format!("/api/dl/webhooks/deliveries/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "delivery_not_found");
    let (status, body) = gw
        .post("/api/dl/webhooks/deliveries/nonsense/retry", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"]
        .as_str()
        .expect("message")
        .starts_with("id: "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_from_the_receiver_is_honoured() {
    let gw = gateway().await;
    let (url, mut rx) = scripted_receiver(|n| {
        if n == 0 {
            Reply::RetryAfter(503, "2")
        } else {
            Reply::Status(200)
        }
    })
    .await;
    gw.session(
        "ra",
        None,
        Some(json!([{"url": url, "events": ["group.v2.join"],
            "retries": {"policy": "constant", "delaySeconds": 0, "attempts": 3}}])),
    )
    .await;
    gw.group("ra", "Later", &[FRIEND]).await;
    let (t0, _) = next_of(&mut rx, 5).await;
    let (t1, _) = next_of(&mut rx, 10).await;
    assert!(t1 - t0 >= Duration::from_secs(2), "{:?}", t1 - t0);
}

#[tokio::test]
async fn removing_a_webhook_dead_letters_its_pending_deliveries_with_the_reason() {
    let gw = gateway().await;
    let mut rx = receiver(|_| 500).await;
    let hook = json!({"url": rx.url, "events": ["group.v2.join"],
        "retries": {"policy": "constant", "delaySeconds": 60, "attempts": 5}});
    gw.session("rm", None, Some(json!([hook]))).await;
    gw.group("rm", "Removed", &[FRIEND]).await;
    rx.next(5).await;
    wait_for(5, "the failure to be recorded", || async {
        deliveries(&gw, "rm", "pending")
            .await
            .first()
            .map(|d| d["attempts"].clone())
            == Some(json!(1))
    })
    .await;
    let (status, body) = gw
        .put("/api/sessions/rm", json!({"config": {"webhooks": []}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_for(5, "the job to be dead-lettered", || async {
        deliveries(&gw, "rm", "dead").await.len() == 1
    })
    .await;
    let dead = deliveries(&gw, "rm", "dead").await;
    assert_eq!(
        dead[0]["lastError"],
        "webhook removed from the session's config"
    );
    assert_eq!(dead[0]["attempts"], 1);
    assert!(deliveries(&gw, "rm", "pending").await.is_empty());
}

#[tokio::test]
async fn a_changed_webhook_config_applies_to_deliveries_not_yet_sent() {
    let gw = gateway().await;
    let mut rx = receiver(|n| if n == 0 { 500 } else { 200 }).await;
    let mut hook = json!({"url": rx.url, "events": ["group.v2.join", "group.v2.update"],
        "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 5}});
    gw.session("chg", None, Some(json!([hook.clone()]))).await;
    let gid = gw.group("chg", "Changed", &[FRIEND]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let first = rx.next(5).await;
    assert!(first.headers.get("x-webhook-hmac").is_none());
    // Queued behind the failed join of the same group: not yet sent.
    let (status, _) = gw
        .put(
            &format!("/api/chg/groups/{gid}/subject"),
            json!({"subject": "Renamed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    hook["hmac"] = json!({"key": "new-key"});
    let (status, body) = gw
        .put("/api/sessions/chg", json!({"config": {"webhooks": [hook]}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let retry = rx.next(5).await;
    let update = rx.next(5).await;
    assert_eq!(retry.body, first.body);
    assert_eq!(update.json()["event"], "group.v2.update");
    for r in [retry, update] {
        assert_eq!(
            h(&r.headers, "x-webhook-hmac"),
            expected_waha_hmac("new-key", &r.body)
        );
    }
}

#[tokio::test]
async fn the_global_webhook_comes_from_the_configuration() {
    let mut rx = receiver(|_| 200).await;
    let key = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let url = rx.url.clone();
    let dir = tempfile::tempdir().expect("dir");
    let gw = gateway_in(dir, move |c| {
        c.hook_url = Some(url);
        c.hook_events = "group.v2.join".into();
        c.hook_hmac_key = Some(key.into());
        c.hook_custom_headers = Some("X-Env:prod;X-Team:core".into());
    })
    .await;
    let info = gw.session("g", None, None).await;
    assert!(
        info["config"].get("webhooks").is_none(),
        "not shown in the config"
    );
    let group = gw.group("g", "Global", &[FRIEND]).await;
    let r = rx.next(5).await;
    let body = r.json();
    assert_eq!(
        body["event"], "group.v2.join",
        "session.status is filtered out"
    );
    assert_eq!(body["payload"]["group"]["id"], group["id"]);
    assert_eq!(h(&r.headers, "x-env"), "prod");
    assert_eq!(h(&r.headers, "x-team"), "core");
    assert_eq!(
        h(&r.headers, "x-webhook-hmac"),
        expected_waha_hmac(key, &r.body)
    );
    assert!(standard_webhooks_verifies(key, &r));
}

#[tokio::test]
async fn deleting_a_session_stops_its_deliveries() {
    let gw = gateway().await;
    let mut rx = receiver(|_| 500).await;
    gw.session(
        "gone",
        None,
        Some(json!([{"url": rx.url, "events": ["group.v2.join"],
            "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 50}}])),
    )
    .await;
    gw.group("gone", "Gone", &[FRIEND]).await;
    rx.next(5).await;
    let (status, _) = gw.call("DELETE", "/api/sessions/gone", None).await;
    assert_eq!(status, StatusCode::OK);
    // An attempt may have started before the delete; after that, nothing more for 3 retry periods.
    let _ = tokio::time::timeout(Duration::from_millis(500), rx.rx.recv()).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(3), rx.rx.recv())
            .await
            .is_err(),
        "no retries for a deleted session"
    );
}
