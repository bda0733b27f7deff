//! Our own extractors: Json / Path / Query whose rejections answer in the one error shape, and
//! `At`, which reads a path's target and a request's input in the order the API answers in.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::error::{ApiError, ApiResult};

/// A JSON object body. Unlike `axum::Json` it refuses a top-level array, which serde would
/// otherwise read into a struct field by field (`[]` would create a session).
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected a body with content-type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body is larger than 1 MiB".into())
            } else {
                ApiError::bad_request(format!("body: {}", r.body_text()))
            }
        })?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request("body: expected a JSON object"));
        }
        let axum::Json(v) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Json(v))
    }
}

/// `application/json` or `application/<something>+json`, as `axum::Json` decides.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub use crate::json::{object, objects, whole};

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// What a path names, looked up in the state: a session (by name, existing, WORKING), a group of
/// a WORKING session, a delivery. `Path` holds the path's parameters as sent (only their UTF-8 is
/// checked); `resolve` parses and looks them up, each error naming its parameter.
pub trait Target: Sized + Send {
    type Path: DeserializeOwned + Send;
    fn resolve(path: Self::Path, state: &AppState) -> ApiResult<Self>;
}

/// A target read from the request head, for a `FromRequestParts` impl of a `Target`.
pub async fn target<P: Target>(parts: &mut Parts, state: &AppState) -> ApiResult<P> {
    let Path(path) = Path::<P::Path>::from_request_parts(parts, state).await?;
    P::resolve(path, state)
}

/// What a request carries besides its path (a query string, a body), taken in two steps: `Read`
/// is extracted before the path's target is looked up, so its syntax errors come first and no
/// session is held while a body arrives; `check` runs after, so a missing or stopped session is
/// named before a bad value.
pub trait Input: Sized + Send {
    type Read: Send;
    fn check(read: Self::Read) -> ApiResult<Self>;
}

/// A body that needs no check beyond its syntax.
impl<T: DeserializeOwned + Send> Input for Json<T> {
    type Read = Json<T>;
    fn check(read: Json<T>) -> ApiResult<Self> {
        Ok(read)
    }
}

/// A path's target and a request's input, checked in the order the API has always answered in:
/// the path's syntax, the input's syntax (a query string, a body), the target, the input's values.
pub struct At<P, T>(pub P, pub T);

impl<P, T, M> FromRequest<AppState, M> for At<P, T>
where
    P: Target,
    T: Input,
    T::Read: FromRequest<AppState, M, Rejection = ApiError>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        let (mut parts, body) = req.into_parts();
        let Path(path) = Path::<P::Path>::from_request_parts(&mut parts, state).await?;
        let read = T::Read::from_request(Request::from_parts(parts, body), state).await?;
        let target = P::resolve(path, state)?;
        Ok(At(target, T::check(read)?))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge("request body is larger than 1 MiB".into())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
                "expected a body with content-type: application/json".into(),
            ),
            _ => match r {
                JsonRejection::JsonDataError(e) => {
                    ApiError::bad_request(name_the_field(e.body_text().trim_start_matches(
                        "Failed to deserialize the JSON body into the target type: ",
                    )))
                }
                JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(format!(
                    "body: malformed JSON ({})",
                    e.body_text()
                        .trim_start_matches("Failed to parse the request body as JSON: ")
                )),
                other => ApiError::bad_request(format!("body: {}", other.body_text())),
            },
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(format!("path: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(format!(
            "query: {}",
            r.body_text()
                .trim_start_matches("Failed to deserialize query string: ")
        ))
    }
}

/// Makes a body error start with the field it is about (`participants[0].id: ...`,
/// `name: missing field`), as every other 400 does; `body:` when no field can be named.
fn name_the_field(text: &str) -> String {
    let (path, rest) = match text.split_once(": ") {
        Some((p, r))
            if !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c)) =>
        {
            (Some(p), r)
        }
        _ => (None, text),
    };
    let missing = rest
        .strip_prefix("missing field `")
        .and_then(|r| r.split_once('`'))
        .map(|(field, _)| field);
    match (path, missing) {
        (Some(p), Some(f)) => format!("{p}.{f}: {rest}"),
        (None, Some(f)) => format!("{f}: {rest}"),
        (Some(p), None) => format!("{p}: {rest}"),
        (None, None) => format!("body: {rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::name_the_field;

    #[test]
    fn body_errors_start_with_the_field_they_are_about() {
        assert_eq!(
            name_the_field("name: invalid type: integer `5`"),
            "name: invalid type: integer `5`"
        );
        assert_eq!(
            name_the_field("missing field `name` at line 1"),
            "name: missing field `name` at line 1"
        );
        assert_eq!(
            name_the_field("file: missing field `data` at line 1"),
            "file.data: missing field `data` at line 1"
        );
        assert_eq!(
            name_the_field("expected an object"),
            "body: expected an object"
        );
    }
}
