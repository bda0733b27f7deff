//! The soak's checks after the traffic: every delivery drained and none dead, exactly one
//! acknowledged delivery per committed event id (after dedupe), memory not growing, no ERROR in
//! the gateway's log but the injected failures, no 5xx; and the report with its verdict.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::gateway::Api;
use crate::receivers::Shared;

/// Waits up to `secs` until no session has a pending delivery (retries included); answers the
/// pending left (`usize::MAX` if never asked) and the dead ones.
pub async fn drain(api: &Api, sessions: usize, secs: u64) -> (usize, usize) {
    let drain_deadline = Instant::now() + Duration::from_secs(secs);
    let mut left = usize::MAX;
    while Instant::now() < drain_deadline {
        left = 0;
        for s in 0..sessions {
            left = left.saturating_add(pending(api, s, "pending").await);
        }
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut dead = 0;
    for s in 0..sessions {
        dead += pending(api, s, "dead").await;
    }
    (left, dead)
}

async fn pending(api: &Api, s: usize, state: &str) -> usize {
    let (_, body) = api
        .call(
            reqwest::Method::GET,
            &format!("/api/s{s}/webhooks/deliveries?state={state}&limit=1000"),
            None,
        )
        .await;
    body.as_array().map_or(usize::MAX, Vec::len)
}

/// What the receivers acknowledged against what the logs hold.
pub struct Delivery {
    pub committed: usize,
    /// Committed ids never acknowledged.
    pub missing: usize,
    /// Acknowledged ids not in a log.
    pub unknown: usize,
    /// Acknowledgements beyond the first, summed over ids.
    pub redelivered: u64,
}

/// Exactly once per id after dedupe: what the receivers acknowledged equals each log.
pub async fn delivery(api: &Api, sessions: usize, shared: &Shared) -> Delivery {
    let mut d = Delivery {
        committed: 0,
        missing: 0,
        unknown: 0,
        redelivered: 0,
    };
    let mut per_session = Vec::new();
    for s in 0..sessions {
        per_session.push(logged_ids(api, s).await);
    }
    let seen = shared.0.lock().unwrap_or_else(|p| p.into_inner());
    for (s, ids) in per_session.iter().enumerate() {
        let got = seen.ok.get(&format!("s{s}")).cloned().unwrap_or_default();
        let logged: HashSet<&String> = ids.iter().collect();
        d.committed += ids.len();
        d.missing += ids.iter().filter(|id| !got.contains_key(*id)).count();
        d.unknown += got.keys().filter(|id| !logged.contains(id)).count();
        d.redelivered += got.values().map(|n| u64::from(n - 1)).sum::<u64>();
    }
    d
}

/// Every event id in the session's log, by paging through it.
async fn logged_ids(api: &Api, s: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let (status, body) = api
            .call(
                reqwest::Method::GET,
                &format!("/api/s{s}/events?limit=1000&after={after}"),
                None,
            )
            .await;
        let page = match (status, body.as_array()) {
            (200, Some(p)) if !p.is_empty() => p.clone(),
            _ => return out,
        };
        for e in &page {
            if let Some(id) = e["envelope"]["id"].as_str() {
                out.push(id.to_owned());
            }
        }
        after = page
            .last()
            .and_then(|e| e["cursor"].as_str())
            .unwrap_or_default()
            .to_owned();
    }
}

/// The ERROR lines of the gateway's log, and those of them not from the injected failures.
pub struct LogErrors {
    pub errors: usize,
    pub unexpected: Vec<String>,
}

pub fn log_errors(log_path: &Path) -> LogErrors {
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    let unexpected = errors
        .iter()
        .filter(|l| !(l.contains("500") || l.contains("Internal Server Error")))
        .map(|l| (*l).to_owned())
        .collect();
    LogErrors {
        errors: errors.len(),
        unexpected,
    }
}

/// The largest RSS samples (KiB) of the first and the last third of the run, the first sample
/// (taken as the traffic starts) left out.
pub struct Memory {
    pub early: u64,
    pub late: u64,
    /// Whether the last third sits more than 25 % above the first (after warm-up).
    pub grew: bool,
}

pub fn memory(rss: &[u64]) -> Memory {
    let third = (rss.len() / 3).max(1);
    let early = rss.iter().skip(1).take(third).copied().max().unwrap_or(0);
    let late = rss.iter().rev().take(third).copied().max().unwrap_or(0);
    let grew = early > 0 && late > early + early / 4;
    Memory { early, late, grew }
}

/// Everything the report prints.
pub struct Findings {
    pub traffic_secs: f64,
    pub sessions: usize,
    pub requests: u64,
    pub server_errors: u64,
    pub webhook_requests: u64,
    pub injected: u64,
    pub left: usize,
    pub dead: usize,
    pub delivery: Delivery,
    pub rss: Vec<u64>,
    pub memory: Memory,
    pub log: LogErrors,
}

/// Prints the findings and the verdict; answers whether the soak passed.
pub fn report(f: &Findings) -> bool {
    let (d, m) = (&f.delivery, &f.memory);
    println!("soak: {:.0} s of traffic, {} sessions, {} API requests ({:.0}/s), {} answered 5xx or failed",
        f.traffic_secs, f.sessions, f.requests, f.requests as f64 / f.traffic_secs.max(1.0), f.server_errors);
    println!("soak: {} events committed; webhook requests {}, of them {} failed on purpose; {} redelivered ids",
        d.committed, f.webhook_requests, f.injected, d.redelivered);
    println!("soak: after drain {} pending, {} dead; {} committed ids never acknowledged; {} acknowledged ids not in a log",
        if f.left == usize::MAX { "unknown".to_owned() } else { f.left.to_string() }, f.dead, d.missing, d.unknown);
    println!(
        "soak: RSS KiB first third max {}, last third max {} (samples: {:?})",
        m.early, m.late, f.rss
    );
    println!(
        "soak: {} ERROR lines in the gateway log, {} not from injected failures",
        f.log.errors,
        f.log.unexpected.len()
    );
    for l in f.log.unexpected.iter().take(10) {
        println!("  {l}");
    }
    let ok = f.server_errors == 0
        && f.left == 0
        && f.dead == 0
        && d.missing == 0
        && d.unknown == 0
        && d.committed > 0
        && !m.grew
        && f.log.unexpected.is_empty();
    println!("soak: {}", if ok { "PASS" } else { "FAIL" });
    ok
}
