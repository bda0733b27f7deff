//! `retained`: the events kept in the logs of many busy sessions (the soak's kind of log: mixed
//! group changes over 20 sessions, each change's events delivered to a webhook; nothing pruned):
//! the gateway's RSS as the logs grow, and after a restart on them. The target is a bounded cost
//! per retained event, not a log held in memory.
//!
//! Run twice: the soak's changes on a kept set of groups (what the log costs: the target's rows),
//! then the soak's mix with its new groups (14 % of its operations make one, some 140,000 per
//! million events), whose extra growth is what those groups cost: state the gateway holds for as
//! long as the groups exist, whatever the log keeps, and budgeted by `sessions` (10,000 sessions ×
//! 10 groups ≤ 400 MiB), so printed per group beside it.

use crate::mixed::{create_sessions, events_committed, fill, Groups, Mix};
use crate::report::{row, Row};
use crate::servers::{start_gateway, start_receiver, BenchResult};
use crate::setup::{client, tmpdir};
use crate::Plan;

/// MiB of RSS growth allowed per million retained events.
const TARGET_MIB_PER_M: f64 = 32.0;

/// One run: RSS before and after each tenth, the events committed then, the RSS after a restart
/// on the logs, and the groups made.
struct Run {
    rss: Vec<f64>,
    made: Vec<u64>,
    restarted: f64,
    groups: u64,
}

/// `retained-long` (not in `all`: 8-20 minutes): the kept set's run with twice the
/// events, to see whether the log's RSS keeps growing or stays in its working set's band.
pub async fn retained_long(plan: Plan) -> BenchResult<Vec<Row>> {
    let plan = Plan {
        retained: plan.retained * 2,
        ..plan
    };
    let kept = run(&plan, Groups::Keep).await?;
    let tenth = run(&tenth_of(&plan), Groups::Keep).await?;
    Ok(log_rows(&kept, &tenth, plan.retained_sessions))
}

pub async fn retained(plan: Plan) -> BenchResult<Vec<Row>> {
    let kept = run(&plan, Groups::Keep).await?;
    let tenth = run(&tenth_of(&plan), Groups::Keep).await?;
    let grown = run(&plan, Groups::Grow).await?;
    let mut rows = log_rows(&kept, &tenth, plan.retained_sessions);
    rows.extend(group_rows(&grown, &kept));
    Ok(rows)
}

/// The restart's control: the same run on a tenth of the events. A restarted gateway holds what
/// its open stores read back (sled's caches, the groups, the newest events), whatever the logs
/// keep; the control holds the same, so the difference is what the other nine tenths cost.
fn tenth_of(plan: &Plan) -> Plan {
    Plan {
        retained: (plan.retained / 10).max(10),
        ..*plan
    }
}

