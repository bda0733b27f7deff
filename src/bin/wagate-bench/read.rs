//! `read`: `GET` of a group with 50 participants from 64 connections, against a bare axum server
//! (this binary re-executed) answering the same bytes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::load::{self, Stats};
use crate::report::{against_ceiling, Row};
use crate::servers::{start_bare, start_gateway, BenchResult};
use crate::setup::{client, contact, post, tmpdir};
use crate::Plan;

pub async fn read(plan: Plan) -> BenchResult<Vec<Row>> {
    let dir = tmpdir("read")?;
    let (gw, _) = start_gateway(&dir, &[]).await?;
    let c = client();
    post(
        &c,
        &format!("{}/api/sessions", gw.base),
        json!({"name": "bench"}),
    )
    .await?;
    let parts: Vec<Value> = (0..49).map(|i| json!({"id": contact(i)})).collect();
    let g = post(
        &c,
        &format!("{}/api/bench/groups", gw.base),
        json!({"name": "Fifty", "participants": parts}),
    )
    .await?;
    let id = g["id"].as_str().unwrap_or_default().to_owned();
    let url = format!("{}/api/bench/groups/{id}", gw.base);
    let bytes = c
        .get(&url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let body_file = dir.join("body.json");
    std::fs::write(&body_file, &bytes).map_err(|e| e.to_string())?;
    let fig = get_loop(&c, url, plan).await;
    let bare = start_bare(&body_file).await?;
    let ceil = get_loop(&c, format!("{}/api/bench/groups/{id}", bare.base), plan).await;
    let rows = against_ceiling(
        ("read", "GET group (50 participants) req/s", "req/s", &fig),
        ("ceiling: bare axum, same bytes", "req/s", &ceil),
        0.5,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}

async fn get_loop(c: &reqwest::Client, url: String, plan: Plan) -> Stats {
    let c = c.clone();
    let url = Arc::new(url);
    load::closed_loop(plan.conns, Duration::from_secs(plan.secs), move |_, _| {
        let c = c.clone();
        let url = url.clone();
        async move {
            match c.get(url.as_str()).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await
}
