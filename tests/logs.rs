//! The log as an operator ships it (contract §8): `WAGATE_LOG_FORMAT=json` writes one JSON
//! object per line; text written to a file has no colour codes; every request has an id
//! (`X-Request-Id` taken or made up, echoed in the answer) on the lines it logs.

mod common;

use common::process::start;
use serde_json::Value;

async fn get_with_id(base: &str, id: Option<&str>) -> (u16, Option<String>) {
    let mut req = reqwest::Client::new().get(format!("{base}/api/sessions"));
    if let Some(id) = id {
        req = req.header("X-Request-Id", id);
    }
    let resp = req.send().await.expect("answered");
    let echoed = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (resp.status().as_u16(), echoed)
}

/// The log's lines that belong to the request `id`.
fn lines_of(lines: &[Value], id: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["request_id"] == id))
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_id_on_a_request_s_lines() {
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("WAGATE_LOG_FORMAT", "json"),
        ("RUST_LOG", "info,wagate=debug"),
    ];
    let gw = start(dir.path(), &env).await;
    assert_eq!(
        get_with_id(&gw.base, Some("req-abc-1")).await,
        (200, Some("req-abc-1".to_owned())),
        "a usable id is taken and echoed"
    );
    let (status, made_up) = get_with_id(&gw.base, Some("two words")).await;
    assert_eq!(status, 200);
    let made_up = made_up.expect("an id is made up for an unusable one");
    assert!(
        made_up.len() == 16 && made_up.bytes().all(|b| b.is_ascii_hexdigit()),
        "{made_up}"
    );
    let (_, fresh) = get_with_id(&gw.base, None).await;
    assert!(
        fresh.is_some_and(|id| id != made_up),
        "each request its own id"
    );

    let mut lines = Vec::new();
    common::wait_for(10, "the request's line in the log", || {
        lines = gw
            .log_text()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let found = lines_of(&lines, "req-abc-1")
            .iter()
            .any(|l| l["fields"]["message"] == "answered");
        async move { found }
    })
    .await;
    for l in &lines {
        for key in ["timestamp", "level", "target"] {
            assert!(l[key].is_string(), "{key} missing: {l}");
        }
        assert!(l["fields"]["message"].is_string(), "{l}");
    }
    let ours = lines_of(&lines, "req-abc-1");
    let said: Vec<&Value> = ours.iter().map(|l| &l["fields"]["message"]).collect();
    assert_eq!(said, ["started", "answered"], "{ours:?}");
    assert_eq!(ours[1]["fields"]["status"], 200);
    assert_eq!(lines_of(&lines, &made_up).len(), 2);
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("wagate listening"))),
        "the start-up line is JSON too"
    );
}

#[tokio::test]
async fn a_text_log_written_to_a_file_has_no_colour_codes() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = start(dir.path(), &[("RUST_LOG", "info,wagate=debug")]).await;
    let (status, _) = get_with_id(&gw.base, Some("plain-1")).await;
    assert_eq!(status, 200);
    let mut log = String::new();
    common::wait_for(10, "the request's line in the log", || {
        log = gw.log_text();
        let found = log.contains("request_id=plain-1") && log.contains("answered");
        async move { found }
    })
    .await;
    assert!(log.contains("wagate listening"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a file: {log}");
}
