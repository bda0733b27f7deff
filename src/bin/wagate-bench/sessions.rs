//! `sessions`: many sessions with a few groups each, then a restart: the gateway's RSS and its
//! time from start to healthy with all of them to open.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::report::{row, Row};
use crate::servers::{start_gateway, BenchResult};
use crate::setup::{client, contact, post, tmpdir};
use crate::Plan;

pub async fn sessions(plan: Plan) -> BenchResult<Vec<Row>> {
    let dir = tmpdir("sessions")?;
    let (gw, _) = start_gateway(&dir, &[]).await?;
    let c = client();
    let n = plan.sessions;
    let g = plan.groups_per_session;
    populate(&c, &gw.base, n, g).await?;
    let populated_rss = gw.rss_mib();
    drop(gw);
    let (gw, startup) = start_gateway(&dir, &[]).await?;
    let rss = gw.rss_mib();
    let listed = c
        .get(format!("{}/api/sessions?all=true", gw.base))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let count = listed
        .json::<Value>()
        .await
        .map_err(|e| e.to_string())?
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    if count != n {
        return Err(format!("after restart {count} sessions, expected {n}"));
    }
    let cold = cold_requests(&c, &gw.base, n).await?;
    let label = format!("{n} sessions × {g} groups");
    let mut out = vec![
        row(
            "sessions",
            &format!("RSS after restart, {label}"),
            rss,
            "MiB",
            None,
            "≤ 400 MiB",
            rss <= 400.0,
        ),
        row(
            "sessions",
            &format!("start-up to healthy, {label}"),
            startup.as_secs_f64(),
            "s",
            None,
            "≤ 3 s",
            startup.as_secs_f64() <= 3.0,
        ),
    ];
    let mut first = row(
        "sessions",
        &format!(
            "first request to each session after restart (GET groups), {}",
            cold.n
        ),
        cold.p99,
        "ms p99",
        None,
        "p99 ≤ 50 ms",
        cold.p99 <= 50.0,
    );
    (first.p50_ms, first.p99_ms) = (Some(cold.p50), Some(cold.p99));
    out.push(first);
    out.push(row(
        "sessions",
        "RSS right after populating (before restart)",
        populated_rss,
        "MiB",
        None,
        "",
        true,
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// Sessions `s0`… with `g` groups each, 32 sessions being created at a time.
async fn populate(c: &reqwest::Client, base: &str, n: usize, g: usize) -> BenchResult<()> {
    let base = Arc::new(base.to_owned());
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (c, base, sem) = (c.clone(), base.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.map_err(|e| e.to_string())?;
            post(
                &c,
                &format!("{base}/api/sessions"),
                json!({"name": format!("s{i}")}),
            )
            .await?;
            for k in 0..g {
                post(
                    &c,
                    &format!("{base}/api/s{i}/groups"),
                    json!({"name": format!("g{k}"), "participants": [{"id": contact(k)}]}),
                )
                .await?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Latencies of the first request each session gets after a restart.
struct Cold {
    n: usize,
    p50: f64,
    p99: f64,
}

/// `GET /api/s{i}/groups` once for every session, 8 at a time, right after a restart: what a
/// session nobody has asked for yet costs its first client.
async fn cold_requests(c: &reqwest::Client, base: &str, n: usize) -> BenchResult<Cold> {
    let base = Arc::new(base.to_owned());
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (c, base, sem) = (c.clone(), base.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.map_err(|e| e.to_string())?;
            let t = std::time::Instant::now();
            let resp = c
                .get(format!("{base}/api/s{i}/groups"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("GET /api/s{i}/groups: {}", resp.status()));
            }
            resp.bytes().await.map_err(|e| e.to_string())?;
            Ok::<f64, String>(t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut ms = Vec::with_capacity(n);
    for t in tasks {
        ms.push(t.await.map_err(|e| e.to_string())??);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Cold {
        n: ms.len(),
        p50: at(0.5),
        p99: at(0.99),
    })
}
