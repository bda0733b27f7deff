//! `cluster`: what cluster mode costs (issue 15). One `nats-server -js` (Debian's package) and
//! two nodes. The write rate: durable `PUT subject` renames from `plan.conns` connections over
//! 64 groups on node 1, with cluster mode and on a single gateway without NATS, in turns (the
//! ratio is the cost of the group log). The cross-node latency: paced renames on node 1 of a
//! group whose member is a session on node 2; from the change's timestamp to the receipt of the
//! member's webhook, sent by node 2.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::load::{self, Stats};
use crate::report::{row, Row};
use crate::servers::{free_port, start_gateway, start_receiver, BenchResult, Proc};
use crate::setup::{client, contact, post, tmpdir, webhook_setup};
use crate::writes::subject_op;
use crate::Plan;

/// The member session's account on node 2.
const MEMBER: &str = "19999999999@c.us";

pub async fn cluster(plan: Plan) -> BenchResult<Vec<Row>> {
    let dir = tmpdir("cluster")?;
    for d in ["single", "n1", "n2"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
    }
    let nats = start_nats(&dir)?;
    let retries = json!({"policy": "constant", "delaySeconds": 1, "attempts": 5});
    let c = client();
    let (single, _) = start_gateway(&dir.join("single"), &[]).await?;
    let single_recv = start_receiver().await?;
    let single_ids = webhook_setup(&c, &single.base, &single_recv.url, 64, retries.clone()).await?;
    let env = |id: &str| {
        vec![
            ("WAGATE_NATS_URL", nats.base.clone()),
            ("WAGATE_NODE_ID", id.to_owned()),
        ]
    };
    let (n1, _) = start_gateway(&dir.join("n1"), &env("n1")).await?;
    let (n2, _) = start_gateway(&dir.join("n2"), &env("n2")).await?;
    let recv = start_receiver().await?;
    let ids = webhook_setup(&c, &n1.base, &recv.url, 64, retries).await?;

    let rounds = plan.secs.clamp(1, 5);
    let turn = Duration::from_secs(plan.secs / rounds);
    let (mut clustered, mut alone) = (Stats::default(), Stats::default());
    for _ in 0..rounds {
        clustered.merge(load::closed_loop(plan.conns, turn, subject_op(&c, &n1.base, &ids)).await);
        recv.wait_count(clustered.ok as u64, 120).await;
        let op = subject_op(&c, &single.base, &single_ids);
        alone.merge(load::closed_loop(plan.conns, turn, op).await);
        single_recv.wait_count(alone.ok as u64, 120).await;
    }
    let mut write = row(
        "cluster",
        "PUT subject req/s, cluster mode (NATS log) vs the same without NATS",
        clustered.rate(),
        "req/s",
        Some(alone.rate()),
        "reported (the cost of the log)",
        true,
    );
    write.p50_ms = Some(clustered.pct_ms(0.5));
    write.p99_ms = Some(clustered.pct_ms(0.99));
    eprintln!(
        "cluster: without NATS p50 / p99 {:.2} / {:.2} ms",
        alone.pct_ms(0.5),
        alone.pct_ms(0.99)
    );
    Ok(vec![write, cross_node(plan, &c, &n1, &n2).await?])
}

/// Paced renames on node 1 of a group whose member lives on node 2: change → the member's
/// webhook, p50 / p99.
async fn cross_node(plan: Plan, c: &reqwest::Client, n1: &Proc, n2: &Proc) -> BenchResult<Row> {
    let recv = start_receiver().await?;
    let hook = json!({"url": recv.url, "events": ["group.v2.update"]});
    let member =
        json!({"name": "member", "config": {"local": {"me": {"id": MEMBER}}, "webhooks": [hook]}});
    post(c, &format!("{}/api/sessions", n2.base), member).await?;
    let body = json!({"name": "shared", "participants": [{"id": MEMBER}, {"id": contact(0)}]});
    let g = post(c, &format!("{}/api/bench/groups", n1.base), body).await?;
    let gid = g["id"].as_str().unwrap_or_default().to_owned();
    let url = format!("{}/api/bench/groups/{gid}/subject", n1.base);
    let n = (plan.paced_rate / 4).max(50);
    let gap = Duration::from_millis(1000 / 100);
    for i in 0..n {
        let r = c
            .put(&url)
            .json(&json!({"subject": format!("s{i}")}))
            .send()
            .await;
        if !r.is_ok_and(|r| r.status().is_success()) {
            return Err(format!("a rename on node 1 failed ({i})"));
        }
        tokio::time::sleep(gap).await;
    }
    if !recv.wait_count(n, 60).await {
        return Err(format!(
            "node 2's member got {} of {n} renames",
            recv.count()
        ));
    }
    let lat = recv.take_latencies();
    let mut r = row(
        "cluster",
        "change on node 1 → webhook of a member on node 2 (100/s)",
        n as f64,
        "changes",
        None,
        "reported",
        true,
    );
    r.p50_ms = Some(load::percentile_ms(&lat, 0.5));
    r.p99_ms = Some(load::percentile_ms(&lat, 0.99));
    Ok(r)
}

/// Debian's `nats-server -js` on a free port with its store under `dir`; `base` is its URL.
fn start_nats(dir: &Path) -> BenchResult<Proc> {
    let port = free_port()?;
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("nats"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nats-server (apt-get install nats-server): {e}"))?;
    let proc = Proc {
        child,
        base: format!("nats://127.0.0.1:{port}"),
    };
    // Ready when it accepts connections.
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(proc);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err("nats-server did not start".to_owned())
}
