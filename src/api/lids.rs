//! `/api/{session}/lids...`: the linked ids (`@lid`) and phone numbers of the accounts a session
//! knows, as WAHA's lids API. What is known, and how a lid is derived, is `groups::lids`.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{At, Input, Json, Query, Target};
use super::groups::Count;
use super::path::{from_path, SessionPath, WorkingSession};
use super::query::{Limit, Offset, Param};
use super::{field_err, AppState, Errors};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::groups::lids::LidToPhoneNumber;
use crate::ids::{ContactId, IdError};
use crate::sessions::Session;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_lids))
        .routes(routes!(count_lids))
        .routes(routes!(pn_by_lid))
        .routes(routes!(lid_by_pn))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LidsQuery {
    /// 1-1000, default 100.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    #[serde(default)]
    limit: Param<Limit>,
    /// How many to skip, default 0.
    #[param(value_type = Option<i64>, minimum = 0)]
    #[serde(default)]
    offset: Param<Offset>,
}

/// A page of the list.
struct Page {
    limit: Limit,
    offset: Offset,
}

impl Input for Page {
    type Read = Query<LidsQuery>;
    fn check(Query(q): Query<LidsQuery>) -> ApiResult<Self> {
        Ok(Self {
            limit: q.limit.value("limit")?.unwrap_or_default(),
            offset: q.offset.value("offset")?.unwrap_or_default(),
        })
    }
}

/// The lids and phone numbers of the accounts the session knows (its own and every participant
/// of its groups), in lid order.
#[utoipa::path(get, path = "/api/{session}/lids", tag = "Lids", params(SessionPath, LidsQuery),
    responses((status = 200, body = Vec<LidToPhoneNumber>), Errors))]
async fn list_lids(
    State(state): State<AppState>,
    At(WorkingSession(s), page): At<WorkingSession, Page>,
) -> ApiResult<Json<Vec<LidToPhoneNumber>>> {
    let known = state.groups.known_lids(&s)?;
    let page = known.into_iter().skip(page.offset.0).take(page.limit.0);
    Ok(Json(page.collect()))
}

/// How many accounts the session knows.
#[utoipa::path(get, path = "/api/{session}/lids/count", tag = "Lids", params(SessionPath),
    responses((status = 200, body = Count, example = json!({"count": 3})), Errors))]
async fn count_lids(
    State(state): State<AppState>,
    WorkingSession(s): WorkingSession,
) -> ApiResult<Json<Count>> {
    let count = state.groups.known_lids(&s)?.len();
    Ok(Json(Count { count }))
}

/// `{session}` and `{lid}` as sent.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct LidPath {
    /// Session name.
    #[param(example = "default", pattern = "^[a-zA-Z0-9_-]{1,54}$")]
    session: String,
    /// The linked id, with or without `@lid`.
    #[param(example = "540718988944767@lid", pattern = "^[0-9]{5,20}(@lid)?$")]
    lid: String,
}

/// `{session}` and `{phoneNumber}` as sent.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct PnPath {
    /// Session name.
    #[param(example = "default", pattern = "^[a-zA-Z0-9_-]{1,54}$")]
    session: String,
    /// The phone number, with or without `@c.us` (`@s.whatsapp.net` is taken too).
    #[param(
        example = "11111111111@c.us",
        pattern = "^[0-9]{5,20}(@c\\.us|@s\\.whatsapp\\.net)?$"
    )]
    phone_number: String,
}

/// An account a path names, by its lid or its number, in a WORKING session.
pub struct AccountAt {
    session: std::sync::Arc<Session>,
    id: ContactId,
}

/// `text` with `suffix` added when it has no `@` part, parsed; 400 naming `field` unless it is
/// a contact id of the kind `lid` says.
fn account_id(field: &str, text: &str, suffix: &str, lid: bool) -> ApiResult<ContactId> {
    let full = match text.contains('@') {
        true => text.to_owned(),
        false => format!("{text}{suffix}"),
    };
    let id = ContactId::parse(&full).map_err(|e| field_err(field, e))?;
    if id.is_lid() != lid {
        let kind = match lid {
            true => "a lid: <5-20 digits>, optionally followed by @lid",
            false => "a phone number: <5-20 digits>, optionally followed by @c.us",
        };
        return Err(field_err(
            field,
            IdError(format!("expected {kind}, got {text:?}")),
        ));
    }
    Ok(id)
}

impl Target for AccountAt {
    type Path = LidPath;
    fn resolve(path: LidPath, state: &AppState) -> ApiResult<Self> {
        let WorkingSession(session) = WorkingSession::named(&path.session, state)?;
        let id = account_id("lid", &path.lid, "@lid", true)?;
        Ok(Self { session, id })
    }
}

/// The same, named by its number.
pub struct NumberAt(AccountAt);

impl Target for NumberAt {
    type Path = PnPath;
    fn resolve(path: PnPath, state: &AppState) -> ApiResult<Self> {
        let WorkingSession(session) = WorkingSession::named(&path.session, state)?;
        let id = account_id("phoneNumber", &path.phone_number, "@c.us", false)?;
        Ok(Self(AccountAt { session, id }))
    }
}

from_path!(AccountAt, NumberAt);

impl AccountAt {
    /// The account, if the session knows it; else 404 `lid_not_found`.
    fn find(&self, state: &AppState) -> ApiResult<Json<LidToPhoneNumber>> {
        match state.groups.known_account(&self.session, &self.id)? {
            Some(entry) => Ok(Json(entry)),
            None => Err(ApiError::not_found(
                ErrorCode::LidNotFound,
                format!(
                    "{} is not an account session \"{}\" knows (its own, or a participant of its groups)",
                    self.id, self.session.name
                ),
            )),
        }
    }
}

/// The phone number of the account with this lid; 404 when the session knows no such account.
#[utoipa::path(get, path = "/api/{session}/lids/{lid}", tag = "Lids", params(LidPath),
    responses((status = 200, body = LidToPhoneNumber), Errors))]
async fn pn_by_lid(
    State(state): State<AppState>,
    at: AccountAt,
) -> ApiResult<Json<LidToPhoneNumber>> {
    at.find(&state)
}

/// The lid of the account with this phone number; 404 when the session knows no such account.
#[utoipa::path(get, path = "/api/{session}/lids/pn/{phoneNumber}", tag = "Lids", params(PnPath),
    responses((status = 200, body = LidToPhoneNumber), Errors))]
async fn lid_by_pn(
    State(state): State<AppState>,
    NumberAt(at): NumberAt,
) -> ApiResult<Json<LidToPhoneNumber>> {
    at.find(&state)
}
