//! `retained`: a million events kept in a session's log (no webhook, so nothing is delivered or
//! pruned): the gateway's RSS as the log grows, and after a restart on it. The target is a
//! bounded cost per retained event, not a log held in memory.

use std::sync::Arc;

use crate::report::{row, Row};
use crate::servers::{start_gateway, BenchResult};
use crate::setup::{client, plain_setup, tmpdir};
use crate::writes::{make_changes, subject_op};
use crate::Plan;

/// MiB of RSS growth allowed per million retained events.
const TARGET_MIB_PER_M: f64 = 32.0;

pub async fn retained(plan: Plan) -> BenchResult<Vec<Row>> {
    let dir = tmpdir("retained")?;
    let (gw, _) = start_gateway(&dir, &[]).await?;
    let c = client();
    let ids = plain_setup(&c, &gw.base, plan.conns).await?;
    let op = Arc::new(subject_op(&c, &gw.base, &ids));
    let mut rss = vec![gw.rss_mib()];
    let tenth = (plan.retained / 10).max(1);
    let mut made = 0u64;
    for _ in 0..10 {
        if make_changes(&op, made..made + tenth, plan.conns).await != tenth {
            return Err("a change failed while filling the log".into());
        }
        made += tenth;
        rss.push(gw.rss_mib());
    }
    drop(gw);
    let (gw, _) = start_gateway(&dir, &[]).await?;
    // One read of the log's end, so that start-up's lazily loaded state is in.
    let tail = c
        .get(format!("{}/api/bench/events?limit=1000", gw.base))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    tail.bytes().await.map_err(|e| e.to_string())?;
    let restarted = gw.rss_mib();
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
    // The first tenth brings the gateway's working set under full write load (sled's cache,
    // buffers, 64 connections); the cost of the log itself is the slope after it.
    let warm = rss.get(1).copied().unwrap_or(0.0);
    let last = rss.last().copied().unwrap_or(0.0);
    let slope = (last - warm) / ((made - tenth) as f64 / 1e6);
    let empty = rss.first().copied().unwrap_or(0.0);
    let per_m = |to: f64| (to - empty) / (made as f64 / 1e6);
    let steps = rss.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>();
    let target = format!("≤ {TARGET_MIB_PER_M} MiB per million");
    Ok(vec![
        row(
            "retained",
            &format!(
                "RSS growth after the first tenth, logging {made} events (MiB: {})",
                steps.join(" → ")
            ),
            slope,
            "MiB per million events",
            None,
            &target,
            slope <= TARGET_MIB_PER_M,
        ),
        row(
            "retained",
            "RSS growth from the empty gateway, its working set included",
            per_m(last),
            "MiB per million events",
            None,
            "",
            true,
        ),
        row(
            "retained",
            &format!("RSS after a restart on the log ({restarted:.0} MiB), over the empty gateway"),
            per_m(restarted),
            "MiB per million events",
            None,
            &target,
            per_m(restarted) <= TARGET_MIB_PER_M,
        ),
    ])
}
