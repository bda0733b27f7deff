//! What every scenario starts from: an HTTP client, a temp data dir, and a session with the
//! groups it works on, created through the gateway's own API.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::servers::BenchResult;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap_or_default()
}

pub async fn post(c: &reqwest::Client, url: &str, body: Value) -> BenchResult<Value> {
    let r = c
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("POST {url}: {status} {v}"));
    }
    Ok(v)
}

pub fn contact(i: usize) -> String {
    format!("{}@c.us", 20_000_000_000u64 + i as u64)
}

pub fn tmpdir(name: &str) -> BenchResult<PathBuf> {
    let d = std::env::temp_dir().join(format!("wagate-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    Ok(d)
}

/// `WAGATE_BENCH_NO_HOOK=1`: the bench's webhook subscribes to no event (to measure writes alone).
pub fn hook_off() -> bool {
    std::env::var("WAGATE_BENCH_NO_HOOK").is_ok_and(|v| v == "1")
}

/// A session `bench` without webhooks and `n` groups of one contact each; answers their ids.
pub async fn plain_setup(c: &reqwest::Client, base: &str, n: usize) -> BenchResult<Vec<String>> {
    post(c, &format!("{base}/api/sessions"), json!({"name": "bench"})).await?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = json!({"name": format!("g{i}"), "participants": [{"id": contact(i)}]});
        let g = post(c, &format!("{base}/api/bench/groups"), body).await?;
        ids.push(g["id"].as_str().unwrap_or_default().to_owned());
    }
    Ok(ids)
}

/// A session `bench` with one webhook to `receiver` and `groups` groups; answers the group ids.
pub async fn webhook_setup(
    c: &reqwest::Client,
    base: &str,
    receiver: &str,
    groups: usize,
    retries: Value,
) -> BenchResult<Vec<String>> {
    let ev = if hook_off() {
        "nothing"
    } else {
        "group.v2.update"
    };
    let hook = json!({"url": receiver, "events": [ev], "hmac": {"key": "bench-secret"}, "retries": retries});
    post(
        c,
        &format!("{base}/api/sessions"),
        json!({"name": "bench", "config": {"webhooks": [hook]}}),
    )
    .await?;
    let mut ids = Vec::new();
    for i in 0..groups {
        let g = post(
            c,
            &format!("{base}/api/bench/groups"),
            json!({"name": format!("g{i}"), "participants": [{"id": contact(i)}]}),
        )
        .await?;
        ids.push(g["id"].as_str().unwrap_or_default().to_owned());
    }
    Ok(ids)
}
