//! A gateway's event log and delivery log read over HTTP: a whole log from its start, dead
//! letters sent again, deliveries left over.

use std::collections::HashSet;

use super::http::{call_ok, now_ms};

/// The ids of a session's whole event log, read from its start; and when the read ended (unix ms).
pub async fn event_ids(
    http: &reqwest::Client,
    base: &str,
    session: &str,
) -> (HashSet<String>, u64) {
    let (mut ids, mut after) = (HashSet::new(), String::new());
    loop {
        let url = format!("{base}/api/{session}/events?limit=1000&after={after}");
        let page = call_ok(http, "GET", &url, None).await;
        let page = page.as_array().expect("array");
        let Some(last) = page.last() else {
            return (ids, now_ms());
        };
        after = last["cursor"].as_str().expect("cursor").to_owned();
        ids.extend(
            page.iter()
                .map(|e| e["envelope"]["id"].as_str().expect("id").to_owned()),
        );
    }
}

/// Sends up to 1000 dead deliveries of `session` back to pending, 16 at a time; answers how many.
pub async fn retry_dead(http: &reqwest::Client, base: &str, session: &str) -> usize {
    let url = format!("{base}/api/{session}/webhooks/deliveries?state=dead&limit=1000");
    let list = call_ok(http, "GET", &url, None).await;
    let ids: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    for chunk in ids.chunks(16) {
        let mut set = tokio::task::JoinSet::new();
        for id in chunk {
            let http = http.clone();
            let url = format!("{base}/api/{session}/webhooks/deliveries/{id}/retry");
            set.spawn(async move { call_ok(&http, "POST", &url, None).await });
        }
        while let Some(r) = set.join_next().await {
            r.expect("a retry");
        }
    }
    ids.len()
}

/// Deliveries still pending or dead.
#[derive(Debug, Default)]
pub struct LeftOver {
    /// The first few of each session and state, orphaned ones first.
    pub shown: Vec<String>,
    pub total: usize,
    /// Those whose event is gone: `eventId` is empty once the log no longer holds the event, so
    /// such a delivery can never be sent.
    pub orphaned: usize,
}

pub async fn left_over(http: &reqwest::Client, base: &str, sessions: &[&str]) -> LeftOver {
    let mut left = LeftOver::default();
    for s in sessions {
        for state in ["pending", "dead"] {
            let url = format!("{base}/api/{s}/webhooks/deliveries?state={state}&limit=1000");
            let list = call_ok(http, "GET", &url, None).await;
            let mut list = list.as_array().expect("array").clone();
            list.sort_by_key(|d| d["eventId"] != "");
            left.total += list.len();
            left.orphaned += list.iter().filter(|d| d["eventId"] == "").count();
            left.shown
                .extend(list.iter().take(3).map(|d| format!("{s}: {d}")));
        }
    }
    left
}
