//! The load generator: N concurrent workers on keep-alive connections, as fast as they can or paced,
//! with every request's latency recorded.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a run measured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub ok: usize,
    pub errors: usize,
    pub secs: f64,
    /// Latencies of successful requests, microseconds, sorted.
    pub lat_us: Vec<u64>,
}

impl Stats {
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ok as f64 / self.secs
        } else {
            0.0
        }
    }
    pub fn pct_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.lat_us, p)
    }
    /// Adds another run of the same measure (rounds taken in turn with the ceiling's).
    pub fn merge(&mut self, other: Stats) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.secs += other.secs;
        self.lat_us.extend(other.lat_us);
        self.lat_us.sort_unstable();
    }
}

pub fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i.min(sorted_us.len() - 1)] as f64 / 1000.0
}

/// Runs `conns` workers for `dur`; each calls `op(worker, i)` in a loop. `op` answers success.
pub async fn closed_loop<F, Fut>(conns: usize, dur: Duration, op: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for w in 0..conns {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                if op(w, i).await {
                    lat.push(t.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (lat, errors)
        }));
    }
    collect(tasks, start).await
}

/// Starts `rate` operations per second for `dur`, at most `conns` in flight.
pub async fn paced<F, Fut>(rate: u64, conns: usize, dur: Duration, op: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let op = Arc::new(op);
    let sem = Arc::new(tokio::sync::Semaphore::new(conns));
    let start = Instant::now();
    let total = rate * dur.as_secs().max(1);
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        tick.tick().await;
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = op((i as usize) % conns, i).await;
            drop(permit);
            if ok {
                (vec![t.elapsed().as_micros() as u64], 0)
            } else {
                (Vec::new(), 1)
            }
        }));
    }
    collect(tasks, start).await
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<(Vec<u64>, usize)>>, start: Instant) -> Stats {
    let mut s = Stats::default();
    for t in tasks {
        if let Ok((lat, errors)) = t.await {
            s.ok += lat.len();
            s.errors += errors;
            s.lat_us.extend(lat);
        }
    }
    s.secs = start.elapsed().as_secs_f64();
    s.lat_us.sort_unstable();
    s
}
