//! The `webhooks` section of the OpenAPI 3.1 document (contract §8): one entry per event of
//! contract §3, each with the exact schema of its envelope and payload and an example taken
//! from a real delivery, so that receivers can generate their types from `/openapi.json`.
//! utoipa 5 has no webhooks object: the section is added to the document as JSON.

use serde_json::{json, Map, Value};

/// Adds the envelopes' schemas to `components.schemas` and the `webhooks` section.
pub fn document(doc: &mut Value) {
    let mut webhooks = Map::new();
    for (event, summary, payload, example) in events() {
        let name = schema_name(event);
        if let Some(schemas) = doc
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
        {
            schemas.insert(name.clone(), envelope(event, payload));
        }
        webhooks.insert(event.to_owned(), entry(event, summary, &name, example));
    }
    if let Some(doc) = doc.as_object_mut() {
        doc.insert("webhooks".into(), Value::Object(webhooks));
    }
}

/// `group.v2.update` → `WebhookGroupV2Update`.
fn schema_name(event: &str) -> String {
    let mut out = String::from("Webhook");
    for part in event.split(['.', '-']) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

fn entry(event: &str, summary: &str, schema: &str, example: Value) -> Value {
    json!({"post": {
        "summary": summary,
        "operationId": format!("webhook_{}", event.replace(['.', '-'], "_")),
        "tags": ["Webhooks"],
        "description": "POSTed to each webhook whose `events` hold this name or `*`. Signed with \
            `X-Webhook-Hmac` (HMAC-SHA512 of the body) and the Standard Webhooks headers when the \
            webhook has an `hmac.key`; `X-Webhook-Request-Id` is the event id, the same on every retry.",
        "requestBody": {"required": true, "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{schema}")},
            "example": example}}},
        "responses": {"2XX": {"description": "Delivered. Any other answer, or none within the \
            timeout, is retried by the webhook's policy, then dead-lettered."}}
    }})
}

/// The envelope every event comes in (keys in this order), around `payload`.
fn envelope(event: &str, payload: Value) -> Value {
    json!({
        "type": "object",
        "description": format!("The `{event}` webhook's body."),
        "required": ["id", "timestamp", "event", "session", "me", "payload", "engine", "environment"],
        "additionalProperties": false,
        "properties": {
            "id": {"type": "string", "pattern": "^evt_[0-9a-z]{26}$"},
            "timestamp": {"type": "integer", "description": "Unix ms."},
            "event": {"const": event},
            "session": {"type": "string"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"},
                "description": "The session's metadata; left out when it has none."},
            "me": {"$ref": "#/components/schemas/Me"},
            "payload": payload,
            "engine": {"const": "LOCAL"},
            "environment": {"$ref": "#/components/schemas/Environment"}
        }
    })
}

/// An object with exactly these properties, all required but those in `optional`.
fn object(properties: Value, optional: &[&str]) -> Value {
    let required: Vec<&String> = properties
        .as_object()
        .map(|p| {
            p.keys()
                .filter(|k| !optional.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    json!({"type": "object", "required": required, "additionalProperties": false,
        "properties": properties})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn seconds() -> Value {
    json!({"type": "integer", "description": "Unix seconds."})
}

fn group_ref() -> Value {
    object(json!({"id": string()}), &[])
}

fn data() -> Value {
    object(json!({"author": string(), "operation": string()}), &[])
}

/// `group.join` / `group.leave`.
fn joined(types: &[&str]) -> Value {
    object(
        json!({"id": string(), "timestamp": seconds(), "chatId": string(), "author": string(),
            "type": {"enum": types}, "recipientIds": {"type": "array", "items": string()},
            "group": object(json!({"id": string(), "subject": string()}), &[])}),
        &[],
    )
}

fn participants() -> Value {
    let participant = object(
        json!({"id": string(), "pn": string(),
            "role": {"enum": ["participant", "admin", "superadmin", "left"]}}),
        &["pn"],
    );
    object(
        json!({"type": {"enum": ["join", "leave", "promote", "demote"]}, "timestamp": seconds(),
            "group": group_ref(), "participants": {"type": "array", "items": participant},
            "by": string(), "_data": data()}),
        &[],
    )
}

fn update() -> Value {
    let boolean = json!({"type": "boolean"});
    let changed = object(
        json!({"id": string(), "subject": string(), "description": string(),
            "picture": {"type": ["string", "null"]}, "invite": string(),
            "membersCanAddNewMember": boolean, "membersCanSendMessages": boolean,
            "newMembersApprovalRequired": boolean, "infoAdminOnly": boolean,
            "membersCanShareHistory": boolean, "parentGroupId": {"type": ["string", "null"]}}),
        &[
            "subject",
            "description",
            "picture",
            "invite",
            "membersCanAddNewMember",
            "membersCanSendMessages",
            "newMembersApprovalRequired",
            "infoAdminOnly",
            "membersCanShareHistory",
            "parentGroupId",
        ],
    );
    let mut changed = changed;
    changed["description"] = json!("The group's id and only the fields that changed.");
    object(
        json!({"timestamp": seconds(), "group": changed, "by": string(), "_data": data()}),
        &[],
    )
}

fn join_request() -> Value {
    object(
        json!({"action": {"enum": ["created", "rejected", "revoked"]}, "requesterId": string(),
            "requesterPn": string(), "requestMethod": string(), "timestamp": seconds(),
            "group": group_ref(), "_data": data()}),
        &["requesterPn"],
    )
}

fn session_status() -> Value {
    let status = json!({"enum": ["STOPPED", "STARTING", "WORKING", "FAILED"]});
    let entry = object(
        json!({"status": status, "timestamp": {"type": "integer", "description": "Unix ms."}}),
        &[],
    );
    object(
        json!({"name": string(), "status": status,
            "statuses": {"type": "array", "items": entry}}),
        &[],
    )
}

/// Each event: name, summary, payload schema, and a real delivery's body.
fn events() -> Vec<(&'static str, &'static str, Value, Value)> {
    use super::webhook_examples as ex;
    vec![
        ("group.join", "Participants joined a group the session is in", joined(&["create", "add", "invite", "approve"]), ex::group_join()),
        ("group.leave", "Participants left a group the session is in, or were removed", joined(&["leave", "remove"]), ex::group_leave()),
        ("group.v2.join", "The session's account joined or was added to a group",
            object(json!({"timestamp": seconds(), "group": {"$ref": "#/components/schemas/GroupInfo"},
                "by": string(), "_data": data()}), &[]), ex::group_v2_join()),
        ("group.v2.leave", "The session's account left or was removed from a group",
            object(json!({"timestamp": seconds(), "group": group_ref(), "by": string(), "_data": data()}), &[]),
            ex::group_v2_leave()),
        ("group.v2.participants", "Others joined, left, were promoted or demoted", participants(), ex::group_v2_participants()),
        ("group.v2.update", "The subject, description, picture, a setting, the invite code or the community changed", update(), ex::group_v2_update()),
        ("group.v2.participants.join-request", "A join request was created, rejected or revoked (to admins)", join_request(), ex::join_request()),
        ("session.status", "The session's status changed", session_status(), ex::session_status()),
    ]
}
