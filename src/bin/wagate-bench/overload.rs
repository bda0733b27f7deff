//! `wagate-bench overload`: more work than the gateway can hold (contract §4). 800 connections
//! rename groups for 30 s against `WAGATE_MAX_INFLIGHT=64`, once on the normal disk and once on
//! one slowed by `WAGATE_TEST_FSYNC_DELAY_MS=50`; prints the rate and latency of the 2xx and of
//! the 503 `overloaded` answers, the peak RSS, the slowest `/ping`, and how long after the flood
//! a write takes its normal time again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::load::percentile_ms;
use crate::report::{row, Row};
use crate::servers::{rss_mib, start_gateway, BenchResult};
use crate::setup::{client, plain_setup, tmpdir};

const CONNS: usize = 800;
const SECS: u64 = 30;
const MAX_INFLIGHT: &str = "64";
const GROUPS: usize = 64;
/// Sequential writes before the flood whose p99 is "normal latency".
const BASELINE: usize = 200;

/// The flood's answers, latencies in µs.
#[derive(Default)]
struct Answers {
    ok_us: Vec<u64>,
    overloaded_us: Vec<u64>,
    other: usize,
    errors: usize,
}

pub async fn overload() -> BenchResult<Vec<Row>> {
    let mut rows = Vec::new();
    for slow in [false, true] {
        rows.extend(one(slow).await?);
    }
    Ok(rows)
}

async fn one(slow: bool) -> BenchResult<Vec<Row>> {
    let dir = tmpdir(if slow { "overload-slow" } else { "overload" })?;
    let mut env = vec![("WAGATE_MAX_INFLIGHT", MAX_INFLIGHT.to_owned())];
    if slow {
        env.push(("WAGATE_TEST_FSYNC_DELAY_MS", "50".to_owned()));
    }
    let (gw, _) = start_gateway(&dir, &env).await?;
    let c = client();
    let urls: Vec<String> = plain_setup(&c, &gw.base, GROUPS)
        .await?
        .iter()
        .map(|id| format!("{}/api/bench/groups/{id}/subject", gw.base))
        .collect();
    let normal_us = baseline(&c, &urls[0]).await?;
    let idle_rss = gw.rss_mib();
    let until = Instant::now() + Duration::from_secs(SECS);
    let watcher = tokio::spawn(watch(gw.base.clone(), gw.pid(), until));
    let answers = flood(&c, Arc::new(urls.clone()), until).await;
    let recovery = recover(&c, &urls[0], normal_us, until).await;
    let (ping_max, mut rss) = watcher.await.map_err(|e| e.to_string())?;
    rss.insert(0, idle_rss);
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
    let disk = if slow { "fsync +50 ms" } else { "normal disk" };
    Ok(rows(disk, &answers, normal_us, recovery, ping_max, &rss))
}

/// The p99 of `BASELINE` sequential renames on an idle gateway, µs.
async fn baseline(c: &reqwest::Client, url: &str) -> BenchResult<u64> {
    let mut lat = Vec::with_capacity(BASELINE);
    for i in 0..BASELINE {
        let t = Instant::now();
        let r = c
            .put(url)
            .json(&json!({"subject": format!("base {i}")}))
            .send()
            .await;
        if !r.is_ok_and(|r| r.status().is_success()) {
            return Err("a write before the flood failed".into());
        }
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat.sort_unstable();
    Ok(lat[(lat.len() - 1) * 99 / 100])
}

/// `CONNS` connections renaming as fast as answers come until `until`.
async fn flood(c: &reqwest::Client, urls: Arc<Vec<String>>, until: Instant) -> Answers {
    let mut tasks = Vec::new();
    for w in 0..CONNS {
        let (c, urls) = (c.clone(), urls.clone());
        tasks.push(tokio::spawn(async move {
            let mut a = Answers::default();
            let url = &urls[w % urls.len()];
            let mut i = 0u64;
            while Instant::now() < until {
                let t = Instant::now();
                i += 1;
                let body = json!({"subject": format!("c{w} {i}")});
                match c.put(url).json(&body).send().await {
                    // Bodies are read to the end so that each connection stays open.
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        a.ok_us.push(us(t));
                    }
                    Ok(r) if r.status() == 503 => {
                        if overloaded(r).await {
                            a.overloaded_us.push(us(t));
                        } else {
                            a.other += 1;
                        }
                    }
                    Ok(_) => a.other += 1,
                    Err(_) => a.errors += 1,
                }
            }
            a
        }));
    }
    let mut all = Answers::default();
    for t in tasks {
        if let Ok(a) = t.await {
            all.ok_us.extend(a.ok_us);
            all.overloaded_us.extend(a.overloaded_us);
            all.other += a.other;
            all.errors += a.errors;
        }
    }
    all.ok_us.sort_unstable();
    all.overloaded_us.sort_unstable();
    all
}

