//! The local network under concurrency: members changing one group at once, and changes whose
//! requests are abandoned midway, leave every member with the same group and the same events
//! in the same order.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};

use common::local_network::{group_of, three_sessions, B, C};

/// Every envelope of `session`'s log, paging through `/events` by cursor.
async fn all_events(gw: &common::Gateway, session: &str) -> Vec<Value> {
    common::whole_log(session, |path| async move {
        let (status, page) = gw.get(&path).await;
        (status.as_u16(), page)
    })
    .await
}

/// The `(event, payload)` of one group's events in `session`'s log, oldest first.
async fn group_events(gw: &common::Gateway, session: &str, gid: &str) -> Vec<(String, Value)> {
    all_events(gw, session)
        .await
        .into_iter()
        .filter(|e| e["payload"]["group"]["id"] == gid || e["payload"]["chatId"] == gid)
        .map(|e| {
            (
                e["event"].as_str().unwrap_or_default().to_owned(),
                e["payload"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_sessions_changing_one_group_at_once_agree_on_its_state_and_on_one_event_order() {
    const SESSIONS: usize = 8;
    const CHANGES: usize = 100;
    let gw = std::sync::Arc::new(common::gateway().await);
    let names: Vec<String> = (0..SESSIONS).map(|k| format!("s{k}")).collect();
    let accounts: Vec<String> = (0..SESSIONS)
        .map(|k| format!("4000000000{k}@c.us"))
        .collect();
    for (name, me) in names.iter().zip(&accounts) {
        gw.session(name, Some(me), None).await;
    }
    let others: Vec<&str> = accounts[1..].iter().map(String::as_str).collect();
    let g = gw.group("s0", "Busy", &others).await;
    let gid = g["id"].as_str().expect("id").to_owned();
    let all: Vec<Value> = others.iter().map(|id| json!({"id": id})).collect();
    let (s, _) = gw
        .post(
            &format!("/api/s0/groups/{gid}/admin/promote"),
            json!({"participants": all}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mark: Vec<usize> = {
        let mut v = Vec::new();
        for name in &names {
            v.push(group_events(&gw, name, &gid).await.len());
        }
        v
    };

    let tasks: Vec<_> = (0..SESSIONS)
        .map(|k| {
            let gw = gw.clone();
            let gid = gid.clone();
            tokio::spawn(async move {
                let base = format!("/api/s{k}/groups/{gid}");
                for i in 0..CHANGES {
                    // An outside contact unique to (session, pair of changes).
                    let contact = format!("5{k}{:09}@c.us", i / 4);
                    let (s, body) = match i % 4 {
                        0 => {
                            gw.put(
                                &format!("{base}/subject"),
                                json!({"subject": format!("s{k}-{i}")}),
                            )
                            .await
                        }
                        1 => {
                            gw.post(
                                &format!("{base}/participants/add"),
                                json!({"participants": [{"id": contact}]}),
                            )
                            .await
                        }
                        2 => {
                            gw.post(
                                &format!("{base}/participants/remove"),
                                json!({"participants": [{"id": contact}]}),
                            )
                            .await
                        }
                        _ => {
                            gw.put(
                                &format!("{base}/description"),
                                json!({"description": format!("d{k}-{i}")}),
                            )
                            .await
                        }
                    };
                    assert_eq!(s, StatusCode::OK, "s{k} change {i}: {body}");
                    if i % 4 == 1 || i % 4 == 2 {
                        assert_eq!(body[0]["success"], true, "s{k} change {i}: {body}");
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a task of changes");
    }

    // Every store holds the same group at the same version.
    let stored: Vec<_> = names
        .iter()
        .map(|n| {
            let name = wagate::ids::SessionName::parse(n).expect("name");
            let session = gw.state.registry.get(&name).expect("session");
            let id = wagate::ids::GroupId::parse(&gid).expect("gid");
            gw.state.groups.load(&session, &id).expect("group")
        })
        .collect();
    assert_eq!(stored[0].version, 2 + (SESSIONS * CHANGES) as u64);
    assert_eq!(stored[0].participants.len(), SESSIONS);
    for g in &stored[1..] {
        assert_eq!(g, &stored[0]);
    }

    // Every log holds every change once, in the one order.
    let per_session = SESSIONS * CHANGES / 4 * 6;
    let mut logs = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let log = group_events(&gw, name, &gid).await;
        assert_eq!(log.len(), mark[k] + per_session, "{name}");
        logs.push(log[mark[k]..].to_vec());
    }
    for (k, log) in logs.iter().enumerate().skip(1) {
        assert!(log == &logs[0], "s{k}'s log differs from s0's");
    }
    let subjects: Vec<&Value> = logs[0]
        .iter()
        .filter(|(n, p)| n == "group.v2.update" && p["group"].get("subject").is_some())
        .map(|(_, p)| &p["group"]["subject"])
        .collect();
    assert_eq!(subjects.len(), SESSIONS * CHANGES / 4);
    let distinct: std::collections::BTreeSet<&str> =
        subjects.iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(
        distinct.len(),
        subjects.len(),
        "a subject change seen twice"
    );
    assert_eq!(
        subjects.last().and_then(|v| v.as_str()),
        Some(stored[0].subject.as_str())
    );
}

#[tokio::test]
async fn a_change_whose_request_is_abandoned_still_reaches_every_member() {
    const TRIES: u64 = 40;
    let gw = three_sessions().await;
    let g = gw.group("a", "Hasty", &[B, C]).await;
    let gid = g["id"].as_str().expect("id").to_owned();
    let path = format!("/api/a/groups/{gid}/subject");
    let mut abandoned = 0;
    for i in 0..TRIES {
        // Each request is dropped at another moment of its way through the write path.
        let wait = std::time::Duration::from_micros(i * 100);
        let sent = gw.put(&path, json!({"subject": format!("h{i}")}));
        if tokio::time::timeout(wait, sent).await.is_err() {
            abandoned += 1;
        }
    }
    assert!(abandoned > 0, "no request was abandoned");
    // Changes run in arrival order, so once this one answers, every earlier one is done.
    let (s, _) = gw.put(&path, json!({"subject": "last"})).await;
    assert_eq!(s, StatusCode::OK);

    let mut logs = Vec::new();
    for session in ["a", "b", "c"] {
        let log = group_events(&gw, session, &gid).await;
        assert_eq!(log.len(), 2 + TRIES as usize + 1, "{session}");
        logs.push(log[2..].to_vec());
        let (_, view) = group_of(&gw, session, &gid).await;
        assert_eq!(view["subject"], "last", "{session}");
    }
    assert!(logs[1] == logs[0], "b's log differs from a's");
    assert!(logs[2] == logs[0], "c's log differs from a's");
}
