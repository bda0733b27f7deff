//! The local network across a cluster (contract §7), black-box: one real `nats-server -js`,
//! three real wagate nodes, a session on each. A group made on one node reaches its members on
//! the others with their events and webhooks, invite codes work on every node, concurrent
//! changes from three nodes end in one order everywhere, and a node killed mid-burst applies
//! what it missed, in order, when it returns.

mod common;

use common::cluster::{call, log_events as events, nats, node, subjects, Place};
use common::local_network::role_in;
use common::local_network::{A, B, C};
use common::process::Wagate;
use common::recorder::{Mode, Recorder};
use common::wait_for;
use reqwest::Method;
use serde_json::{json, Value};

/// One NATS, three nodes n1, n2, n3 on it, and a webhook recorder for each node's session.
struct Three {
    nats: common::cluster::Nats,
    _root: tempfile::TempDir,
    places: Vec<Place>,
    nodes: Vec<Wagate>,
    hooks: [Recorder; 3],
}

async fn three() -> Three {
    let nats = nats().await;
    let root = tempfile::tempdir().expect("temp dir");
    let hooks = [
        Recorder::start(Mode::Accept).await,
        Recorder::start(Mode::Accept).await,
        Recorder::start(Mode::Accept).await,
    ];
    let places: Vec<Place> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| Place::new(root.path(), id))
        .collect();
    let mut nodes = Vec::new();
    for p in &places {
        nodes.push(node(&nats, p).await);
    }
    Three {
        nats,
        _root: root,
        places,
        nodes,
        hooks,
    }
}

/// Session `name` acting as `me`, created through `on`, its webhook to `hook` (every event).
pub async fn session(on: &Wagate, name: &str, me: &str, hook: &str) {
    let body = json!({"name": name, "config": {"local": {"me": {"id": me}},
        "webhooks": [{"url": hook, "events": ["group.v2.join", "group.v2.leave",
            "group.v2.participants", "group.v2.update", "group.join", "group.leave"]}]}});
    let (status, answer) = call(on, Method::POST, "/api/sessions", Some(body)).await;
    assert_eq!(status, 201, "{answer}");
}

/// `session`'s copy of group `gid` through `on`: status and body.
pub async fn group(on: &Wagate, session: &str, gid: &str) -> (u16, Value) {
    call(
        on,
        Method::GET,
        &format!("/api/{session}/groups/{gid}"),
        None,
    )
    .await
}

/// Waits until `session`'s copy (through `on`) satisfies `cond`.
pub async fn until_copy(
    on: &Wagate,
    session: &str,
    gid: &str,
    what: &str,
    cond: impl Fn(u16, &Value) -> bool,
) {
    wait_for(20, what, || async {
        let (s, v) = group(on, session, gid).await;
        cond(s, &v)
    })
    .await;
}

/// Waits until `session`'s log (through `on`) holds `n` events named `name`.
pub async fn until_events(on: &Wagate, session: &str, name: &str, n: usize) {
    wait_for(20, &format!("{n} {name} events of {session}"), || async {
        events(on, session)
            .await
            .iter()
            .filter(|(e, _)| e == name)
            .count()
            >= n
    })
    .await;
}

