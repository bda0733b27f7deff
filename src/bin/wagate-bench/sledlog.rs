//! `sled-log` (not in `all`: about 2 minutes): what sled 0.34 alone holds in memory for a log, the
//! floor under `retained`. A database with the stores' settings (`store/trees.rs`) gets `EVENTS`
//! log-like values (400 bytes, sequential keys, a flush every 50 as rounds do), 1, 4 or 16 to a
//! key, in a process of its own; another process opens it and reads its last 1,000 events, and
//! prints its RSS before the open and after the read. sled's leaves split past 16 entries
//! (`node.rs`, fixed), and an opened database keeps some state for every page, so the cost
//! follows the number of keys: packing events several to a key is what would lower it.

use std::path::Path;
use std::process::Command;

use crate::report::{row, Row};
use crate::servers::BenchResult;
use crate::setup::tmpdir;

const EVENTS: u64 = 400_000;
const VALUE: usize = 400;

fn open(dir: &Path) -> Result<sled::Db, String> {
    sled::Config::new()
        .path(dir)
        .cache_capacity(1024 * 1024)
        .segment_size(64 * 1024)
        .flush_every_ms(None)
        .open()
        .map_err(|e| e.to_string())
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The child that writes: `n` events, `pack` to a key (appended to the key's value).
pub fn write(dir: &Path, n: u64, pack: u64) -> Result<(), String> {
    let db = open(dir)?;
    let events = db.open_tree("events").map_err(|e| e.to_string())?;
    let body = vec![b'x'; VALUE];
    for seq in 1..=n {
        let key = (seq / pack.max(1)).to_be_bytes();
        let mut value = match events.get(key).map_err(|e| e.to_string())? {
            Some(v) if pack > 1 => v.to_vec(),
            _ => Vec::new(),
        };
        value.extend_from_slice(&body);
        events.insert(key, value).map_err(|e| e.to_string())?;
        if seq % 50 == 0 {
            db.flush().map_err(|e| e.to_string())?;
        }
    }
    db.flush().map_err(|e| e.to_string())?;
    Ok(())
}

/// The child that opens: prints its RSS before the open and after reading the last 1,000 events.
pub fn reopen(dir: &Path, n: u64, pack: u64) -> Result<(), String> {
    let before = rss_mib();
    let db = open(dir)?;
    let events = db.open_tree("events").map_err(|e| e.to_string())?;
    let from = (n.saturating_sub(1000) / pack.max(1)).to_be_bytes();
    for r in events.range(from..) {
        r.map_err(|e| e.to_string())?;
    }
    println!("{before:.2} {:.2}", rss_mib());
    Ok(())
}

fn child(role: &str, dir: &Path, pack: u64) -> BenchResult<String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(me)
        .args([
            role,
            &dir.display().to_string(),
            &EVENTS.to_string(),
            &pack.to_string(),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{role}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub async fn sled_log() -> BenchResult<Vec<Row>> {
    let mut rows = Vec::new();
    for pack in [1, 4, 16] {
        let dir = tmpdir(&format!("sled-log-{pack}"))?;
        let started = std::time::Instant::now();
        child("sled-log-write", &dir, pack)?;
        let took = started.elapsed().as_secs_f64();
        let printed = child("sled-log-open", &dir, pack)?;
        let _ = std::fs::remove_dir_all(&dir);
        let figures: Vec<f64> = printed
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let [before, after] = figures[..] else {
            return Err(format!("sled-log-open printed {printed:?}"));
        };
        let per_m = (after - before) / (EVENTS as f64 / 1e6);
        rows.push(row(
            "sled-log",
            &format!(
                "sled alone: a reopened log of {EVENTS} events, {pack} to a key, RSS {before:.1} → {after:.1} MiB (written in {took:.0} s)"
            ),
            per_m,
            "MiB per million events",
            None,
            "",
            true,
        ));
    }
    Ok(rows)
}
