//! `WAGATE_WEBHOOK_DENY_NETWORKS`: a webhook whose host is in a denied network is refused when
//! configured (a 400 naming the field; the global one stops the start), and a webhook that
//! got there anyway (configured before the setting) is dead-lettered as `denied_network`.

mod common;

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use common::process;
use common::raw::{raw_receiver, Reply};
use common::{gateway_in, wait_for};
use reqwest::Method;
use serde_json::{json, Value};

const VAR: &str = "WAGATE_WEBHOOK_DENY_NETWORKS";

fn hook(url: &str) -> Value {
    json!({"url": url, "events": ["group.v2.join"]})
}

#[tokio::test]
async fn a_webhook_in_a_denied_network_is_refused_with_a_400_naming_the_field() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = gateway_in(dir, |c| c.webhook_deny_networks = "private".into()).await;
    let public = hook("http://203.0.113.5/hook");
    for denied in [
        "http://127.0.0.1:8080/hook",
        "http://localhost:8080/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "https://169.254.169.254/latest/meta-data",
    ] {
        let (status, body) = gw
            .post(
                "/api/sessions",
                json!({"name": "denied", "config": {"webhooks": [public, hook(denied)]}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{denied}: {body}");
        let message = body["message"].as_str().expect("message");
        assert!(
            message.starts_with("config.webhooks[1].url: ") && message.contains("denied network"),
            "{message}"
        );
        assert!(message.contains(VAR), "{message}");
    }
    // An address outside the list, and a name that does not resolve, are accepted.
    let unresolved = hook("http://no-such-host.invalid/hook");
    gw.session("open", None, Some(json!([public, unresolved])))
        .await;
    let (status, body) = gw
        .put(
            "/api/sessions/open",
            json!({"config": {"webhooks": [hook("http://127.0.0.1:9/hook")]}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"]
        .as_str()
        .expect("message")
        .starts_with("config.webhooks[0].url: "));
}

#[tokio::test]
async fn a_bad_deny_list_or_a_denied_global_webhook_stops_the_start_naming_the_variable() {
    for (deny, hook_url, named) in [
        ("private,10.0.0.0/33", None, VAR),
        ("10.0.0.0/8;192.168.0.0/16", None, VAR),
        (
            "private",
            Some("http://127.0.0.1:9/hook"),
            "WHATSAPP_HOOK_URL",
        ),
    ] {
        let dir = tempfile::tempdir().expect("dir");
        let mut config = wagate::Config::for_dir(dir.path());
        config.webhook_deny_networks = deny.into();
        config.hook_url = hook_url.map(str::to_owned);
        match wagate::open(&config).await {
            Ok(_) => panic!("{deny} with {hook_url:?} starts"),
            Err(e) => assert!(e.to_string().contains(named), "{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_refuses_to_start_with_a_bad_deny_list() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut cmd, _, log) = process::command(dir.path(), &[(VAR, "10.0.0.0/33")]);
    let mut child = cmd.spawn().expect("wagate runs");
    let mut status = None;
    wait_for(10, "wagate to exit", || {
        status = child.try_wait().expect("status");
        std::future::ready(status.is_some())
    })
    .await;
    assert!(!status.expect("exited").success());
    let log = std::fs::read_to_string(log).expect("log");
    assert!(log.contains(VAR) && log.contains("10.0.0.0/33"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_configured_before_its_network_was_denied_is_dead_lettered_as_denied_network() {
    let dir = tempfile::tempdir().expect("dir");
    let rx = raw_receiver(|_| Reply::Full {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    })
    .await;
    let port = rx.addr.port();
    let named = format!("http://localhost:{port}/named");
    let literal = format!("http://127.0.0.1:{port}/literal");
    {
        let gw = process::start(dir.path(), &[]).await;
        let (status, body) = gw
            .call(
                Method::POST,
                "/api/sessions",
                Some(json!({"name": "before", "config": {"webhooks": [
                    {"url": named, "events": ["group.v2.join"], "retries": {"attempts": 5}},
                    {"url": literal, "events": ["group.v2.join"], "retries": {"attempts": 5}}]}})),
                &[],
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let gw = process::start(dir.path(), &[(VAR, "private")]).await;
    let (status, body) = gw
        .call(
            Method::POST,
            "/api/before/groups",
            Some(json!({"name": "Denied", "participants": [{"id": "4915112345678@c.us"}]})),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let dead = || async {
        let (status, body) = gw
            .call(
                Method::GET,
                "/api/before/webhooks/deliveries?state=dead",
                None,
                &[],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Vec<Value>>(&body).expect("list")
    };
    wait_for(10, "both deliveries to be dead-lettered", || async {
        dead().await.len() == 2
    })
    .await;
    for d in dead().await {
        assert_eq!(d["lastError"], "denied_network", "{d}");
        assert_eq!(d["attempts"], 0, "never sent: {d}");
    }
    assert_eq!(
        rx.connections.load(Ordering::SeqCst),
        0,
        "the receiver was never reached"
    );
}
