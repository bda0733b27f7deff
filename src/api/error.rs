//! What an `ApiError` is in HTTP: its status, the one JSON shape every error answers with
//! (`{statusCode, error, message, code, ...}`), and `Retry-After`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::SessionNotFound(_)
            | Self::SessionNotWorking { .. }
            | Self::SessionExists(_)
            | Self::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_)
            | Self::Overloaded
            | Self::StorageUnavailable(_)
            | Self::GroupCatchingUp(_)
            | Self::NodeUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    /// Seconds after which a retry may work, sent as `Retry-After`.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::Overloaded | Self::StorageUnavailable(_) | Self::GroupCatchingUp(_) => Some(1),
            Self::StorageFull(_) | Self::NodeUnavailable { .. } => Some(5),
            _ => None,
        }
    }

    /// The JSON body every error answers with.
    pub fn body(&self) -> Value {
        let status = self.status();
        let message = match self {
            Self::Internal(_) => "Internal server error".to_owned(),
            other => other.to_string(),
        };
        let mut m = Map::new();
        m.insert("statusCode".into(), status.as_u16().into());
        m.insert(
            "error".into(),
            status.canonical_reason().unwrap_or("Error").into(),
        );
        m.insert("message".into(), message.into());
        m.insert("code".into(), self.code().into());
        match self {
            Self::SessionNotFound(name) | Self::SessionExists(name) => {
                m.insert("session".into(), name.clone().into());
            }
            Self::SessionNotWorking { name, status } => {
                m.insert("session".into(), name.clone().into());
                m.insert("status".into(), status.clone().into());
                m.insert("expected".into(), serde_json::json!(["WORKING"]));
            }
            Self::NodeUnavailable { node, .. } => {
                m.insert("node".into(), node.clone().into());
            }
            _ => {}
        }
        Value::Object(m)
    }
}

/// Marks a response as carrying an internal fault, for the middleware to log once.
#[derive(Clone, Debug)]
pub struct InternalFault(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, Self::Overloaded) {
            crate::metrics::overloaded();
        }
        let mut resp = (self.status(), axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after() {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if let Self::Internal(detail) = &self {
            resp.extensions_mut().insert(InternalFault(detail.clone()));
        }
        resp
    }
}

/// The documented error shape (for OpenAPI).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"statusCode": 404, "error": "Not Found", "message": "Group 120363000000000001@g.us not found in session \"default\"", "code": "group_not_found"}))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub status_code: u16,
    pub error: String,
    pub message: String,
    pub code: String,
    /// The session, for session errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The session's status, for `session_not_working`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Vec<String>>,
    /// Cluster mode: the id of the node that holds the session, for `node_unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}
