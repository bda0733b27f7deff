//! Load that runs against a gateway until told to stop or until its process dies: renames of a
//! group by random members, each recorded in a `History`; dead letters sent back to pending.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;

use super::history::History;
use super::http::call;

/// Answers no fault explains, collected for the test to fail on.
pub type Complaints = Arc<Mutex<Vec<String>>>;

fn complain(c: &Complaints, what: String) {
    eprintln!("unexpected: {what}");
    c.lock().expect("complaints").push(what);
}

/// One renamer: which group (its index in the history and its id), who may act, and its subjects.
pub struct Renamer {
    pub group: usize,
    pub id: String,
    /// Sessions of members; each rename is made by one of them, at random.
    pub actors: Vec<&'static str>,
    /// Subjects are `<prefix><n>` for n from `first` on.
    pub prefix: String,
    pub first: u64,
    pub rng: StdRng,
}

/// Renames again and again until `stop` or the process dies (no answer). A 503
/// `group_catching_up` is the one refusal the contract allows here; any other is a complaint.
pub async fn rename_until(
    http: reqwest::Client,
    base: String,
    mut r: Renamer,
    history: History,
    stop: Arc<AtomicBool>,
    complaints: Complaints,
) {
    for n in r.first.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let actor = r.actors[r.rng.gen_range(0..r.actors.len())];
        let subject = format!("{}{n}", r.prefix);
        let at = history.send(r.group, &subject);
        let url = format!("{base}/api/{actor}/groups/{}/subject", r.id);
        let Ok(a) = call(&http, "PUT", &url, Some(&json!({"subject": subject}))).await else {
            return;
        };
        history.answered(at, a.ok());
        let allowed = a.ok() || (a.status == 503 && a.code() == "group_catching_up");
        if !allowed {
            complain(&complaints, format!("PUT {url}: {} {}", a.status, a.body));
        }
    }
}

/// Every 20 ms, sends the first 20 dead deliveries of `session` back to pending, until the
/// process dies. A 404 (sent back already) is fine.
pub async fn retry_dead_until_killed(
    http: reqwest::Client,
    base: String,
    session: &'static str,
    complaints: Complaints,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let list = format!("{base}/api/{session}/webhooks/deliveries?state=dead&limit=20");
        let Ok(dead) = call(&http, "GET", &list, None).await else {
            return;
        };
        for d in dead.body.as_array().into_iter().flatten() {
            let id = d["id"].as_str().unwrap_or_default();
            let url = format!("{base}/api/{session}/webhooks/deliveries/{id}/retry");
            let Ok(a) = call(&http, "POST", &url, None).await else {
                return;
            };
            if !(a.ok() || a.status == 404) {
                complain(&complaints, format!("POST {url}: {} {}", a.status, a.body));
            }
        }
    }
}
