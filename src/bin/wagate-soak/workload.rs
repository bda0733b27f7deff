//! The soak's workload: sessions whose webhooks go to the receivers, then concurrent clients
//! running a random mix of group operations (mostly writes, some reads) until the deadline,
//! with the gateway's RSS sampled along the way.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};

use crate::gateway::{rss_kib, Api};

/// The `me` id of session `s{i}`: the sessions add each other to their groups.
pub fn me_of(i: usize) -> String {
    format!("{}@c.us", 70_000_000_000u64 + i as u64)
}

/// Sessions `s0`… each with a webhook on every event to its own path of the receivers, retried
/// often enough (30 attempts, 1 s apart) to outlast the injected failures.
pub async fn create_sessions(api: &Api, sessions: usize, hooks: SocketAddr) -> Result<(), String> {
    for s in 0..sessions {
        let config = json!({
            "local": {"me": {"id": me_of(s), "pushName": format!("s{s}")}},
            "webhooks": [{"url": format!("http://{hooks}/hook/s{s}"), "events": ["*"],
                          "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 30}}]
        });
        let (status, body) = api
            .call(
                Method::POST,
                "/api/sessions",
                Some(json!({"name": format!("s{s}"), "config": config})),
            )
            .await;
        if status != 201 {
            return Err(format!("creating session s{s}: {status} {body}"));
        }
    }
    Ok(())
}

/// Traffic from `clients` clients for `minutes`, with an RSS sample every 10 s and one at the
/// end; answers the samples (KiB).
pub async fn traffic(
    api: &Arc<Api>,
    pid: u32,
    minutes: u64,
    sessions: usize,
    clients: usize,
) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(minutes * 60);
    let groups = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (api, groups) = (api.clone(), groups.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                one_op(&api, sessions, &groups).await;
            }
        }));
    }
    let mut rss = Vec::new();
    while Instant::now() < deadline {
        rss.push(rss_kib(pid));
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(10))).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    rss.push(rss_kib(pid));
    rss
}

/// One random operation of the mix; group ids created are remembered for later operations.
async fn one_op(api: &Api, sessions: usize, groups: &Mutex<Vec<(usize, String)>>) {
    let (s, choice, others) = draw(sessions);
    let picked = {
        let g = groups.lock().unwrap_or_else(|p| p.into_inner());
        g.choose(&mut rand::thread_rng()).cloned()
    };
    let parts: Vec<Value> = others.iter().map(|id| json!({"id": id})).collect();
    match (choice, picked) {
        (0..=9, _) | (_, None) => create_group(api, s, choice, parts, groups).await,
        (c, Some((owner, gid))) => {
            let leaver = others.len() % sessions;
            let (method, path, body) = group_call(c, owner, &gid, parts, leaver);
            api.call(method, &path, body).await;
        }
    }
}

/// The session that acts, the operation (0..100, weights in `group_call`), and the participants
/// it names: 1–3 other sessions, and a third of the time a contact no session knows.
fn draw(sessions: usize) -> (usize, u32, Vec<String>) {
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
    (s, rng.gen_range(0..100), others)
}

async fn create_group(
    api: &Api,
    s: usize,
    choice: u32,
    parts: Vec<Value>,
    groups: &Mutex<Vec<(usize, String)>>,
) {
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/s{s}/groups"),
            Some(json!({"name": format!("Soak {choice}"), "participants": parts})),
        )
        .await;
    if status == 201 {
        if let Some(id) = body["id"].as_str() {
            let mut g = groups.lock().unwrap_or_else(|p| p.into_inner());
            g.push((s, id.to_owned()));
            // Bounded: old groups stay in the stores but leave the working set.
            if g.len() > 200 {
                g.remove(0);
            }
        }
    }
}

/// The request for operation `c` (10..100) on group `gid` of session `owner`; a leave is asked
/// of session `leaver`, who may or may not be a member.
fn group_call(
    c: u32,
    owner: usize,
    gid: &str,
    parts: Vec<Value>,
    leaver: usize,
) -> (Method, String, Option<Value>) {
    let base = format!("/api/s{owner}/groups/{gid}");
    match c {
        10..=24 => (
            Method::POST,
            format!("{base}/participants/add"),
            Some(json!({"participants": parts})),
        ),
        25..=34 => (
            Method::POST,
            format!("{base}/participants/remove"),
            Some(json!({"participants": parts})),
        ),
        35..=44 => (
            Method::PUT,
            format!("{base}/subject"),
            Some(json!({"subject": format!("Subject {c}")})),
        ),
        45..=52 => (
            Method::PUT,
            format!("{base}/description"),
            Some(json!({"description": "soak"})),
        ),
        53..=58 => (
            Method::POST,
            format!("{base}/admin/promote"),
            Some(json!({"participants": parts})),
        ),
        59..=63 => (
            Method::POST,
            format!("{base}/admin/demote"),
            Some(json!({"participants": parts})),
        ),
        64..=67 => (
            Method::PUT,
            format!("{base}/settings/security/info-admin-only"),
            Some(json!({"adminsOnly": c % 2 == 0})),
        ),
        68..=70 => (Method::POST, format!("{base}/invite-code/revoke"), None),
        71..=72 => (
            Method::POST,
            format!("/api/s{leaver}/groups/{gid}/leave"),
            None,
        ),
        73..=85 => (Method::GET, base.clone(), None),
        86..=92 => (Method::GET, format!("/api/s{owner}/groups?limit=20"), None),
        _ => (Method::GET, format!("/api/s{owner}/events?limit=50"), None),
    }
}
