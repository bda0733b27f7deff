//! The real `wagate` binary as the fault tests run it: a child process on a data dir, started
//! with env vars, ready once `/ping` answers, killed with SIGKILL; and one HTTP call helper.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Settings the fault tests must not inherit from the shell that runs them.
const SCRUBBED: [&str; 9] = [
    "WAHA_API_KEY",
    "WHATSAPP_API_KEY",
    "WHATSAPP_HOOK_URL",
    "WAGATE_EVENT_RETENTION_HOURS",
    "WAGATE_TEST_ABORT_BEFORE_FANOUT",
    "WAGATE_TEST_PRUNE_EVERY_MS",
    "WAGATE_TEST_EVENT_RETENTION_MS",
    "WAGATE_TEST_FSYNC_DELAY_MS",
    "WAGATE_MAX_INFLIGHT",
];

/// One run of the binary. Dropped, it is killed with SIGKILL.
pub struct Binary {
    child: Child,
    pub base: String,
}

impl Binary {
    /// Starts the binary on `data` with `env` on top of an open (keyless) gateway on a free
    /// loopback port; its stderr goes to `log`. Answers once `/ping` does.
    pub async fn start(data: &Path, env: &[(&str, String)], log: &Path) -> Binary {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let stderr = std::fs::File::create(log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wagate"));
        for k in SCRUBBED {
            cmd.env_remove(k);
        }
        cmd.env("WAHA_NO_API_KEY", "true")
            .env("WAGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("WAGATE_DATA_DIR", data)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let bin = Binary {
            child: cmd.spawn().expect("the binary starts"),
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let ping = format!("{}/ping", bin.base);
        super::wait_for(30, "the gateway to answer /ping", || async {
            http.get(&ping)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        bin
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process, KiB (`VmRSS` in `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// SIGKILL, then reap the process.
    pub fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill_now();
    }
}

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
