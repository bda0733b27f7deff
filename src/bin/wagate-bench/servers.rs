//! The processes and servers a bench run needs: the real gateway as a child process, a bare axum
//! server (the read ceiling) as a child process, and an in-process webhook receiver.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

pub type BenchResult<T> = Result<T, String>;

pub fn free_port() -> BenchResult<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Resident memory of a process, MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// A child process that is killed when dropped.
pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn rss_mib(&self) -> f64 {
        rss_mib(self.pid())
    }
    /// CPU seconds the process has used so far (all threads; Linux), or 0 if unknown.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(&self.pid().to_string())
    }
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The wagate binary next to this one.
pub fn gateway_binary() -> BenchResult<PathBuf> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let p = me.with_file_name("wagate");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: build it with `cargo build --release`",
            p.display()
        ))
    }
}

/// Starts the gateway on `data` and waits until `/health` answers 200; answers the process and the start-up time.
pub async fn start_gateway(
    data: &Path,
    extra_env: &[(&str, String)],
) -> BenchResult<(Proc, Duration)> {
    let port = free_port()?;
    let t = Instant::now();
    let mut cmd = Command::new(gateway_binary()?);
    cmd.env("WAHA_NO_API_KEY", "true")
        .env("WAGATE_DATA_DIR", data)
        .env("WAGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the gateway: {e}"))?;
    let proc = Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    wait_ready(&format!("{}/health", proc.base)).await?;
    Ok((proc, t.elapsed()))
}

/// Starts this binary's bare server (the ceiling for reads) serving `body` for every GET.
pub async fn start_bare(body_file: &Path) -> BenchResult<Proc> {
    let port = free_port()?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = Command::new(me)
        .arg("bare-server")
        .arg(port.to_string())
        .arg(body_file)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let proc = Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    wait_ready(&format!("{}/ping", proc.base)).await?;
    Ok(proc)
}

/// Runs this binary as a bare sender (the webhook ceiling): `conns` requests in flight POSTing
/// `body_file` to `url` for `secs`, in its own process like the gateway; answers what it measured.
pub async fn run_post_loop(
    url: &str,
    body_file: &Path,
    conns: usize,
    secs: u64,
) -> BenchResult<crate::load::Stats> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new(me);
    cmd.arg("post-loop")
        .arg(url)
        .arg(body_file)
        .arg(conns.to_string())
        .arg(secs.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let out = cmd.output().await.map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("post-loop failed: {}", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("post-loop output: {e}"))
}

/// The bare sender's body: POSTs the file's bytes in a closed loop, prints the stats as JSON.
pub async fn post_loop(url: String, body_file: &Path, conns: usize, secs: u64) -> BenchResult<()> {
    let body = axum::body::Bytes::from(std::fs::read(body_file).map_err(|e| e.to_string())?);
    let headers = headers_beside(body_file)?;
    let c = reqwest::Client::new();
    // Parsed once: the ceiling does only what every request must.
    let url = reqwest::Url::parse(&url).map_err(|e| e.to_string())?;
    let stats = crate::load::closed_loop(conns, Duration::from_secs(secs), move |_, _| {
        let (c, url, body) = (c.clone(), url.clone(), body.clone());
        let headers = headers.clone();
        async move {
            c.post(url)
                .headers(headers)
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    println!(
        "{}",
        serde_json::to_string(&stats).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// The headers to send with the body: `name: value` lines in `BODY.headers` when that file
/// exists (the webhook ceiling sends what the gateway sent, signatures included), else a
/// `content-type: application/json`.
fn headers_beside(body_file: &Path) -> BenchResult<reqwest::header::HeaderMap> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
    let mut map = HeaderMap::new();
    let Ok(text) = std::fs::read_to_string(body_file.with_extension("headers")) else {
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(map);
    };
    for line in text.lines() {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
        map.append(name, value);
    }
    Ok(map)
}

async fn wait_ready(url: &str) -> BenchResult<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{url} did not answer within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The bare server: one axum handler answering the same bytes. Runs until killed.
pub async fn serve_bare(port: u16, body_file: &Path) -> BenchResult<()> {
    let body = axum::body::Bytes::from(std::fs::read(body_file).map_err(|e| e.to_string())?);
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
        }
    });
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    axum::serve(l, app).await.map_err(|e| e.to_string())
}

/// A webhook receiver: counts events, records change→receipt latency from the envelope's
/// timestamp, dedupes on the event id; answers 204, or 503 while "down".
#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<AtomicU64>,
    pub down: Arc<AtomicBool>,
    /// While set, requests wait (held open) until `release`.
    pub held: Arc<AtomicBool>,
    pub gate: Arc<tokio::sync::Notify>,
    pub lat_us: Arc<Mutex<Vec<u64>>>,
    pub last_at: Arc<Mutex<Option<Instant>>>,
    /// The last body received: the ceiling posts the same bytes.
    pub last_body: Arc<Mutex<Option<axum::body::Bytes>>>,
    /// The headers of the first request received: the ceiling sends the same ones.
    pub first_headers: Arc<Mutex<Option<axum::http::HeaderMap>>>,
    pub url: String,
}

