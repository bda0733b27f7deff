//! A group's invite code: read it, and revoke it for a new one (admins only).

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{not_admin, GroupAt, GroupPath};
use crate::api::extract::Json;
use crate::api::idempotency::{Answer, Key};
use crate::api::{AppState, Errors};
use crate::error::ApiResult;
use crate::groups::rules::{Op, Outcome};
use crate::groups::service::NotAdmin;
use crate::ids::InviteCode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_invite_code))
        .routes(routes!(revoke_invite_code))
}

/// The invite code (admins only).
#[utoipa::path(get, path = "/api/{session}/groups/{id}/invite-code", tag = "Groups", params(GroupPath),
    responses((status = 200, body = String, content_type = "application/json", example = json!("AbCdEfGhIjKlMnOpQrStUv")), Errors))]
async fn get_invite_code(State(state): State<AppState>, g: GroupAt) -> ApiResult<Json<String>> {
    let group = state.groups.load_as_admin(&g.session, &g.id)?;
    let group = group.map_err(|NotAdmin| not_admin("read the invite code"))?;
    Ok(Json(group.invite.to_string()))
}

/// Revoke the invite code (admins only): the old one stops working; answers the new one.
#[utoipa::path(post, path = "/api/{session}/groups/{id}/invite-code/revoke", tag = "Groups", params(GroupPath),
    responses((status = 200, body = String, content_type = "application/json", example = json!("AbCdEfGhIjKlMnOpQrStUv")), Errors))]
async fn revoke_invite_code(
    State(state): State<AppState>,
    g: GroupAt,
    key: Key,
) -> ApiResult<Answer> {
    let code = InviteCode::random();
    let answer = code.to_string();
    let render = key.render(StatusCode::OK, move |_: &Outcome| answer);
    g.change(&state, Op::RevokeInvite(code), render).await
}
