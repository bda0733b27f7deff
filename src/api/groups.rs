//! `/api/{session}/groups...`: HTTP only. Parse and validate input into typed values, call the
//! group service, shape the answer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{Json, Path, Query};
use super::idempotency::{Answer, Key};
use super::path::SessionPath;
use super::{field_err, AppState, BodyErrors, Errors};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::groups::model::Group;
use crate::groups::model::{
    GroupInfo, GroupParticipant, NewPicture, MAX_DESCRIPTION_CHARS, MAX_PARTICIPANTS,
    MAX_SUBJECT_CHARS,
};
use crate::groups::rules::{Op, Outcome, ParticipantResult, Setting};
use crate::groups::service::GroupService;
use crate::ids::{ContactId, GroupId, InviteCode, SessionName};
use crate::sessions::Session;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_group, list_groups))
        .routes(routes!(count_groups))
        .routes(routes!(join_info))
        .routes(routes!(join_group))
        .routes(routes!(refresh_groups))
        .routes(routes!(get_group, delete_group))
        .routes(routes!(leave_group))
        .routes(routes!(set_subject))
        .routes(routes!(set_description))
        .routes(routes!(get_picture, set_picture, delete_picture))
        .routes(routes!(picture_file))
        .routes(routes!(get_info_admin_only, set_info_admin_only))
        .routes(routes!(get_messages_admin_only, set_messages_admin_only))
        .routes(routes!(get_member_add_mode, set_member_add_mode))
        .routes(routes!(get_membership_approval, set_membership_approval))
        .routes(routes!(get_participants))
        .routes(routes!(get_participants_v2))
        .routes(routes!(add_participants))
        .routes(routes!(remove_participants))
        .routes(routes!(promote))
        .routes(routes!(demote))
        .routes(routes!(join_requests))
        .routes(routes!(approve_requests))
        .routes(routes!(reject_requests))
        .routes(routes!(get_invite_code))
        .routes(routes!(revoke_invite_code))
}

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

/// The session, WORKING; or 400 / 422.
pub(super) fn working(state: &AppState, name: &str) -> ApiResult<Arc<Session>> {
    let name = SessionName::parse(name).map_err(|e| field_err("session", e))?;
    let s = state.registry.require(&name)?;
    s.require_working()?;
    Ok(s)
}

fn group_path(state: &AppState, p: &GroupPath) -> ApiResult<(Arc<Session>, GroupId)> {
    let s = working(state, &p.session)?;
    let id = GroupId::parse(&p.id).map_err(|e| field_err("id", e))?;
    Ok((s, id))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"id": "22222222222@c.us"}))]
pub struct ParticipantRef {
    /// `<5-20 digits>@c.us`, `@s.whatsapp.net` or `@lid`.
    #[schema(pattern = "^[0-9]{5,20}@(c\\.us|s\\.whatsapp\\.net|lid)$")]
    pub id: String,
}

fn contact_ids(list: &[ParticipantRef]) -> ApiResult<Vec<ContactId>> {
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

fn subject_of(field: &str, s: &str) -> ApiResult<String> {
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
    Path(p): Path<SessionPath>,
    key: Key,
    Json(body): Json<CreateGroupRequest>,
) -> ApiResult<Answer> {
    let s = working(&state, &p.session)?;
    let subject = subject_of("name", &body.name)?;
    let ids = contact_ids(&body.participants)?;
    let me = s.me_id();
    let render = key.render(StatusCode::CREATED, move |g: &Group| g.info(&me, true));
    Ok(Answer(state.groups.create(&s, subject, ids, render).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// `id` or `subject`.
    #[param(value_type = Option<String>, pattern = "^(id|subject)$")]
    sort_by: Option<String>,
    /// `asc` or `desc`.
    #[param(value_type = Option<String>, pattern = "^(asc|desc)$")]
    sort_order: Option<String>,
    #[param(value_type = Option<String>, pattern = "^[0-9]+$")]
    limit: Option<String>,
    #[param(value_type = Option<String>, pattern = "^[0-9]+$")]
    offset: Option<String>,
    /// `participants` leaves the participants out.
    #[param(value_type = Option<String>, pattern = "^(participants(,participants)*)?$")]
    exclude: Option<String>,
}

fn number(field: &str, v: &Option<String>) -> ApiResult<Option<usize>> {
    v.as_deref()
        .map(|s| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::bad_request(format!(
                    "{field}: expected a non-negative integer, got {s:?}"
                )));
            }
            // Only overflow is left to fail: a limit or offset past usize::MAX means "all" / "none".
            Ok(s.parse::<usize>().unwrap_or(usize::MAX))
        })
        .transpose()
}