pub async fn start_receiver() -> BenchResult<Receiver> {
    let mut r = Receiver::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    r.url = format!(
        "http://{}/webhook",
        l.local_addr().map_err(|e| e.to_string())?
    );
    let rc = r.clone();
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let rc = rc.clone();
            async move {
                while rc.held.load(Ordering::Acquire) {
                    let opened = rc.gate.notified();
                    if !rc.held.load(Ordering::Acquire) {
                        break;
                    }
                    opened.await;
                }
                if rc.down.load(Ordering::Relaxed) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let now = now_ms();
                // Only the timestamp is needed: find it without parsing the whole envelope.
                let ts = find_u64(&body, b"\"timestamp\":");
                if let Some(ts) = ts {
                    if let Ok(mut v) = rc.lat_us.lock() {
                        v.push(now.saturating_sub(ts) * 1000);
                    }
                }
                rc.received.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut l) = rc.last_at.lock() {
                    *l = Some(Instant::now());
                }
                if let Ok(mut b) = rc.last_body.lock() {
                    *b = Some(body);
                }
                if let Ok(mut h) = rc.first_headers.lock() {
                    if h.is_none() {
                        *h = Some(headers);
                    }
                }
                StatusCode::NO_CONTENT
            }
        },
    );
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    Ok(r)
}

impl Receiver {
    pub fn hold(&self) {
        self.held.store(true, Ordering::Release);
    }
    pub fn release(&self) {
        self.held.store(false, Ordering::Release);
        self.gate.notify_waiters();
    }
    pub fn count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
    pub fn take_latencies(&self) -> Vec<u64> {
        let mut v = self
            .lat_us
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        v.sort_unstable();
        v
    }
    /// The first request's headers as `name: value` lines, without those the client sets
    /// from the URL and the body (`host`, `content-length`).
    pub fn first_headers(&self) -> Option<String> {
        let h = self.first_headers.lock().ok().and_then(|h| h.clone())?;
        let mut out = String::new();
        for (name, value) in &h {
            if name == "host" || name == "content-length" {
                continue;
            }
            out.push_str(&format!("{name}: {}\n", value.to_str().ok()?));
        }
        Some(out)
    }
    pub fn last_body(&self) -> Option<axum::body::Bytes> {
        self.last_body.lock().ok().and_then(|b| b.clone())
    }
    pub fn last_at(&self) -> Option<Instant> {
        self.last_at.lock().ok().and_then(|l| *l)
    }
    /// Waits until `n` events arrived; false after `secs`.
    pub async fn wait_count(&self, n: u64, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.count() < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

fn find_u64(hay: &[u8], needle: &[u8]) -> Option<u64> {
    let pos = hay.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let digits: Vec<u8> = hay[pos..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// CPU seconds (user + system, all threads) of `/proc/<pid>`, assuming the usual 100 ticks/s.
pub fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of this process's children that have ended and been waited for (the ceiling's
/// `post-loop` and `bare-server` once they exit).
pub fn children_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(13) + ticks(14)) / 100.0
}