fn us(since: Instant) -> u64 {
    since.elapsed().as_micros() as u64
}

/// Whether a 503 is the contract's `overloaded` answer, `Retry-After: 1` included.
async fn overloaded(r: reqwest::Response) -> bool {
    let retry_after = r.headers().get("retry-after").is_some_and(|v| v == "1");
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    retry_after && body["code"] == "overloaded"
}

/// Time from `flood_end` until a sequential write takes at most `normal_us`; None within 60 s.
async fn recover(
    c: &reqwest::Client,
    url: &str,
    normal_us: u64,
    flood_end: Instant,
) -> Option<Duration> {
    let mut i = 0u64;
    while flood_end.elapsed() < Duration::from_secs(60) {
        i += 1;
        let t = Instant::now();
        let r = c
            .put(url)
            .json(&json!({"subject": format!("after {i}")}))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) && us(t) <= normal_us {
            return Some(flood_end.elapsed());
        }
    }
    None
}

/// Pings every 100 ms and samples the gateway's RSS until `until`: the slowest ping (ms; an
/// unanswered one counts as infinite) and the RSS samples (MiB).
async fn watch(base: String, pid: u32, until: Instant) -> (f64, Vec<f64>) {
    let c = reqwest::Client::new();
    let (mut slowest, mut rss) = (0.0f64, Vec::new());
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while Instant::now() < until {
        tick.tick().await;
        let t = Instant::now();
        let answered = c
            .get(format!("{base}/ping"))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let ms = if answered {
            us(t) as f64 / 1000.0
        } else {
            f64::INFINITY
        };
        slowest = slowest.max(ms);
        rss.push(rss_mib(pid));
    }
    (slowest, rss)
}

fn rows(
    disk: &str,
    a: &Answers,
    normal_us: u64,
    recovery: Option<Duration>,
    ping_max: f64,
    rss: &[f64],
) -> Vec<Row> {
    let secs = SECS as f64;
    let label = format!("{disk}, {CONNS} conns, max in flight {MAX_INFLIGHT}");
    let mut ok = row(
        "overload",
        &format!("2xx/s, {label}"),
        a.ok_us.len() as f64 / secs,
        "req/s",
        None,
        "",
        true,
    );
    ok.p50_ms = Some(percentile_ms(&a.ok_us, 0.5));
    ok.p99_ms = Some(percentile_ms(&a.ok_us, 0.99));
    let n = a.overloaded_us.len() as f64 / secs;
    let mut refused = row(
        "overload",
        &format!("503 overloaded/s, {disk}"),
        n,
        "req/s",
        None,
        "",
        true,
    );
    refused.p50_ms = Some(percentile_ms(&a.overloaded_us, 0.5));
    refused.p99_ms = Some(percentile_ms(&a.overloaded_us, 0.99));
    let bad = (a.other + a.errors) as f64;
    let normal_ms = normal_us as f64 / 1000.0;
    let back = recovery.map_or(f64::INFINITY, |d| d.as_secs_f64());
    vec![
        ok,
        refused,
        row(
            "overload",
            &format!("other answers + connection errors, {disk}"),
            bad,
            "requests",
            None,
            "0",
            bad == 0.0,
        ),
        rss_row(disk, rss),
        row(
            "overload",
            &format!("slowest /ping (every 100 ms), {disk}"),
            ping_max,
            "ms",
            None,
            "",
            true,
        ),
        row(
            "overload",
            &format!("end of flood → a write ≤ {normal_ms:.1} ms (p99 before), {disk}"),
            back,
            "s",
            None,
            "≤ 5 s",
            back <= 5.0,
        ),
    ]
}

/// Peak RSS, with the samples before the flood and at each quarter of it; bounded means the
/// second half adds less than a tenth of what the first half reached.
fn rss_row(disk: &str, rss: &[f64]) -> Row {
    let at = |q: usize| rss.get((rss.len() - 1) * q / 4).copied().unwrap_or(0.0);
    let series = (0..=4)
        .map(|q| format!("{:.0}", at(q)))
        .collect::<Vec<_>>()
        .join(" → ");
    let peak = rss.iter().copied().fold(0.0, f64::max);
    let flat = at(4) - at(2) < at(2) / 10.0;
    row(
        "overload",
        &format!("peak RSS, {disk} (before, ¼, ½, ¾, end: {series})"),
        peak,
        "MiB",
        None,
        "2nd half +< 10 %",
        flat,
    )
}