/// The groups the session's account is in.
#[utoipa::path(get, path = "/api/{session}/groups", tag = "Groups", params(SessionPath, ListQuery),
    responses((status = 200, body = Vec<GroupInfo>), Errors))]
async fn list_groups(
    State(state): State<AppState>,
    Path(p): Path<SessionPath>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<GroupInfo>>> {
    let s = working(&state, &p.session)?;
    let by_subject = match q.sort_by.as_deref() {
        None | Some("id") => false,
        Some("subject") => true,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "sortBy: expected id or subject, got {o:?}"
            )))
        }
    };
    let desc = match q.sort_order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "sortOrder: expected asc or desc, got {o:?}"
            )))
        }
    };
    let with_participants = match q.exclude.as_deref() {
        None | Some("") => true,
        Some(list) if list.split(',').all(|e| e == "participants") => false,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "exclude: only \"participants\" can be excluded, got {o:?}"
            )))
        }
    };
    let limit = number("limit", &q.limit)?;
    let offset = number("offset", &q.offset)?.unwrap_or(0);
    let mut groups = state.groups.list(&s)?;
    if by_subject {
        groups.sort_by(|a, b| a.subject.cmp(&b.subject).then_with(|| a.id.cmp(&b.id)));
    }
    if desc {
        groups.reverse();
    }
    let me = s.me_id();
    let out = groups
        .iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|g| g.info(&me, with_participants))
        .collect();
    Ok(Json(out))
}

#[derive(Serialize, ToSchema)]
pub struct Count {
    count: usize,
}

/// How many groups the session's account is in.
#[utoipa::path(get, path = "/api/{session}/groups/count", tag = "Groups", params(SessionPath),
    responses((status = 200, body = Count, example = json!({"count": 3})), Errors))]
async fn count_groups(
    State(state): State<AppState>,
    Path(p): Path<SessionPath>,
) -> ApiResult<Json<Count>> {
    let s = working(&state, &p.session)?;
    Ok(Json(Count {
        count: s.store.group_count(),
    }))
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

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "120363000000000001@g.us", "subject": "Team", "description": "", "size": 2, "participants": [{"id": "11111111111@c.us", "role": "superadmin"}]}))]
pub struct JoinInfo {
    id: String,
    subject: String,
    description: String,
    size: usize,
    participants: Vec<GroupParticipant>,
}

fn invite_code(field: &str, s: Option<&str>) -> ApiResult<InviteCode> {
    let s = s.ok_or_else(|| ApiError::bad_request(format!("{field}: required")))?;
    InviteCode::parse(s).map_err(|e| field_err(field, e))
}

/// Preview the group an invite code leads to, without joining.
#[utoipa::path(get, path = "/api/{session}/groups/join-info", tag = "Groups", params(SessionPath, CodeQuery),
    responses((status = 200, body = JoinInfo), Errors))]
