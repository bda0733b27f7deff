//! The example receivers in webhooks-examples/ (Python, Node, Rust) run as real processes: they
//! accept correctly signed events once, refuse forgeries with 401, and verify what the real
//! gateway binary delivers.
//!
//! The Rust receiver is built by this test (`cargo build` of webhooks-examples/rust into its own
//! target dir, a no-op when `.ci/run` already built it). A language whose runtime (python3, node)
//! is not installed is skipped with a message.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Sha256, Sha512};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug)]
enum Lang {
    Python,
    Node,
    Rust,
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks-examples")
}

fn runtime_present(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds the Rust example once per test run; answers its binary.
fn rust_receiver_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = examples_dir().join("rust");
        let target = dir.join("target");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building webhooks-examples/rust failed");
        target.join("debug").join("webhook-receiver")
    })
}

/// The command that runs `lang`'s receiver on port 0, or None when its runtime is missing.
fn receiver_command(lang: Lang) -> Option<Command> {
    let dir = examples_dir();
    let cmd = match lang {
        Lang::Python | Lang::Node => {
            let (program, dir, script) = match lang {
                Lang::Python => ("python3", dir.join("python"), "receiver.py"),
                _ => ("node", dir.join("node"), "receiver.mjs"),
            };
            if !runtime_present(program) {
                eprintln!(
                    "SKIPPED: {program} is not installed, so the {lang:?} receiver is not tested"
                );
                return None;
            }
            let mut cmd = Command::new(program);
            cmd.current_dir(dir).args([script, "0"]);
            cmd
        }
        Lang::Rust => {
            let mut cmd = Command::new(rust_receiver_binary());
            cmd.arg("0");
            cmd
        }
    };
    Some(cmd)
}

