//! `webhook`: how fast the dispatcher delivers committed events (HMAC on) against a bare POST loop
//! in its own process, in turns; the latency change→receipt at a fixed rate; and the end-to-end
//! rate during a write burst.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cpu::Usage;
use crate::load::{self, percentile_ms, Stats};
use crate::report::{row, Row};
use crate::servers::{self, start_gateway, start_receiver, BenchResult, Proc, Receiver};
use crate::setup::{client, tmpdir, webhook_setup};
use crate::writes::{make_changes, subject_op};
use crate::Plan;

/// Requests in flight per webhook: the gateway's default `WAGATE_WEBHOOK_CONCURRENCY`.
const CONCURRENCY: usize = 8;

/// The webhook figure: how fast the dispatcher delivers events that are committed and due
/// (HMAC on), against a bare POST loop of the same bodies at the same concurrency; latency
/// change→receipt at a fixed rate; and, for information, the end-to-end rate during a write burst.
pub async fn webhook(plan: Plan) -> BenchResult<(Vec<Row>, f64)> {
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
    let burst_rate = burst(plan, &c, &gw.base, &ids, &recv).await;
    let (paced, lat) = paced_latency(plan, &c, &gw.base, &ids, &recv).await;
    let body_file = dir.join("ceiling-body.json");
    let d = drain(plan, &c, &gw, &ids, &recv, &body_file).await?;
    let rate = d.made as f64 / d.secs;
    eprintln!(
        "webhook drain: {} events in {:.2} s ({} turns); CPU gateway {:.2} s ({:.0} µs/event), bench (receiver) {:.2} s ({:.0} µs/event; {:.0} µs/request during the ceiling); the ceiling's sender {:.0} µs/request; CPU steal {:.0} % during the drains, {:.0} % during the ceiling",
        d.made,
        d.secs,
        d.turns,
        d.gateway_use.gateway,
        d.gateway_use.gateway * 1e6 / d.made.max(1) as f64,
        d.gateway_use.bench,
        d.gateway_use.bench * 1e6 / d.made.max(1) as f64,
        d.ceiling_use.bench * 1e6 / (d.ceiling.ok.max(1) as f64),
        d.ceiling_use.children * 1e6 / (d.ceiling.ok.max(1) as f64),
        d.gateway_use.steal_pct(),
        d.ceiling_use.steal_pct()
    );
    recv.take_latencies();
    let rows = rows(plan, &d, rate, &lat, &paced, burst_rate);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((rows, rate))
}

/// End to end during a closed-loop write burst: bounded by how fast changes commit.
async fn burst(
    plan: Plan,
    c: &reqwest::Client,
    base: &str,
    ids: &[String],
    recv: &Receiver,
) -> f64 {
    let start = Instant::now();
    let changes = load::closed_loop(
        plan.conns,
        Duration::from_secs(plan.secs),
        subject_op(c, base, ids),
    )
    .await;
    recv.wait_count(changes.ok as u64, 120).await;
    let secs = recv
        .last_at()
        .map(|t| t.duration_since(start).as_secs_f64())
        .unwrap_or(1.0);
    let burst_rate = recv.count() as f64 / secs;
    recv.take_latencies();
    burst_rate
}

/// Latency at a fixed rate: the paced changes, and the change→receipt latencies (µs, sorted).
async fn paced_latency(
    plan: Plan,
    c: &reqwest::Client,
    base: &str,
    ids: &[String],
    recv: &Receiver,
) -> (Stats, Vec<u64>) {
    let before = recv.count();
    let paced = load::paced(
        plan.paced_rate,
        plan.conns,
        Duration::from_secs(plan.secs),
        subject_op(c, base, ids),
    )
    .await;
    recv.wait_count(before + paced.ok as u64, 120).await;
    (paced, recv.take_latencies())
}

/// What the drain turns measured.
struct Drain {
    turns: u64,
    made: u64,
    /// Whether every turn's events arrived in time.
    delivered: bool,
    /// From each release of the receiver to the last event of its turn, summed.
    secs: f64,
    gateway_use: Usage,
    ceiling_use: Usage,
    ceiling: Stats,
}