async fn run(plan: &Plan, kind: Groups) -> BenchResult<Run> {
    let dir = tmpdir("retained")?;
    let (gw, _) = start_gateway(&dir, &[]).await?;
    let c = client();
    let receiver = start_receiver().await?;
    let sessions = plan.retained_sessions;
    create_sessions(&c, &gw.base, sessions, &receiver.url).await?;
    // Fewer clients than the write scenarios: the soak's 8 keep the gateway busy without a
    // queue of changes waiting to commit.
    let conns = plan.conns.min(8);
    let mix = Mix::new(kind);
    let mut rss = vec![gw.rss_mib()];
    let mut made = vec![events_committed(&c, &gw.base).await?];
    let tenth = (plan.retained / 10).max(1);
    for k in 1..=10 {
        made.push(fill(&c, &gw.base, sessions, conns, k * tenth, &mix).await?);
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
    Ok(Run {
        rss,
        made,
        restarted,
        groups: mix.created(),
    })
}

impl Run {
    fn empty(&self) -> f64 {
        self.rss.first().copied().unwrap_or(0.0)
    }

    fn last(&self) -> (f64, u64) {
        let rss = self.rss.last().copied().unwrap_or(0.0);
        (rss, self.made.last().copied().unwrap_or(0))
    }

    /// MiB per million events after the first tenth (the working set of busy sessions is in).
    fn slope(&self) -> f64 {
        let warm = self.rss.get(1).copied().unwrap_or(0.0);
        let warm_made = self.made.get(1).copied().unwrap_or(0);
        let (last, total) = self.last();
        (last - warm) / millions(total.saturating_sub(warm_made))
    }

    /// MiB per million events fitted by least squares over the tenths after the first: busy
    /// stores reopened every few thousand events make RSS a saw, which two end points misread.
    fn fitted(&self) -> f64 {
        let points: Vec<(f64, f64)> = (1..self.rss.len().min(self.made.len()))
            .map(|i| (self.made[i] as f64 / 1e6, self.rss[i]))
            .collect();
        let n = points.len().max(1) as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        if sxx > 0.0 {
            sxy / sxx
        } else {
            0.0
        }
    }

    fn steps(&self) -> String {
        let steps = self.rss.iter().map(|r| format!("{r:.0}"));
        steps.collect::<Vec<_>>().join(" → ")
    }
}

fn millions(n: u64) -> f64 {
    (n as f64 / 1e6).max(1e-9)
}

/// The target's rows: the slope after the first tenth, the growth from the empty gateway, and
/// the restart's figure over its control's (a run on a tenth of the events), on the kept set of
/// groups.
fn log_rows(r: &Run, tenth: &Run, sessions: usize) -> Vec<Row> {
    let (last, total) = r.last();
    let per_m = |to: f64| (to - r.empty()) / millions(total);
    let (_, tenth_total) = tenth.last();
    let restart_slope =
        (r.restarted - tenth.restarted) / millions(total.saturating_sub(tenth_total));
    let target = format!("≤ {TARGET_MIB_PER_M} MiB per million");
    let unit = "MiB per million events";
    vec![
        row(
            "retained",
            &format!(
                "RSS growth after the first tenth, {total} events over {sessions} busy sessions on a kept set of groups ({} made in all; MiB: {})",
                r.groups,
                r.steps()
            ),
            r.slope(),
            unit,
            None,
            &target,
            r.slope() <= TARGET_MIB_PER_M,
        ),
        row(
            "retained",
            "the same, fitted by least squares over the tenths after the first",
            r.fitted(),
            unit,
            None,
            &target,
            r.fitted() <= TARGET_MIB_PER_M,
        ),
        row(
            "retained",
            "RSS growth from the empty gateway, its working set included",
            per_m(last),
            unit,
            None,
            "",
            true,
        ),
        row(
            "retained",
            &format!(
                "RSS after a restart on the logs ({:.0} MiB), over the same after a run of {tenth_total} events ({:.0} MiB)",
                r.restarted, tenth.restarted
            ),
            restart_slope,
            unit,
            None,
            &target,
            restart_slope <= TARGET_MIB_PER_M,
        ),
        row(
            "retained",
            "RSS after a restart on the logs, over the empty gateway (open stores' read-back included)",
            per_m(r.restarted),
            unit,
            None,
            "",
            true,
        ),
    ]
}

/// The soak's mix with its new groups: its slope, and what its growth beyond the kept run's
/// costs per group made.
fn group_rows(grown: &Run, kept: &Run) -> Vec<Row> {
    let (_, total) = grown.last();
    let extra_mib = (grown.slope() - kept.slope()) * millions(total);
    let per_group_kib = extra_mib * 1024.0 / (grown.groups.max(1) as f64);
    vec![
        row(
            "retained",
            &format!(
                "the soak's mix with new groups: RSS growth after the first tenth, {total} events, {} groups made (MiB: {})",
                grown.groups,
                grown.steps()
            ),
            grown.slope(),
            "MiB per million events",
            None,
            "",
            true,
        ),
        row(
            "retained",
            "what a group made costs: the growth beyond the kept run's, per group (budgeted by `sessions`)",
            per_group_kib,
            "KiB per group",
            None,
            "",
            true,
        ),
    ]
}
