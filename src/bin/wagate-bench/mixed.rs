//! The soak's kind of log for `retained`: many sessions, each with a webhook on every event to
//! the bench's receiver, sharing groups they create and change with a mix of operations like the
//! soak's (joins, leaves, promotions, settings, renames, new groups), so that the log, the
//! deliveries and the groups grow as they do in `wagate-soak`. The same changes can also run on
//! a set of groups that stays the same size (`Groups::Keep`), so that what the log costs and what
//! the groups cost are measured apart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use crate::servers::BenchResult;
use crate::setup::post;

/// Groups the operations pick from: the most recent ones (older groups stay in the stores).
const WORKING_SET: usize = 200;

/// The `me` id of session `s{i}`: the sessions add each other to their groups.
fn me_of(i: usize) -> String {
    format!("{}@c.us", 70_000_000_000u64 + i as u64)
}

/// Sessions `s0`… each with a webhook on every event to `receiver`.
pub async fn create_sessions(
    c: &reqwest::Client,
    base: &str,
    sessions: usize,
    receiver: &str,
) -> BenchResult<()> {
    for s in 0..sessions {
        let config = json!({
            "local": {"me": {"id": me_of(s), "pushName": format!("s{s}")}},
            "webhooks": [{"url": receiver, "events": ["*"],
                          "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 30}}]
        });
        let body = json!({"name": format!("s{s}"), "config": config});
        post(c, &format!("{base}/api/sessions"), body).await?;
    }
    Ok(())
}

/// The events made durable so far, over every session (from `/metrics`).
pub async fn events_committed(c: &reqwest::Client, base: &str) -> BenchResult<u64> {
    let text = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("wagate_events_total{"))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|n| n.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// Whether the mix makes new groups as the soak does (14 % of its operations), or keeps to the
/// groups it made first, making a new one only for a group its creator has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Groups {
    Grow,
    Keep,
}

/// The groups the mix works on, and how many it made.
#[derive(Clone)]
pub struct Mix {
    groups: Arc<Mutex<Vec<(usize, String)>>>,
    created: Arc<AtomicU64>,
    kind: Groups,
}

impl Mix {
    pub fn new(kind: Groups) -> Self {
        Self {
            groups: Arc::default(),
            created: Arc::default(),
            kind,
        }
    }

    /// Groups created so far.
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}

/// Runs `conns` clients of the mix until the gateway has committed `until` events.
pub async fn fill(
    c: &reqwest::Client,
    base: &str,
    sessions: usize,
    conns: usize,
    until: u64,
    mix: &Mix,
) -> BenchResult<u64> {
    let mut before = events_committed(c, base).await?;
    loop {
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (c, base, mix) = (c.clone(), base.to_owned(), mix.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    one_op(&c, &base, sessions, &mix).await;
                }
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())?;
        }
        let made = events_committed(c, base).await?;
        if made >= until {
            return Ok(made);
        }
        if made == before {
            return Err(format!(
                "a pass of the mix committed no event ({made} so far)"
            ));
        }
        before = made;
    }
}

/// One operation of the mix (the soak's weights, without its reads).
async fn one_op(c: &reqwest::Client, base: &str, sessions: usize, mix: &Mix) {
    let (s, choice, parts) = draw(sessions, mix.kind);
    let (picked, few) = {
        let g = mix.groups.lock().unwrap_or_else(|p| p.into_inner());
        (
            g.choose(&mut rand::thread_rng()).cloned(),
            g.len() < WORKING_SET,
        )
    };
    let create = match mix.kind {
        Groups::Grow => choice < 14 || picked.is_none(),
        Groups::Keep => few,
    };
    if create {
        return create_group(c, base, s, parts, mix).await;
    }
    let Some((owner, gid)) = picked else {
        return;
    };
    let (path, body, put) = change(choice, owner, &gid, parts, sessions);
    let url = format!("{base}{path}");
    let req = if put { c.put(url) } else { c.post(url) };
    let gone = req.json(&body).send().await.is_ok_and(|r| {
        r.status() == reqwest::StatusCode::NOT_FOUND && path.starts_with(&format!("/api/s{owner}/"))
    });
    // Its creator left it: a kept set takes a new group in its place.
    if gone && mix.kind == Groups::Keep {
        let mut g = mix.groups.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|(_, id)| *id != gid);
    }
}

/// The acting session, the operation (0..100; 0..14 makes a group, never drawn for a kept set)
/// and its participants: 1–3 other sessions, and a third of the time a contact no session knows.
fn draw(sessions: usize, kind: Groups) -> (usize, u32, Vec<Value>) {
    let mut rng = rand::thread_rng();
    let s = rng.gen_range(0..sessions);
    let mut others: Vec<String> = (0..sessions).filter(|&o| o != s).map(me_of).collect();
    others.shuffle(&mut rng);
    others.truncate(rng.gen_range(1..4));
    if rng.gen_range(0..3) == 0 {
        others.push(format!(
            "{}@c.us",
            rng.gen_range(10_000_000_000u64..20_000_000_000)
        ));
    }
    let parts = others.into_iter().map(|id| json!({"id": id})).collect();
    let first = if kind == Groups::Keep { 14 } else { 0 };
    (s, rng.gen_range(first..100), parts)
}

async fn create_group(c: &reqwest::Client, base: &str, s: usize, parts: Vec<Value>, mix: &Mix) {
    let body = json!({"name": format!("Retained {s}"), "participants": parts});
    let Ok(g) = post(c, &format!("{base}/api/s{s}/groups"), body).await else {
        return;
    };
    mix.created.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = g["id"].as_str() {
        let mut g = mix.groups.lock().unwrap_or_else(|p| p.into_inner());
        g.push((s, id.to_owned()));
        if g.len() > WORKING_SET {
            g.remove(0);
        }
    }
}

/// The request for operation `n` (14..100) on group `gid` of session `owner`: path, body, PUT?
fn change(
    n: u32,
    owner: usize,
    gid: &str,
    parts: Vec<Value>,
    sessions: usize,
) -> (String, Value, bool) {
    let g = format!("/api/s{owner}/groups/{gid}");
    let who = json!({"participants": parts});
    match n {
        14..=34 => (format!("{g}/participants/add"), who, false),
        35..=48 => (format!("{g}/participants/remove"), who, false),
        49..=62 => (
            format!("{g}/subject"),
            json!({"subject": format!("Subject {n}")}),
            true,
        ),
        63..=73 => (
            format!("{g}/description"),
            json!({"description": "retained"}),
            true,
        ),
        74..=81 => (format!("{g}/admin/promote"), who, false),
        82..=88 => (format!("{g}/admin/demote"), who, false),
        89..=94 => (
            format!("{g}/settings/security/info-admin-only"),
            json!({"adminsOnly": n % 2 == 0}),
            true,
        ),
        95..=97 => (format!("{g}/invite-code/revoke"), json!({}), false),
        _ => {
            let leaver = (owner + n as usize) % sessions;
            (
                format!("/api/s{leaver}/groups/{gid}/leave"),
                json!({}),
                false,
            )
        }
    }
}
