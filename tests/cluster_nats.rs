//! The cluster's NATS system under faults (contract §7), black-box with real servers: a NATS
//! restart in the middle of a burst of changes loses nothing acknowledged, and with a
//! three-server NATS cluster (three copies of the log and buckets) losing one server is
//! invisible to clients.

mod common;

use common::cluster::{call, nats, nats_cluster, node, node_on, subjects, Place};
use common::local_network::{A, B};
use common::process::Wagate;
use common::wait_for;
use reqwest::Method;
use serde_json::json;

/// Sessions a (account A) on `n1` and b (account B) on `n2`, and a group of a with b; its id.
async fn pair(n1: &Wagate, n2: &Wagate) -> String {
    for (on, name, me) in [(n1, "a", A), (n2, "b", B)] {
        let body = json!({"name": name, "config": {"local": {"me": {"id": me}}}});
        let (s, v) = call(on, Method::POST, "/api/sessions", Some(body)).await;
        assert_eq!(s, 201, "{v}");
    }
    let body = json!({"name": "Burst", "participants": [{"id": B}]});
    let (s, g) = call(n1, Method::POST, "/api/a/groups", Some(body)).await;
    assert_eq!(s, 201, "{g}");
    g["id"].as_str().expect("id").to_owned()
}

/// Renames the group `n` times through `on` as a, starting `mid` (in its own task) before
/// rename `at`; the subjects answered 200, in order. Anything but 200 must be a 503 (retry
/// later), never a 5xx of another kind.
async fn burst<F>(on: &Wagate, gid: &str, n: usize, at: usize, mid: F) -> Vec<String>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let path = format!("/api/a/groups/{gid}/subject");
    let mut acked = Vec::new();
    let mut mid = Some(mid);
    let mut running = None;
    for k in 0..n {
        if k == at {
            running = mid.take().map(tokio::spawn);
        }
        let subject = format!("s{k}");
        let (s, body) = call(on, Method::PUT, &path, Some(json!({"subject": subject}))).await;
        match s {
            200 => acked.push(subject),
            503 => assert!(body["code"].is_string(), "{body}"),
            other => panic!("rename {k} answered {other}: {body}"),
        }
    }
    if let Some(r) = running {
        r.await.expect("the fault's task");
    }
    acked
}

/// Every acknowledged rename is in b's log (on another node), in the order acknowledged.
async fn assert_all_reached(n2: &Wagate, acked: &[String]) {
    wait_for(30, "b's log to hold every acknowledged rename", || async {
        let got = subjects(n2, "b").await;
        let mut it = got.iter();
        acked.iter().all(|a| it.any(|g| g == a))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_mid_burst_loses_nothing_acknowledged() {
    let nats = nats().await;
    let root = tempfile::tempdir().expect("temp dir");
    let places: Vec<Place> = ["n1", "n2"]
        .iter()
        .map(|id| Place::new(root.path(), id))
        .collect();
    let n1 = node(&nats, &places[0]).await;
    let n2 = node(&nats, &places[1]).await;
    let gid = pair(&n1, &n2).await;

    // The NATS server is killed and started again (same port, same store) while a renames.
    let nats = std::sync::Arc::new(tokio::sync::Mutex::new(nats));
    let restarting = nats.clone();
    let acked = burst(&n1, &gid, 40, 5, async move {
        let mut nats = restarting.lock().await;
        nats.kill();
        nats.restart().await;
    })
    .await;
    // The system answered again after the restart: the renames after it were acknowledged.
    assert!(acked.len() >= 20, "{acked:?}");
    assert!(acked.contains(&"s39".to_owned()), "{acked:?}");
    assert_all_reached(&n2, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_one_server_of_a_three_server_nats_cluster_is_invisible_to_clients() {
    let mut servers = nats_cluster().await;
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let urls = urls.join(",");
    let root = tempfile::tempdir().expect("temp dir");
    let places: Vec<Place> = ["n1", "n2"]
        .iter()
        .map(|id| Place::new(root.path(), id))
        .collect();
    let env = [("WAGATE_NATS_REPLICAS", "3")];
    let n1 = node_on(&urls, &env, &places[0]).await;
    let n2 = node_on(&urls, &env, &places[1]).await;
    let gid = pair(&n1, &n2).await;

    // Every rename is answered 200, before and after a server dies.
    let path = format!("/api/a/groups/{gid}/subject");
    let mut acked = Vec::new();
    for k in 0..30 {
        if k == 10 {
            servers[0].kill();
        }
        let subject = format!("s{k}");
        let (s, body) = call(&n1, Method::PUT, &path, Some(json!({"subject": subject}))).await;
        assert_eq!(s, 200, "rename {k}: {body}");
        acked.push(subject);
    }
    assert_all_reached(&n2, &acked).await;
    // Reads through the other node still answer for b, and the cluster still lists both nodes.
    let (s, v) = call(&n1, Method::GET, &format!("/api/b/groups/{gid}"), None).await;
    assert_eq!((s, v["subject"].as_str()), (200, Some("s29")), "{v}");
    let (s, v) = call(&n2, Method::GET, "/api/server/cluster", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(2), "{v}");
}
