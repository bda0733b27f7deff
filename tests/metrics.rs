//! `GET /metrics` as an operator uses it (contract §8): a real Prometheus (Debian's package,
//! started here on a free port of 127.0.0.1) scrapes the real binary, and the series an
//! operator alerts on are queried back through Prometheus' HTTP API; `promtool check metrics`
//! passes on the exposition.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};

use common::process::{free_port, start, Wagate};
use common::wait_for;
use serde_json::{json, Value};

/// A Prometheus server, killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `prometheus` scraping `target` (host:port) every second; waits until it is ready.
async fn prometheus(target: &str) -> Prometheus {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("prometheus.yml");
    let yml = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: wagate\n    \
         static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(&config, yml).expect("config");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("prometheus runs: .ci/run installs Debian's `prometheus` package");
    let base = format!("http://127.0.0.1:{port}");
    let ready = format!("{base}/-/ready");
    wait_for(30, "prometheus to be ready", || {
        let ready = ready.clone();
        async move {
            reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    Prometheus {
        child,
        base,
        _dir: dir,
    }
}

/// The instant vector of `query`, as Prometheus answers it.
async fn query(prom: &Prometheus, query: &str) -> Vec<Value> {
    let url = format!("{}/api/v1/query", prom.base);
    let resp = reqwest::Client::new()
        .get(url)
        .query(&[("query", query)])
        .send()
        .await
        .expect("prometheus answers");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "success", "{query}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits (30 s at most, asking every 200 ms) until `q` has a series whose value satisfies
/// `ok`; answers the series.
async fn series_where(prom: &Prometheus, q: &str, ok: impl Fn(f64) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let series = query(prom, q).await;
        let value = |s: &Value| s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
        if let Some(s) = series.iter().find(|s| value(s).is_some_and(&ok)) {
            return s.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {q}; last answer {series:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A receiver that answers 500 to everything.
async fn failing_receiver() -> String {
    let app =
        axum::Router::new().fallback(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR });
    let addr = common::serve_app(app).await;
    format!("http://{addr}/hook")
}

/// A session `m` whose webhook always fails, and a few renames of one group.
async fn traffic(gw: &Wagate, hook: &str) {
    let hook = json!({"url": hook, "events": ["group.v2.update"],
        "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 100}});
    let body = json!({"name": "m", "config": {"webhooks": [hook]}});
    let (status, text) = gw
        .call(reqwest::Method::POST, "/api/sessions", Some(body), &[])
        .await;
    assert_eq!(status, 201, "{text}");
    let body = json!({"name": "g", "participants": [{"id": "4915112345678@c.us"}]});
    let (status, text) = gw
        .call(reqwest::Method::POST, "/api/m/groups", Some(body), &[])
        .await;
    assert_eq!(status, 201, "{text}");
    let id = serde_json::from_str::<Value>(&text).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for i in 0..3 {
        let path = format!("/api/m/groups/{id}/subject");
        let body = json!({"subject": format!("s{i}")});
        let (status, _) = gw.call(reqwest::Method::PUT, &path, Some(body), &[]).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_gateway_and_sees_requests_commits_and_failing_deliveries() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = start(dir.path(), &[]).await;
    let hook = failing_receiver().await;
    traffic(&gw, &hook).await;
    let prom = prometheus(gw.base.trim_start_matches("http://")).await;

    let up = series_where(&prom, "up{job=\"wagate\"}", |v| v == 1.0).await;
    assert_eq!(up["metric"]["job"], "wagate");
    let renames = "wagate_http_requests_total{route=\"/api/{session}/groups/{id}/subject\",\
                   method=\"PUT\",status=\"200\"}";
    series_where(&prom, renames, |v| v == 3.0).await;
    let failing = format!(
        "wagate_webhook_attempts_total{{session=\"m\",webhook=\"{hook}\",outcome=\"http_error\"}}"
    );
    series_where(&prom, &failing, |v| v >= 1.0).await;
    let pending = format!("wagate_webhook_pending{{session=\"m\",webhook=\"{hook}\"}}");
    series_where(&prom, &pending, |v| v == 3.0).await;
    let oldest =
        format!("wagate_webhook_oldest_pending_seconds{{session=\"m\",webhook=\"{hook}\"}}");
    series_where(&prom, &oldest, |v| v > 0.0).await;
    series_where(
        &prom,
        "wagate_events_total{event=\"group.v2.update\"}",
        |v| v == 3.0,
    )
    .await;
    series_where(&prom, "wagate_sessions{status=\"WORKING\"}", |v| v == 1.0).await;
    series_where(&prom, "wagate_overloaded_total", |v| v == 0.0).await;
    // Histograms answer quantiles: each rename waited for at least one commit and one fsync.
    for h in [
        "wagate_commit_duration_seconds_count",
        "wagate_fsync_duration_seconds_count",
        "wagate_commit_round_changes_count",
    ] {
        series_where(&prom, h, |v| v >= 5.0).await;
    }
    let webhook_p99 = format!(
        "histogram_quantile(0.99, sum by (le) \
         (wagate_webhook_attempt_duration_seconds_bucket{{session=\"m\",webhook=\"{hook}\"}}))"
    );
    series_where(&prom, &webhook_p99, |v| v > 0.0 && v <= 10.0).await;
    let p99 = "histogram_quantile(0.99, sum by (le) \
               (wagate_http_request_duration_seconds_bucket{route=\"/api/{session}/groups/{id}/subject\"}))";
    series_where(&prom, p99, |v| v > 0.0 && v <= 10.0).await;
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = start(dir.path(), &[]).await;
    traffic(&gw, "http://127.0.0.1:9/hook").await;
    let (status, text) = gw.call(reqwest::Method::GET, "/metrics", None, &[]).await;
    assert_eq!(status, 200);
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs: .ci/run installs Debian's `prometheus` package");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = check.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}\n{text}");
    assert!(said.trim().is_empty(), "promtool has remarks: {said}");
}

#[tokio::test]
async fn metrics_are_open_like_ping_or_behind_the_key_with_wagate_metrics_key() {
    let dir = tempfile::tempdir().expect("dir");
    let key_env = [("WAHA_NO_API_KEY", "false"), ("WAHA_API_KEY", "k1")];
    let open = start(dir.path(), &key_env).await;
    let (status, _) = open.call(reqwest::Method::GET, "/metrics", None, &[]).await;
    assert_eq!(status, 200);
    drop(open);
    let env = [
        ("WAHA_NO_API_KEY", "false"),
        ("WAHA_API_KEY", "k1"),
        ("WAGATE_METRICS_KEY", "true"),
    ];
    let keyed = start(dir.path(), &env).await;
    let (status, _) = keyed
        .call(reqwest::Method::GET, "/metrics", None, &[])
        .await;
    assert_eq!(status, 401);
    let key = [("X-Api-Key", "k1")];
    let (status, text) = keyed
        .call(reqwest::Method::GET, "/metrics", None, &key)
        .await;
    assert_eq!(status, 200);
    assert!(text.contains("wagate_sessions"), "{text}");
}
