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
    let label = format!("{n} sessions × {g} groups");
    let mut out = vec![
        row(
            "sessions",
            &format!("RSS after restart, {label}"),
            rss,
            "MiB",
            None,
            "≤ 300 MiB",
            rss <= 300.0,
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
