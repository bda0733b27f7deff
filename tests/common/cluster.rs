//! A NATS JetStream server and wagate nodes joined to it, each a real process on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::process::{command, free_port, Wagate};

/// `nats-server -js` on a free port with its store in a temp dir; killed when dropped. It can be
/// stopped and started again on the same port and store (a NATS restart).
pub struct Nats {
    child: Child,
    pub url: String,
    args: Vec<String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed() {
    let installed = Command::new("nats-server").arg("--version").output();
    assert!(
        installed.is_ok_and(|o| o.status.success()),
        "nats-server is not installed: the cluster tests need it (apt-get install -y nats-server)"
    );
}

/// How many times the server's log says it is ready.
fn readies(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |l| l.matches("Server is ready").count())
}

fn spawn(args: &[String]) -> Child {
    Command::new("nats-server")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts")
}

impl Nats {
    /// Starts one server with `extra` arguments after the usual ones; waits until it is ready.
    async fn start(dir: tempfile::TempDir, port: u16, extra: &[String]) -> Nats {
        let log = dir.path().join("nats.log");
        let mut args: Vec<String> = ["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.push(dir.path().join("js").display().to_string());
        args.extend(["-l".to_owned(), log.display().to_string()]);
        args.extend(extra.iter().cloned());
        let child = spawn(&args);
        let nats = Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            args,
            log,
            _dir: dir,
        };
        nats.ready(1).await;
        nats
    }

    async fn ready(&self, times: usize) {
        super::wait_for(30, "nats-server to be ready", || {
            let ready = readies(&self.log) >= times;
            async move { ready }
        })
        .await;
    }

    /// Kills the server (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the killed server again, on its port and store; waits until it is ready.
    pub async fn restart(&mut self) {
        let before = readies(&self.log);
        self.child = spawn(&self.args);
        self.ready(before + 1).await;
    }
}

/// Starts Debian's `nats-server` with JetStream and waits until it says it is ready. Fails,
/// never skips, when it is not installed: CI installs it (`.ci/run`).
pub async fn nats() -> Nats {
    installed();
    let dir = tempfile::tempdir().expect("temp dir");
    Nats::start(dir, free_port(), &[]).await
}

/// Three `nats-server -js` routed into one NATS cluster (JetStream clustered, so streams and
/// buckets can keep three copies); ready once each says so.
pub async fn nats_cluster() -> Vec<Nats> {
    installed();
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let all: Vec<String> = routes
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect();
    let mut servers = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        let extra = vec![
            "-n".to_owned(),
            format!("nats-{i}"),
            "--cluster_name".to_owned(),
            "wagate-test".to_owned(),
            "--cluster".to_owned(),
            format!("nats://127.0.0.1:{route}"),
            "--routes".to_owned(),
            all.join(","),
        ];
        let dir = tempfile::tempdir().expect("temp dir");
        servers.push(Nats::start(dir, free_port(), &extra).await);
    }
    super::wait_for(30, "the NATS cluster to elect a JetStream leader", || {
        let elected = servers
            .iter()
            .any(|s| std::fs::read_to_string(&s.log).is_ok_and(|l| l.contains("metadata leader")));
        async move { elected }
    })
    .await;
    servers
}

/// Where a node lives between its lives: its id, data dir and port stay the same.
pub struct Place {
    pub id: String,
    pub data: PathBuf,
    pub port: u16,
}

impl Place {
    pub fn new(root: &Path, id: &str) -> Self {
        let data = root.join(id);
        std::fs::create_dir_all(&data).expect("data dir");
        Self {
            id: id.to_owned(),
            data,
            port: free_port(),
        }
    }
}

/// Starts (or starts again) the node of `place` in the cluster of `nats`; waits for `/ping`.
pub async fn node(nats: &Nats, place: &Place) -> Wagate {
    node_on(&nats.url, &[], place).await
}

/// As `node`, on the NATS servers of `urls` (a comma list) with `env` added.
pub async fn node_on(urls: &str, env: &[(&str, &str)], place: &Place) -> Wagate {
    let listen = format!("127.0.0.1:{}", place.port);
    let mut all = vec![
        ("WAGATE_NATS_URL", urls),
        ("WAGATE_NODE_ID", place.id.as_str()),
        ("WAGATE_LISTEN", listen.as_str()),
    ];
    all.extend(env.iter().copied());
    let (mut cmd, _, log) = command(&place.data, &all);
    cmd.env_remove("WAGATE_ADVERTISE_URL");
    let child = cmd.spawn().expect("wagate starts");
    let base = format!("http://{listen}");
    super::process::answering(&base).await;
    Wagate { child, base, log }
}

/// One request: status, headers and body text.
pub async fn fetch(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}"));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("the node answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.expect("body"))
}

/// One call through `on`: status and JSON body (`Null` when not JSON).
pub async fn call(
    on: &Wagate,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let (status, _, text) = fetch(&on.base, method, path, body, &[]).await;
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// Event names and payloads of `session`'s log (asked through `on`), oldest first, without
/// `session.status`.
pub async fn log_events(on: &Wagate, session: &str) -> Vec<(String, serde_json::Value)> {
    let path = format!("/api/{session}/events?limit=1000");
    let (status, body) = call(on, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    let list = body.as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|e| {
            let env = &e["envelope"];
            let name = env["event"].as_str().unwrap_or_default().to_owned();
            (name, env["payload"].clone())
        })
        .filter(|(n, _)| n != "session.status")
        .collect()
}

/// The subjects of `session`'s `group.v2.update` events, in its log's order.
pub async fn subjects(on: &Wagate, session: &str) -> Vec<String> {
    log_events(on, session)
        .await
        .into_iter()
        .filter(|(n, _)| n == "group.v2.update")
        .filter_map(|(_, p)| p["group"]["subject"].as_str().map(str::to_owned))
        .collect()
}
