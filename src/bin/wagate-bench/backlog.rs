//! `backlog`: events queued behind a receiver that is down (the gateway's RSS at each quarter
//! must stay flat), then drained once it is back (at least half the webhook figure's rate).

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::report::{row, Row};
use crate::servers::{start_gateway, start_receiver, BenchResult};
use crate::setup::{client, tmpdir, webhook_setup};
use crate::writes::{make_changes, subject_op};
use crate::Plan;

pub async fn backlog(plan: Plan, webhook_rate: Option<f64>) -> BenchResult<Vec<Row>> {
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
