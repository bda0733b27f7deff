//! Our own Json / Path / Query extractors: their rejections answer in the one error shape.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

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
