//! wagate-bench: drives the real gateway over HTTP on loopback and prints, for each scenario, the
//! figure, its ceiling measured in the same run, and their ratio.
//!
//! `wagate-bench all` (minutes) or `wagate-bench smoke` (seconds, for CI); also `read`, `write`, `hot`,
//! `webhook`, `sessions`, `backlog`, `retained`, `cluster` (needs `nats-server`); `overload` (about 75 s), `idempotency` (about 25 s)
//! `retained-long` (about 20 minutes) and `sled-log` (about 2 minutes) are in neither `all` nor `smoke`. `--svg PATH` draws the chart, `--json PATH` writes the figures.
//!
//! One module per scenario; this file holds the sizes of a run, the order the scenarios run in,
//! and the command line (including the two roles the bench re-executes itself in).

mod backlog;
mod chart;
mod cluster;
mod cpu;
mod idempotent;
mod load;
mod mixed;
mod overload;
mod read;
mod report;
mod retained;
mod servers;
mod sessions;
mod setup;
mod sledlog;
mod webhook;
mod write;
mod writes;

use std::path::PathBuf;
use std::time::Instant;

use report::Row;
use servers::BenchResult;

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
    /// Events kept by `retained` (a million, as issue 14 asks), over the logs of
    /// `retained_sessions` busy sessions.
    retained: u64,
    retained_sessions: usize,
}

const FULL: Plan = Plan {
    secs: 10,
    conns: 64,
    sessions: 10_000,
    groups_per_session: 10,
    backlog: 100_000,
    paced_rate: 1000,
    retained: 1_000_000,
    retained_sessions: 20,
};
const SMOKE: Plan = Plan {
    secs: 1,
    conns: 16,
    sessions: 20,
    groups_per_session: 2,
    backlog: 2_000,
    paced_rate: 200,
    retained: 10_000,
    retained_sessions: 4,
};

async fn run(what: &str, plan: Plan) -> BenchResult<Vec<Row>> {
    let mut rows = Vec::new();
    let all = matches!(what, "all" | "smoke");
    if all || what == "read" {
        rows.extend(read::read(plan).await?);
    }
    if all || what == "write" {
        rows.extend(write::write(plan).await?);
    }
    if all || what == "hot" {
        rows.extend(write::hot(plan).await?);
    }
    let mut webhook_rate = None;
    if all || what == "webhook" || what == "backlog" {
        let (r, rate) = webhook::webhook(plan).await?;
        webhook_rate = Some(rate);
        if what != "backlog" {
            rows.extend(r);
        }
    }
    if all || what == "sessions" {
        rows.extend(sessions::sessions(plan).await?);
    }
    if all || what == "backlog" {
        rows.extend(backlog::backlog(plan, webhook_rate).await?);
    }
    if all || what == "retained" {
        rows.extend(retained::retained(plan).await?);
    }
    if what == "sled-log" {
        rows.extend(sledlog::sled_log().await?);
    }
    if what == "retained-long" {
        rows.extend(retained::retained_long(plan).await?);
    }
    if all || what == "cluster" {
        rows.extend(cluster::cluster(plan).await?);
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
    eprintln!("usage: wagate-bench all|smoke|read|write|hot|webhook|sessions|backlog|retained|retained-long|sled-log|cluster|overload|idempotency [--svg PATH] [--json PATH]");
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
    if let Some(role @ ("sled-log-write" | "sled-log-open")) = args.first().map(String::as_str) {
        let (Some(dir), Some(n), Some(pack)) = (
            args.get(1).map(PathBuf::from),
            args.get(2).and_then(|v| v.parse().ok()),
            args.get(3).and_then(|v| v.parse().ok()),
        ) else {
            usage()
        };
        let done = if role == "sled-log-write" {
            sledlog::write(&dir, n, pack)
        } else {
            sledlog::reopen(&dir, n, pack)
        };
        if let Err(e) = done {
            eprintln!("{role}: {e}");
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
        "hot",
        "webhook",
        "sessions",
        "backlog",
        "retained",
        "retained-long",
        "sled-log",
        "cluster",
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
            report::print(&rows);
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
