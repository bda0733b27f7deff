//! Crash safety of the local network: the real binary dies between a change's own commit and its
//! fan-out to the other member sessions; after a restart every member has the change and its events.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

const A: &str = "11111111111@c.us";
const B: &str = "22222222222@c.us";
const C: &str = "33333333333@c.us";

/// One run of the real binary on `dir`.
struct Run {
    child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Run {
    async fn start(dir: &Path, abort_before_fanout: bool) -> Run {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"));
        cmd.env("WAHA_NO_API_KEY", "true")
            .env("WAGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("WAGATE_DATA_DIR", dir)
            .env_remove("WAHA_API_KEY")
            .env_remove("WHATSAPP_API_KEY")
            .env_remove("WHATSAPP_HOOK_URL")
            .env_remove("WAGATE_TEST_ABORT_BEFORE_FANOUT")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if abort_before_fanout {
            cmd.env("WAGATE_TEST_ABORT_BEFORE_FANOUT", "true");
        }
        let run = Run {
            child: cmd.spawn().expect("the binary starts"),
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        common::wait_for(30, "the gateway to answer /ping", || async {
            run.http
                .get(format!("{}/ping", run.base))
                .send()
                .await
                .is_ok()
        })
        .await;
        run
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Result<(u16, Value)> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.timeout(Duration::from_secs(30)).send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self
            .send(method, path, body)
            .await
            .expect("the gateway answers");
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {body}"
        );
        body
    }

    /// Event names of a session's log, without session.status.
    async fn event_names(&self, session: &str) -> Vec<String> {
        self.events(session)
            .await
            .iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
            .filter(|n| n != "session.status")
            .collect()
    }

    async fn events(&self, session: &str) -> Vec<Value> {
        let page = self
            .ok("GET", &format!("/api/{session}/events?limit=1000"), None)
            .await;
        page.as_array()
            .expect("array")
            .iter()
            .map(|e| e["envelope"].clone())
            .collect()
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("kill the gateway");
    }
}

fn ids(info: &Value) -> Vec<String> {
    info["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| p["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_change_interrupted_before_its_fan_out_reaches_every_member_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");

    // First run: three sessions, and a group of A with B.
    let run = Run::start(dir.path(), false).await;
    for (name, me) in [("a", A), ("b", B), ("c", C)] {
        run.ok(
            "POST",
            "/api/sessions",
            Some(json!({"name": name, "config": {"local": {"me": {"id": me}}}})),
        )
        .await;
    }
    let g = run
        .ok(
            "POST",
            "/api/a/groups",
            Some(json!({"name": "Crash", "participants": [{"id": B}]})),
        )
        .await;
    let gid = g["id"].as_str().expect("id").to_owned();
    run.stop().await;

    // Second run, with the hook: A adds C; the process dies before B and C get their share.
    let mut run = Run::start(dir.path(), true).await;
    let answer = run
        .send(
            "POST",
            &format!("/api/a/groups/{gid}/participants/add"),
            Some(json!({"participants": [{"id": C}]})),
        )
        .await;
    assert!(answer.is_err(), "the request got an answer: {answer:?}");
    let status = tokio::time::timeout(Duration::from_secs(30), run.child.wait())
        .await
        .expect("the gateway dies")
        .expect("exit status");
    assert!(!status.success(), "{status:?}");
    drop(run);

    // The crash came between the two halves: A's store has the change and a pending fan-out,
    // B's store does not have the change yet.
    {
        let sessions = dir.path().join("sessions");
        let a = wagate::store::SessionStore::open(&sessions.join("a"), Default::default())
            .expect("a's store");
        assert_eq!(a.fanouts().expect("fan-outs").len(), 1);
        let b = wagate::store::SessionStore::open(&sessions.join("b"), Default::default())
            .expect("b's store");
        let bytes = b.group(&gid).expect("read").expect("b holds the group");
        let held: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(held["participants"].as_array().map(Vec::len), Some(2));
    }

    // Third run, without the hook: the fan-out is applied before serving.
    let run = Run::start(dir.path(), false).await;
    for session in ["a", "b", "c"] {
        let view = run
            .ok("GET", &format!("/api/{session}/groups/{gid}"), None)
            .await;
        assert_eq!(ids(&view), [A, B, C], "{session}");
    }
    let expect_member = [
        "group.join",
        "group.v2.join",
        "group.join",
        "group.v2.participants",
    ];
    assert_eq!(run.event_names("a").await, expect_member);
    assert_eq!(run.event_names("b").await, expect_member);
    assert_eq!(run.event_names("c").await, ["group.join", "group.v2.join"]);
    let b_events = run.events("b").await;
    let joined = b_events
        .iter()
        .rfind(|e| e["event"] == "group.v2.participants")
        .expect("B heard of C");
    assert_eq!(joined["payload"]["type"], "join");
    assert_eq!(
        joined["payload"]["participants"],
        json!([{"id": C, "pn": C, "role": "participant"}])
    );
    assert_eq!(joined["session"], "b");

    // And the group goes on: C, now a member everywhere, renames it for all.
    run.ok(
        "PUT",
        &format!("/api/c/groups/{gid}/subject"),
        Some(json!({"subject": "Recovered"})),
    )
    .await;
    for session in ["a", "b", "c"] {
        let view = run
            .ok("GET", &format!("/api/{session}/groups/{gid}"), None)
            .await;
        assert_eq!(view["subject"], "Recovered", "{session}");
        assert_eq!(
            run.event_names(session).await.last().map(String::as_str),
            Some("group.v2.update")
        );
    }
    run.stop().await;
}
