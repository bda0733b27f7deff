//! Contract §3 through the event log: `/events` pages by cursor in commit order, 100 events by
//! default, and refuses a bad cursor or limit.

mod common;

use axum::http::StatusCode;
use serde_json::json;

use common::keys;

const ME: &str = "11111111111@c.us";
const BOB: &str = "22222222222@c.us";

#[tokio::test]
async fn events_page_by_cursor_in_commit_order() {
    let gw = common::gateway().await;
    gw.session("alpha", Some(ME), None).await;
    let gid = gw.group("alpha", "Team", &[BOB]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for i in 0..5 {
        gw.put(
            &format!("/api/alpha/groups/{gid}/subject"),
            json!({"subject": format!("S{i}")}),
        )
        .await;
    }
    let (status, all) = gw.get("/api/alpha/events").await;
    assert_eq!(status, StatusCode::OK);
    let all = all.as_array().expect("array").clone();
    for e in &all {
        assert_eq!(keys(e), ["cursor", "envelope"]);
        assert!(e["cursor"].is_string());
    }
    let order: Vec<String> = all
        .iter()
        .map(|e| {
            let env = &e["envelope"];
            match env["event"].as_str() {
                Some("group.v2.update") => env["payload"]["group"]["subject"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                other => other.unwrap_or_default().to_owned(),
            }
        })
        .collect();
    assert_eq!(
        order,
        [
            "session.status",
            "session.status",
            "group.join",
            "group.v2.join",
            "S0",
            "S1",
            "S2",
            "S3",
            "S4"
        ]
    );

    let mut paged = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = gw
            .get(&format!("/api/alpha/events?after={after}&limit=2"))
            .await;
        assert_eq!(status, StatusCode::OK);
        let page = page.as_array().expect("array").clone();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = last["cursor"].as_str().expect("cursor").to_owned();
        paged.extend(page);
    }
    assert_eq!(paged, all, "paging by cursor reads the same log");
    let (_, rest) = gw.get(&format!("/api/alpha/events?after={after}")).await;
    assert_eq!(rest, json!([]));
    let (_, one) = gw.get("/api/alpha/events?limit=1").await;
    assert_eq!(one, json!([all[0].clone()]));
    let (status, _) = gw.get("/api/alpha/events?limit=1000").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn events_refuse_a_bad_cursor_or_limit_with_400() {
    let gw = common::gateway().await;
    gw.session("alpha", None, None).await;
    for (query, field) in [
        ("after=abc", "after"),
        ("after=-1", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
    ] {
        let (status, body) = gw.get(&format!("/api/alpha/events?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["code"], "bad_request");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&format!("{field}:")),
            "{body}"
        );
    }
    let (status, body) = gw.get("/api/nobody/events").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "session_not_found");
}

#[tokio::test]
async fn events_answer_100_by_default() {
    let gw = common::gateway().await;
    gw.session("alpha", Some(ME), None).await;
    let gid = gw.group("alpha", "Team", &[]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for i in 0..100 {
        gw.put(
            &format!("/api/alpha/groups/{gid}/subject"),
            json!({"subject": format!("S{i}")}),
        )
        .await;
    }
    let (_, page) = gw.get("/api/alpha/events").await;
    assert_eq!(page.as_array().map(Vec::len), Some(100));
    let (_, all) = gw.get("/api/alpha/events?limit=1000").await;
    assert_eq!(all.as_array().map(Vec::len), Some(104));
}
