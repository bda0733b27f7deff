//! `wagate-bench idempotency`: what an `Idempotency-Key` on every write costs. The write figure
//! (durable `PUT subject`, one webhook) with a fresh key on every request, against the same
//! writes without keys, in turns on one gateway; then the memory a kept answer costs, as the
//! RSS of a gateway that kept N answers against one that made the same N writes without keys,
//! while running and after a restart.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::load::{closed_loop, Stats};
use crate::report::{row, Row};
use crate::servers::{start_gateway, start_receiver, BenchResult};
use crate::setup::{client, post, tmpdir};
use crate::writes::{make_changes, rename_op};
use crate::Plan;

/// Answers kept for the memory figure.
const KEPT: u64 = 20_000;

/// A session `bench` with a webhook to `hook` and `groups` groups; answers their ids.
async fn setup(
    c: &reqwest::Client,
    base: &str,
    hook: &str,
    groups: usize,
) -> BenchResult<Vec<String>> {
    let hook = json!({"url": hook, "events": ["group.v2.update"]});
    post(
        c,
        &format!("{base}/api/sessions"),
        json!({"name": "bench", "config": {"webhooks": [hook]}}),
    )
    .await?;
    let mut ids = Vec::new();
    for i in 0..groups {
        let g: Value = post(
            c,
            &format!("{base}/api/bench/groups"),
            json!({"name": format!("g{i}"), "participants": []}),
        )
        .await?;
        ids.push(g["id"].as_str().unwrap_or_default().to_owned());
    }
    Ok(ids)
}

pub async fn idempotency(plan: Plan) -> BenchResult<Vec<Row>> {
    let mut rows = throughput(plan).await?;
    rows.extend(memory(plan).await?);
    Ok(rows)
}

/// Keyed and plain writes in turns on one gateway.
async fn throughput(plan: Plan) -> BenchResult<Vec<Row>> {
    let dir = tmpdir("idempotency")?;
    let (gw, _) = start_gateway(&dir, &[]).await?;
    let recv = start_receiver().await?;
    let c = client();
    let ids = setup(&c, &gw.base, &recv.url, plan.conns).await?;
    let rounds = plan.secs.clamp(1, 5);
    let turn = Duration::from_secs(plan.secs / rounds);
    let (mut keyed, mut plain) = (Stats::default(), Stats::default());
    for round in 0..rounds {
        plain.merge(closed_loop(plan.conns, turn, rename_op(&c, &gw.base, &ids, None)).await);
        keyed
            .merge(closed_loop(plan.conns, turn, rename_op(&c, &gw.base, &ids, Some(round))).await);
    }
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
    let mut fig = row(
        "idempotency",
        "PUT subject req/s, an Idempotency-Key on every request",
        keyed.rate(),
        "req/s",
        Some(plain.rate()),
        "",
        true,
    );
    fig.p50_ms = Some(keyed.pct_ms(0.5));
    fig.p99_ms = Some(keyed.pct_ms(0.99));
    let mut base = row(
        "idempotency",
        "the same writes without keys (the write figure)",
        plain.rate(),
        "req/s",
        None,
        "",
        true,
    );
    base.p50_ms = Some(plain.pct_ms(0.5));
    base.p99_ms = Some(plain.pct_ms(0.99));
    Ok(vec![fig, base])
}

/// The RSS of a gateway after `made` writes: while running, and after a restart.
struct Rss {
    made: u64,
    running: f64,
    restarted: f64,
}

/// RSS after `KEPT` writes with keys and without, running and after a restart.
async fn memory(plan: Plan) -> BenchResult<Vec<Row>> {
    let mut rss = Vec::new();
    for keyed in [false, true] {
        let dir = tmpdir(if keyed { "kept-keys" } else { "kept-none" })?;
        let (gw, _) = start_gateway(&dir, &[]).await?;
        let recv = start_receiver().await?;
        let c = client();
        let ids = setup(&c, &gw.base, &recv.url, 64).await?;
        let op = Arc::new(rename_op(&c, &gw.base, &ids, keyed.then_some(0)));
        let made = make_changes(&op, 0..KEPT, plan.conns).await;
        let running = gw.rss_mib();
        drop(gw);
        let (gw, _) = start_gateway(&dir, &[]).await?;
        rss.push(Rss {
            made,
            running,
            restarted: gw.rss_mib(),
        });
        drop(gw);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (plain, keyed) = (&rss[0], &rss[1]);
    let per = |a: f64, b: f64| (b - a) * 1024.0 * 1024.0 / keyed.made.max(1) as f64;
    let figure = format!("RSS per kept answer, running ({} kept)", keyed.made);
    Ok(vec![
        row(
            "idempotency",
            &figure,
            per(plain.running, keyed.running),
            "bytes",
            None,
            "",
            true,
        ),
        row(
            "idempotency",
            "RSS per kept answer, after a restart",
            per(plain.restarted, keyed.restarted),
            "bytes",
            None,
            "",
            true,
        ),
    ])
}
