//! `/api/{session}/groups...`: HTTP only, one file per resource. Here: the router, the group a
//! path names, and what several resources share (participant ids, the plain answers).

pub(super) mod info;
mod invite;
mod join_requests;
mod participants;
mod picture;
mod settings;

pub use info::Count;

use std::sync::Arc;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::extract::Target;
use super::field_err;
use super::idempotency::{Answer, Key};
use super::path::{from_path, WorkingSession};
use super::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::groups::model::MAX_PARTICIPANTS;
use crate::groups::rules::{Op, Outcome};
use crate::ids::{ContactId, GroupId};
use crate::reply::Render;
use crate::sessions::Session;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(info::router())
        .merge(join_requests::router())
        .merge(picture::router())
        .merge(settings::router())
        .merge(participants::router())
        .merge(invite::router())
}

/// `{session}` and `{id}` as sent; documents the parameters of every path under a group.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GroupPath {
    /// Session name.
    #[param(example = "default", pattern = "^[a-zA-Z0-9_-]{1,54}$")]
    pub session: String,
    /// Group id.
    #[param(
        example = "120363000000000001@g.us",
        pattern = "^120363[0-9]{12}@g\\.us$"
    )]
    id: String,
}

/// The group a path names, in a WORKING session: 400 for a bad session name, 422 for a missing or
/// stopped session, then 400 for a bad group id. Whether the group exists is the service's to say.
pub struct GroupAt {
    pub session: Arc<Session>,
    pub id: GroupId,
}

impl Target for GroupAt {
    type Path = GroupPath;
    fn resolve(path: GroupPath, state: &AppState) -> ApiResult<Self> {
        let WorkingSession(session) = WorkingSession::named(&path.session, state)?;
        let id = GroupId::parse(&path.id).map_err(|e| field_err("id", e))?;
        Ok(Self { session, id })
    }
}

from_path!(GroupAt);

impl GroupAt {
    /// Runs `op` on the group through the one write path; `render` makes the answer.
    async fn change(&self, state: &AppState, op: Op, render: Render<Outcome>) -> ApiResult<Answer> {
        let reply = state
            .groups
            .mutate(&self.session, &self.id, op, render)
            .await?;
        Ok(Answer(reply))
    }
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true}))]
pub struct Success {
    success: bool,
}

/// The answer `{"success": true}`, whatever the change did.
pub(super) fn success<O>(key: &Key) -> Render<O> {
    key.render(StatusCode::OK, |_: &O| Success { success: true })
}

/// The answer `true`, whatever the change did.
pub(super) fn yes<O>(key: &Key) -> Render<O> {
    key.render(StatusCode::OK, |_: &O| true)
}

/// The 403 of a read only admins may make; `what`: what they may do (`read the invite code`).
fn not_admin(what: &str) -> ApiError {
    ApiError::forbidden_as(ErrorCode::NotAdmin, format!("only admins can {what}"))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"id": "22222222222@c.us"}))]
pub struct ParticipantRef {
    /// `<5-20 digits>@c.us`, `@s.whatsapp.net` or `@lid`.
    #[schema(pattern = "^[0-9]{5,20}@(c\\.us|s\\.whatsapp\\.net|lid)$")]
    pub id: String,
}

/// The ids of a request's `participants`, each error naming its index.
pub(super) fn contact_ids(list: &[ParticipantRef]) -> ApiResult<Vec<ContactId>> {
    if list.len() > MAX_PARTICIPANTS {
        return Err(ApiError::bad_request(format!(
            "participants: at most {MAX_PARTICIPANTS} ids per request"
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            ContactId::parse(&p.id).map_err(|e| field_err(&format!("participants[{i}].id"), e))
        })
        .collect()
}
