//! Cluster mode's placement and routing (contract §7), black-box: one real `nats-server -js`,
//! three real wagate nodes. A session lives where it was created, names and accounts are unique
//! across nodes, any node answers for any session exactly as its owner does, and a node that is
//! killed makes only its own sessions unavailable (503 `node_unavailable`) until it returns.

mod common;

use common::cluster::{fetch, nats, node, Place};
use common::process::Wagate;
use reqwest::Method;
use serde_json::{json, Value};

const BOB: &str = "12345678901@c.us";

async fn create(on: &Wagate, body: Value) -> (u16, Value) {
    let (status, _, text) = fetch(&on.base, Method::POST, "/api/sessions", Some(body), &[]).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn names(on: &Wagate) -> Vec<String> {
    let (status, _, text) = fetch(&on.base, Method::GET, "/api/sessions?all=true", None, &[]).await;
    assert_eq!(status, 200, "{text}");
    let list: Vec<Value> = serde_json::from_str(&text).expect("a JSON list");
    list.iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Three nodes with sessions alice (on a), bob (on b, account BOB) and carol (on c).
async fn three_nodes(
    nats: &common::cluster::Nats,
    root: &std::path::Path,
) -> (Vec<Place>, Vec<Wagate>) {
    let places: Vec<Place> = ["a", "b", "c"]
        .iter()
        .map(|id| Place::new(root, id))
        .collect();
    let mut nodes = Vec::new();
    for p in &places {
        nodes.push(node(nats, p).await);
    }
    let bob = json!({"name": "bob", "config": {"local": {"me": {"id": BOB}}}});
    for (on, body) in [
        (0, json!({"name": "alice"})),
        (1, bob),
        (2, json!({"name": "carol"})),
    ] {
        let (status, answer) = create(&nodes[on], body).await;
        assert_eq!(status, 201, "{answer}");
    }
    (places, nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_accounts_are_unique_across_nodes_and_any_node_answers_as_the_owner() {
    let nats = nats().await;
    let root = tempfile::tempdir().expect("temp dir");
    let (_places, nodes) = three_nodes(&nats, root.path()).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    let (status, answer) = create(c, json!({"name": "alice"})).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("session_exists")),
        "{answer}"
    );
    let taken = json!({"name": "dave", "config": {"local": {"me": {"id": BOB}}}});
    let (status, answer) = create(a, taken).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("account_in_use")),
        "{answer}"
    );
    // The refused create left nothing claimed: the name is free on another node.
    let (status, answer) = create(c, json!({"name": "dave"})).await;
    assert_eq!(status, 201, "{answer}");

    // alice lives on a; c answers for her exactly as a does.
    let asked = [("x-request-id", "cluster-test-1")];
    let here = fetch(&a.base, Method::GET, "/api/sessions/alice", None, &asked).await;
    let there = fetch(&c.base, Method::GET, "/api/sessions/alice", None, &asked).await;
    assert_eq!((here.0, &here.2), (there.0, &there.2));
    for h in ["content-type", "x-request-id", "content-length"] {
        assert_eq!(here.1.get(h), there.1.get(h), "header {h}");
    }
    // A change through c is made on a, and an error through c is a's error.
    let group = json!({"name": "through c", "participants": []});
    let (status, _, made) =
        fetch(&c.base, Method::POST, "/api/alice/groups", Some(group), &[]).await;
    assert_eq!(status, 201, "{made}");
    let on_a = fetch(&a.base, Method::GET, "/api/alice/groups", None, &[]).await;
    let on_b = fetch(&b.base, Method::GET, "/api/alice/groups", None, &[]).await;
    assert_eq!((on_a.0, &on_a.2), (on_b.0, &on_b.2));
    assert!(on_a.2.contains("through c"), "{}", on_a.2);
    let bad = fetch(
        &b.base,
        Method::GET,
        "/api/alice/groups/nonsense",
        None,
        &[],
    )
    .await;
    let bad_here = fetch(
        &a.base,
        Method::GET,
        "/api/alice/groups/nonsense",
        None,
        &[],
    )
    .await;
    assert_eq!((bad.0, &bad.2), (bad_here.0, &bad_here.2));
    assert_eq!(bad.0, 400, "{}", bad.2);

    // A forwarded request is never forwarded again: c answers it from its own sessions.
    let mark = [("x-wagate-forwarded-by", "a")];
    let (status, _, text) = fetch(&c.base, Method::GET, "/api/sessions/alice", None, &mark).await;
    assert_eq!(status, 404, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_lists_every_session_and_a_delete_frees_its_name_and_account() {
    let nats = nats().await;
    let root = tempfile::tempdir().expect("temp dir");
    let (_places, nodes) = three_nodes(&nats, root.path()).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    let all = vec!["alice", "bob", "carol"];
    for n in &nodes {
        assert_eq!(names(n).await, all, "{}", n.base);
    }
    common::wait_for(10, "every node's count in the cluster view", || async {
        let (_, _, text) = fetch(&b.base, Method::GET, "/api/server/cluster", None, &[]).await;
        let view: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let counts: Vec<(String, u64)> = (view["nodes"].as_array().into_iter().flatten())
            .map(|n| {
                (
                    n["id"].as_str().unwrap_or_default().to_owned(),
                    n["sessions"].as_u64().unwrap_or(9),
                )
            })
            .collect();
        let want = [("a", 1), ("b", 1), ("c", 1)].map(|(i, n)| (i.to_owned(), n));
        view["self"] == "b" && counts == want
    })
    .await;

    // A deleted session frees its name and its account for any node.
    let (status, _, text) = fetch(&b.base, Method::DELETE, "/api/sessions/bob", None, &[]).await;
    assert_eq!(status, 200, "{text}");
    let again = json!({"name": "bob", "config": {"local": {"me": {"id": BOB}}}});
    let (status, answer) = create(c, again).await;
    assert_eq!(status, 201, "{answer}");
    let (status, _, text) = fetch(&a.base, Method::GET, "/api/sessions/bob/me", None, &[]).await;
    assert_eq!((status, text.contains(BOB)), (200, true), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_makes_only_its_sessions_unavailable_until_it_returns() {
    let nats = nats().await;
    let root = tempfile::tempdir().expect("temp dir");
    let (places, mut nodes) = three_nodes(&nats, root.path()).await;
    nodes[1].child.kill().expect("kill -9 node b");
    let _ = nodes[1].child.wait();

    for n in [&nodes[0], &nodes[2]] {
        let (status, headers, text) =
            fetch(&n.base, Method::GET, "/api/sessions/bob", None, &[]).await;
        let body: Value = serde_json::from_str(&text).expect("an error body");
        assert_eq!(status, 503, "{text}");
        assert_eq!(body["code"], "node_unavailable");
        assert_eq!(body["node"], "b");
        assert_eq!(body["statusCode"], 503);
        assert!(headers.contains_key("retry-after"));
        let (status, _, text) = fetch(&n.base, Method::GET, "/api/sessions/alice", None, &[]).await;
        assert_eq!(status, 200, "{text}");
        // The list leaves the silent node out, and says so.
        let (status, headers, text) = fetch(&n.base, Method::GET, "/api/sessions", None, &[]).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(
            headers
                .get("x-wagate-unavailable-nodes")
                .map(|v| v.as_bytes()),
            Some(&b"b"[..])
        );
        assert!(
            text.contains("carol") && !text.contains("\"bob\""),
            "{text}"
        );
    }

    nodes[1] = node(&nats, &places[1]).await;
    let (status, _, text) =
        fetch(&nodes[0].base, Method::GET, "/api/sessions/bob", None, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(BOB), "{text}");
    assert_eq!(names(&nodes[2]).await, vec!["alice", "bob", "carol"]);
}

#[tokio::test]
async fn a_single_gateway_is_a_cluster_of_one() {
    let gw = common::gateway().await;
    gw.session("solo", None, None).await;
    let (status, view) = gw.get("/api/server/cluster").await;
    assert_eq!(status, 200, "{view}");
    let nodes = view["nodes"].as_array().expect("a list of nodes");
    assert_eq!(nodes.len(), 1, "{view}");
    assert_eq!(nodes[0]["id"], view["self"]);
    assert_eq!(nodes[0]["sessions"], 1);
    assert_eq!(nodes[0]["url"], "http://127.0.0.1:3000");
}

#[tokio::test]
async fn a_bad_cluster_setting_stops_the_start_naming_its_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let free = format!("nats://127.0.0.1:{}", common::process::free_port());
    for (env, var) in [
        (
            vec![("WAGATE_NATS_URL", "http://127.0.0.1:4222")],
            "WAGATE_NATS_URL",
        ),
        (
            vec![
                ("WAGATE_NATS_URL", free.as_str()),
                ("WAGATE_NODE_ID", "a b"),
            ],
            "WAGATE_NODE_ID",
        ),
        (
            vec![
                ("WAGATE_NATS_URL", free.as_str()),
                ("WAGATE_ADVERTISE_URL", "ftp://x"),
            ],
            "WAGATE_ADVERTISE_URL",
        ),
        // Nothing listens there: the node does not start without its cluster.
        (
            vec![("WAGATE_NATS_URL", free.as_str()), ("WAGATE_NODE_ID", "a")],
            "WAGATE_NATS_URL",
        ),
    ] {
        let (mut cmd, _, log) = common::process::command(dir.path(), &env);
        let status = cmd.status().expect("wagate runs");
        let log = std::fs::read_to_string(log).expect("log");
        assert!(!status.success(), "{env:?} started");
        assert!(
            log.contains(&format!("cannot start: configuration: {var}")),
            "{env:?}: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_one_name_or_account_give_it_to_exactly_one() {
    let nats = nats().await;
    let root = tempfile::tempdir().expect("temp dir");
    let (_places, nodes) = three_nodes(&nats, root.path()).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    for i in 0..10 {
        let same = json!({"name": format!("race-{i}")});
        let (x, y) = tokio::join!(create(a, same.clone()), create(b, same));
        let mut codes = [x.0, y.0];
        codes.sort_unstable();
        assert_eq!(codes, [201, 422], "{} / {}", x.1, y.1);

        let account = json!({"local": {"me": {"id": format!("3300000000{i}@c.us")}}});
        let one = json!({"name": format!("left-{i}"), "config": account.clone()});
        let other = json!({"name": format!("right-{i}"), "config": account});
        let (x, y) = tokio::join!(create(a, one), create(b, other));
        let mut codes = [x.0, y.0];
        codes.sort_unstable();
        assert_eq!(codes, [201, 409], "{} / {}", x.1, y.1);
    }
    // The losers of the account races left their names free.
    let listed = names(&nodes[2]).await;
    assert_eq!(listed.len(), 3 + 10 + 10, "{listed:?}");
    for i in 0..10 {
        let (status, answer) = create(&nodes[2], json!({"name": format!("left-{i}")})).await;
        let (status2, answer2) = create(&nodes[2], json!({"name": format!("right-{i}")})).await;
        let mut codes = [status, status2];
        codes.sort_unstable();
        assert_eq!(codes, [201, 422], "{answer} / {answer2}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wahas_old_operations_act_on_the_session_their_body_names_wherever_it_lives() {
    let nats = nats().await;
    let root = tempfile::tempdir().expect("temp dir");
    let (_places, nodes) = three_nodes(&nats, root.path()).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let old = |on: &Wagate, op: &str, body: Value| {
        let (base, path) = (on.base.clone(), format!("/api/sessions/{op}"));
        async move { fetch(&base, Method::POST, &path, Some(body), &[]).await }
    };
    let status_on = |on: &Wagate| {
        let base = on.base.clone();
        async move {
            let (_, _, text) = fetch(&base, Method::GET, "/api/sessions/alice", None, &[]).await;
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            v["status"].as_str().unwrap_or_default().to_owned()
        }
    };
    // alice lives on a: stopped through c, started again through b.
    let (status, _, text) = old(c, "stop", json!({"name": "alice"})).await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(status_on(a).await, "STOPPED");
    let (status, _, text) = old(b, "start", json!({"name": "alice"})).await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(status_on(a).await, "WORKING");
    // A new name started through c is placed on c, unique, and logged out through a.
    let (status, _, text) = old(c, "start", json!({"name": "zed"})).await;
    assert_eq!(status, 201, "{text}");
    let (status, answer) = create(a, json!({"name": "zed"})).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("session_exists"))
    );
    let (status, _, text) = old(a, "logout", json!({"name": "zed"})).await;
    assert_eq!(status, 201, "{text}");
    let (status, _, text) = fetch(&c.base, Method::GET, "/api/sessions/zed", None, &[]).await;
    assert_eq!(status, 404, "{text}");
    let (status, answer) = create(a, json!({"name": "zed"})).await;
    assert_eq!(status, 201, "{answer}");
}