async fn join_info(
    State(state): State<AppState>,
    Path(p): Path<SessionPath>,
    Query(q): Query<CodeQuery>,
) -> ApiResult<Json<JoinInfo>> {
    working(&state, &p.session)?;
    let code = invite_code("code", q.code.as_deref())?;
    let g = state.groups.by_invite(&code)?;
    Ok(Json(JoinInfo {
        id: g.id.to_string(),
        subject: g.subject.clone(),
        description: g.description.clone(),
        size: g.participants.len(),
        participants: g.participants_view(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"code": "https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv"}))]
pub struct JoinRequestBody {
    /// The invite code or the invite URL.
    #[schema(pattern = "^((https?://)?chat\\.whatsapp\\.com/)?[A-Za-z0-9]{22}$")]
    code: String,
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
    Path(p): Path<SessionPath>,
    key: Key,
    Json(body): Json<JoinRequestBody>,
) -> ApiResult<Answer> {
    let s = working(&state, &p.session)?;
    let code = invite_code("code", Some(&body.code))?;
    let g = state.groups.by_invite(&code)?;
    let id = g.id.to_string();
    let render = key.render(StatusCode::OK, move |_: &Outcome| JoinAnswer { id });
    Ok(Answer(
        state
            .groups
            .mutate(&s, &g.id, Op::Join(code), render)
            .await?,
    ))
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true}))]
pub struct Success {
    success: bool,
}

/// Refresh the groups (nothing to refresh in the LOCAL engine).
#[utoipa::path(post, path = "/api/{session}/groups/refresh", tag = "Groups", params(SessionPath),
    responses((status = 200, body = Success), Errors))]
async fn refresh_groups(
    State(state): State<AppState>,
    Path(p): Path<SessionPath>,
) -> ApiResult<Json<Success>> {
    working(&state, &p.session)?;
    Ok(Json(Success { success: true }))
}

/// One group.
#[utoipa::path(get, path = "/api/{session}/groups/{id}", tag = "Groups", params(GroupPath),
    responses((status = 200, body = GroupInfo), Errors))]
async fn get_group(State(state): State<AppState>, Path(p): Path<GroupPath>) -> ApiResult<Response> {
    let (s, id) = group_path(&state, &p)?;
    let json = state.rendered.info_json(&state.groups, &s, &id)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// Delete the group (admins only): everyone is removed, then the group is gone.
#[utoipa::path(delete, path = "/api/{session}/groups/{id}", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Success), Errors))]
async fn delete_group(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
) -> ApiResult<Answer> {
    op_success(&state, &p, key, Op::Delete).await
}

/// Runs `op` and answers `{"success": true}`.
async fn op_success(state: &AppState, p: &GroupPath, key: Key, op: Op) -> ApiResult<Answer> {
    let (s, id) = group_path(state, p)?;
    let render = key.render(StatusCode::OK, |_: &Outcome| Success { success: true });
    Ok(Answer(state.groups.mutate(&s, &id, op, render).await?))
}

/// Leave the group. If the last admin leaves, the longest-standing participant becomes admin.
#[utoipa::path(post, path = "/api/{session}/groups/{id}/leave", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Success), Errors))]
async fn leave_group(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
) -> ApiResult<Answer> {
    op_success(&state, &p, key, Op::Leave).await
}

async fn op_true(
    state: &AppState,
    p: &GroupPath,
    key: Key,
    op: impl FnOnce() -> ApiResult<Op>,
) -> ApiResult<Answer> {
    let (s, id) = group_path(state, p)?;
    let op = op()?;
    let render = key.render(StatusCode::OK, |_: &Outcome| true);
    Ok(Answer(state.groups.mutate(&s, &id, op, render).await?))
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

/// Set the subject (1-100 characters). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/subject", tag = "Groups", params(GroupPath),
    request_body = SubjectBody, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_subject(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<SubjectBody>,
) -> ApiResult<Answer> {
    op_true(&state, &p, key, || {
        Ok(Op::SetSubject(subject_of("subject", &b.subject)?))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"description": "What this group is for"}))]
pub struct DescriptionBody {
    /// 0-2048 characters; empty clears.
    #[schema(max_length = 2048)]
    description: String,
}

/// Set the description (0-2048 characters; empty clears). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/description", tag = "Groups", params(GroupPath),
    request_body = DescriptionBody, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_description(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<DescriptionBody>,
) -> ApiResult<Answer> {
    op_true(&state, &p, key, || {
        let n = b.description.chars().count();
        if n > MAX_DESCRIPTION_CHARS {
            return Err(ApiError::bad_request(format!(
                "description: at most {MAX_DESCRIPTION_CHARS} characters (got {n})"
            )));
        }
        Ok(Op::SetDescription(b.description))
    })
    .await
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"url": "https://example.com/picture.jpg"}))]
pub struct PictureUrl {
    url: Option<String>,
}

