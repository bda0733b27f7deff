//! Soak test (not in CI): mixed traffic over many sessions against the real gateway binary, with
//! webhook receivers that fail a share of requests; then checks exactly-once-after-dedupe
//! delivery of every committed event, flat memory, and a log free of unexpected errors.
//!
//! `cargo build --release && target/release/wagate-soak --minutes 30`

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use clap::Parser;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Soak test of a real wagate binary")]
struct Args {
    /// How long the traffic runs.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Sessions, each with its own webhook receiver path.
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Percent of webhook requests the receivers answer with 500.
    #[arg(long, default_value_t = 10)]
    fail_percent: u32,
    /// Concurrent API clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// The gateway binary (default: `wagate` next to this binary).
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// How long to wait for every delivery to finish after the traffic stops.
    #[arg(long, default_value_t = 300)]
    drain_seconds: u64,
}

/// What the receivers saw, per session: successful deliveries per event id, and failures injected.
#[derive(Default)]
struct Seen {
    ok: HashMap<String, HashMap<String, u32>>,
    injected: u64,
    requests: u64,
}

type Shared = Arc<(Mutex<Seen>, u32)>;

async fn receive(
    State(shared): State<Shared>,
    Path(session): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let (seen, fail_percent) = &*shared;
    let fail = rand::thread_rng().gen_range(0..100) < *fail_percent;
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    seen.requests += 1;
    if fail {
        seen.injected += 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    *seen.ok.entry(session).or_default().entry(id).or_default() += 1;
    StatusCode::OK
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
    server_errors: std::sync::atomic::AtomicU64,
    requests: std::sync::atomic::AtomicU64,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        use std::sync::atomic::Ordering;
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

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn me_of(i: usize) -> String {
    format!("{}@c.us", 70_000_000_000u64 + i as u64)
}

/// One random operation of the mix; group ids created are remembered for later operations.
async fn one_op(api: &Api, sessions: usize, groups: &Mutex<Vec<(usize, String)>>) {
    use reqwest::Method;
    let (s, choice, others) = {
        let mut rng = rand::thread_rng();
        let s = rng.gen_range(0..sessions);
        let mut others: Vec<String> = (0..sessions).filter(|&o| o != s).map(me_of).collect();
        others.shuffle(&mut rng);
        others.truncate(rng.gen_range(1..4));
        if rng.gen_range(0..3) == 0 {
            others.push(format!(
                "{}@c.us",
                rng.gen_range(10_000_000_000u64..20_000_000_000)
            ));
        }
        (s, rng.gen_range(0..100), others)
    };
    let picked = {
        let g = groups.lock().unwrap_or_else(|p| p.into_inner());
        g.choose(&mut rand::thread_rng()).cloned()
    };
    let parts: Vec<Value> = others.iter().map(|id| json!({"id": id})).collect();
    match (choice, picked) {
        (0..=9, _) | (_, None) => {
            let (status, body) = api
                .call(
                    Method::POST,
                    &format!("/api/s{s}/groups"),
                    Some(json!({"name": format!("Soak {choice}"), "participants": parts})),
                )
                .await;
            if status == 201 {
                if let Some(id) = body["id"].as_str() {
                    let mut g = groups.lock().unwrap_or_else(|p| p.into_inner());
                    g.push((s, id.to_owned()));
                    // Bounded: old groups stay in the stores but leave the working set.
                    if g.len() > 200 {
                        g.remove(0);
                    }
                }
            }
        }
        (c, Some((owner, gid))) => {
            let base = format!("/api/s{owner}/groups/{gid}");
            let (method, path, body) = match c {
                10..=24 => (
                    Method::POST,
                    format!("{base}/participants/add"),
                    Some(json!({"participants": parts})),
                ),
                25..=34 => (
                    Method::POST,
                    format!("{base}/participants/remove"),
                    Some(json!({"participants": parts})),
                ),
                35..=44 => (
                    Method::PUT,
                    format!("{base}/subject"),
                    Some(json!({"subject": format!("Subject {c}")})),
                ),
                45..=52 => (
                    Method::PUT,
                    format!("{base}/description"),
                    Some(json!({"description": "soak"})),
                ),
                53..=58 => (
                    Method::POST,
                    format!("{base}/admin/promote"),
                    Some(json!({"participants": parts})),
                ),
                59..=63 => (
                    Method::POST,
                    format!("{base}/admin/demote"),
                    Some(json!({"participants": parts})),
                ),
                64..=67 => (
                    Method::PUT,
                    format!("{base}/settings/security/info-admin-only"),
                    Some(json!({"adminsOnly": c % 2 == 0})),
                ),
                68..=70 => (Method::POST, format!("{base}/invite-code/revoke"), None),
                71..=72 => (
                    Method::POST,
                    format!("/api/s{}/groups/{gid}/leave", others.len() % sessions),
                    None,
                ),
                73..=85 => (Method::GET, base.clone(), None),
                86..=92 => (Method::GET, format!("/api/s{owner}/groups?limit=20"), None),
                _ => (Method::GET, format!("/api/s{owner}/events?limit=50"), None),
            };
            api.call(method, &path, body).await;
        }
    }
}

/// Every event id in the session's log, by paging through it.
async fn logged_ids(api: &Api, s: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let (status, body) = api
            .call(
                reqwest::Method::GET,
                &format!("/api/s{s}/events?limit=1000&after={after}"),
                None,
            )
            .await;
        let page = match (status, body.as_array()) {
            (200, Some(p)) if !p.is_empty() => p.clone(),
            _ => return out,
        };
        for e in &page {
            if let Some(id) = e["envelope"]["id"].as_str() {
                out.push(id.to_owned());
            }
        }
        after = page
            .last()
            .and_then(|e| e["cursor"].as_str())
            .unwrap_or_default()
            .to_owned();
    }
}

async fn pending(api: &Api, s: usize, state: &str) -> usize {
    let (_, body) = api
        .call(
            reqwest::Method::GET,
            &format!("/api/s{s}/webhooks/deliveries?state={state}&limit=1000"),
            None,
        )
        .await;
    body.as_array().map_or(usize::MAX, Vec::len)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let gateway = match args.gateway.clone() {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("wagate"),
    };
    let dir = std::env::temp_dir().join(format!("wagate-soak-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let log_path = dir.join("gateway.log");

    // Receivers: one server, one path per session.
    let shared: Shared = Arc::new((Mutex::new(Seen::default()), args.fail_percent));
    let app = axum::Router::new()
        .route("/hook/{session}", axum::routing::post(receive))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let hooks: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    // The gateway: the real binary as a child, on a free port and a temp dir.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let key = format!("soak-{}", ulid::Ulid::new());
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(&gateway)
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
        .map_err(|e| format!("cannot start {}: {e}", gateway.display()))?;
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

    for s in 0..args.sessions {
        let config = json!({
            "local": {"me": {"id": me_of(s), "pushName": format!("s{s}")}},
            "webhooks": [{"url": format!("http://{hooks}/hook/s{s}"), "events": ["*"],
                          "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 30}}]
        });
        let (status, body) = api
            .call(
                reqwest::Method::POST,
                "/api/sessions",
                Some(json!({"name": format!("s{s}"), "config": config})),
            )
            .await;
        if status != 201 {
            return Err(format!("creating session s{s}: {status} {body}"));
        }
    }

    // Traffic, with an RSS sample every 10 s.
    let deadline = Instant::now() + Duration::from_secs(args.minutes * 60);
    let groups = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let (api, groups, sessions) = (api.clone(), groups.clone(), args.sessions);
        clients.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                one_op(&api, sessions, &groups).await;
            }
        }));
    }
    let mut rss = Vec::new();
    while Instant::now() < deadline {
        rss.push(rss_kib(pid));
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(10))).await;
    }
    for c in clients {
        let _ = c.await;
    }
    rss.push(rss_kib(pid));
    let traffic_secs = started.elapsed().as_secs_f64();

    // Drain: every pending delivery done (retries included), none dead.
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_seconds);
    let mut left = usize::MAX;
    while Instant::now() < drain_deadline {
        left = 0;
        for s in 0..args.sessions {
            left = left.saturating_add(pending(&api, s, "pending").await);
        }
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut dead = 0;
    for s in 0..args.sessions {
        dead += pending(&api, s, "dead").await;
    }

    // Exactly once per id after dedupe: what the receivers acknowledged equals each log.
    let mut committed = 0usize;
    let mut missing = 0usize;
    let mut unknown = 0usize;
    let mut redelivered = 0u64;
    {
        let mut per_session = Vec::new();
        for s in 0..args.sessions {
            per_session.push(logged_ids(&api, s).await);
        }
        let seen = shared.0.lock().unwrap_or_else(|p| p.into_inner());
        for (s, ids) in per_session.iter().enumerate() {
            let got = seen.ok.get(&format!("s{s}")).cloned().unwrap_or_default();
            let logged: HashSet<&String> = ids.iter().collect();
            committed += ids.len();
            missing += ids.iter().filter(|id| !got.contains_key(*id)).count();
            unknown += got.keys().filter(|id| !logged.contains(id)).count();
            redelivered += got.values().map(|n| u64::from(n - 1)).sum::<u64>();
        }
    }

    let _ = child.start_kill();
    let _ = child.wait().await;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    let unexpected: Vec<&&str> = errors
        .iter()
        .filter(|l| !(l.contains("500") || l.contains("Internal Server Error")))
        .collect();

    // Memory: the last third of the run may not sit above the first third (after warm-up).
    let third = (rss.len() / 3).max(1);
    let early = rss.iter().skip(1).take(third).copied().max().unwrap_or(0);
    let late = rss.iter().rev().take(third).copied().max().unwrap_or(0);
    let grew = early > 0 && late > early + early / 4;

    let (requests, server_errors) = {
        use std::sync::atomic::Ordering;
        (
            api.requests.load(Ordering::Relaxed),
            api.server_errors.load(Ordering::Relaxed),
        )
    };
    let seen = shared.0.lock().unwrap_or_else(|p| p.into_inner());
    println!("soak: {:.0} s of traffic, {} sessions, {} API requests ({:.0}/s), {} answered 5xx or failed",
        traffic_secs, args.sessions, requests, requests as f64 / traffic_secs.max(1.0), server_errors);
    println!("soak: {} events committed; webhook requests {}, of them {} failed on purpose; {} redelivered ids",
        committed, seen.requests, seen.injected, redelivered);
    println!("soak: after drain {} pending, {} dead; {} committed ids never acknowledged; {} acknowledged ids not in a log",
        if left == usize::MAX { "unknown".to_owned() } else { left.to_string() }, dead, missing, unknown);
    println!("soak: RSS KiB first third max {early}, last third max {late} (samples: {rss:?})");
    println!(
        "soak: {} ERROR lines in the gateway log, {} not from injected failures",
        errors.len(),
        unexpected.len()
    );
    for l in unexpected.iter().take(10) {
        println!("  {l}");
    }
    let ok = server_errors == 0
        && left == 0
        && dead == 0
        && missing == 0
        && unknown == 0
        && committed > 0
        && !grew
        && unexpected.is_empty();
    println!("soak: {}", if ok { "PASS" } else { "FAIL" });
    if ok {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("soak: data and log kept in {}", dir.display());
    }
    Ok(ok)
}
