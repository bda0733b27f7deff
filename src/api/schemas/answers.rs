//! The OpenAPI schemas of the domain's answer and event types (`events`, `groups`): mirrors of
//! `Me`, `Environment`, `Role`, `GroupInfo`, `ParticipantResult` and what they hold, carrying the
//! utoipa attributes the domain does not (see `schemas/mod.rs`).
#![allow(dead_code)] // The mirrors are never built: they only describe.

use serde::Serialize;
use utoipa::ToSchema;

use crate::events::{Environment, Me, Worker};
use crate::groups::model::{CommunityInfo, GroupInfo, GroupParticipant, GroupRef, Role};
use crate::groups::rules::{ParticipantResult, ResultError};

/// `{id, pushName}` of a session's account.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MeDoc {
    #[schema(example = "11111111111@c.us")]
    id: String,
    #[schema(example = "default")]
    push_name: String,
}

#[derive(Serialize, ToSchema)]
struct WorkerDoc {
    id: String,
}

/// The `environment` of every webhook, and `GET /api/server/version`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"version": "0.1.0", "engine": "LOCAL", "tier": "CORE", "browser": "", "platform": "linux/x64", "worker": {"id": "host-1"}}))]
struct EnvironmentDoc {
    version: String,
    engine: String,
    tier: String,
    browser: String,
    platform: String,
    worker: Worker,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum RoleDoc {
    Participant,
    Admin,
    Superadmin,
}

/// A participant as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "11111111111@c.us", "pn": "11111111111@c.us", "role": "superadmin"}))]
struct GroupParticipantDoc {
    /// The member's id as the group keeps it: its phone-number id (`@c.us`).
    id: String,
    /// The phone-number id (`@c.us`); left out for a member known only by its lid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pn: Option<String>,
    role: Role,
}

/// A group as the API shows it (WAHA's GroupInfo, normalised).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "120363000000000001@g.us", "subject": "Team", "description": "",
    "invite": "https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv",
    "membersCanAddNewMember": false, "membersCanSendMessages": true,
    "newMembersApprovalRequired": false, "infoAdminOnly": false,
    "owner": "11111111111@c.us", "creation": 1763769600, "size": 2,
    "participants": [{"id": "11111111111@c.us", "pn": "11111111111@c.us", "role": "superadmin"}, {"id": "22222222222@c.us", "pn": "22222222222@c.us", "role": "participant"}]
}))]
struct GroupInfoDoc {
    id: String,
    subject: String,
    description: String,
    /// The invite URL; only shown to admins, else left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    invite: Option<String>,
    members_can_add_new_member: bool,
    members_can_send_messages: bool,
    new_members_approval_required: bool,
    info_admin_only: bool,
    owner: String,
    /// Unix seconds.
    creation: u64,
    size: usize,
    /// Left out with `exclude=participants`.
    #[serde(skip_serializing_if = "Option::is_none")]
    participants: Option<Vec<GroupParticipant>>,
    /// The community the group is linked to (or, for an announcement group, announces for);
    /// left out when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_group_id: Option<String>,
    /// Only on a community: true.
    #[serde(skip_serializing_if = "Option::is_none")]
    is_community: Option<bool>,
    /// Only on a community's announcement group: true.
    #[serde(skip_serializing_if = "Option::is_none")]
    is_community_announce: Option<bool>,
}

/// A group as a community names it: its id, and its subject for a linked group.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "120363000000000002@g.us", "subject": "Street party"}))]
struct GroupRefDoc {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
}

/// A community as the API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "120363000000000001@g.us", "subject": "Neighbours", "description": "Our street",
    "owner": "11111111111@c.us", "creation": 1763769600,
    "announcementGroup": {"id": "120363000000000009@g.us"},
    "groups": [{"id": "120363000000000002@g.us", "subject": "Street party"}], "size": 3
}))]
struct CommunityInfoDoc {
    id: String,
    subject: String,
    description: String,
    owner: String,
    /// Unix seconds.
    creation: u64,
    /// Its announcement group, in which only admins send.
    announcement_group: GroupRef,
    /// The linked groups, in the order they were linked.
    groups: Vec<GroupRef>,
    /// Its participants: its own and those of its linked groups.
    size: usize,
}

#[derive(Serialize, ToSchema)]
struct ResultErrorDoc {
    code: String,
    message: String,
}

/// One per requested id, in request order.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "22222222222@c.us", "success": false, "error": {"code": "already_member", "message": "22222222222@c.us is already a member"}}))]
struct ParticipantResultDoc {
    id: String,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ResultError>,
}

super::schema_of!(Me => MeDoc);
super::schema_of!(Worker => WorkerDoc);
super::schema_of!(Environment => EnvironmentDoc);
super::schema_of!(Role => RoleDoc);
super::schema_of!(GroupParticipant => GroupParticipantDoc);
super::schema_of!(GroupInfo => GroupInfoDoc);
super::schema_of!(ResultError => ResultErrorDoc);
super::schema_of!(GroupRef => GroupRefDoc);
super::schema_of!(CommunityInfo => CommunityInfoDoc);
super::schema_of!(ParticipantResult => ParticipantResultDoc);