/// The group picture's URL, or null.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/picture", tag = "Groups", params(GroupPath),
    responses((status = 200, body = PictureUrl), Errors))]
async fn get_picture(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<GroupPath>,
) -> ApiResult<Json<PictureUrl>> {
    let (s, id) = group_path(&state, &p)?;
    let g = state.groups.load(&s, &id)?;
    let url = GroupService::picture_path(s.name.as_str(), &g).map(|u| {
        if u.starts_with('/') {
            match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
                Some(host) => format!("http://{host}{u}"),
                None => u,
            }
        } else {
            u
        }
    });
    Ok(Json(PictureUrl { url }))
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"file": {"mimetype": "image/jpeg", "url": "https://example.com/picture.jpg"}}))]
pub struct PictureBody {
    #[serde(deserialize_with = "one_picture_file")]
    file: PictureFile,
}

/// Picks the variant by the key present, so that a wrong file says which keys it needs
/// (an untagged enum would only say that no variant matched).
fn one_picture_file<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PictureFile, D::Error> {
    use serde::de::Error;
    let v = serde_json::Value::deserialize(d)?;
    let has = |k: &str| v.get(k).is_some_and(|x| !x.is_null());
    match (v.is_object(), has("url"), has("data")) {
        (true, true, false) => UrlFile::deserialize(v).map(PictureFile::Url),
        (true, false, true) => DataFile::deserialize(v).map(PictureFile::Data),
        (true, _, _) => return Err(D::Error::custom("give exactly one of url or data")),
        (false, _, _) => return Err(D::Error::custom("expected an object")),
    }
    .map_err(D::Error::custom)
}

/// The picture: an external URL, or base64 bytes with their type (as WAHA's RemoteFile / BinaryFile).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PictureFile {
    Url(UrlFile),
    Data(DataFile),
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlFile {
    /// An external http or https URL, kept as given.
    #[schema(
        pattern = "^https?://((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*(\\.[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*)*)(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[!-~]*)?$"
    )]
    url: String,
    /// Accepted as WAHA clients send it; the URL is kept as given.
    #[allow(dead_code)]
    mimetype: Option<String>,
    #[allow(dead_code)]
    filename: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    /// Base64 image bytes (1 byte to 512 KiB decoded).
    #[schema(
        pattern = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/]{4})$",
        max_length = 699052
    )]
    data: String,
    /// Required; checked after parsing so that a missing one is a 400 naming `file.mimetype`.
    #[schema(pattern = "^image/(jpeg|png)$", required = true, value_type = String)]
    #[serde(default)]
    mimetype: Option<String>,
    /// Accepted as WAHA clients send it; only the bytes and their type are kept.
    #[allow(dead_code)]
    filename: Option<String>,
}

const MAX_PICTURE_BYTES: usize = 512 * 1024;

fn picture_of(f: PictureFile) -> ApiResult<NewPicture> {
    match f {
        PictureFile::Url(UrlFile { url, .. }) => {
            let u = reqwest::Url::parse(&url)
                .map_err(|e| ApiError::bad_request(format!("file.url: not a valid URL ({e})")))?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err(ApiError::bad_request(
                    "file.url: must be an http or https URL",
                ));
            }
            Ok(NewPicture::Url(url))
        }
        PictureFile::Data(DataFile { data, mimetype, .. }) => {
            let mimetype = mimetype.unwrap_or_default();
            if !matches!(mimetype.as_str(), "image/jpeg" | "image/png") {
                return Err(ApiError::bad_request(
                    "file.mimetype: must be image/jpeg or image/png",
                ));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.as_bytes())
                .map_err(|_| ApiError::bad_request("file.data: not valid base64"))?;
            if bytes.is_empty() || bytes.len() > MAX_PICTURE_BYTES {
                return Err(ApiError::bad_request(
                    "file.data: the image must be 1 byte to 512 KiB",
                ));
            }
            Ok(NewPicture::Bytes {
                mimetype,
                bytes: bytes.into(),
            })
        }
    }
}

