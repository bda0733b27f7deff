//! Joining a group: preview it and join it by invite code, and the admins' side of a join that
//! needs approval (list, approve, reject the requests).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::participants::{Participants, ParticipantsBody};
use super::{not_admin, GroupAt, GroupPath};
use crate::api::extract::{At, Input, Json, Query};
use crate::api::field_err;
use crate::api::idempotency::{Answer, Key};
use crate::api::path::{SessionPath, WorkingSession};
use crate::api::{AppState, BodyErrors, Errors};
use crate::error::{ApiError, ApiResult};
use crate::groups::model::{Group, GroupParticipant, JoinRequest};
use crate::groups::rules::{Op, Outcome, ParticipantResult};
use crate::groups::service::NotAdmin;
use crate::ids::InviteCode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join_info))
        .routes(routes!(join_group))
        .routes(routes!(join_requests))
        .routes(routes!(approve_requests))
        .routes(routes!(reject_requests))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CodeQuery {
    /// The invite code or the invite URL.
    #[param(
        example = "https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv",
        required = true,
        pattern = "^((https?://)?chat\\.whatsapp\\.com/)?[A-Za-z0-9]{22}$"
    )]
    code: Option<String>,
}

/// The invite code `field` holds, given as the code or the invite URL.
fn invite_code(field: &str, s: Option<&str>) -> ApiResult<InviteCode> {
    let s = s.ok_or_else(|| ApiError::bad_request(format!("{field}: required")))?;
    InviteCode::parse(s).map_err(|e| field_err(field, e))
}

/// The invite code of a preview, from the query.
struct Preview(InviteCode);

impl Input for Preview {
    type Read = Query<CodeQuery>;
    fn check(Query(q): Query<CodeQuery>) -> ApiResult<Self> {
        invite_code("code", q.code.as_deref()).map(Self)
    }
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "120363000000000001@g.us", "subject": "Team", "description": "", "size": 2, "participants": [{"id": "11111111111@c.us", "pn": "11111111111@c.us", "role": "superadmin"}]}))]
pub struct JoinInfo {
    id: String,
    subject: String,
    description: String,
    size: usize,
    participants: Vec<GroupParticipant>,
}

impl From<&Group> for JoinInfo {
    fn from(g: &Group) -> Self {
        Self {
            id: g.id.to_string(),
            subject: g.subject.clone(),
            description: g.description.clone(),
            size: g.participants.len(),
            participants: g.participants_view(),
        }
    }
}

/// Preview the group an invite code leads to, without joining.
#[utoipa::path(get, path = "/api/{session}/groups/join-info", tag = "Groups", params(SessionPath, CodeQuery),
    responses((status = 200, body = JoinInfo), Errors))]
async fn join_info(
    State(state): State<AppState>,
    At(_working, Preview(code)): At<WorkingSession, Preview>,
) -> ApiResult<Json<JoinInfo>> {
    Ok(Json(JoinInfo::from(
        &state.groups.by_invite_anywhere(&code).await?,
    )))
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"code": "https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv"}))]
pub struct JoinRequestBody {
    /// The invite code or the invite URL.
    #[schema(pattern = "^((https?://)?chat\\.whatsapp\\.com/)?[A-Za-z0-9]{22}$")]
    code: String,
}

/// The invite code of a join, from the body.
struct Joining(InviteCode);

impl Input for Joining {
    type Read = Json<JoinRequestBody>;
    fn check(Json(b): Json<JoinRequestBody>) -> ApiResult<Self> {
        invite_code("code", Some(&b.code)).map(Self)
    }
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "120363000000000001@g.us"}))]
pub struct JoinAnswer {
    id: String,
}

/// Join a group by invite code (a join request instead when approval is on).
#[utoipa::path(post, path = "/api/{session}/groups/join", tag = "Groups", params(SessionPath),
    request_body = JoinRequestBody, responses((status = 200, body = JoinAnswer), Errors, BodyErrors))]
async fn join_group(
    State(state): State<AppState>,
    key: Key,
    At(WorkingSession(s), Joining(code)): At<WorkingSession, Joining>,
) -> ApiResult<Answer> {
    let g = state.groups.by_invite_anywhere(&code).await?;
    let id = g.id.to_string();
    let render = key.render(StatusCode::OK, move |_: &Outcome| JoinAnswer { id });
    let reply = state.groups.mutate(&s, &g.id, Op::Join(code), render);
    Ok(Answer(reply.await?))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"requesterId": "33333333333@c.us", "requesterPn": "33333333333@c.us", "addedById": null, "parentGroupId": null, "requestMethod": "invite_link", "timestamp": 1763769600}))]
pub struct JoinRequestInfo {
    requester_id: String,
    /// The requester's phone-number id; left out for one known only by its lid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    requester_pn: Option<String>,
    #[schema(required = true)]
    added_by_id: Option<String>,
    /// The parent community's id; a group of no community has none (WAHA requires the key).
    #[schema(required = true)]
    parent_group_id: Option<String>,
    request_method: String,
    timestamp: u64,
}

impl From<&JoinRequest> for JoinRequestInfo {
    fn from(r: &JoinRequest) -> Self {
        Self {
            requester_id: r.requester.to_string(),
            requester_pn: r.requester.pn().map(str::to_owned),
            added_by_id: r.added_by.as_ref().map(ToString::to_string),
            parent_group_id: None,
            request_method: r.method.as_str().to_owned(),
            timestamp: r.timestamp,
        }
    }
}

/// Pending join requests (admins only).
#[utoipa::path(get, path = "/api/{session}/groups/{id}/participants/join-requests", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Vec<JoinRequestInfo>), Errors))]
async fn join_requests(
    State(state): State<AppState>,
    g: GroupAt,
) -> ApiResult<Json<Vec<JoinRequestInfo>>> {
    let group = state.groups.load_as_admin(&g.session, &g.id)?;
    let group = group.map_err(|NotAdmin| not_admin("list join requests"))?;
    Ok(Json(group.join_requests.iter().map(Into::into).collect()))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"requesterId": "33333333333@c.us", "success": false, "error": 404}))]
pub struct RequestResult {
    requester_id: String,
    success: bool,
    /// Left out on success; else a number, as WAHA: 404 no pending request from this id, 409
    /// the group is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u16, example = 404)]
    error: Option<u16>,
}

/// Each requester's result, as the change reports it.
fn request_results(o: &Outcome) -> Vec<RequestResult> {
    let result = |r: &ParticipantResult| RequestResult {
        requester_id: r.id.clone(),
        success: r.success,
        error: r.error.as_ref().map(|e| e.status),
    };
    o.results.iter().map(result).collect()
}

/// Approve join requests (admins only).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/participants/join-requests/approve", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<RequestResult>), Errors, BodyErrors))]
async fn approve_requests(
    State(state): State<AppState>,
    key: Key,
    At(g, Participants(ids)): At<GroupAt, Participants>,
) -> ApiResult<Answer> {
    g.batch(&state, &key, Op::Approve(ids), request_results)
        .await
}

/// Reject join requests (admins only).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/participants/join-requests/reject", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<RequestResult>), Errors, BodyErrors))]
async fn reject_requests(
    State(state): State<AppState>,
    key: Key,
    At(g, Participants(ids)): At<GroupAt, Participants>,
) -> ApiResult<Answer> {
    g.batch(&state, &key, Op::Reject(ids), request_results)
        .await
}
