//! One request to a gateway over HTTP as the fault tests make it: an answer with status, headers
//! and JSON body, or an error when the process is gone.

use std::time::Duration;

use serde_json::Value;

/// One answer: status, headers and the body as JSON (Null when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// The error body's `code`, or "".
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

/// Sends one request with a 10 s timeout; a connection error (the process was killed) is Err.
pub async fn call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> reqwest::Result<Answer> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = http.request(method, url).timeout(Duration::from_secs(10));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await?;
    Ok(Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

/// Unix ms, the clock the gateway stamps its events with.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sends one request that must be answered 2xx; answers the body.
pub async fn call_ok(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Value {
    let a = call(http, method, url, body.as_ref())
        .await
        .expect("the gateway answers");
    assert!(a.ok(), "{method} {url}: {} {}", a.status, a.body);
    a.body
}