/// Set the group picture from a URL or base64 data.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/picture", tag = "Groups", params(GroupPath),
    request_body = PictureBody, responses((status = 200, body = Success), Errors, BodyErrors))]
async fn set_picture(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<PictureBody>,
) -> ApiResult<Answer> {
    let pic = picture_of(b.file)?;
    op_success(&state, &p, key, Op::SetPicture(Some(pic))).await
}

/// Remove the group picture.
#[utoipa::path(delete, path = "/api/{session}/groups/{id}/picture", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Success), Errors))]
async fn delete_picture(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
) -> ApiResult<Answer> {
    op_success(&state, &p, key, Op::SetPicture(None)).await
}

/// The stored picture's bytes.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/picture/file", tag = "Groups", params(GroupPath),
    responses((status = 200, description = "The image", content_type = "image/jpeg", body = Vec<u8>), Errors))]
async fn picture_file(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
) -> ApiResult<Response> {
    let (s, id) = group_path(&state, &p)?;
    match state.groups.served_picture(&s, &id)? {
        Some(pic) => Ok(([(header::CONTENT_TYPE, pic.mimetype)], pic.bytes).into_response()),
        None => Err(ApiError::not_found(
            ErrorCode::PictureNotFound,
            format!("group {id} has no stored picture"),
        )),
    }
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

async fn setting(state: &AppState, p: &GroupPath, which: Setting) -> ApiResult<bool> {
    let (s, id) = group_path(state, p)?;
    Ok(which.get(&state.groups.load(&s, &id)?.settings))
}

/// Whether only admins may change the group info.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/settings/security/info-admin-only", tag = "Groups", params(GroupPath),
    responses((status = 200, body = AdminsOnly), Errors))]
async fn get_info_admin_only(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
) -> ApiResult<Json<AdminsOnly>> {
    Ok(Json(AdminsOnly {
        admins_only: setting(&state, &p, Setting::InfoAdminOnly).await?,
    }))
}

/// Only admins may change the group info (admins only). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/settings/security/info-admin-only", tag = "Groups", params(GroupPath),
    request_body = AdminsOnly, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_info_admin_only(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<AdminsOnly>,
) -> ApiResult<Answer> {
    op_true(&state, &p, key, || {
        Ok(Op::SetSetting(Setting::InfoAdminOnly, b.admins_only))
    })
    .await
}

/// Whether only admins may send messages.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/settings/security/messages-admin-only", tag = "Groups", params(GroupPath),
    responses((status = 200, body = AdminsOnly), Errors))]
async fn get_messages_admin_only(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
) -> ApiResult<Json<AdminsOnly>> {
    Ok(Json(AdminsOnly {
        admins_only: setting(&state, &p, Setting::MessagesAdminOnly).await?,
    }))
}

/// Only admins may send messages (admins only). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/settings/security/messages-admin-only", tag = "Groups", params(GroupPath),
    request_body = AdminsOnly, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_messages_admin_only(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<AdminsOnly>,
) -> ApiResult<Answer> {
    op_true(&state, &p, key, || {
        Ok(Op::SetSetting(Setting::MessagesAdminOnly, b.admins_only))
    })
    .await
}

/// Whether members may add new members.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/settings/security/member-add-mode", tag = "Groups", params(GroupPath),
    responses((status = 200, body = MemberAddMode), Errors))]
async fn get_member_add_mode(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
) -> ApiResult<Json<MemberAddMode>> {
    Ok(Json(MemberAddMode {
        members_can_add_new_member: setting(&state, &p, Setting::MembersCanAdd).await?,
    }))
}

/// Let members add new members (admins only). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/settings/security/member-add-mode", tag = "Groups", params(GroupPath),
    request_body = MemberAddMode, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_member_add_mode(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<MemberAddMode>,
) -> ApiResult<Answer> {
    op_true(&state, &p, key, || {
        Ok(Op::SetSetting(
            Setting::MembersCanAdd,
            b.members_can_add_new_member,
        ))
    })
    .await
}

