//! Crash safety of a change that touches several groups: the real binary dies after A's commit
//! of a link (community, linked group and announcement group in one transaction) and before the
//! other member sessions got their share; after a restart every member has all of it.

mod common;

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use common::process::{self, Wagate};

const A: &str = "11111111111@c.us";
const B: &str = "22222222222@c.us";
const C: &str = "33333333333@c.us";
const ABORT: (&str, &str) = ("WAGATE_TEST_ABORT_BEFORE_FANOUT", "true");

async fn ok(gw: &Wagate, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, text) = gw.call(method.clone(), path, body, &[]).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// The session's events of `name`, their payloads.
async fn payloads(gw: &Wagate, session: &str, name: &str) -> Vec<Value> {
    let page = ok(
        gw,
        Method::GET,
        &format!("/api/{session}/events?limit=1000"),
        None,
    )
    .await;
    let page = page.as_array().cloned().unwrap_or_default();
    page.iter()
        .map(|e| &e["envelope"])
        .filter(|e| e["event"] == name)
        .map(|e| e["payload"].clone())
        .collect()
}

/// First run: three sessions; A's community with B, and A's group with B and C, not linked.
async fn set_up(dir: &Path) -> (String, String, String) {
    let gw = process::start(dir, &[]).await;
    for (name, me) in [("a", A), ("b", B), ("c", C)] {
        let body = json!({"name": name, "config": {"local": {"me": {"id": me}}}});
        ok(&gw, Method::POST, "/api/sessions", Some(body)).await;
    }
    let body = json!({"name": "Street", "participants": [{"id": B}]});
    let community = ok(&gw, Method::POST, "/api/a/communities", Some(body)).await;
    let body = json!({"name": "Party", "participants": [{"id": B}, {"id": C}]});
    let group = ok(&gw, Method::POST, "/api/a/groups", Some(body)).await;
    let announcement = id_of(&community["announcementGroup"]);
    (id_of(&community), announcement, id_of(&group))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_interrupted_before_its_fan_out_reaches_every_member_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cid, announcement, gid) = set_up(dir.path()).await;

    // Second run, with the hook: A links the party; the process dies before B and C get theirs.
    let mut gw = process::start(dir.path(), &[ABORT]).await;
    let link = reqwest::Client::new()
        .post(format!("{}/api/a/communities/{cid}/groups/link", gw.base))
        .json(&json!({"groups": [{"id": gid}]}))
        .send()
        .await;
    assert!(link.is_err(), "the request got an answer: {link:?}");
    common::wait_for(30, "the gateway to die", || {
        let exited = gw.child.try_wait().ok().flatten().is_some();
        async move { exited }
    })
    .await;
    drop(gw);
    {
        let a =
            wagate::store::SessionStore::open(&dir.path().join("sessions/a"), Default::default())
                .expect("a's store");
        assert_eq!(
            a.fanouts().expect("fan-outs").len(),
            1,
            "a share is pending"
        );
    }

    // Third run: the shares are applied before serving.
    let gw = process::start(dir.path(), &[]).await;
    for session in ["a", "b", "c"] {
        let party = ok(
            &gw,
            Method::GET,
            &format!("/api/{session}/groups/{gid}"),
            None,
        )
        .await;
        assert_eq!(party["parentGroupId"], cid.as_str(), "{session}: {party}");
        let info = ok(
            &gw,
            Method::GET,
            &format!("/api/{session}/communities/{cid}"),
            None,
        )
        .await;
        assert_eq!(
            info["groups"],
            json!([{"id": gid, "subject": "Party"}]),
            "{session}"
        );
        let ann = ok(
            &gw,
            Method::GET,
            &format!("/api/{session}/groups/{announcement}"),
            None,
        )
        .await;
        assert_eq!(
            ann["size"], 3,
            "{session}: A, B and C are in the announcement group"
        );
        let updates = payloads(&gw, session, "group.v2.update").await;
        let linked: Vec<&Value> = updates
            .iter()
            .filter(|u| u["group"]["parentGroupId"] == cid.as_str())
            .collect();
        assert_eq!(
            linked.len(),
            1,
            "{session} heard the link once: {updates:?}"
        );
    }
    let joins = payloads(&gw, "c", "group.v2.join").await;
    let joined: Vec<&Value> = joins.iter().map(|p| &p["group"]["id"]).collect();
    assert_eq!(
        joined,
        [&json!(gid), &json!(announcement)],
        "C joined the announcement group"
    );
}