/// The local network's scenario (issue 5's Done-when) with a, b and c on three nodes, every
/// request sent to a node that is not the session's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_made_on_one_node_reaches_members_on_the_others_with_events_and_webhooks() {
    let Three {
        nats: _nats,
        _root,
        places: _places,
        nodes,
        hooks,
    } = three().await;
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    session(n1, "a", A, &hooks[0].url).await;
    session(n2, "b", B, &hooks[1].url).await;
    session(n3, "c", C, &hooks[2].url).await;

    // a (on n1) creates the group with B, asked through n2.
    let (s, g) = call(
        n2,
        Method::POST,
        "/api/a/groups",
        Some(json!({"name": "Team", "participants": [{"id": B}]})),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().expect("id").to_owned();
    let code = g["invite"]
        .as_str()
        .expect("the creator sees the invite")
        .to_owned();

    // b (on n2) holds it with its own role, asked through n3, and was told it joined.
    until_copy(n3, "b", &gid, "b's copy of the group", |s, v| {
        s == 200 && role_in(v, B).as_deref() == Some("participant")
    })
    .await;
    until_events(n1, "b", "group.v2.join", 1).await;
    let b_join: Vec<Value> = events(n1, "b")
        .await
        .into_iter()
        .filter(|(n, _)| n == "group.v2.join")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(b_join[0]["group"]["id"], gid);
    assert_eq!(b_join[0]["by"], A);
    // ... and its webhook, on its own node, got it signed.
    wait_for(20, "b's webhook to get group.v2.join", || async {
        hooks[1]
            .hits()
            .iter()
            .any(|h| h.body["event"] == "group.v2.join" && h.body["session"] == "b")
    })
    .await;

    // c (on n3) joins by the code, asked through n1: a and b learn of it.
    let (s, body) = call(
        n1,
        Method::POST,
        "/api/c/groups/join",
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["id"], gid);
    for (on, member) in [(n3, "a"), (n1, "b")] {
        until_events(on, member, "group.v2.participants", 1).await;
        let parts: Vec<Value> = events(on, member)
            .await
            .into_iter()
            .filter(|(n, _)| n == "group.v2.participants")
            .map(|(_, p)| p)
            .collect();
        let last = parts.last().expect("a participants event");
        assert_eq!(last["type"], "join", "{member}");
        assert_eq!(
            last["participants"],
            json!([{"id": C, "pn": C, "role": "participant"}])
        );
        assert_eq!(last["by"], C);
    }

    // a promotes b (through n3); b renames (through n1); a removes c (through n2).
    let (s, res) = call(
        n3,
        Method::POST,
        &format!("/api/a/groups/{gid}/admin/promote"),
        Some(json!({"participants": [{"id": B}]})),
    )
    .await;
    assert_eq!((s, &res[0]["success"]), (200, &json!(true)), "{res}");
    until_copy(n2, "b", &gid, "b to see itself admin", |s, v| {
        s == 200 && role_in(v, B).as_deref() == Some("admin")
    })
    .await;
    let (s, body) = call(
        n1,
        Method::PUT,
        &format!("/api/b/groups/{gid}/subject"),
        Some(json!({"subject": "B's"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    until_copy(n1, "a", &gid, "a to see b's subject", |s, v| {
        s == 200 && v["subject"] == "B's"
    })
    .await;
    let (s, res) = call(
        n2,
        Method::POST,
        &format!("/api/a/groups/{gid}/participants/remove"),
        Some(json!({"participants": [{"id": C}]})),
    )
    .await;
    assert_eq!((s, &res[0]["success"]), (200, &json!(true)), "{res}");
    until_copy(n1, "c", &gid, "c to lose the group", |s, _| s == 404).await;
    until_events(n3, "c", "group.v2.leave", 1).await;

    // Every member's log, on every node, has the same story.
    let want = [
        "group.join",
        "group.v2.join",
        "group.join",
        "group.v2.participants",
        "group.v2.participants",
        "group.v2.update",
        "group.leave",
        "group.v2.participants",
    ];
    for member in ["a", "b"] {
        until_events(n3, member, "group.leave", 1).await;
        let names: Vec<String> = events(n3, member)
            .await
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, want, "{member}");
    }
    for member in ["a", "b"] {
        let (s, v) = group(n3, member, &gid).await;
        assert_eq!(s, 200);
        assert_eq!(v["subject"], "B's", "{member}");
        assert_eq!(role_in(&v, C), None);
    }
}

/// Three sessions on three nodes in one group, b and c admins too; the group's id.
async fn shared_group(nodes: &[Wagate], hooks: &[Recorder]) -> String {
    session(&nodes[0], "a", A, &hooks[0].url).await;
    session(&nodes[1], "b", B, &hooks[1].url).await;
    session(&nodes[2], "c", C, &hooks[2].url).await;
    let body = json!({"name": "Busy", "participants": [{"id": B}, {"id": C}]});
    let (s, g) = call(&nodes[0], Method::POST, "/api/a/groups", Some(body)).await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().expect("id").to_owned();
    let promote = json!({"participants": [{"id": B}, {"id": C}]});
    let path = format!("/api/a/groups/{gid}/admin/promote");
    let (s, res) = call(&nodes[0], Method::POST, &path, Some(promote)).await;
    assert_eq!(s, 200, "{res}");
    for (i, (name, me)) in [("b", B), ("c", C)].into_iter().enumerate() {
        until_copy(&nodes[i + 1], name, &gid, "the admins' copies", |s, v| {
            s == 200 && role_in(v, me).as_deref() == Some("admin")
        })
        .await;
    }
    gid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_from_three_nodes_end_identical_everywhere_in_one_order() {
    let Three {
        nats: _nats,
        _root,
        places: _places,
        nodes,
        hooks,
    } = three().await;
    let gid = shared_group(&nodes, &hooks).await;

    // Each session renames the group 15 times through its own node, all at once.
    const EACH: usize = 15;
    let mut tasks = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let base = nodes[i].base.clone();
        let path = format!("/api/{name}/groups/{gid}/subject");
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for k in 0..EACH {
                let body = json!({"subject": format!("{name}-{k}")});
                let (s, _, text) =
                    common::cluster::fetch(&base, Method::PUT, &path, Some(body), &[]).await;
                statuses.push((s, text));
            }
            statuses
        }));
    }
    for t in tasks {
        for (s, text) in t.await.expect("task") {
            assert_eq!(s, 200, "{text}");
        }
    }

    // Every member's log ends with the same 45 renames, in one order, and every copy agrees.
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        wait_for(20, "every rename in every log", || async {
            subjects(&nodes[i], name).await.len() >= 3 * EACH
        })
        .await;
    }
    let order = subjects(&nodes[0], "a").await;
    assert_eq!(order.len(), 3 * EACH, "{order:?}");
    for who in ["a", "b", "c"] {
        for k in 0..EACH {
            let mine: Vec<&String> = order.iter().filter(|s| s.starts_with(who)).collect();
            assert_eq!(
                mine[k],
                &format!("{who}-{k}"),
                "{who}'s renames keep their order"
            );
        }
    }
    for (i, name) in ["b", "c"].into_iter().enumerate() {
        assert_eq!(subjects(&nodes[i + 1], name).await, order, "{name}'s log");
    }
    let last = order.last().expect("a last rename").clone();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let (s, v) = group(&nodes[(i + 1) % 3], name, &gid).await;
        assert_eq!(
            (s, v["subject"].as_str()),
            (200, Some(last.as_str())),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_burst_is_unavailable_then_applies_what_it_missed_in_order() {
    let Three {
        nats,
        _root,
        places,
        mut nodes,
        hooks,
    } = three().await;
    let gid = shared_group(&nodes, &hooks).await;
    let path = format!("/api/a/groups/{gid}/subject");
    const BURST: usize = 40;
    for k in 0..BURST {
        if k == 10 {
            // b's node dies: a keeps changing the group.
            let _ = nodes[1].child.kill();
            let _ = nodes[1].child.wait();
        }
        let body = json!({"subject": format!("s{k}")});
        let (s, body) = call(&nodes[0], Method::PUT, &path, Some(body)).await;
        assert_eq!(s, 200, "{body}");
    }
    // b answers 503 node_unavailable elsewhere, naming its node.
    let (s, body) = group(&nodes[2], "b", &gid).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (503, Some("node_unavailable")),
        "{body}"
    );
    assert_eq!(body["node"], "n2");

    // n2 returns: b's copy, b's log and b's webhook catch up, in order.
    nodes[1] = node(&nats, &places[1]).await;
    let want: Vec<String> = (0..BURST).map(|k| format!("s{k}")).collect();
    until_copy(&nodes[0], "b", &gid, "b's copy to catch up", |s, v| {
        s == 200 && v["subject"] == format!("s{}", BURST - 1)
    })
    .await;
    wait_for(20, "b's log to catch up", || async {
        subjects(&nodes[1], "b").await.len() >= BURST
    })
    .await;
    assert_eq!(subjects(&nodes[1], "b").await, want);
    wait_for(20, "b's webhook to get every rename", || async {
        delivered_subjects(&hooks[1], "b").len() >= BURST
    })
    .await;
    assert_eq!(delivered_subjects(&hooks[1], "b"), want);
}

