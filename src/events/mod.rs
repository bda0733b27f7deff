//! From changes to events: which events each session sees, their payloads, and the WAHA
//! envelope whose exact bytes are logged, signed and sent.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::groups::model::Group;
use crate::groups::rules::{Change, JoinKind, LeaveKind};
use crate::ids::ContactId;

/// `{id, pushName}` of a session's account.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: String,
    pub push_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Worker {
    pub id: String,
}

/// The `environment` of every webhook, and `GET /api/server/version`.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub version: String,
    pub engine: String,
    pub tier: String,
    pub browser: String,
    pub platform: String,
    pub worker: Worker,
}

/// What every envelope of one session carries besides the event itself.
pub struct Context<'a> {
    pub session: &'a str,
    pub metadata: Option<&'a Map<String, Value>>,
    pub me: &'a Me,
    pub engine: &'a str,
    pub environment: &'a Environment,
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: String,
    timestamp: u64,
    event: &'a str,
    session: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
    me: &'a Me,
    payload: &'a Value,
    engine: &'a str,
    environment: &'a Environment,
}

/// A new event id: `evt_` and a lowercase ULID.
pub fn new_event_id() -> String {
    format!("evt_{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// An event in its envelope, ready to be logged: its name, the group it concerns (deliveries
/// keep one group's events in order), and the exact bytes that will be signed and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enveloped {
    pub name: String,
    pub group: Option<String>,
    pub body: String,
}

/// Wraps a payload in the WAHA envelope (keys in the contract's order).
pub fn envelope(
    ctx: &Context<'_>,
    event: &str,
    group: Option<&str>,
    payload: &Value,
    now_ms: u64,
) -> Enveloped {
    let env = Envelope {
        id: new_event_id(),
        timestamp: now_ms,
        event,
        session: ctx.session,
        metadata: ctx.metadata,
        me: ctx.me,
        payload,
        engine: ctx.engine,
        environment: ctx.environment,
    };
    // Serialising plain structs of strings and JSON values cannot fail.
    let body = serde_json::to_string(&env).unwrap_or_default();
    Enveloped {
        name: event.to_owned(),
        group: group.map(str::to_owned),
        body,
    }
}

/// A group change, as the events of one session are made from it.
pub struct GroupChange<'a> {
    pub before: Option<&'a Group>,
    pub after: Option<&'a Group>,
    pub actor: &'a ContactId,
    pub operation: &'a str,
    pub changes: &'a [Change],
    pub now_s: u64,
    /// The acting session: a picture's URL in an update is the one it serves.
    pub session: &'a str,
}

