//! The real `wagate` binary as a child process on 127.0.0.1, configured by environment
//! variables, its log written to a file the test can read; killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub struct Wagate {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Drop for Wagate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port of 127.0.0.1 free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The binary's command on a free port of 127.0.0.1 and `data`, without an API key or global
/// webhook from the test's own environment, `env` set, stderr (the log) in `<data>/wagate.log`.
pub fn command(data: &Path, env: &[(&str, &str)]) -> (Command, u16, PathBuf) {
    let port = free_port();
    let log = data.join("wagate.log");
    let file = std::fs::File::create(&log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wagate"));
    cmd.env("WAHA_NO_API_KEY", "true")
        .env("WAGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("WAGATE_DATA_DIR", data)
        .env("RUST_LOG", "info")
        .env_remove("WAHA_API_KEY")
        .env_remove("WHATSAPP_API_KEY")
        .env_remove("WHATSAPP_HOOK_URL")
        .env_remove("WAGATE_MAX_INFLIGHT")
        .env_remove("WAGATE_EVENT_RETENTION_HOURS")
        .env_remove("WAGATE_TEST_ABORT_BEFORE_FANOUT")
        .env_remove("WAGATE_TEST_FSYNC_DELAY_MS")
        .env_remove("WAGATE_TEST_PRUNE_EVERY_MS")
        .env_remove("WAGATE_TEST_EVENT_RETENTION_MS")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file));
    (cmd, port, log)
}

/// Starts the binary (see `command`) and waits until it answers `/ping`.
pub async fn start(data: &Path, env: &[(&str, &str)]) -> Wagate {
    let (mut cmd, port, log) = command(data, env);
    let child = cmd.spawn().expect("wagate starts");
    let base = format!("http://127.0.0.1:{port}");
    answering(&base).await;
    Wagate { child, base, log }
}

/// Waits until the gateway at `base` answers `/ping` (20 s at most).
pub async fn answering(base: &str) {
    let ping = format!("{base}/ping");
    super::wait_for(20, "wagate to answer /ping", || {
        let ping = ping.clone();
        async move {
            reqwest::get(&ping)
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
}

impl Wagate {
    /// One API call with an optional JSON body and extra headers; answers status and body text.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let (status, _, text) =
            super::cluster::fetch(&self.base, method, path, body, headers).await;
        (status, text)
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).expect("log readable")
    }

    /// The resident memory of the process, in KiB (`VmRSS` of /proc/<pid>/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }
}
