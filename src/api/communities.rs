//! `/api/{session}/communities...` (contract §6): HTTP only. A community is a parent group that
//! links groups and owns an announcement group; the domain's `groups::communities` does the rest.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{At, Input, Json, Target};
use super::groups::info::{subject_of, Description, DescriptionBody, Subject, SubjectBody};
use super::groups::{contact_ids, success, yes, ParticipantRef, Success};
use super::idempotency::{Answer, Key};
use super::path::{from_path, SessionPath, WorkingSession};
use super::{field_err, AppState, BodyErrors, Errors};
use crate::error::{ApiError, ApiResult};
use crate::groups::communities::{CommunityOp, CommunityOutcome, NewCommunity};
use crate::groups::model::{
    CommunityInfo, Group, GroupParticipant, MAX_DESCRIPTION_CHARS, MAX_LINKED_GROUPS,
};
use crate::groups::rules::{LinkResult, Op, ParticipantResult, ResultError};
use crate::ids::GroupId;
use crate::sessions::Session;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_community, list_communities))
        .routes(routes!(get_community, delete_community))
        .routes(routes!(set_subject))
        .routes(routes!(set_description))
        .routes(routes!(link_groups))
        .routes(routes!(unlink_groups))
        .routes(routes!(community_participants))
        .routes(routes!(leave_community))
}

/// `{session}` and `{id}` as sent; documents the parameters of every path under a community.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CommunityPath {
    /// Session name.
    #[param(example = "default", pattern = "^[a-zA-Z0-9_-]{1,54}$")]
    pub session: String,
    /// Community id.
    #[param(
        example = "120363000000000001@g.us",
        pattern = "^120363[0-9]{12}@g\\.us$"
    )]
    id: String,
}

/// The community a path names, in a WORKING session (checked as `GroupAt` checks a group).
pub struct CommunityAt {
    pub session: Arc<Session>,
    pub id: GroupId,
}

impl Target for CommunityAt {
    type Path = CommunityPath;
    fn resolve(path: CommunityPath, state: &AppState) -> ApiResult<Self> {
        let WorkingSession(session) = WorkingSession::named(&path.session, state)?;
        let id = GroupId::parse(&path.id).map_err(|e| field_err("id", e))?;
        Ok(Self { session, id })
    }
}

from_path!(CommunityAt);

impl CommunityAt {
    /// Runs `op` on the community through the one write path; `render` makes the answer.
    async fn change(
        &self,
        state: &AppState,
        op: CommunityOp,
        render: crate::reply::Render<CommunityOutcome>,
    ) -> ApiResult<Answer> {
        let groups = &state.groups;
        let reply = groups.change_community(&self.session, &self.id, op, render);
        Ok(Answer(reply.await?))
    }

    /// The community as the session holds it; 404 `community_not_found`.
    fn load(&self, state: &AppState) -> ApiResult<Group> {
        state.groups.load_community(&self.session, &self.id)
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "Neighbours", "description": "Our street", "participants": [{"id": "22222222222@c.us"}]}))]
pub struct CreateCommunityRequest {
    /// The subject, 1-100 characters after trimming.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// 0-2048 characters.
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub description: String,
    /// The community's own members besides its creator.
    #[serde(default, deserialize_with = "crate::json::objects")]
    #[schema(max_items = 1024)]
    pub participants: Vec<ParticipantRef>,
}

impl Input for NewCommunity {
    type Read = Json<CreateCommunityRequest>;
    fn check(Json(b): Json<CreateCommunityRequest>) -> ApiResult<Self> {
        let n = b.description.chars().count();
        if n > MAX_DESCRIPTION_CHARS {
            let max = MAX_DESCRIPTION_CHARS;
            let msg = format!("description: at most {max} characters (got {n})");
            return Err(ApiError::bad_request(msg));
        }
        Ok(Self {
            subject: subject_of("name", &b.name)?,
            description: b.description,
            others: contact_ids(&b.participants)?,
        })
    }
}

/// Create a community; the session's account becomes its superadmin, and its announcement group
/// (only admins send) is created with it.
#[utoipa::path(post, path = "/api/{session}/communities", tag = "Communities", params(SessionPath),
    request_body = CreateCommunityRequest,
    responses((status = 201, description = "The new community", body = CommunityInfo), Errors, BodyErrors))]
async fn create_community(
    State(state): State<AppState>,
    key: Key,
    At(WorkingSession(s), new): At<WorkingSession, NewCommunity>,
) -> ApiResult<Answer> {
    let render = key.render(StatusCode::CREATED, |g: &Group| g.community_info());
    Ok(Answer(
        state.groups.create_community(&s, new, render).await?,
    ))
}

/// The communities the session's account is in.
#[utoipa::path(get, path = "/api/{session}/communities", tag = "Communities", params(SessionPath),
    responses((status = 200, body = Vec<CommunityInfo>), Errors))]
async fn list_communities(
    State(state): State<AppState>,
    WorkingSession(s): WorkingSession,
) -> ApiResult<Json<Vec<CommunityInfo>>> {
    let all = state.groups.communities(&s)?;
    Ok(Json(all.iter().filter_map(Group::community_info).collect()))
}

/// One community: its announcement group and its linked groups.
#[utoipa::path(get, path = "/api/{session}/communities/{id}", tag = "Communities", params(CommunityPath),
    responses((status = 200, body = CommunityInfo), Errors))]
async fn get_community(
    State(state): State<AppState>,
    c: CommunityAt,
) -> ApiResult<Json<Option<CommunityInfo>>> {
    Ok(Json(c.load(&state)?.community_info()))
}

/// Delete the community (community admins): every linked group is unlinked and lives on; the
/// announcement group is deleted.
#[utoipa::path(delete, path = "/api/{session}/communities/{id}", tag = "Communities", params(CommunityPath),
    responses((status = 200, body = Success), Errors))]
