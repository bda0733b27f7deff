//! `retained`: the events kept in the logs of many busy sessions (the soak's kind of log: mixed
//! group changes over 20 sessions, each change's events delivered to a webhook; nothing pruned):
//! the gateway's RSS as the logs grow, and after a restart on them. The target is a bounded cost
//! per retained event, not a log held in memory.

use crate::mixed::{create_sessions, events_committed, fill};
use crate::report::{row, Row};
use crate::servers::{start_gateway, start_receiver, BenchResult};
use crate::setup::{client, tmpdir};
use crate::Plan;

/// MiB of RSS growth allowed per million retained events.
const TARGET_MIB_PER_M: f64 = 32.0;

pub async fn retained(plan: Plan) -> BenchResult<Vec<Row>> {
    let dir = tmpdir("retained")?;
    let (gw, _) = start_gateway(&dir, &[]).await?;
    let c = client();
    let receiver = start_receiver().await?;
    let sessions = plan.retained_sessions;
    create_sessions(&c, &gw.base, sessions, &receiver.url).await?;
    // Fewer clients than the write scenarios: the soak's 8 keep the gateway busy without a
    // queue of changes waiting to commit.
    let conns = plan.conns.min(8);
    let mut rss = vec![gw.rss_mib()];
    let mut made = vec![events_committed(&c, &gw.base).await?];
    let tenth = (plan.retained / 10).max(1);
    for k in 1..=10 {
        made.push(fill(&c, &gw.base, sessions, conns, k * tenth).await?);
        rss.push(gw.rss_mib());
    }
    drop(gw);
    let (gw, _) = start_gateway(&dir, &[]).await?;
    // One read of each log's end, so that every store is open and start-up's lazy state is in.
    for s in 0..sessions {
        let url = format!("{}/api/s{s}/events?limit=1000", gw.base);
        let r = c.get(url).send().await.map_err(|e| e.to_string())?;
        r.bytes().await.map_err(|e| e.to_string())?;
    }
    let restarted = gw.rss_mib();
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows(&rss, &made, restarted, sessions))
}

/// The slope after the first tenth (the working set of busy sessions is in by then), the
/// growth from the empty gateway, and the restart's figure.
fn rows(rss: &[f64], made: &[u64], restarted: f64, sessions: usize) -> Vec<Row> {
    let at = |i: usize| {
        (
            rss.get(i).copied().unwrap_or(0.0),
            made.get(i).copied().unwrap_or(0),
        )
    };
    let (empty, _) = at(0);
    let (warm, warm_made) = at(1);
    let (last, total) = at(rss.len().saturating_sub(1));
    let millions = |n: u64| (n as f64 / 1e6).max(1e-9);
    let slope = (last - warm) / millions(total.saturating_sub(warm_made));
    let per_m = |to: f64| (to - empty) / millions(total);
    let steps = rss.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>();
    let target = format!("≤ {TARGET_MIB_PER_M} MiB per million");
    vec![
        row(
            "retained",
            &format!(
                "RSS growth after the first tenth, {total} events over {sessions} busy sessions (MiB: {})",
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
            &format!("RSS after a restart on the logs ({restarted:.0} MiB), over the empty gateway"),
            per_m(restarted),
            "MiB per million events",
            None,
            &target,
            per_m(restarted) <= TARGET_MIB_PER_M,
        ),
    ]
}
