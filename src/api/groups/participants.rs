//! A group's participants: list them, add, remove, promote and demote them in batches, each id
//! answered on its own.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{contact_ids, GroupAt, GroupPath, ParticipantRef};
use crate::api::extract::{At, Input, Json};
use crate::api::idempotency::{Answer, Key};
use crate::api::{AppState, BodyErrors, Errors};
use crate::error::{ApiError, ApiResult};
use crate::groups::model::GroupParticipant;
use crate::groups::rules::{Op, Outcome, ParticipantResult};
use crate::ids::ContactId;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_participants))
        .routes(routes!(get_participants_v2))
        .routes(routes!(add_participants))
        .routes(routes!(remove_participants))
        .routes(routes!(promote))
        .routes(routes!(demote))
}

impl GroupAt {
    fn participants(&self, state: &AppState) -> ApiResult<Json<Vec<GroupParticipant>>> {
        let g = state.groups.load(&self.session, &self.id)?;
        Ok(Json(g.participants_view()))
    }

    /// Runs `op` on a batch of ids; `answer` shapes the per-id results.
    pub(super) async fn batch<T: Serialize + 'static>(
        &self,
        state: &AppState,
        key: &Key,
        op: Op,
        answer: fn(&Outcome) -> T,
    ) -> ApiResult<Answer> {
        self.change(state, op, key.render(StatusCode::OK, answer))
            .await
    }
}

/// The participants with their roles.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/participants", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Vec<GroupParticipant>), Errors))]
async fn get_participants(
    State(state): State<AppState>,
    g: GroupAt,
) -> ApiResult<Json<Vec<GroupParticipant>>> {
    g.participants(&state)
}

/// The participants with their roles (same normalised shape).
#[utoipa::path(get, path = "/api/{session}/groups/{id}/participants/v2", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Vec<GroupParticipant>), Errors))]
async fn get_participants_v2(
    State(state): State<AppState>,
    g: GroupAt,
) -> ApiResult<Json<Vec<GroupParticipant>>> {
    g.participants(&state)
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"participants": [{"id": "22222222222@c.us"}]}))]
pub struct ParticipantsBody {
    #[serde(deserialize_with = "crate::api::extract::objects")]
    #[schema(min_items = 1, max_items = 1024)]
    participants: Vec<ParticipantRef>,
}

/// The ids of a batch: at least one.
pub(super) struct Participants(pub Vec<ContactId>);

impl Input for Participants {
    type Read = Json<ParticipantsBody>;
    fn check(Json(b): Json<ParticipantsBody>) -> ApiResult<Self> {
        let ids = contact_ids(&b.participants)?;
        if ids.is_empty() {
            return Err(ApiError::bad_request(
                "participants: name at least one participant",
            ));
        }
        Ok(Self(ids))
    }
}

/// Each id's result, as the change reports it.
fn results(o: &Outcome) -> Vec<ParticipantResult> {
    o.results.clone()
}

/// Add participants (admins; or any member with membersCanAddNewMember).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/participants/add", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<ParticipantResult>), Errors, BodyErrors))]
async fn add_participants(
    State(state): State<AppState>,
    key: Key,
    At(g, Participants(ids)): At<GroupAt, Participants>,
) -> ApiResult<Answer> {
    g.batch(&state, &key, Op::Add(ids), results).await
}

/// Remove participants (admins only; never the superadmin).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/participants/remove", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<ParticipantResult>), Errors, BodyErrors))]
async fn remove_participants(
    State(state): State<AppState>,
    key: Key,
    At(g, Participants(ids)): At<GroupAt, Participants>,
) -> ApiResult<Answer> {
    g.batch(&state, &key, Op::Remove(ids), results).await
}

/// Promote participants to admins (admins only).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/admin/promote", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<ParticipantResult>), Errors, BodyErrors))]
async fn promote(
    State(state): State<AppState>,
    key: Key,
    At(g, Participants(ids)): At<GroupAt, Participants>,
) -> ApiResult<Answer> {
    g.batch(&state, &key, Op::Promote(ids), results).await
}

/// Demote admins to participants (admins only; never the superadmin).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/admin/demote", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<ParticipantResult>), Errors, BodyErrors))]
async fn demote(
    State(state): State<AppState>,
    key: Key,
    At(g, Participants(ids)): At<GroupAt, Participants>,
) -> ApiResult<Answer> {
    g.batch(&state, &key, Op::Demote(ids), results).await
}