async fn delete_community(
    State(state): State<AppState>,
    c: CommunityAt,
    key: Key,
) -> ApiResult<Answer> {
    c.change(&state, CommunityOp::Delete, success(&key)).await
}

/// Leave the community and every linked group the session's account is in.
#[utoipa::path(post, path = "/api/{session}/communities/{id}/leave", tag = "Communities", params(CommunityPath),
    responses((status = 200, body = Success), Errors))]
async fn leave_community(
    State(state): State<AppState>,
    c: CommunityAt,
    key: Key,
) -> ApiResult<Answer> {
    c.change(&state, CommunityOp::Leave, success(&key)).await
}

/// Set the community's subject (community admins; 1-100 characters). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/communities/{id}/subject", tag = "Communities", params(CommunityPath),
    request_body = SubjectBody, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_subject(
    State(state): State<AppState>,
    key: Key,
    At(c, Subject(subject)): At<CommunityAt, Subject>,
) -> ApiResult<Answer> {
    let op = Op::SetSubject(subject);
    let reply = state
        .groups
        .mutate_community(&c.session, &c.id, op, yes(&key));
    Ok(Answer(reply.await?))
}

/// Set the community's description (community admins; 0-2048 characters). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/communities/{id}/description", tag = "Communities", params(CommunityPath),
    request_body = DescriptionBody, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_description(
    State(state): State<AppState>,
    key: Key,
    At(c, Description(text)): At<CommunityAt, Description>,
) -> ApiResult<Answer> {
    let op = Op::SetDescription(text);
    let reply = state
        .groups
        .mutate_community(&c.session, &c.id, op, yes(&key));
    Ok(Answer(reply.await?))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"id": "120363000000000002@g.us"}))]
pub struct GroupIdRef {
    #[schema(pattern = "^120363[0-9]{12}@g\\.us$")]
    pub id: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"groups": [{"id": "120363000000000002@g.us"}]}))]
pub struct LinkRequest {
    #[serde(deserialize_with = "crate::json::objects")]
    #[schema(min_items = 1, max_items = 100)]
    pub groups: Vec<GroupIdRef>,
}

/// The groups of a link or unlink, each error naming its index.
struct Groups(Vec<GroupId>);

impl Input for Groups {
    type Read = Json<LinkRequest>;
    fn check(Json(b): Json<LinkRequest>) -> ApiResult<Self> {
        if b.groups.is_empty() || b.groups.len() > MAX_LINKED_GROUPS {
            let msg = format!("groups: 1-{MAX_LINKED_GROUPS} ids per request");
            return Err(ApiError::bad_request(msg));
        }
        let ids = b.groups.iter().enumerate().map(|(i, g)| {
            GroupId::parse(&g.id).map_err(|e| field_err(&format!("groups[{i}].id"), e))
        });
        Ok(Self(ids.collect::<ApiResult<_>>()?))
    }
}

/// One result per requested group, in request order.
fn results(o: &CommunityOutcome) -> Vec<ParticipantResult> {
    let one = |(id, r): &(GroupId, LinkResult)| {
        let error = match r {
            LinkResult::Done => None,
            LinkResult::NotFound => Some(("group_not_found", format!("Group {id} not found"), 404)),
            LinkResult::AlreadyLinked => Some((
                "already_linked",
                format!("{id} is already linked to this community"),
                409,
            )),
            LinkResult::NotLinked => Some((
                "not_linked",
                format!("{id} is not linked to this community"),
                409,
            )),
        };
        ParticipantResult {
            id: id.to_string(),
            success: error.is_none(),
            error: error.map(|(code, message, status)| ResultError {
                code: code.into(),
                message,
                status,
            }),
        }
    };
    o.results.iter().map(one).collect()
}

/// Link groups to the community (community admins who are admins of each group). A group that
/// breaks a rule refuses the whole request (403 naming the rule); otherwise one result per id.
#[utoipa::path(post, path = "/api/{session}/communities/{id}/groups/link", tag = "Communities", params(CommunityPath),
    request_body = LinkRequest, responses((status = 200, body = Vec<ParticipantResult>, example = json!([{"id": "120363000000000002@g.us", "success": true}])), Errors, BodyErrors))]
async fn link_groups(
    State(state): State<AppState>,
    key: Key,
    At(c, Groups(ids)): At<CommunityAt, Groups>,
) -> ApiResult<Answer> {
    let render = key.render(StatusCode::OK, results);
    c.change(&state, CommunityOp::Link(ids), render).await
}

/// Unlink groups from the community (community admins); they live on without it.
#[utoipa::path(post, path = "/api/{session}/communities/{id}/groups/unlink", tag = "Communities", params(CommunityPath),
    request_body = LinkRequest, responses((status = 200, body = Vec<ParticipantResult>, example = json!([{"id": "120363000000000002@g.us", "success": true}])), Errors, BodyErrors))]
async fn unlink_groups(
    State(state): State<AppState>,
    key: Key,
    At(c, Groups(ids)): At<CommunityAt, Groups>,
) -> ApiResult<Answer> {
    let render = key.render(StatusCode::OK, results);
    c.change(&state, CommunityOp::Unlink(ids), render).await
}

/// The community's participants: its own admins and members, and the members of its linked groups.
#[utoipa::path(get, path = "/api/{session}/communities/{id}/participants", tag = "Communities", params(CommunityPath),
    responses((status = 200, body = Vec<GroupParticipant>), Errors))]
async fn community_participants(
    State(state): State<AppState>,
    c: CommunityAt,
) -> ApiResult<Json<Vec<GroupParticipant>>> {
    Ok(Json(c.load(&state)?.participants_view()))
}
