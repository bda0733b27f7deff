//! wagate-bench: drives the real gateway over HTTP on loopback and prints, for each scenario, the
//! figure, its ceiling measured in the same run, and their ratio.
//!
//! `wagate-bench all` (minutes) or `wagate-bench smoke` (seconds, for CI); also `read`, `write`,
//! `webhook`, `sessions`, `backlog`, and `overload` (about 75 s; in neither `all` nor `smoke`). `--svg PATH` draws the chart, `--json PATH` writes the figures.

mod chart;
mod idempotent;
mod load;
mod overload;
mod servers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use load::{percentile_ms, Stats};
use servers::{start_bare, start_gateway, start_receiver, BenchResult};

/// The same allocator as the gateway, so that the ceilings measured here get what it gets.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Sizes of one run: `all` uses the sizes, `smoke` small ones.
#[derive(Clone, Copy)]
struct Plan {
    secs: u64,
    conns: usize,
    sessions: usize,
    groups_per_session: usize,
    backlog: u64,
    paced_rate: u64,
}

const FULL: Plan = Plan {
    secs: 10,
    conns: 64,
    sessions: 1000,
    groups_per_session: 10,
    backlog: 100_000,
    paced_rate: 1000,
};
const SMOKE: Plan = Plan {
    secs: 1,
    conns: 16,
    sessions: 20,
    groups_per_session: 2,
    backlog: 2_000,
    paced_rate: 200,
};

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    scenario: String,
    figure: String,
    value: f64,
    unit: String,
    ceiling: Option<f64>,
    ratio: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    target: String,
    met: bool,
}

fn row(
    scenario: &str,
    figure: &str,
    value: f64,
    unit: &str,
    ceiling: Option<f64>,
    target: &str,
    met: bool,
) -> Row {
    Row {
        scenario: scenario.into(),
        figure: figure.into(),
        value,
        unit: unit.into(),
        ceiling,
        ratio: ceiling.filter(|c| *c > 0.0).map(|c| value / c),
        p50_ms: None,
        p99_ms: None,
        target: target.into(),
        met,
    }
}

/// What the machine did over measured windows: CPU seconds of the gateway and of this process,
/// and the CPU time the hypervisor gave to others (`steal` in `/proc/stat`) out of the total.
#[derive(Default, Clone, Copy)]
struct Usage {
    gateway: f64,
    bench: f64,
    steal: f64,
    total: f64,
}

impl Usage {
    /// The counters now; the gateway's stays 0 without `gw`.
    fn now(gw: Option<&servers::Proc>) -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let f: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        Usage {
            gateway: gw.map_or(0.0, servers::Proc::cpu_secs),
            bench: servers::cpu_secs("self"),
            steal: f.get(7).copied().unwrap_or(0.0),
            total: f.iter().take(8).sum(),
        }
    }
    /// Adds the window from `from` (taken with the same `gw`) to now.
    fn add_since(&mut self, gw: Option<&servers::Proc>, from: Usage) {
        let to = Usage::now(gw);
        self.gateway += to.gateway - from.gateway;
        self.bench += to.bench - from.bench;
        self.steal += to.steal - from.steal;
        self.total += to.total - from.total;
    }
    fn steal_pct(&self) -> f64 {
        if self.total > 0.0 {
            100.0 * self.steal / self.total
        } else {
            0.0
        }
    }
}

/// Requests in flight per webhook: the gateway's default `WAGATE_WEBHOOK_CONCURRENCY`.
const CONCURRENCY: usize = 8;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap_or_default()
}