/// Whether new members need an admin's approval.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/settings/security/membership-approval", tag = "Groups", params(GroupPath),
    responses((status = 200, body = MembershipApproval), Errors))]
async fn get_membership_approval(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
) -> ApiResult<Json<MembershipApproval>> {
    Ok(Json(MembershipApproval {
        new_members_approval_required: setting(&state, &p, Setting::ApprovalRequired).await?,
    }))
}

/// Require an admin's approval for new members (admins only). Returns `true`.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/settings/security/membership-approval", tag = "Groups", params(GroupPath),
    request_body = MembershipApproval, responses((status = 200, body = bool, content_type = "application/json", example = json!(true)), Errors, BodyErrors))]
async fn set_membership_approval(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<MembershipApproval>,
) -> ApiResult<Answer> {
    op_true(&state, &p, key, || {
        Ok(Op::SetSetting(
            Setting::ApprovalRequired,
            b.new_members_approval_required,
        ))
    })
    .await
}

async fn participants(state: &AppState, p: &GroupPath) -> ApiResult<Json<Vec<GroupParticipant>>> {
    let (s, id) = group_path(state, p)?;
    Ok(Json(state.groups.load(&s, &id)?.participants_view()))
}

/// The participants with their roles.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/participants", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Vec<GroupParticipant>), Errors))]
async fn get_participants(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
) -> ApiResult<Json<Vec<GroupParticipant>>> {
    participants(&state, &p).await
}

/// The participants with their roles (same normalised shape).
#[utoipa::path(get, path = "/api/{session}/groups/{id}/participants/v2", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Vec<GroupParticipant>), Errors))]
async fn get_participants_v2(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
) -> ApiResult<Json<Vec<GroupParticipant>>> {
    participants(&state, &p).await
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"participants": [{"id": "22222222222@c.us"}]}))]
pub struct ParticipantsBody {
    #[serde(deserialize_with = "crate::api::extract::objects")]
    #[schema(min_items = 1, max_items = 1024)]
    participants: Vec<ParticipantRef>,
}

async fn batch<T: Serialize + 'static>(
    state: &AppState,
    p: &GroupPath,
    key: Key,
    body: &ParticipantsBody,
    op: fn(Vec<ContactId>) -> Op,
    answer: fn(&Outcome) -> T,
) -> ApiResult<Answer> {
    let (s, id) = group_path(state, p)?;
    let ids = contact_ids(&body.participants)?;
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "participants: name at least one participant",
        ));
    }
    let render = key.render(StatusCode::OK, answer);
    Ok(Answer(state.groups.mutate(&s, &id, op(ids), render).await?))
}

/// Add participants (admins; or any member with membersCanAddNewMember).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/participants/add", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<ParticipantResult>), Errors, BodyErrors))]
async fn add_participants(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<ParticipantsBody>,
) -> ApiResult<Answer> {
    batch(&state, &p, key, &b, Op::Add, |o| o.results.clone()).await
}

/// Remove participants (admins only; never the superadmin).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/participants/remove", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<ParticipantResult>), Errors, BodyErrors))]
async fn remove_participants(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<ParticipantsBody>,
) -> ApiResult<Answer> {
    batch(&state, &p, key, &b, Op::Remove, |o| o.results.clone()).await
}

/// Promote participants to admins (admins only).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/admin/promote", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<ParticipantResult>), Errors, BodyErrors))]
async fn promote(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<ParticipantsBody>,
) -> ApiResult<Answer> {
    batch(&state, &p, key, &b, Op::Promote, |o| o.results.clone()).await
}

/// Demote admins to participants (admins only; never the superadmin).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/admin/demote", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<ParticipantResult>), Errors, BodyErrors))]
async fn demote(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<ParticipantsBody>,
) -> ApiResult<Answer> {
    batch(&state, &p, key, &b, Op::Demote, |o| o.results.clone()).await
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"requesterId": "33333333333@c.us", "addedById": null, "requestMethod": "invite_link", "timestamp": 1763769600}))]
pub struct JoinRequestInfo {
    requester_id: String,
    added_by_id: Option<String>,
    request_method: String,
    timestamp: u64,
}

