//! A group's security settings: who may change the info, send messages, add members, share the
//! message history with new members, and whether new members need an admin's approval. Each
//! one read and set on its own path.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{yes, GroupAt, GroupPath};
use crate::api::extract::{At, Json};
use crate::api::idempotency::{Answer, Key};
use crate::api::{AppState, BodyErrors, Errors};
use crate::error::ApiResult;
use crate::groups::rules::{Op, Setting};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_info_admin_only, set_info_admin_only))
        .routes(routes!(get_messages_admin_only, set_messages_admin_only))
        .routes(routes!(get_member_add_mode, set_member_add_mode))
        .routes(routes!(get_membership_approval, set_membership_approval))
        .routes(routes!(get_member_share_history, set_member_share_history))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"adminsOnly": true}))]
pub struct AdminsOnly {
    admins_only: bool,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"membersCanAddNewMember": true}))]
pub struct MemberAddMode {
    members_can_add_new_member: bool,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"newMembersApprovalRequired": true}))]
pub struct MembershipApproval {
    new_members_approval_required: bool,
}

/// WAHA's SettingsMemberShareHistoryMode: `true`, every member may share the message history
/// with new members; `false` (the default), only admins may.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"membersCanShareHistory": true}))]
pub struct MemberShareHistoryMode {
    members_can_share_history: bool,
}

impl GroupAt {
    /// The setting's value in the group.
    fn setting(&self, state: &AppState, which: Setting) -> ApiResult<bool> {
        Ok(which.get(&state.groups.load(&self.session, &self.id)?.settings))
    }

    /// Sets the setting and answers `true`.
    async fn set(
        &self,
        state: &AppState,
        key: &Key,
        which: Setting,
        on: bool,
    ) -> ApiResult<Answer> {
        self.change(state, Op::SetSetting(which, on), yes(key))
            .await
    }
}

/// Whether only admins may change the group info.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/settings/security/info-admin-only", tag = "Groups", params(GroupPath),
    responses((status = 200, body = AdminsOnly), Errors))]
async fn get_info_admin_only(
    State(state): State<AppState>,
    g: GroupAt,
) -> ApiResult<Json<AdminsOnly>> {
    let admins_only = g.setting(&state, Setting::InfoAdminOnly)?;
    Ok(Json(AdminsOnly { admins_only }))
}

/// Only admins may change the group info (admins only). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/settings/security/info-admin-only", tag = "Groups", params(GroupPath),
    request_body = AdminsOnly, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_info_admin_only(
    State(state): State<AppState>,
    key: Key,
    At(g, Json(b)): At<GroupAt, Json<AdminsOnly>>,
) -> ApiResult<Answer> {
    g.set(&state, &key, Setting::InfoAdminOnly, b.admins_only)
        .await
}

/// Whether only admins may send messages.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/settings/security/messages-admin-only", tag = "Groups", params(GroupPath),
    responses((status = 200, body = AdminsOnly), Errors))]
async fn get_messages_admin_only(
    State(state): State<AppState>,
    g: GroupAt,
) -> ApiResult<Json<AdminsOnly>> {
    let admins_only = g.setting(&state, Setting::MessagesAdminOnly)?;
    Ok(Json(AdminsOnly { admins_only }))
}

/// Only admins may send messages (admins only). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/settings/security/messages-admin-only", tag = "Groups", params(GroupPath),
    request_body = AdminsOnly, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_messages_admin_only(
    State(state): State<AppState>,
    key: Key,
    At(g, Json(b)): At<GroupAt, Json<AdminsOnly>>,
) -> ApiResult<Answer> {
    g.set(&state, &key, Setting::MessagesAdminOnly, b.admins_only)
        .await
}

/// Whether members may add new members.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/settings/security/member-add-mode", tag = "Groups", params(GroupPath),
    responses((status = 200, body = MemberAddMode), Errors))]
async fn get_member_add_mode(
    State(state): State<AppState>,
    g: GroupAt,
) -> ApiResult<Json<MemberAddMode>> {
    let members_can_add_new_member = g.setting(&state, Setting::MembersCanAdd)?;
    Ok(Json(MemberAddMode {
        members_can_add_new_member,
    }))
}

/// Let members add new members (admins only). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/settings/security/member-add-mode", tag = "Groups", params(GroupPath),
    request_body = MemberAddMode, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_member_add_mode(
    State(state): State<AppState>,
    key: Key,
    At(g, Json(b)): At<GroupAt, Json<MemberAddMode>>,
) -> ApiResult<Answer> {
    let on = b.members_can_add_new_member;
    g.set(&state, &key, Setting::MembersCanAdd, on).await
}

/// Whether new members need an admin's approval.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/settings/security/membership-approval", tag = "Groups", params(GroupPath),
    responses((status = 200, body = MembershipApproval), Errors))]
async fn get_membership_approval(
    State(state): State<AppState>,
    g: GroupAt,
) -> ApiResult<Json<MembershipApproval>> {
    let new_members_approval_required = g.setting(&state, Setting::ApprovalRequired)?;
    Ok(Json(MembershipApproval {
        new_members_approval_required,
    }))
}

/// Require an admin's approval for new members (admins only). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/settings/security/membership-approval", tag = "Groups", params(GroupPath),
    request_body = MembershipApproval, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_membership_approval(
    State(state): State<AppState>,
    key: Key,
    At(g, Json(b)): At<GroupAt, Json<MembershipApproval>>,
) -> ApiResult<Answer> {
    let on = b.new_members_approval_required;
    g.set(&state, &key, Setting::ApprovalRequired, on).await
}

/// Whether every member (not only admins) may share the message history with new members.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/settings/security/member-share-history-mode", tag = "Groups", params(GroupPath),
    responses((status = 200, body = MemberShareHistoryMode), Errors))]
async fn get_member_share_history(
    State(state): State<AppState>,
    g: GroupAt,
) -> ApiResult<Json<MemberShareHistoryMode>> {
    let members_can_share_history = g.setting(&state, Setting::MembersCanShareHistory)?;
    Ok(Json(MemberShareHistoryMode {
        members_can_share_history,
    }))
}

/// Let every member share the message history with new members (admins only). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/settings/security/member-share-history-mode", tag = "Groups", params(GroupPath),
    request_body = MemberShareHistoryMode, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_member_share_history(
    State(state): State<AppState>,
    key: Key,
    At(g, Json(b)): At<GroupAt, Json<MemberShareHistoryMode>>,
) -> ApiResult<Answer> {
    let on = b.members_can_share_history;
    g.set(&state, &key, Setting::MembersCanShareHistory, on)
        .await
}
