//! Soak test (not in CI): mixed traffic over many sessions against the real gateway binary, with
//! webhook receivers that fail a share of requests; then checks exactly-once-after-dedupe
//! delivery of every committed event, flat memory, and a log free of unexpected errors.
//!
//! `cargo build --release && target/release/wagate-soak --minutes 30`
//!
//! This file runs the soak in its order (receivers, gateway, workload, checks); `workload`
//! makes the traffic, `checks` judges it.

mod checks;
mod gateway;
mod receivers;
mod workload;

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::Parser;

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
    /// Keep the data dir and log even when the soak passes (to inspect the stores afterwards).
    #[arg(long)]
    keep: bool,
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

    let (shared, hooks) = receivers::start(args.fail_percent).await?;
    let mut gw = gateway::start(&gateway, &dir, &log_path).await?;
    workload::create_sessions(&gw.api, args.sessions, hooks).await?;
    let rss = workload::traffic(&gw.api, gw.pid, args.minutes, args.sessions, args.clients).await;
    let traffic_secs = gw.started.elapsed().as_secs_f64();

    let (left, dead) = checks::drain(&gw.api, args.sessions, args.drain_seconds).await;
    let delivery = checks::delivery(&gw.api, args.sessions, &shared).await;
    // Stopped before its log is read, so that the log is complete.
    gw.stop().await;
    let log = checks::log_errors(&log_path);
    let memory = checks::memory(&rss);
    let (webhook_requests, injected) = {
        let seen = shared.0.lock().unwrap_or_else(|p| p.into_inner());
        (seen.requests, seen.injected)
    };
    let ok = checks::report(&checks::Findings {
        traffic_secs,
        sessions: args.sessions,
        // Read last: the checks' own calls count too.
        requests: gw.api.requests.load(Ordering::Relaxed),
        server_errors: gw.api.server_errors.load(Ordering::Relaxed),
        webhook_requests,
        injected,
        left,
        dead,
        delivery,
        rss,
        memory,
        log,
    });
    if ok && !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("soak: data and log kept in {}", dir.display());
    }
    Ok(ok)
}