/// The subjects of the `group.v2.update` webhooks `session` was sent, each event once (a
/// delivery cut off by the kill may be sent again), in arrival order.
fn delivered_subjects(hook: &Recorder, session: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    hook.hits()
        .into_iter()
        .filter(|h| h.session() == session && h.body["event"] == "group.v2.update")
        .filter(|h| seen.insert(h.id().to_owned()))
        .filter_map(|h| {
            h.body["payload"]["group"]["subject"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acting_node_killed_mid_burst_loses_no_acknowledged_change() {
    let Three {
        nats,
        _root,
        places,
        mut nodes,
        hooks,
    } = three().await;
    let gid = shared_group(&nodes, &hooks).await;

    // a renames through its own node from 8 connections while that node is killed.
    let base = nodes[0].base.clone();
    let path = format!("/api/a/groups/{gid}/subject");
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (base, path) = (base.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acked = Vec::new();
            for k in 0.. {
                let subject = format!("w{w}-{k}");
                let sent = client
                    .put(format!("{base}{path}"))
                    .json(&json!({"subject": subject}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().as_u16() == 200 => acked.push(subject),
                    Ok(r) => panic!("a rename answered {}", r.status()),
                    Err(_) => break, // the node is gone
                }
            }
            acked
        }));
    }
    wait_for(20, "some renames to be acknowledged", || async {
        subjects(&nodes[1], "b").await.len() >= 20
    })
    .await;
    let _ = nodes[0].child.kill();
    let _ = nodes[0].child.wait();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("task"));
    }

    // Every acknowledged rename reached b and c on the other nodes, and a's own log when its
    // node returns; all three logs tell the same story.
    nodes[0] = node(&nats, &places[0]).await;
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        wait_for(
            20,
            &format!("{name}'s log to hold every acknowledged rename"),
            || async {
                let got = subjects(&nodes[i], name).await;
                acked.iter().all(|a| got.contains(a))
            },
        )
        .await;
    }
    wait_for(20, "a's and c's logs to equal b's", || async {
        let order = subjects(&nodes[1], "b").await;
        subjects(&nodes[0], "a").await == order && subjects(&nodes[2], "c").await == order
    })
    .await;
}