/// A receiver process: its address and the lines it printed to stdout (the verified events).
struct Receiver {
    _child: Child,
    addr: SocketAddr,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Receiver {
    async fn start(lang: Lang, key: &str) -> Option<Receiver> {
        let mut cmd = receiver_command(lang)?;
        let mut child = cmd
            .env("WEBHOOK_HMAC_KEY", key)
            .env_remove("HOST")
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the receiver starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
        // Each receiver announces `listening on http://127.0.0.1:<port>/webhook` on stderr.
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = stderr.next_line().await.expect("read stderr") {
                eprintln!("[{lang:?} receiver] {line}");
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split('/').next().unwrap_or_default();
                    return addr.parse::<SocketAddr>().expect("a socket address");
                }
            }
            panic!("the {lang:?} receiver exited before listening")
        })
        .await
        .expect("the receiver listens in time");
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                eprintln!("[{lang:?} receiver] {line}");
            }
        });
        let (tx, lines) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Some(Receiver {
            _child: child,
            addr,
            lines,
        })
    }

    fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    /// The next printed line as JSON, or a panic after `secs` seconds.
    async fn next_line(&mut self, secs: u64) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(secs), self.lines.recv())
            .await
            .expect("the receiver prints a verified event in time")
            .expect("the receiver is running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line: {line}: {e}"))
    }

    /// Posts `body` with `headers`; answers the status and the text body.
    async fn post(&self, body: &[u8], headers: &[(String, String)]) -> (u16, String) {
        let mut req = reqwest::Client::new()
            .post(self.url())
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let res = req.send().await.expect("the receiver answers");
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The headers wagate sends for `body` with hmac key `key`, signed at unix time `ts`.
fn signed_headers(key: &str, id: &str, ts: u64, body: &[u8]) -> Vec<(String, String)> {
    let mut waha = Hmac::<Sha512>::new_from_slice(key.as_bytes()).expect("any key length");
    waha.update(body);
    let hex: String = waha
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let std_key = match key.strip_prefix("whsec_") {
        Some(secret) => BASE64.decode(secret).expect("base64 secret"),
        None => key.as_bytes().to_vec(),
    };
    let mut std_mac = Hmac::<Sha256>::new_from_slice(&std_key).expect("any key length");
    std_mac.update(format!("{id}.{ts}.").as_bytes());
    std_mac.update(body);
    let sig = BASE64.encode(std_mac.finalize().into_bytes());
    [
        ("X-Webhook-Hmac", hex),
        ("X-Webhook-Hmac-Algorithm", "sha512".to_owned()),
        ("X-Webhook-Request-Id", id.to_owned()),
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", format!("v1,{sig}")),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect()
}

fn envelope(id: &str, event: &str, group: &str) -> Vec<u8> {
    json!({"id": id, "timestamp": now_s() * 1000, "event": event, "session": "default",
           "payload": {"group": {"id": group}}, "engine": "LOCAL"})
    .to_string()
    .into_bytes()
}

fn with(headers: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut h: Vec<_> = headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    h.push((name.to_owned(), value.to_owned()));
    h
}

/// Direct requests signed by this test: what a receiver must accept, dedupe and refuse.
async fn receiver_accepts_signed_events_once_and_refuses_forgeries(lang: Lang) {
    let key = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let Some(mut receiver) = Receiver::start(lang, key).await else {
        return;
    };
    let group = "120363000000000001@g.us";
    let first = envelope("evt_01jd0000000000000000000001", "group.v2.join", group);
    let headers = signed_headers(key, "evt_01jd0000000000000000000001", now_s(), &first);
    assert_eq!(receiver.post(&first, &headers).await.0, 204);
    assert_eq!(
        receiver.next_line(10).await,
        json!({"id": "evt_01jd0000000000000000000001", "event": "group.v2.join",
               "session": "default", "group": group})
    );

    // At-least-once delivery: the same event again is acknowledged but not shown again, so the
    // next line printed is the next event's.
    assert_eq!(receiver.post(&first, &headers).await.0, 204);
    let second = envelope("evt_01jd0000000000000000000002", "group.join", group);
    let second_headers = signed_headers(key, "evt_01jd0000000000000000000002", now_s(), &second);
    assert_eq!(receiver.post(&second, &second_headers).await.0, 204);
    assert_eq!(
        receiver.next_line(10).await["id"],
        "evt_01jd0000000000000000000002"
    );

    let forged = signed_headers(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "evt_3",
        now_s(),
        &first,
    );
    let refusals = [
        (forged, "X-Webhook-Hmac does not match"),
        (
            with(&headers, "X-Webhook-Hmac", &"00".repeat(64)),
            "X-Webhook-Hmac does not match",
        ),
        (
            with(&headers, "webhook-signature", "v1,AAAA"),
            "webhook-signature",
        ),
        (
            signed_headers(key, "evt_4", now_s() - 600, &first),
            "timestamp", // "too old" in the standardwebhooks package's words
        ),
        (
            headers
                .iter()
                .filter(|(n, _)| !n.starts_with("X-Webhook-Hmac"))
                .cloned()
                .collect(),
            "missing X-Webhook-Hmac",
        ),
    ];
    for (bad, reason) in refusals {
        let (status, text) = receiver.post(&first, &bad).await;
        assert_eq!(status, 401, "{lang:?}: {bad:?}");
        assert!(text.contains(reason), "{lang:?}: {text:?} names {reason:?}");
    }
    // A tampered body under the original signatures is refused too.
    let tampered = envelope("evt_01jd0000000000000000000001", "group.v2.leave", group);
    assert_eq!(receiver.post(&tampered, &headers).await.0, 401);
    assert!(
        receiver.lines.try_recv().is_err(),
        "{lang:?} printed a refused event"
    );
}

#[tokio::test]
async fn python_receiver_accepts_signed_events_once_and_refuses_forgeries() {
    receiver_accepts_signed_events_once_and_refuses_forgeries(Lang::Python).await;
}

#[tokio::test]
async fn node_receiver_accepts_signed_events_once_and_refuses_forgeries() {
    receiver_accepts_signed_events_once_and_refuses_forgeries(Lang::Node).await;
}

#[tokio::test]
async fn rust_receiver_accepts_signed_events_once_and_refuses_forgeries() {
    receiver_accepts_signed_events_once_and_refuses_forgeries(Lang::Rust).await;
}

/// The real gateway binary on a free port with a temporary data dir, without an API key.
struct Gateway {
    _child: Child,
    _dir: tempfile::TempDir,
    base: String,
}

impl Gateway {
    async fn start() -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_wagate"))
            .env("WAHA_NO_API_KEY", "true")
            .env_remove("WAHA_API_KEY")
            .env_remove("WHATSAPP_API_KEY")
            .env_remove("WHATSAPP_HOOK_URL")
            .env("WAGATE_DATA_DIR", dir.path())
            .env("WAGATE_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the gateway starts");
        // Its log goes through eprintln so the test harness shows it only for a failing test.
        let mut log = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = log.next_line().await {
                eprintln!("[gateway] {line}");
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        let ping = format!("{base}/ping");
        common::wait_for(30, "the gateway to answer /ping", || async {
            reqwest::get(&ping)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        Gateway {
            _child: child,
            _dir: dir,
            base,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the gateway answers");
        assert!(res.status().is_success(), "POST {path}: {}", res.status());
        let bytes = res.bytes().await.expect("an answer");
        serde_json::from_slice(&bytes).expect("a JSON answer")
    }
}

/// The whole path a person follows in the README: gateway → signed webhook → verified line.
async fn receiver_shows_group_events_delivered_by_the_gateway(lang: Lang) {
    let key = "wagate-example-secret";
    let Some(mut receiver) = Receiver::start(lang, key).await else {
        return;
    };
    let gateway = Gateway::start().await;
    gateway
        .post(
            "/api/sessions",
            json!({"name": "default", "config": {"webhooks": [
                {"url": receiver.url(), "events": ["*"], "hmac": {"key": key}}
            ]}}),
        )
        .await;
    let group = gateway
        .post(
            "/api/default/groups",
            json!({"name": "Team", "participants": [{"id": "22222222222@c.us"}]}),
        )
        .await;
    let group_id = group["id"].as_str().expect("a group id").to_owned();

    let mut seen = Vec::new();
    let mut printed = Vec::new();
    let wanted = ["group.v2.join", "group.join"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !wanted.iter().all(|w| seen.contains(&w.to_string())) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let line = match tokio::time::timeout(left, receiver.lines.recv()).await {
            Ok(Some(line)) => line,
            _ => panic!(
                "{lang:?}: verified {wanted:?} for {group_id} not printed; printed: {printed:?}"
            ),
        };
        let event: Value = serde_json::from_str(&line).expect("a JSON line");
        printed.push(line.clone());
        assert!(
            event["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("evt_")),
            "{line}"
        );
        assert_eq!(event["session"], "default", "{line}");
        if event["group"] == group_id.as_str() {
            seen.push(event["event"].as_str().unwrap_or_default().to_owned());
        }
    }

    let body = envelope("evt_01jd0000000000000000000009", "group.v2.join", &group_id);
    let forged = signed_headers(
        "not-the-key",
        "evt_01jd0000000000000000000009",
        now_s(),
        &body,
    );
    assert_eq!(receiver.post(&body, &forged).await.0, 401);
}

#[tokio::test]
async fn python_receiver_shows_group_events_delivered_by_the_gateway() {
    receiver_shows_group_events_delivered_by_the_gateway(Lang::Python).await;
}

#[tokio::test]
async fn node_receiver_shows_group_events_delivered_by_the_gateway() {
    receiver_shows_group_events_delivered_by_the_gateway(Lang::Node).await;
}

#[tokio::test]
async fn rust_receiver_shows_group_events_delivered_by_the_gateway() {
    receiver_shows_group_events_delivered_by_the_gateway(Lang::Rust).await;
}
