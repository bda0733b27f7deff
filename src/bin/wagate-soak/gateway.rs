//! The gateway under test: the real binary as a child process on a free port and a temp dir,
//! its log kept in a file to be searched afterwards, and the API client that counts every
//! request and every 5xx or failed one.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
    pub server_errors: AtomicU64,
    pub requests: AtomicU64,
}

impl Api {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Api-Key", &self.key);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let bytes = resp.bytes().await.unwrap_or_default();
                if status >= 500 {
                    self.server_errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "soak: {status} on {path}: {}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
                (
                    status,
                    serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                )
            }
            Err(e) => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: request to {path} failed: {e}");
                (0, Value::Null)
            }
        }
    }
}

/// The running gateway; killed when dropped.
pub struct Gateway {
    child: tokio::process::Child,
    pub pid: u32,
    pub api: Arc<Api>,
    /// When the process was started: the traffic's duration is counted from here.
    pub started: Instant,
}

/// Starts `binary` on `dir/data`, its log (plain text, `info`) to `log_path`, and waits until it
/// answers `/ping`.
pub async fn start(binary: &Path, dir: &Path, log_path: &Path) -> Result<Gateway, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let key = format!("soak-{}", ulid::Ulid::new());
    let log = std::fs::File::create(log_path).map_err(|e| e.to_string())?;
    let child = tokio::process::Command::new(binary)
        .env("WAGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("WAGATE_DATA_DIR", dir.join("data"))
        .env("WAHA_API_KEY", &key)
        .env("RUST_LOG", "info")
        // Plain text, so that the log can be searched for ERROR lines.
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or(0);
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
        key,
        server_errors: Default::default(),
        requests: Default::default(),
    });
    let started = Instant::now();
    while api
        .http
        .get(format!("{}/ping", api.base))
        .send()
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the gateway did not answer /ping within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Gateway {
        child,
        pid,
        api,
        started,
    })
}

impl Gateway {
    /// Kills the gateway and waits for it, so that its log is complete.
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}
