//! A group's own information: create, list and count the session's groups, read, delete, leave,
//! rename, describe one.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{contact_ids, success, yes, GroupAt, GroupPath, ParticipantRef, Success};
use crate::api::extract::{At, Input, Json, Query};
use crate::api::idempotency::{Answer, Key};
use crate::api::path::{SessionPath, WorkingSession};
use crate::api::query::{variant, Choice, Param, QueryValue};
use crate::api::{AppState, BodyErrors, Errors};
use crate::error::{ApiError, ApiResult};
use crate::groups::model::{Group, GroupInfo, MAX_DESCRIPTION_CHARS, MAX_SUBJECT_CHARS};
use crate::groups::rules::Op;
use crate::ids::ContactId;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_group, list_groups))
        .routes(routes!(count_groups))
        .routes(routes!(refresh_groups))
        .routes(routes!(get_group, delete_group))
        .routes(routes!(leave_group))
        .routes(routes!(set_subject))
        .routes(routes!(set_description))
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "Team", "participants": [{"id": "22222222222@c.us"}]}))]
pub struct CreateGroupRequest {
    /// The subject, 1-100 characters after trimming.
    // The pattern spells out Rust's whitespace, because `\\s` differs between regex engines
    // (Python's also matches U+001C..U+001F, which `str::trim` keeps).
    #[schema(
        pattern = "^[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]([\\s\\S]{0,98}[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000])?[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
    )]
    pub name: String,
    #[serde(default, deserialize_with = "crate::api::extract::objects")]
    #[schema(max_items = 1024)]
    pub participants: Vec<ParticipantRef>,
}

/// A new group as asked for: its subject, trimmed, and the others to add.
struct NewGroup {
    subject: String,
    others: Vec<ContactId>,
}

impl Input for NewGroup {
    type Read = Json<CreateGroupRequest>;
    fn check(Json(b): Json<CreateGroupRequest>) -> ApiResult<Self> {
        Ok(Self {
            subject: subject_of("name", &b.name)?,
            others: contact_ids(&b.participants)?,
        })
    }
}

/// A subject, trimmed; 400 naming `field` unless it is 1-100 characters.
pub(in crate::api) fn subject_of(field: &str, s: &str) -> ApiResult<String> {
    let t = s.trim();
    let n = t.chars().count();
    if n == 0 || n > MAX_SUBJECT_CHARS {
        return Err(ApiError::bad_request(format!(
            "{field}: must be 1-{MAX_SUBJECT_CHARS} characters after trimming (got {n})"
        )));
    }
    Ok(t.to_owned())
}

/// Create a group; the session's account becomes its superadmin.
#[utoipa::path(post, path = "/api/{session}/groups", tag = "Groups", params(SessionPath),
    request_body = CreateGroupRequest,
    responses((status = 201, description = "The new group", body = GroupInfo), Errors, BodyErrors))]
async fn create_group(
    State(state): State<AppState>,
    key: Key,
    At(WorkingSession(s), new): At<WorkingSession, NewGroup>,
) -> ApiResult<Answer> {
    let me = s.me_id();
    let render = key.render(StatusCode::CREATED, move |g: &Group| g.info(&me, true));
    let reply = state.groups.create(&s, new.subject, new.others, render);
    Ok(Answer(reply.await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// `id` or `subject`.
    #[param(value_type = Option<String>, pattern = "^(id|subject)$")]
    #[serde(default)]
    sort_by: Param<SortBy>,
    /// `asc` or `desc`.
    #[param(value_type = Option<String>, pattern = "^(asc|desc)$")]
    #[serde(default)]
    sort_order: Param<SortOrder>,
    #[param(value_type = Option<String>, pattern = "^[0-9]+$")]
    #[serde(default)]
    limit: Param<Whole>,
    #[param(value_type = Option<String>, pattern = "^[0-9]+$")]
    #[serde(default)]
    offset: Param<Whole>,
    /// `participants` leaves the participants out.
    #[param(value_type = Option<String>, pattern = "^(participants(,participants)*)?$")]
    #[serde(default)]
    exclude: Param<Exclude>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SortBy {
    #[default]
    Id,
    Subject,
}

impl Choice for SortBy {
    const EXPECTED: &'static str = "id or subject";
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SortOrder {
    #[default]
    Asc,
    Desc,
}

impl Choice for SortOrder {
    const EXPECTED: &'static str = "asc or desc";
}

/// What a list may leave out of each group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Excluded {
    Participants,
}

/// `exclude`: a comma-separated list of `Excluded`; empty leaves nothing out.
struct Exclude(Vec<Excluded>);

impl QueryValue for Exclude {
    fn parse(text: &str) -> Option<Self> {
        if text.is_empty() {
            return Some(Self(Vec::new()));
        }
        text.split(',')
            .map(variant)
            .collect::<Option<_>>()
            .map(Self)
    }
    fn refusal(name: &str, text: &str) -> String {
        format!("{name}: only \"participants\" can be excluded, got {text:?}")
    }
}

/// A non-negative whole number of groups; one past `usize::MAX` means "all" (or "none").
struct Whole(usize);

impl QueryValue for Whole {
    fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Only overflow is left to fail.
        Some(Self(text.parse().unwrap_or(usize::MAX)))
    }
    fn refusal(name: &str, text: &str) -> String {
        format!("{name}: expected a non-negative integer, got {text:?}")
    }
}

/// How to answer a list: its order, which page, and whether with the participants.
struct ListOptions {
    by: SortBy,
    order: SortOrder,
    with_participants: bool,
    limit: usize,
    offset: usize,
}

impl Input for ListOptions {
    type Read = Query<ListQuery>;
    fn check(Query(q): Query<ListQuery>) -> ApiResult<Self> {
        let by = q.sort_by.value("sortBy")?.unwrap_or_default();
        let order = q.sort_order.value("sortOrder")?.unwrap_or_default();
        let exclude = q.exclude.value("exclude")?;
        Ok(Self {
            by,
            order,
            with_participants: exclude.is_none_or(|e| !e.0.contains(&Excluded::Participants)),
            limit: q.limit.value("limit")?.map_or(usize::MAX, |c| c.0),
            offset: q.offset.value("offset")?.map_or(0, |c| c.0),
        })
    }
}

impl ListOptions {
    /// `groups` (in id order) sorted, paged and shown as `me` sees them.
    fn show(&self, mut groups: Vec<Group>, me: &ContactId) -> Vec<GroupInfo> {
        if self.by == SortBy::Subject {
            groups.sort_by(|a, b| a.subject.cmp(&b.subject).then_with(|| a.id.cmp(&b.id)));
        }
        if self.order == SortOrder::Desc {
            groups.reverse();
        }
        let page = groups.iter().skip(self.offset).take(self.limit);
        page.map(|g| g.info(me, self.with_participants)).collect()
    }
}

/// The groups the session's account is in.
#[utoipa::path(get, path = "/api/{session}/groups", tag = "Groups", params(SessionPath, ListQuery),
    responses((status = 200, body = Vec<GroupInfo>), Errors))]
