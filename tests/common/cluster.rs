//! A NATS JetStream server and wagate nodes joined to it, each a real process on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::process::{command, free_port, Wagate};

/// `nats-server -js` on a free port with its store in a temp dir; killed when dropped.
pub struct Nats {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Debian's `nats-server` with JetStream and waits until it says it is ready. Fails,
/// never skips, when it is not installed: CI installs it (`.ci/run`).
pub async fn nats() -> Nats {
    let installed = Command::new("nats-server").arg("--version").output();
    assert!(
        installed.is_ok_and(|o| o.status.success()),
        "nats-server is not installed: the cluster tests need it (apt-get install -y nats-server)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let log = dir.path().join("nats.log");
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
        .arg("-sd")
        .arg(dir.path().join("js"))
        .arg("-l")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts");
    super::wait_for(15, "nats-server to be ready", || {
        let ready = std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Server is ready"));
        async move { ready }
    })
    .await;
    Nats {
        child,
        url: format!("nats://127.0.0.1:{port}"),
        _dir: dir,
    }
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
    let listen = format!("127.0.0.1:{}", place.port);
    let env = [
        ("WAGATE_NATS_URL", nats.url.as_str()),
        ("WAGATE_NODE_ID", place.id.as_str()),
        ("WAGATE_LISTEN", listen.as_str()),
    ];
    let (mut cmd, _, log) = command(&place.data, &env);
    cmd.env_remove("WAGATE_ADVERTISE_URL");
    let child = cmd.spawn().expect("wagate starts");
    let base = format!("http://{listen}");
    let ping = format!("{base}/ping");
    super::wait_for(15, "a node to answer /ping", || {
        let ping = ping.clone();
        async move {
            reqwest::get(&ping)
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
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
