//! Backups as an operator makes them (contract §8): `wagate export --out FILE` while the
//! gateway runs, `wagate import FILE` into an empty data dir, and a gateway started on it shows
//! the same sessions, groups, event log (same cursors and bytes) and pending and dead
//! deliveries. An import into a dir that holds stores, and a cut file, are refused.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::process::{start, Wagate};
use common::wait_for;
use serde_json::{json, Value};

/// The binary run as a command (`export` / `import`) on `data`.
fn wagate(data: &Path, listen: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wagate"))
        .args(args)
        .env("WAGATE_DATA_DIR", data)
        .env("WAGATE_LISTEN", listen)
        .env("WAHA_NO_API_KEY", "true")
        .env_remove("WAHA_API_KEY")
        .output()
        .expect("wagate runs")
}

async fn get(gw: &Wagate, path: &str) -> Value {
    let (status, text) = gw.call(reqwest::Method::GET, path, None, &[]).await;
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).expect("json")
}

async fn send(gw: &Wagate, method: reqwest::Method, path: &str, body: Value) -> Value {
    let (status, text) = gw.call(method, path, Some(body), &[]).await;
    assert!((200..300).contains(&status), "{path}: {status} {text}");
    serde_json::from_str(&text).expect("json")
}

/// Two sessions with groups; `one`'s webhook holds a pending delivery (next try in an hour),
/// `two`'s has dead ones (one attempt only). Both receivers are a closed port.
async fn fill(gw: &Wagate) {
    let down = "http://127.0.0.1:9/hook";
    let webhooks = [
        (
            "one",
            json!({"policy": "constant", "delaySeconds": 3600, "attempts": 5}),
        ),
        (
            "two",
            json!({"policy": "constant", "delaySeconds": 1, "attempts": 1}),
        ),
    ];
    for (name, retries) in webhooks {
        let hook = json!({"url": down, "events": ["group.v2.update"], "retries": retries});
        let body = json!({"name": name, "config": {"webhooks": [hook]}});
        send(gw, reqwest::Method::POST, "/api/sessions", body).await;
        let body = json!({"name": "g", "participants": [{"id": "4915112345678@c.us"}]});
        let group = send(
            gw,
            reqwest::Method::POST,
            &format!("/api/{name}/groups"),
            body,
        )
        .await;
        let id = group["id"].as_str().expect("id");
        let path = format!("/api/{name}/groups/{id}/subject");
        send(
            gw,
            reqwest::Method::PUT,
            &path,
            json!({"subject": "renamed"}),
        )
        .await;
    }
    // Settled: the pending delivery tried once, the dead one dead.
    wait_for(15, "one pending tried once, two dead", || async {
        let p = get(gw, "/api/one/webhooks/deliveries?state=pending").await;
        let d = get(gw, "/api/two/webhooks/deliveries?state=dead").await;
        p.as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["attempts"] == 1)
            && d.as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
}

/// What a user compares: sessions, groups, the event logs and the delivery logs.
async fn view(gw: &Wagate) -> Value {
    let mut v = json!({"sessions": get(gw, "/api/sessions?all=true").await});
    for s in ["one", "two"] {
        v[s] = json!({
            "groups": get(gw, &format!("/api/{s}/groups")).await,
            "events": get(gw, &format!("/api/{s}/events?limit=1000")).await,
            "pending": get(gw, &format!("/api/{s}/webhooks/deliveries?state=pending")).await,
            "dead": get(gw, &format!("/api/{s}/webhooks/deliveries?state=dead")).await,
        });
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_a_running_gateway_imports_into_the_same_sessions_groups_events_and_deliveries(
) {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let gw = start(a.path(), &[]).await;
    fill(&gw).await;
    let before = view(&gw).await;
    let file = b.path().join("backup.ndjson");
    let listen = gw.base.trim_start_matches("http://").to_owned();
    let out = wagate(
        a.path(),
        &listen,
        &["export", "--out", file.to_str().expect("path")],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("from the running gateway"), "{said}");
    assert_eq!(view(&gw).await, before, "the export changed nothing");
    drop(gw);

    let restored = b.path().join("data");
    let out = wagate(
        &restored,
        "127.0.0.1:0",
        &["import", file.to_str().expect("path")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gw = start(&restored, &[]).await;
    let after = view(&gw).await;
    assert_eq!(after["sessions"], before["sessions"]);
    for s in ["one", "two"] {
        for part in ["groups", "pending", "dead"] {
            assert_eq!(after[s][part], before[s][part], "{s} {part}");
        }
        // The same entries, cursors and envelopes; a start may append its session.status.
        let (was, is) = (
            before[s]["events"].as_array(),
            after[s]["events"].as_array(),
        );
        let (was, is) = (was.expect("events"), is.expect("events"));
        assert_eq!(&is[..was.len()], &was[..], "{s} events");
        for extra in &is[was.len()..] {
            assert_eq!(extra["envelope"]["event"], "session.status", "{extra}");
        }
    }

    // Into a dir that holds stores: refused, nothing touched.
    let out = wagate(
        &restored,
        "127.0.0.1:0",
        &["import", file.to_str().expect("path")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty data dir"));
    assert_eq!(view(&gw).await["sessions"], before["sessions"]);
}

#[test]
fn a_cut_export_is_refused_and_leaves_no_store_behind() {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let text = "{\"wagate\":\"export\",\"version\":1}\n{\"store\":\"sessions/x\"}\n\
                {\"tree\":\"meta\",\"key\":\"YQ==\",\"value\":\"Yg==\"}\n";
    let file = a.path().join("cut.ndjson");
    std::fs::write(&file, text).expect("write");
    let out = wagate(
        b.path(),
        "127.0.0.1:0",
        &["import", file.to_str().expect("path")],
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("cut short"), "{said}");
    assert!(!b.path().join("sessions").join("x").exists());

    for bad in [
        "{\"wagate\":\"export\",\"version\":1}\n{\"store\":\"sessions/../../etc\"}\n",
        "{\"wagate\":\"export\",\"version\":1}\n{\"store\":\"gateway\"}\n{\"tree\":\"nope\",\"key\":\"YQ==\",\"value\":\"Yg==\"}\n{\"end\":{\"stores\":1,\"entries\":1}}\n",
        "not json\n",
    ] {
        std::fs::write(&file, bad).expect("write");
        let out = wagate(b.path(), "127.0.0.1:0", &["import", file.to_str().expect("path")]);
        assert!(!out.status.success(), "{bad}");
        assert!(!b.path().join("gateway").exists(), "{bad}");
    }
}