async fn post(c: &reqwest::Client, url: &str, body: Value) -> BenchResult<Value> {
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

fn contact(i: usize) -> String {
    format!("{}@c.us", 20_000_000_000u64 + i as u64)
}

fn tmpdir(name: &str) -> BenchResult<PathBuf> {
    let d = std::env::temp_dir().join(format!("wagate-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    Ok(d)
}

async fn read(plan: Plan) -> BenchResult<Vec<Row>> {
    let dir = tmpdir("read")?;
    let (gw, _) = start_gateway(&dir, &[]).await?;
    let c = client();
    post(
        &c,
        &format!("{}/api/sessions", gw.base),
        json!({"name": "bench"}),
    )
    .await?;
    let parts: Vec<Value> = (0..49).map(|i| json!({"id": contact(i)})).collect();
    let g = post(
        &c,
        &format!("{}/api/bench/groups", gw.base),
        json!({"name": "Fifty", "participants": parts}),
    )
    .await?;
    let id = g["id"].as_str().unwrap_or_default().to_owned();
    let url = format!("{}/api/bench/groups/{id}", gw.base);
    let bytes = c
        .get(&url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let body_file = dir.join("body.json");
    std::fs::write(&body_file, &bytes).map_err(|e| e.to_string())?;
    let fig = get_loop(&c, url, plan).await;
    let bare = start_bare(&body_file).await?;
    let ceil = get_loop(&c, format!("{}/api/bench/groups/{id}", bare.base), plan).await;
    let rows = against_ceiling(
        ("read", "GET group (50 participants) req/s", "req/s", &fig),
        ("ceiling: bare axum, same bytes", "req/s", &ceil),
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}

/// A figure measured as a closed loop, and its ceiling's row: ratio, latencies, target ≥ 0.5.
fn against_ceiling(figure: (&str, &str, &str, &Stats), ceiling: (&str, &str, &Stats)) -> Vec<Row> {
    let (scenario, name, unit, fig) = figure;
    let (c_name, c_unit, ceil) = ceiling;
    let mut r = row(
        scenario,
        name,
        fig.rate(),
        unit,
        Some(ceil.rate()),
        "≥ 0.5 of ceiling",
        false,
    );
    r.met = r.ratio.unwrap_or(0.0) >= 0.5;
    r.p50_ms = Some(fig.pct_ms(0.5));
    r.p99_ms = Some(fig.pct_ms(0.99));
    let mut c_row = row(scenario, c_name, ceil.rate(), c_unit, None, "", true);
    c_row.p50_ms = Some(ceil.pct_ms(0.5));
    c_row.p99_ms = Some(ceil.pct_ms(0.99));
    vec![r, c_row]
}

async fn get_loop(c: &reqwest::Client, url: String, plan: Plan) -> Stats {
    let c = c.clone();
    let url = Arc::new(url);
    load::closed_loop(plan.conns, Duration::from_secs(plan.secs), move |_, _| {
        let c = c.clone();
        let url = url.clone();
        async move {
            match c.get(url.as_str()).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await
}

/// `WAGATE_BENCH_NO_HOOK=1`: the bench's webhook subscribes to no event (to measure writes alone).
fn hook_off() -> bool {
    std::env::var("WAGATE_BENCH_NO_HOOK").is_ok_and(|v| v == "1")
}

/// A session `bench` with one webhook to `receiver` and `groups` groups; answers the group ids.
async fn webhook_setup(
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

/// Makes the changes numbered `range`, `conns` at a time; answers how many succeeded.
async fn make_changes<F>(op: &Arc<F>, range: std::ops::Range<u64>, conns: usize) -> u64
where
    F: Fn(usize, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
        + Send
        + Sync
        + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(conns));
    let mut tasks = Vec::new();
    for i in range {
        let (op, sem) = (op.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.ok()?;
            op((i % 64) as usize, i).await.then_some(())
        }));
    }
    let mut made = 0;
    for t in tasks {
        if matches!(t.await, Ok(Some(()))) {
            made += 1;
        }
    }
    made
}

fn subject_op(
    c: &reqwest::Client,
    base: &str,
    ids: &[String],
) -> impl Fn(usize, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
       + Send
       + Sync
       + 'static {
    rename_op(c, base, ids, None)
}

/// A `PUT subject` on one of `ids`; with `keys: Some(tag)`, each with a fresh `Idempotency-Key`.
fn rename_op(
    c: &reqwest::Client,
    base: &str,
    ids: &[String],
    keys: Option<u64>,
) -> impl Fn(usize, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
       + Send
       + Sync
       + 'static {
    let c = c.clone();
    let urls: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| format!("{base}/api/bench/groups/{id}/subject"))
            .collect(),
    );
    move |w, i| {
        let mut req = c
            .put(urls[(w + i as usize) % urls.len()].clone())
            .json(&json!({"subject": format!("subject {i}")}));
        if let Some(tag) = keys {
            req = req.header("idempotency-key", format!("bench-{tag}-{w}-{i}"));
        }
        Box::pin(async move { req.send().await.is_ok_and(|r| r.status().is_success()) })
    }
}

async fn write(plan: Plan) -> BenchResult<Vec<Row>> {
    let dir = tmpdir("write")?;
    let (gw, _) = start_gateway(&dir, &[]).await?;
    let recv = start_receiver().await?;
    let c = client();
    let ids = webhook_setup(
        &c,
        &gw.base,
        &recv.url,
        plan.conns,
        json!({"policy": "constant", "delaySeconds": 1, "attempts": 5}),
    )
    .await?;
    // The ceiling: the same bytes (a stored group) inserted into sled and flushed, 64-way.
    let group_bytes = c
        .get(format!("{}/api/bench/groups/{}", gw.base, ids[0]))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let db = sled::Config::new()
        .path(dir.join("raw"))
        .cache_capacity(1024 * 1024)
        .segment_size(64 * 1024)
        .flush_every_ms(None)
        .open()
        .map_err(|e| e.to_string())?;
    let db = Arc::new(db);
    let bytes = Arc::new(group_bytes.to_vec());
    // Figure and ceiling in turns, so that a change in the machine's load between the two
    // (a shared machine's disk and CPU vary by a third from minute to minute) hits both.
    let rounds = plan.secs.clamp(1, 5);
    let turn = Duration::from_secs(plan.secs / rounds);
    let hooked = !hook_off();
    let (mut fig, mut ceil) = (Stats::default(), Stats::default());
    let (mut fig_use, mut ceil_use) = (Usage::default(), Usage::default());
    for round in 0..rounds {
        let from = Usage::now(Some(&gw));
        fig.merge(load::closed_loop(plan.conns, turn, subject_op(&c, &gw.base, &ids)).await);
        // The deliveries of this round's changes must not run during the ceiling's turn.
        if hooked {
            recv.wait_count(fig.ok as u64, 120).await;
        }
        fig_use.add_since(Some(&gw), from);
        let (db, bytes) = (db.clone(), bytes.clone());
        let from = Usage::now(None);
        ceil.merge(
            load::closed_loop(plan.conns, turn, move |w, i| {
                let db = db.clone();
                let bytes = bytes.clone();
                async move {
                    let key = format!("{round}-{w}-{i}");
                    tokio::task::spawn_blocking(move || {
                        db.insert(key.as_bytes(), bytes.as_slice())
                            .and_then(|_| db.flush())
                            .is_ok()
                    })
                    .await
                    .unwrap_or(false)
                }
            })
            .await,
        );
        ceil_use.add_since(None, from);
    }
    eprintln!(
        "write: CPU per durable PUT, its delivery included: gateway {:.0} µs, bench (client and receiver) {:.0} µs; CPU steal {:.0} % during the figure, {:.0} % during the ceiling",
        fig_use.gateway * 1e6 / fig.ok.max(1) as f64,
        fig_use.bench * 1e6 / fig.ok.max(1) as f64,
        fig_use.steal_pct(),
        ceil_use.steal_pct()
    );
    drop(gw);
    let rows = against_ceiling(
        (
            "write",
            "PUT subject req/s (durable, 1 webhook)",
            "req/s",
            &fig,
        ),
        ("ceiling: raw sled insert + flush", "writes/s", &ceil),
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}

/// The webhook figure: how fast the dispatcher delivers events that are committed and due
/// (HMAC on), against a bare POST loop of the same bodies at the same concurrency; latency
/// change→receipt at a fixed rate; and, for information, the end-to-end rate during a write burst.
async fn webhook(plan: Plan) -> BenchResult<(Vec<Row>, f64)> {
    let dir = tmpdir("webhook")?;
    // Held requests must not time out while the queue fills.
    let (gw, _) = start_gateway(
        &dir,
        &[
            ("WAGATE_WEBHOOK_TIMEOUT_SECONDS", "300".into()),
            ("WAGATE_WEBHOOK_CONCURRENCY", CONCURRENCY.to_string()),
        ],
    )
    .await?;
    let recv = start_receiver().await?;
    let c = client();
    let ids = webhook_setup(
        &c,
        &gw.base,
        &recv.url,
        plan.conns,
        json!({"policy": "constant", "delaySeconds": 1, "attempts": 5}),
    )
    .await?;
    // End to end during a closed-loop write burst: bounded by how fast changes commit.
    let start = Instant::now();
    let changes = load::closed_loop(
        plan.conns,
        Duration::from_secs(plan.secs),
        subject_op(&c, &gw.base, &ids),
    )
    .await;
    recv.wait_count(changes.ok as u64, 120).await;
    let secs = recv
        .last_at()
        .map(|t| t.duration_since(start).as_secs_f64())
        .unwrap_or(1.0);
    let burst_rate = recv.count() as f64 / secs;
    recv.take_latencies();
    // Latency at a fixed rate.
    let before = recv.count();
    let paced = load::paced(
        plan.paced_rate,
        plan.conns,
        Duration::from_secs(plan.secs),
        subject_op(&c, &gw.base, &ids),
    )
    .await;
    recv.wait_count(before + paced.ok as u64, 120).await;
    let lat = recv.take_latencies();
    // Delivery rate: queue events behind a receiver that holds its answers, then let go; and the
    // ceiling: the same bytes POSTed by a bare reqwest loop at the dispatcher's concurrency from
    // a process of its own, as the gateway is one. In turns, so that a change in the machine
    // (its CPU steal time went from 0 to 50 % within a minute here) hits both alike.
    let body_file = dir.join("ceiling-body.json");
    let turns = plan.secs.clamp(1, 5);
    let per_turn = plan.backlog / 5 / turns;
    let (mut made, mut delivered, mut drain_secs) = (0, true, 0.0);
    let (mut fig_use, mut ceil_use) = (Usage::default(), Usage::default());
    let mut ceil = Stats::default();
    let op = Arc::new(subject_op(&c, &gw.base, &ids));
    for turn in 0..turns {
        recv.hold();
        let before = recv.count();
        let n = make_changes(&op, turn * per_turn..(turn + 1) * per_turn, plan.conns).await;
        made += n;
        let start = Instant::now();
        let from = Usage::now(Some(&gw));
        recv.release();
        delivered &= recv.wait_count(before + n, 300).await;
        fig_use.add_since(Some(&gw), from);
        drain_secs += recv
            .last_at()
            .map(|t| t.duration_since(start).as_secs_f64())
            .unwrap_or(f64::MAX);
        if turn == 0 {
            let body = recv.last_body().ok_or("the receiver got no event")?;
            std::fs::write(&body_file, &body).map_err(|e| e.to_string())?;
        }
        let from = Usage::now(None);
        ceil.merge(servers::run_post_loop(&recv.url, &body_file, CONCURRENCY, 2).await?);
        ceil_use.add_since(None, from);
    }
    let rate = made as f64 / drain_secs;
    eprintln!(
        "webhook drain: {made} events in {drain_secs:.2} s ({turns} turns); CPU gateway {:.2} s ({:.0} µs/event), bench (receiver) {:.2} s; CPU steal {:.0} % during the drains, {:.0} % during the ceiling",
        fig_use.gateway,
        fig_use.gateway * 1e6 / made.max(1) as f64,
        fig_use.bench,
        fig_use.steal_pct(),
        ceil_use.steal_pct()
    );
    recv.take_latencies();
    let mut r = row(
        "webhook",
        &format!("events/s delivered, {made} queued in {turns} turns (HMAC)"),
        rate,
        "events/s",
        Some(ceil.rate()),
        "≥ 0.5 of ceiling; p99 ≤ 20 ms",
        false,
    );
    r.p50_ms = Some(percentile_ms(&lat, 0.5));
    r.p99_ms = Some(percentile_ms(&lat, 0.99));
    r.met = delivered && r.ratio.unwrap_or(0.0) >= 0.5 && r.p99_ms.unwrap_or(f64::MAX) <= 20.0;
    let mut c_row = row(
        "webhook",
        &format!("ceiling: bare reqwest POST loop (own process), {CONCURRENCY} in flight"),
        ceil.rate(),
        "req/s",
        None,
        "",
        true,
    );
    c_row.p50_ms = Some(ceil.pct_ms(0.5));
    c_row.p99_ms = Some(ceil.pct_ms(0.99));
    let mut p_row = row(
        "webhook",
        &format!("latency change→receipt at {} changes/s", plan.paced_rate),
        paced.rate(),
        "changes/s",
        None,
        "",
        true,
    );
    p_row.p50_ms = r.p50_ms;
    p_row.p99_ms = r.p99_ms;
    let b_row = row(
        "webhook",
        "end to end during a write burst (bound by writes)",
        burst_rate,
        "events/s",
        None,
        "",
        true,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok((vec![r, c_row, p_row, b_row], rate))
}

async fn sessions(plan: Plan) -> BenchResult<Vec<Row>> {
    let dir = tmpdir("sessions")?;
    let (gw, _) = start_gateway(&dir, &[]).await?;
    let c = client();
    let base = Arc::new(gw.base.clone());
    let n = plan.sessions;
    let g = plan.groups_per_session;
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (c, base, sem) = (c.clone(), base.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.map_err(|e| e.to_string())?;
            post(
                &c,
                &format!("{base}/api/sessions"),
                json!({"name": format!("s{i}")}),
            )
            .await?;
            for k in 0..g {
                post(
                    &c,
                    &format!("{base}/api/s{i}/groups"),
                    json!({"name": format!("g{k}"), "participants": [{"id": contact(k)}]}),
                )
                .await?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let populated_rss = gw.rss_mib();
    drop(gw);
    let (gw, startup) = start_gateway(&dir, &[]).await?;
    let rss = gw.rss_mib();
    let listed = c
        .get(format!("{}/api/sessions?all=true", gw.base))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let count = listed
        .json::<Value>()
        .await
        .map_err(|e| e.to_string())?
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    if count != n {
        return Err(format!("after restart {count} sessions, expected {n}"));
    }
    let label = format!("{n} sessions × {g} groups");
    let mut out = vec![
        row(
            "sessions",
            &format!("RSS after restart, {label}"),
            rss,
            "MiB",
            None,
            "≤ 300 MiB",
            rss <= 300.0,
        ),
        row(
            "sessions",
            &format!("start-up to healthy, {label}"),
            startup.as_secs_f64(),
            "s",
            None,
            "≤ 3 s",
            startup.as_secs_f64() <= 3.0,
        ),
    ];
    out.push(row(
        "sessions",
        "RSS right after populating (before restart)",
        populated_rss,
        "MiB",
        None,
        "",
        true,
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

async fn backlog(plan: Plan, webhook_rate: Option<f64>) -> BenchResult<Vec<Row>> {
    let dir = tmpdir("backlog")?;
    let (gw, _) = start_gateway(&dir, &[]).await?;
    let recv = start_receiver().await?;
    recv.down.store(true, std::sync::atomic::Ordering::Relaxed);
    let c = client();
    let ids = webhook_setup(
        &c,
        &gw.base,
        &recv.url,
        plan.conns,
        json!({"policy": "constant", "delaySeconds": 1, "attempts": 100}),
    )
    .await?;
    let op = Arc::new(subject_op(&c, &gw.base, &ids));
    let mut rss = vec![gw.rss_mib()];
    let quarter = plan.backlog / 4;
    let mut made = 0u64;
    for _ in 0..4 {
        if make_changes(&op, made..made + quarter, plan.conns).await != quarter {
            return Err("a change failed while queueing the backlog".into());
        }
        made += quarter;
        rss.push(gw.rss_mib());
    }
    let growth = rss.last().copied().unwrap_or(0.0) - rss.get(1).copied().unwrap_or(0.0);
    let start = Instant::now();
    let before = recv.count();
    recv.down.store(false, std::sync::atomic::Ordering::Relaxed);
    let delivered = recv.wait_count(before + made, 600).await;
    let secs = recv
        .last_at()
        .map(|t| t.duration_since(start).as_secs_f64())
        .unwrap_or(f64::MAX);
    let rate = (recv.count() - before) as f64 / secs;
    let rss_text = rss
        .iter()
        .map(|r| format!("{r:.0}"))
        .collect::<Vec<_>>()
        .join(" → ");
    let mut out = vec![row(
        "backlog",
        &format!("RSS while queueing {made} events (MiB: {rss_text})"),
        growth,
        "MiB growth over the last 3/4",
        None,
        "flat",
        growth < 10.0,
    )];
    let mut drain = row(
        "backlog",
        "drain rate after the receiver came back",
        rate,
        "events/s",
        webhook_rate,
        "≥ 0.5 of the webhook figure",
        false,
    );
    drain.met = delivered && drain.ratio.unwrap_or(0.0) >= 0.5;
    out.push(drain);
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

fn print(rows: &[Row]) {
    let head = [
        "scenario", "figure", "value", "ceiling", "ratio", "p50 ms", "p99 ms", "target",
    ];
    println!(
        "{:<9} {:<58} {:>12} {:>12} {:>7} {:>9} {:>9}  {}",
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]
    );
    for r in rows {
        let opt = |v: Option<f64>, prec: usize| {
            v.map(|v| format!("{v:.prec$}"))
                .unwrap_or_else(|| "-".into())
        };
        let target = if r.target.is_empty() {
            String::new()
        } else {
            format!("{} — {}", r.target, if r.met { "met" } else { "MISSED" })
        };
        println!(
            "{:<9} {:<58} {:>12} {:>12} {:>7} {:>9} {:>9}  {}",
            r.scenario,
            format!("{} [{}]", r.figure, r.unit),
            format!("{:.1}", r.value),
            opt(r.ceiling, 1),
            opt(r.ratio, 2),
            opt(r.p50_ms, 2),
            opt(r.p99_ms, 2),
            target
        );
    }
}

async fn run(what: &str, plan: Plan) -> BenchResult<Vec<Row>> {
    let mut rows = Vec::new();
    let all = matches!(what, "all" | "smoke");
    if all || what == "read" {
        rows.extend(read(plan).await?);
    }
    if all || what == "write" {
        rows.extend(write(plan).await?);
    }
    let mut webhook_rate = None;
    if all || what == "webhook" || what == "backlog" {
        let (r, rate) = webhook(plan).await?;
        webhook_rate = Some(rate);
        if what != "backlog" {
            rows.extend(r);
        }
    }
    if all || what == "sessions" {
        rows.extend(sessions(plan).await?);
    }
    if all || what == "backlog" {
        rows.extend(backlog(plan, webhook_rate).await?);
    }
    if what == "overload" {
        rows.extend(overload::overload().await?);
    }
    if what == "idempotency" {
        rows.extend(idempotent::idempotency(plan).await?);
    }
    Ok(rows)
}

fn usage() -> ! {
    eprintln!("usage: wagate-bench all|smoke|read|write|webhook|sessions|backlog|overload|idempotency [--svg PATH] [--json PATH]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("post-loop") {
        let (Some(url), Some(file), Some(conns), Some(secs)) = (
            args.get(1).cloned(),
            args.get(2).map(PathBuf::from),
            args.get(3).and_then(|v| v.parse().ok()),
            args.get(4).and_then(|v| v.parse().ok()),
        ) else {
            usage()
        };
        if let Err(e) = servers::post_loop(url, &file, conns, secs).await {
            eprintln!("post loop: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("bare-server") {
        let port = args
            .get(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| usage());
        let file = args.get(2).map(PathBuf::from).unwrap_or_else(|| usage());
        if let Err(e) = servers::serve_bare(port, &file).await {
            eprintln!("bare server: {e}");
            std::process::exit(1);
        }
        return;
    }
    let what = args.first().cloned().unwrap_or_else(|| usage());
    if ![
        "all",
        "smoke",
        "read",
        "write",
        "webhook",
        "sessions",
        "backlog",
        "overload",
        "idempotency",
    ]
    .contains(&what.as_str())
    {
        usage();
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let plan = if what == "smoke" { SMOKE } else { FULL };
    let started = Instant::now();
    match run(&what, plan).await {
        Ok(rows) => {
            print(&rows);
            println!(
                "({what} took {:.0} s on {} cores)",
                started.elapsed().as_secs_f64(),
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            );
            if let Some(p) = flag("--json") {
                let _ = std::fs::write(&p, serde_json::to_string_pretty(&rows).unwrap_or_default());
            }
            if let Some(p) = flag("--svg") {
                if let Err(e) = std::fs::write(&p, chart::svg(&rows)) {
                    eprintln!("cannot write {}: {e}", p.display());
                }
            }
        }
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
