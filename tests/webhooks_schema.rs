//! The served document's `webhooks` section (contract §8) tells the truth: every event of
//! contract §3 has an entry, and the bodies really delivered for each validate against its
//! schema, checked by an independent JSON Schema validator (the `jsonschema` crate, draft
//! 2020-12, which OpenAPI 3.1 schemas are). So do the examples.

mod common;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{json, Value};

const EVENTS: [&str; 8] = [
    "group.join",
    "group.leave",
    "group.v2.join",
    "group.v2.leave",
    "group.v2.participants",
    "group.v2.update",
    "group.v2.participants.join-request",
    "session.status",
];

/// A validator for the body of `event`: the whole document as the root (so that its `$ref`s
/// resolve), pointing at the entry's schema.
fn validator(doc: &Value, event: &str) -> jsonschema::Validator {
    let mut root = doc.clone();
    let pointer = format!(
        "#/webhooks/{}/post/requestBody/content/application~1json/schema",
        event.replace('~', "~0").replace('/', "~1")
    );
    root["$ref"] = json!(pointer);
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap_or_else(|e| panic!("{event}: the schema does not build: {e}"))
}

fn problems(v: &jsonschema::Validator, body: &Value) -> Vec<String> {
    v.iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Every kind of event, delivered for real to `alpha`'s and `bob`'s webhooks.
async fn deliveries() -> Vec<Value> {
    let gw = common::gateway().await;
    let mut hook = common::receiver(|_| 200).await;
    let webhook = json!([{"url": hook.url, "events": ["*"]}]);
    gw.session("alpha", Some("11111111111@c.us"), Some(webhook.clone()))
        .await;
    gw.session("bob", Some("22222222222@c.us"), Some(webhook))
        .await;
    let g = gw.group("alpha", "Team", &["22222222222@c.us"]).await;
    let at = |p: &str| {
        format!(
            "/api/alpha/groups/{}{p}",
            g["id"].as_str().unwrap_or_default()
        )
    };
    let changes = [
        ("PUT", "/subject", json!({"subject": "Team 2"})),
        (
            "POST",
            "/participants/add",
            json!({"participants": [{"id": "33333333333@c.us"}]}),
        ),
        (
            "POST",
            "/admin/promote",
            json!({"participants": [{"id": "33333333333@c.us"}]}),
        ),
        (
            "PUT",
            "/settings/security/membership-approval",
            json!({"newMembersApprovalRequired": true}),
        ),
        (
            "PUT",
            "/picture",
            json!({"file": {"url": "https://example.com/p.png"}}),
        ),
        (
            "POST",
            "/participants/remove",
            json!({"participants": [{"id": "22222222222@c.us"}]}),
        ),
    ];
    for (method, path, body) in changes {
        let (status, answer) = gw.call(method, &at(path), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
    }
    // A join request: a stranger asks by invite while approval is on, and is rejected.
    gw.session("carol", Some("44444444444@c.us"), None).await;
    let (_, code) = gw.get(&at("/invite-code")).await;
    let (status, _) = gw
        .post("/api/carol/groups/join", json!({"code": code}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let body = json!({"participants": [{"id": "44444444444@c.us"}]});
    let (status, _) = gw
        .post(&at("/participants/join-requests/reject"), body)
        .await;
    assert_eq!(status, StatusCode::OK);

    let want: usize = [&gw.events("alpha").await, &gw.events("bob").await]
        .iter()
        .map(|log| log.len())
        .sum();
    let mut got = Vec::new();
    while got.len() < want {
        got.push(hook.next(10).await.json());
    }
    got
}

#[tokio::test]
async fn every_delivered_body_validates_against_its_webhook_schema() {
    let gw = common::gateway().await;
    let (status, doc) = gw.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = doc["webhooks"]
        .as_object()
        .expect("a webhooks section")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(listed, EVENTS, "one entry per event of contract §3");
    let validators: BTreeMap<&str, jsonschema::Validator> =
        EVENTS.iter().map(|e| (*e, validator(&doc, e))).collect();

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for body in deliveries().await {
        let event = body["event"].as_str().expect("event").to_owned();
        let v = validators.get(event.as_str()).expect("a listed event");
        assert_eq!(problems(v, &body), Vec::<String>::new(), "{body}");
        *seen.entry(event).or_default() += 1;
    }
    for e in EVENTS {
        assert!(seen.contains_key(e), "no {e} was delivered: {seen:?}");
    }

    for e in EVENTS {
        let example =
            &doc["webhooks"][e]["post"]["requestBody"]["content"]["application/json"]["example"];
        assert_eq!(
            problems(&validators[e], example),
            Vec::<String>::new(),
            "{e}'s example"
        );
        assert_eq!(example["event"], e);
    }
}

#[test]
fn a_body_that_drifts_from_the_schema_is_caught() {
    let doc: Value = serde_json::from_str(&wagate::api::openapi_json()).expect("json");
    let v = validator(&doc, "group.v2.update");
    let example = doc["webhooks"]["group.v2.update"]["post"]["requestBody"]["content"]
        ["application/json"]["example"]
        .clone();
    assert!(v.is_valid(&example));
    let mut extra = example.clone();
    extra["payload"]["group"]["surprise"] = json!(1);
    assert!(!v.is_valid(&extra), "an undocumented field is caught");
    let mut missing = example;
    missing["payload"]
        .as_object_mut()
        .expect("payload")
        .remove("by");
    assert!(!v.is_valid(&missing), "a missing field is caught");
}