/// Delivery rate: queue events behind a receiver that holds its answers, then let go; and the
/// ceiling: the same bytes POSTed by a bare reqwest loop at the dispatcher's concurrency from
/// a process of its own, as the gateway is one. In turns, so that a change in the machine
/// (its CPU steal time went from 0 to 50 % within a minute here) hits both alike.
async fn drain(
    plan: Plan,
    c: &reqwest::Client,
    gw: &Proc,
    ids: &[String],
    recv: &Receiver,
    body_file: &Path,
) -> BenchResult<Drain> {
    let turns = plan.secs.clamp(1, 5);
    let per_turn = plan.backlog / 5 / turns;
    let (mut made, mut delivered, mut drain_secs) = (0, true, 0.0);
    let (mut fig_use, mut ceil_use) = (Usage::default(), Usage::default());
    let mut ceil = Stats::default();
    let op = Arc::new(subject_op(c, &gw.base, ids));
    for turn in 0..turns {
        recv.hold();
        let before = recv.count();
        let n = make_changes(&op, turn * per_turn..(turn + 1) * per_turn, plan.conns).await;
        made += n;
        let start = Instant::now();
        let from = Usage::now(Some(gw));
        perf_ctl("enable");
        recv.release();
        delivered &= recv.wait_count(before + n, 300).await;
        perf_ctl("disable");
        fig_use.add_since(Some(gw), from);
        drain_secs += recv
            .last_at()
            .map(|t| t.duration_since(start).as_secs_f64())
            .unwrap_or(f64::MAX);
        if turn == 0 {
            let body = recv.last_body().ok_or("the receiver got no event")?;
            std::fs::write(body_file, &body).map_err(|e| e.to_string())?;
            // The same headers as the gateway's requests (signatures included), so that the
            // ceiling's requests cost the receiver what the figure's do.
            // `WAGATE_BENCH_PLAIN_CEILING=1`: only a content type, as before 2026-12-01.
            if std::env::var("WAGATE_BENCH_PLAIN_CEILING").map_or(true, |v| v != "1") {
                let headers = recv.first_headers().ok_or("the receiver got no headers")?;
                std::fs::write(body_file.with_extension("headers"), headers)
                    .map_err(|e| e.to_string())?;
            }
        }
        let from = Usage::now(None);
        ceil.merge(servers::run_post_loop(&recv.url, body_file, CONCURRENCY, 2).await?);
        ceil_use.add_since(None, from);
    }
    Ok(Drain {
        turns,
        made,
        delivered,
        secs: drain_secs,
        gateway_use: fig_use,
        ceiling_use: ceil_use,
        ceiling: ceil,
    })
}

/// `WAGATE_BENCH_PERF_CTL=FIFO`: writes `enable` / `disable` to a `perf record --control
/// fifo:FIFO -D -1` so that a profile of the gateway covers the drains alone.
fn perf_ctl(cmd: &str) {
    if let Some(fifo) = std::env::var_os("WAGATE_BENCH_PERF_CTL") {
        use std::io::Write;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .open(fifo)
            .and_then(|mut f| writeln!(f, "{cmd}"));
    }
}

/// The figure (drain rate against the ceiling, with the paced run's latencies), the ceiling, the
/// paced run and the burst.
fn rows(plan: Plan, d: &Drain, rate: f64, lat: &[u64], paced: &Stats, burst_rate: f64) -> Vec<Row> {
    let ceil = &d.ceiling;
    let mut r = row(
        "webhook",
        &format!(
            "events/s delivered, {} queued in {} turns (HMAC)",
            d.made, d.turns
        ),
        rate,
        "events/s",
        Some(ceil.rate()),
        "≥ 0.6 of ceiling; p99 ≤ 20 ms",
        false,
    );
    r.p50_ms = Some(percentile_ms(lat, 0.5));
    r.p99_ms = Some(percentile_ms(lat, 0.99));
    // Issue 14: delivery at 0.6 of the bare POST loop.
    r.met = d.delivered && r.ratio.unwrap_or(0.0) >= 0.6 && r.p99_ms.unwrap_or(f64::MAX) <= 20.0;
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
    vec![r, c_row, p_row, b_row]
}
