//! Secrets of a webhook (the user-info and query of its URL, its HMAC key, its custom header
//! values) and the API key never reach the gateway's log or its answers; a client that reads a
//! session's config (secrets shown as `***`) and writes it back keeps them.

mod common;

use axum::http::StatusCode;
use common::process::{self, Wagate};
use common::{gateway, receiver};
use reqwest::Method;
use serde_json::{json, Value};

const FRIEND: &str = "4915112345678@c.us";
const API_KEY: &str = "ApiKeySecret000";

/// Everything that must never show: each is unique enough not to appear by chance.
const SECRETS: &[&str] = &[
    API_KEY,
    "hookuser",
    "Pa55wordSecret",
    "TokenSecret123",
    "FragSecret",
    "HmacKeySecret456",
    "HeaderValueSecret789",
    "globaluser",
    "GlobalPassSecret",
    "GlobalTokenSecret",
    "GlobalHmacSecret",
    "GlobalHeaderSecret",
];

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{s:?} appears in {what}:\n{text}");
    }
}

/// A receiver that answers 500 to everything; answers its address.
async fn failing_receiver() -> std::net::SocketAddr {
    let app = axum::Router::new().fallback(|| async { StatusCode::INTERNAL_SERVER_ERROR });
    common::serve_app(app).await
}

/// Every answer the test got, to be searched for secrets at the end.
struct Client<'a> {
    gw: &'a Wagate,
    answers: Vec<String>,
}