impl GroupChange<'_> {
    fn group_id(&self) -> String {
        self.after
            .or(self.before)
            .map(|g| g.id.to_string())
            .unwrap_or_default()
    }
    fn subject(&self) -> String {
        self.after
            .or(self.before)
            .map(|g| g.subject.clone())
            .unwrap_or_default()
    }
    fn data(&self) -> Value {
        json!({"author": self.actor.as_str(), "operation": self.operation})
    }
    fn member_after(&self, who: &ContactId) -> bool {
        self.after.is_some_and(|g| g.is_member(who))
    }
    fn member_before(&self, who: &ContactId) -> bool {
        self.before.is_some_and(|g| g.is_member(who))
    }
    fn admin_after(&self, who: &ContactId) -> bool {
        self.after
            .and_then(|g| g.role_of(who))
            .is_some_and(|r| r.is_admin())
    }

    /// The events the session whose account is `recipient` sees, in order: (name, payload).
    pub fn events_for(&self, recipient: &ContactId) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        for (i, change) in self.changes.iter().enumerate() {
            // Once the recipient is out (removed, or left), later parts of the same change are
            // none of its business: a deleted group's members do not see its admin leave after them.
            if out.iter().any(|(name, _)| *name == "group.v2.leave") {
                break;
            }
            out.extend(self.events_of(i, change, recipient));
        }
        out
    }

    /// The events the `i`th change makes for `recipient`.
    fn events_of(
        &self,
        i: usize,
        change: &Change,
        recipient: &ContactId,
    ) -> Vec<(&'static str, Value)> {
        let participants = "group.v2.participants";
        match change {
            Change::Joined { ids, kind } if self.member_after(recipient) => {
                self.joined(i, ids, *kind, recipient)
            }
            Change::Left { ids, kind } if self.member_before(recipient) => {
                self.left(i, ids, *kind, recipient)
            }
            Change::Promoted { ids } if self.member_after(recipient) => {
                vec![(participants, self.v2_participants("promote", ids, "admin"))]
            }
            Change::Demoted { ids } if self.member_after(recipient) => {
                vec![(
                    participants,
                    self.v2_participants("demote", ids, "participant"),
                )]
            }
            // Only admins see the invite code, so only they hear that it changed.
            Change::Updated { fields, .. }
                if self.member_after(recipient)
                    && (!fields.contains_key("invite") || self.admin_after(recipient)) =>
            {
                vec![("group.v2.update", self.v2_update(fields.clone()))]
            }
            Change::PictureChanged if self.member_after(recipient) => {
                let url = self.after.and_then(|g| g.picture_url(self.session));
                let mut fields = Map::new();
                fields.insert("picture".into(), url.map_or(Value::Null, Value::from));
                vec![("group.v2.update", self.v2_update(fields))]
            }
            Change::JoinRequest {
                action,
                requester,
                method,
            } if self.admin_after(recipient) => vec![(
                "group.v2.participants.join-request",
                without_nulls(json!({"action": action, "requesterId": requester.as_str(),
                       "requesterPn": requester.pn(), "requestMethod": method, "timestamp": self.now_s,
                       "group": {"id": self.group_id()}, "_data": self.data()})),
            )],
            _ => Vec::new(),
        }
    }

    fn joined(
        &self,
        i: usize,
        ids: &[ContactId],
        kind: JoinKind,
        recipient: &ContactId,
    ) -> Vec<(&'static str, Value)> {
        let v1 = ("group.join", self.v1(i, to_value(kind), ids));
        if ids.contains(recipient) {
            let info = self.after.map(|g| g.info(recipient, true));
            let v2 = json!({"timestamp": self.now_s, "group": info, "by": self.actor.as_str(), "_data": self.data()});
            vec![v1, ("group.v2.join", v2)]
        } else {
            let v2 = self.v2_participants("join", ids, "participant");
            vec![v1, ("group.v2.participants", v2)]
        }
    }

    fn left(
        &self,
        i: usize,
        ids: &[ContactId],
        kind: LeaveKind,
        recipient: &ContactId,
    ) -> Vec<(&'static str, Value)> {
        let v1 = ("group.leave", self.v1(i, to_value(kind), ids));
        if ids.contains(recipient) {
            let v2 = json!({"timestamp": self.now_s, "group": {"id": self.group_id()}, "by": self.actor.as_str(), "_data": self.data()});
            vec![v1, ("group.v2.leave", v2)]
        } else {
            let v2 = self.v2_participants("leave", ids, "left");
            vec![v1, ("group.v2.participants", v2)]
        }
    }

    /// `group.v2.update`: the group's id and the changed fields.
    fn v2_update(&self, fields: Map<String, Value>) -> Value {
        let mut group = Map::new();
        group.insert("id".into(), self.group_id().into());
        group.extend(fields);
        json!({"timestamp": self.now_s, "group": group, "by": self.actor.as_str(), "_data": self.data()})
    }

    fn v1(&self, i: usize, ty: Value, ids: &[ContactId]) -> Value {
        let gid = self.group_id();
        let version = self.after.or(self.before).map(|g| g.version).unwrap_or(0);
        json!({
            "id": format!("false_{gid}_{version}-{i}_{}", self.actor),
            "timestamp": self.now_s,
            "chatId": gid,
            "author": self.actor.as_str(),
            "type": ty,
            "recipientIds": ids.iter().map(ContactId::as_str).collect::<Vec<_>>(),
            "group": {"id": gid, "subject": self.subject()},
        })
    }

    fn v2_participants(&self, ty: &str, ids: &[ContactId], role: &str) -> Value {
        let participants: Vec<Value> = ids
            .iter()
            .map(|id| without_nulls(json!({"id": id.as_str(), "pn": id.pn(), "role": role})))
            .collect();
        json!({"type": ty, "timestamp": self.now_s, "group": {"id": self.group_id()},
               "participants": participants, "by": self.actor.as_str(), "_data": self.data()})
    }
}

/// `v` without its null keys, in order: a string WAHA would send or leave out (`pn` of an
/// account known only by its lid) is never null.
fn without_nulls(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|_, value| !value.is_null());
    }
    v
}

/// A kind as its event's `type` shows it.
fn to_value(kind: impl Serialize) -> Value {
    serde_json::to_value(kind).unwrap_or_default()
}

/// The `session.status` payload.
pub fn session_status(name: &str, status: &str, statuses: &Value) -> Value {
    json!({"name": name, "status": status, "statuses": statuses})
}

#[cfg(test)]
mod tests;