async fn list_groups(
    State(state): State<AppState>,
    At(WorkingSession(s), list): At<WorkingSession, ListOptions>,
) -> ApiResult<Json<Vec<GroupInfo>>> {
    let groups = state.groups.list(&s)?;
    Ok(Json(list.show(groups, &s.me_id())))
}

#[derive(Serialize, ToSchema)]
pub struct Count {
    pub count: usize,
}

/// How many groups the session's account is in.
#[utoipa::path(get, path = "/api/{session}/groups/count", tag = "Groups", params(SessionPath),
    responses((status = 200, body = Count, example = json!({"count": 3})), Errors))]
async fn count_groups(WorkingSession(s): WorkingSession) -> ApiResult<Json<Count>> {
    Ok(Json(Count {
        count: s.store.group_count(),
    }))
}

/// Refresh the groups (nothing to refresh in the LOCAL engine).
#[utoipa::path(post, path = "/api/{session}/groups/refresh", tag = "Groups", params(SessionPath),
    responses((status = 200, body = Success), Errors))]
async fn refresh_groups(_working: WorkingSession) -> ApiResult<Json<Success>> {
    Ok(Json(Success { success: true }))
}

/// One group.
#[utoipa::path(get, path = "/api/{session}/groups/{id}", tag = "Groups", params(GroupPath),
    responses((status = 200, body = GroupInfo), Errors))]
async fn get_group(State(state): State<AppState>, g: GroupAt) -> ApiResult<Response> {
    let json = state.rendered.info_json(&state.groups, &g.session, &g.id)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// Delete the group (admins only): everyone is removed, then the group is gone.
#[utoipa::path(delete, path = "/api/{session}/groups/{id}", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Success), Errors))]
async fn delete_group(State(state): State<AppState>, g: GroupAt, key: Key) -> ApiResult<Answer> {
    g.change(&state, Op::Delete, success(&key)).await
}

/// Leave the group. If the last admin leaves, the longest-standing participant becomes admin.
#[utoipa::path(post, path = "/api/{session}/groups/{id}/leave", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Success), Errors))]
async fn leave_group(State(state): State<AppState>, g: GroupAt, key: Key) -> ApiResult<Answer> {
    g.change(&state, Op::Leave, success(&key)).await
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"subject": "New name"}))]
pub struct SubjectBody {
    /// 1-100 characters after trimming.
    #[schema(
        pattern = "^[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]([\\s\\S]{0,98}[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000])?[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
    )]
    subject: String,
}

/// A new subject, trimmed.
pub(in crate::api) struct Subject(pub String);

impl Input for Subject {
    type Read = Json<SubjectBody>;
    fn check(Json(b): Json<SubjectBody>) -> ApiResult<Self> {
        subject_of("subject", &b.subject).map(Self)
    }
}

/// Set the subject (1-100 characters). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/subject", tag = "Groups", params(GroupPath),
    request_body = SubjectBody, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_subject(
    State(state): State<AppState>,
    key: Key,
    At(g, Subject(subject)): At<GroupAt, Subject>,
) -> ApiResult<Answer> {
    g.change(&state, Op::SetSubject(subject), yes(&key)).await
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"description": "What this group is for"}))]
pub struct DescriptionBody {
    /// 0-2048 characters; empty clears.
    #[schema(max_length = 2048)]
    description: String,
}

/// A new description, at most 2048 characters.
pub(in crate::api) struct Description(pub String);

impl Input for Description {
    type Read = Json<DescriptionBody>;
    fn check(Json(b): Json<DescriptionBody>) -> ApiResult<Self> {
        let n = b.description.chars().count();
        if n > MAX_DESCRIPTION_CHARS {
            return Err(ApiError::bad_request(format!(
                "description: at most {MAX_DESCRIPTION_CHARS} characters (got {n})"
            )));
        }
        Ok(Self(b.description))
    }
}

/// Set the description (0-2048 characters; empty clears). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/description", tag = "Groups", params(GroupPath),
    request_body = DescriptionBody, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_description(
    State(state): State<AppState>,
    key: Key,
    At(g, Description(text)): At<GroupAt, Description>,
) -> ApiResult<Answer> {
    g.change(&state, Op::SetDescription(text), yes(&key)).await
}