impl Client<'_> {
    async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = self
            .gw
            .call(method, path, body, &[("x-api-key", API_KEY)])
            .await;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        // The one place a URL is shown whole is a session's config: it is the webhook's
        // identity there (README, Webhooks). Everything else in that answer is searched.
        let mut searched = json.clone();
        let infos = match &mut searched {
            Value::Array(list) => list.iter_mut().collect(),
            other => vec![other],
        };
        for info in infos {
            let hooks = info.pointer_mut("/config/webhooks");
            if let Some(hooks) = hooks.and_then(Value::as_array_mut) {
                for h in hooks {
                    h["url"] = json!("(the configured URL)");
                }
            }
        }
        self.answers.push(format!("{path}: {searched}"));
        (status, json)
    }

    /// Waits until `cond(dead, pending)` holds, polling the delivery log, for at most 10 s.
    async fn until(&mut self, what: &str, cond: impl Fn(&[Value], &[Value]) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let dead = self.deliveries("dead").await;
            let pending = self.deliveries("pending").await;
            if cond(&dead, &pending) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: dead {dead:?}, pending {pending:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn deliveries(&mut self, state: &str) -> Vec<Value> {
        let path = format!("/api/secret/webhooks/deliveries?state={state}");
        let (status, body) = self.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().expect("array").clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_of_webhooks_never_appear_in_the_log_or_in_answers() {
    let dir = tempfile::tempdir().expect("dir");
    let failing = failing_receiver().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port nobody listens on");
    let global =
        format!("http://globaluser:GlobalPassSecret@{failing}/global?token=GlobalTokenSecret");
    let gw = process::start(
        dir.path(),
        &[
            ("WAHA_NO_API_KEY", "false"),
            ("WAHA_API_KEY", API_KEY),
            ("RUST_LOG", "debug"),
            ("WHATSAPP_HOOK_URL", &global),
            ("WHATSAPP_HOOK_EVENTS", "group.v2.join"),
            ("WHATSAPP_HOOK_HMAC_KEY", "GlobalHmacSecret"),
            (
                "WHATSAPP_HOOK_CUSTOM_HEADERS",
                "X-Global:GlobalHeaderSecret",
            ),
            ("WHATSAPP_HOOK_RETRIES_ATTEMPTS", "0"),
        ],
    )
    .await;
    let mut c = Client {
        gw: &gw,
        answers: Vec::new(),
    };
    let refused = json!({"url": format!("http://hookuser:Pa55wordSecret@{failing}/a?token=TokenSecret123#FragSecret"),
        "events": ["group.v2.join"], "hmac": {"key": "HmacKeySecret456"},
        "customHeaders": [{"name": "X-Tenant", "value": "HeaderValueSecret789"}],
        "retries": {"attempts": 0}});
    let unreachable = json!({"url": format!("http://hookuser:Pa55wordSecret@{closed}/b?token=TokenSecret123"),
        "events": ["group.v2.join"], "hmac": {"key": "HmacKeySecret456"},
        "retries": {"policy": "constant", "delaySeconds": 60, "attempts": 3}});
    let (status, body) = c
        .call(
            Method::POST,
            "/api/sessions",
            Some(json!({"name": "secret", "config": {"webhooks": [refused, unreachable]}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = c
        .call(
            Method::POST,
            "/api/secret/groups",
            Some(json!({"name": "Secret", "participants": [{"id": FRIEND}]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // The global and the refused webhook are dead-lettered at once, the unreachable one waits.
    c.until("the first attempts to be recorded", |dead, pending| {
        dead.len() == 2 && pending.first().is_some_and(|p| p["attempts"] == 1)
    })
    .await;
    let dead = c.deliveries("dead").await;
    let id = dead
        .iter()
        .find(|d| d["url"] == format!("http://{failing}/a?…"))
        .and_then(|d| d["id"].as_str())
        .expect("the refused webhook's dead delivery, its URL shown without secrets")
        .to_owned();
    let (status, body) = c
        .call(
            Method::POST,
            &format!("/api/secret/webhooks/deliveries/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    c.until("the retried delivery to fail again", |dead, _| {
        dead.iter()
            .any(|d| d["id"] == id.as_str() && d["attempts"] == 1)
    })
    .await;

    // Written back as read (secrets as "***"), without the unreachable webhook: its pending
    // delivery is dead-lettered, with a log line naming its URL.
    let (status, info) = c.call(Method::GET, "/api/sessions/secret", None).await;
    assert_eq!(status, 200, "{info}");
    let kept = info["config"]["webhooks"][0].clone();
    let (status, body) = c
        .call(
            Method::PUT,
            "/api/sessions/secret",
            Some(json!({"config": {"webhooks": [kept]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    c.until(
        "the removed webhook's delivery to be dead-lettered",
        |dead, pending| dead.len() == 3 && pending.is_empty(),
    )
    .await;
    for path in ["/api/sessions?all=true", "/api/secret/events"] {
        let (status, body) = c.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "{body}");
    }

    let log = gw.log_text();
    for shown in [
        format!("http://{failing}/a?…"),
        format!("http://{closed}/b?…"),
        format!("http://{failing}/global?…"),
    ] {
        assert!(log.contains(&shown), "{shown} is logged:\n{log}");
    }
    assert_no_secret("the log", &log);
    for answer in &c.answers {
        assert_no_secret("an answer", answer);
    }
}

#[tokio::test]
async fn a_config_read_back_with_its_secrets_masked_and_written_back_keeps_them() {
    let gw = gateway().await;
    let mut rx = receiver(|_| 200).await;
    let hook = json!({"url": rx.url, "events": ["group.v2.join"],
        "hmac": {"key": "HmacKeySecret456"},
        "customHeaders": [{"name": "X-Tenant", "value": "HeaderValueSecret789"},
                          {"name": "X-Twice", "value": "first"},
                          {"name": "x-twice", "value": "second"}]});
    let created = gw.session("rt", None, Some(json!([hook]))).await;
    let shown = &created["config"]["webhooks"][0];
    assert_eq!(shown["url"], rx.url.as_str(), "the URL is shown whole");
    assert_eq!(shown["hmac"]["key"], "***");
    assert_eq!(
        shown["customHeaders"],
        json!([{"name": "X-Tenant", "value": "***"}, {"name": "X-Twice", "value": "***"},
               {"name": "x-twice", "value": "***"}])
    );

    let (status, read) = gw.get("/api/sessions/rt").await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["config"], created["config"]);
    let (status, written) = gw
        .put("/api/sessions/rt", json!({"config": read["config"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["config"], read["config"]);

    gw.group("rt", "Round trip", &[FRIEND]).await;
    let r = rx.next(5).await;
    let value = |name: &str| -> Vec<String> {
        r.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    };
    assert_eq!(value("x-tenant"), ["HeaderValueSecret789"]);
    // Two headers of one name: the later replaces the earlier, as before the round trip.
    assert_eq!(value("x-twice"), ["second"]);
    let mut mac =
        <hmac::Hmac<sha2::Sha512> as hmac::Mac>::new_from_slice(b"HmacKeySecret456").expect("key");
    hmac::Mac::update(&mut mac, &r.body);
    let want: String = hmac::Mac::finalize(mac)
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        value("x-webhook-hmac"),
        [want],
        "signed with the stored key"
    );
}

#[tokio::test]
async fn a_masked_secret_with_nothing_stored_behind_it_is_refused_naming_the_field() {
    let gw = gateway().await;
    let url = "http://127.0.0.1:9/hook";
    let masked_key = json!({"url": url, "events": ["*"], "hmac": {"key": "***"}});
    let (status, body) = gw
        .post(
            "/api/sessions",
            json!({"name": "new", "config": {"webhooks": [masked_key]}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.starts_with("config.webhooks[0].hmac.key: "),
        "{message}"
    );

    gw.session(
        "stored",
        None,
        Some(json!([{"url": url, "events": ["*"], "hmac": {"key": "k"},
            "customHeaders": [{"name": "X-A", "value": "a"}]}])),
    )
    .await;
    for (config, field) in [
        // Another URL is another webhook: nothing stored for it.
        (
            json!([{"url": "http://127.0.0.1:9/other", "events": ["*"], "hmac": {"key": "***"}}]),
            "config.webhooks[0].hmac.key: ",
        ),
        (
            json!([{"url": url, "events": ["*"],
                "customHeaders": [{"name": "X-A", "value": "***"}, {"name": "X-B", "value": "***"}]}]),
            "config.webhooks[0].customHeaders[1].value: ",
        ),
        (
            json!([{"url": url, "events": ["*"],
                "customHeaders": [{"name": "X-A", "value": "***"}, {"name": "X-A", "value": "***"}]}]),
            "config.webhooks[0].customHeaders[1].value: ",
        ),
    ] {
        let (status, body) = gw
            .put(
                "/api/sessions/stored",
                json!({"config": {"webhooks": config}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = body["message"].as_str().expect("message");
        assert!(message.starts_with(field), "{message}");
    }
}

#[tokio::test]
async fn user_info_in_a_webhook_url_is_sent_as_basic_authorization_not_in_the_url() {
    let gw = gateway().await;
    let mut rx = receiver(|_| 200).await;
    let url = rx.url.replace("http://", "http://hook%40user:Pa55%3Aword@");
    gw.session(
        "basic",
        None,
        Some(json!([{"url": url, "events": ["group.v2.join"]}])),
    )
    .await;
    gw.group("basic", "Basic", &[FRIEND]).await;
    let r = rx.next(5).await;
    let auth = r
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    use base64::Engine;
    let want = base64::engine::general_purpose::STANDARD.encode("hook@user:Pa55:word");
    assert_eq!(auth, format!("Basic {want}"));
}
