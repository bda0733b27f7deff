//! A group's picture: its URL, set it from a URL or base64 bytes, remove it, and the stored bytes.

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{success, GroupAt, GroupPath, Success};
use crate::api::extract::{At, Input, Json};
use crate::api::idempotency::{Answer, Key};
use crate::api::{AppState, BodyErrors, Errors};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::groups::model::NewPicture;
use crate::groups::rules::Op;
use crate::groups::service::GroupService;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_picture, set_picture, delete_picture))
        .routes(routes!(picture_file))
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"url": "https://example.com/picture.jpg"}))]
pub struct PictureUrl {
    url: Option<String>,
}

/// Where the request was sent (its `Host`), to turn the gateway's own paths into URLs.
pub struct Origin(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let host = parts.headers.get(header::HOST);
        Ok(Self(host.and_then(|h| h.to_str().ok()).map(str::to_owned)))
    }
}

impl Origin {
    /// `url` as given, or, for a path of this gateway, the URL this client reaches it at.
    fn url(&self, url: String) -> String {
        match &self.0 {
            Some(host) if url.starts_with('/') => format!("http://{host}{url}"),
            _ => url,
        }
    }
}

/// The group picture's URL, or null.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/picture", tag = "Groups", params(GroupPath),
    responses((status = 200, body = PictureUrl), Errors))]
async fn get_picture(
    State(state): State<AppState>,
    origin: Origin,
    g: GroupAt,
) -> ApiResult<Json<PictureUrl>> {
    let group = state.groups.load(&g.session, &g.id)?;
    let path = GroupService::picture_path(g.session.name.as_str(), &group);
    Ok(Json(PictureUrl {
        url: path.map(|p| origin.url(p)),
    }))
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

/// The picture a body asks for: the URL checked, or the bytes decoded and checked.
fn picture_of(f: PictureFile) -> ApiResult<NewPicture> {
    match f {
        PictureFile::Url(UrlFile { url, .. }) => url_picture(url),
        PictureFile::Data(DataFile { data, mimetype, .. }) => {
            data_picture(&data, mimetype.unwrap_or_default())
        }
    }
}

/// An external picture: any http or https URL, kept as given.
fn url_picture(url: String) -> ApiResult<NewPicture> {
    let u = reqwest::Url::parse(&url)
        .map_err(|e| ApiError::bad_request(format!("file.url: not a valid URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(ApiError::bad_request(
            "file.url: must be an http or https URL",
        ));
    }
    Ok(NewPicture::Url(url))
}

/// Uploaded bytes: a JPEG or PNG type, valid base64, 1 byte to 512 KiB.
fn data_picture(data: &str, mimetype: String) -> ApiResult<NewPicture> {
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

/// The picture a body asks for, checked with the body: a bad picture is refused before the
/// session is looked up, as it always was.
pub struct Upload(NewPicture);

impl FromRequest<AppState> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        let Json(b) = Json::<PictureBody>::from_request(req, state).await?;
        picture_of(b.file).map(Self)
    }
}

impl Input for Upload {
    type Read = Upload;
    fn check(read: Upload) -> ApiResult<Self> {
        Ok(read)
    }
}

/// Set the group picture from a URL or base64 data.
#[utoipa::path(put, path = "/api/{session}/groups/{id}/picture", tag = "Groups", params(GroupPath),
    request_body = PictureBody, responses((status = 200, body = Success), Errors, BodyErrors))]
async fn set_picture(
    State(state): State<AppState>,
    key: Key,
    At(g, Upload(picture)): At<GroupAt, Upload>,
) -> ApiResult<Answer> {
    g.change(&state, Op::SetPicture(Some(picture)), success(&key))
        .await
}

/// Remove the group picture.
#[utoipa::path(delete, path = "/api/{session}/groups/{id}/picture", tag = "Groups", params(GroupPath),
    responses((status = 200, body = Success), Errors))]
async fn delete_picture(State(state): State<AppState>, g: GroupAt, key: Key) -> ApiResult<Answer> {
    g.change(&state, Op::SetPicture(None), success(&key)).await
}

/// The stored picture's bytes.
#[utoipa::path(get, path = "/api/{session}/groups/{id}/picture/file", tag = "Groups", params(GroupPath),
    responses((status = 200, description = "The image", content_type = "image/jpeg", body = Vec<u8>), Errors))]
async fn picture_file(State(state): State<AppState>, g: GroupAt) -> ApiResult<Response> {
    let not_stored = || {
        let message = format!("group {} has no stored picture", g.id);
        ApiError::not_found(ErrorCode::PictureNotFound, message)
    };
    let pic = state.groups.served_picture(&g.session, &g.id)?;
    let pic = pic.ok_or_else(not_stored)?;
    Ok(([(header::CONTENT_TYPE, pic.mimetype)], pic.bytes).into_response())
}