/// Pending join requests (admins only).
#[utoipa::path(get, path = "/api/{session}/groups/{id}/participants/join-requests", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Vec<JoinRequestInfo>), Errors))]
async fn join_requests(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
) -> ApiResult<Json<Vec<JoinRequestInfo>>> {
    let (s, id) = group_path(&state, &p)?;
    let g = state.groups.load(&s, &id)?;
    if !g.role_of(&s.me_id()).is_some_and(|r| r.is_admin()) {
        return Err(ApiError::forbidden_as(
            ErrorCode::NotAdmin,
            "only admins can list join requests",
        ));
    }
    Ok(Json(
        g.join_requests
            .iter()
            .map(|r| JoinRequestInfo {
                requester_id: r.requester.to_string(),
                added_by_id: r.added_by.as_ref().map(ToString::to_string),
                request_method: r.method.clone(),
                timestamp: r.timestamp,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"requesterId": "33333333333@c.us", "success": true}))]
pub struct RequestResult {
    requester_id: String,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<crate::groups::rules::ResultError>,
}

fn request_results(results: &[ParticipantResult]) -> Vec<RequestResult> {
    results
        .iter()
        .map(|r| RequestResult {
            requester_id: r.id.clone(),
            success: r.success,
            error: r.error.clone(),
        })
        .collect()
}

/// Approve join requests (admins only).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/participants/join-requests/approve", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<RequestResult>), Errors, BodyErrors))]
async fn approve_requests(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<ParticipantsBody>,
) -> ApiResult<Answer> {
    batch(&state, &p, key, &b, Op::Approve, |o| {
        request_results(&o.results)
    })
    .await
}

/// Reject join requests (admins only).
#[utoipa::path(post, path = "/api/{session}/groups/{id}/participants/join-requests/reject", tag = "Groups", params(GroupPath),
    request_body = ParticipantsBody, responses((status = 200, body = Vec<RequestResult>), Errors, BodyErrors))]
async fn reject_requests(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
    Json(b): Json<ParticipantsBody>,
) -> ApiResult<Answer> {
    batch(&state, &p, key, &b, Op::Reject, |o| {
        request_results(&o.results)
    })
    .await
}

/// The invite code (admins only).
#[utoipa::path(get, path = "/api/{session}/groups/{id}/invite-code", tag = "Groups", params(GroupPath),
    responses((status = 200, body = String, content_type = "application/json", example = json!("AbCdEfGhIjKlMnOpQrStUv")), Errors))]
async fn get_invite_code(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
) -> ApiResult<Json<String>> {
    let (s, id) = group_path(&state, &p)?;
    let g = state.groups.load(&s, &id)?;
    if !g.role_of(&s.me_id()).is_some_and(|r| r.is_admin()) {
        return Err(ApiError::forbidden_as(
            ErrorCode::NotAdmin,
            "only admins can read the invite code",
        ));
    }
    Ok(Json(g.invite.to_string()))
}

/// Revoke the invite code (admins only): the old one stops working; answers the new one.
#[utoipa::path(post, path = "/api/{session}/groups/{id}/invite-code/revoke", tag = "Groups", params(GroupPath),
    responses((status = 200, body = String, content_type = "application/json", example = json!("AbCdEfGhIjKlMnOpQrStUv")), Errors))]
async fn revoke_invite_code(
    State(state): State<AppState>,
    Path(p): Path<GroupPath>,
    key: Key,
) -> ApiResult<Answer> {
    let (s, id) = group_path(&state, &p)?;
    let code = InviteCode::random();
    let answer = code.to_string();
    let render = key.render(StatusCode::OK, move |_: &Outcome| answer);
    let op = Op::RevokeInvite(code);
    Ok(Answer(state.groups.mutate(&s, &id, op, render).await?))
}
