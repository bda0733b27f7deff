//! The one error type of the API and its one JSON shape: `{statusCode, error, message, code, ...}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::store::{FaultKind, StoreError};

/// Everything a request can end in other than success. Each variant maps to one status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: the message names the field.
    #[error("{message}")]
    BadRequest { message: String, code: &'static str },
    #[error("{0}")]
    Unauthorized(String),
    /// The session's account lacks the right; the message names the rule.
    #[error("{message}")]
    Forbidden { message: String, code: &'static str },
    #[error("{message}")]
    NotFound { message: String, code: &'static str },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{message}")]
    Conflict { message: String, code: &'static str },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("session \"{0}\" does not exist")]
    SessionNotFound(String),
    #[error("session \"{name}\" is {status}, expected WORKING")]
    SessionNotWorking { name: String, status: String },
    #[error("session \"{0}\" already exists")]
    SessionExists(String),
    /// A real fault; the detail is logged once by the middleware, never sent.
    #[error("internal: {0}")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
    /// More work than the gateway can hold: answered at once, before any store is touched.
    #[error("the gateway is overloaded; retry in a second")]
    Overloaded,
    /// The disk is full: the change was not made.
    #[error("the store of this session is full: {0}; the change was not made")]
    StorageFull(String),
    /// A write or flush failed: the change was not made.
    #[error("the store of this session cannot write: {0}; the change was not made")]
    StorageUnavailable(String),
    /// An earlier change of the group is still being applied to a member's copy.
    #[error("{0}")]
    GroupCatchingUp(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            code: "bad_request",
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            message: message.into(),
            code: "forbidden",
        }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
            code,
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            code,
        }
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

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
            Self::SessionNotFound(_) | Self::SessionNotWorking { .. } | Self::SessionExists(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_)
            | Self::Overloaded
            | Self::StorageUnavailable(_)
            | Self::GroupCatchingUp(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::SessionNotFound(_) => "session_not_found",
            Self::SessionNotWorking { .. } => "session_not_working",
            Self::SessionExists(_) => "session_exists",
            Self::Internal(_) => "internal_error",
            Self::Unavailable(_) => "unavailable",
            Self::Overloaded => "overloaded",
            Self::StorageFull(_) => "storage_full",
            Self::StorageUnavailable(_) => "storage_unavailable",
            Self::GroupCatchingUp(_) => "group_catching_up",
        }
    }

    /// Seconds after which a retry may work, sent as `Retry-After`.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::Overloaded | Self::StorageUnavailable(_) | Self::GroupCatchingUp(_) => Some(1),
            Self::StorageFull(_) => Some(5),
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

impl From<sled::Error> for ApiError {
    fn from(e: sled::Error) -> Self {
        StoreError::from(e).into()
    }
}

/// A store error as the client sees it: a storage fault says so (507 / 503, the detail is
/// logged by the committer); the rest is an internal fault.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match (&e, e.fault()) {
            (StoreError::Overloaded, _) => Self::Overloaded,
            (_, Some(FaultKind::Full)) => Self::StorageFull("no space left on the device".into()),
            (_, Some(FaultKind::ReadOnly)) => {
                Self::StorageUnavailable("the data dir is read-only".into())
            }
            (_, Some(FaultKind::Io)) => Self::StorageUnavailable("an I/O error".into()),
            (_, None) => Self::internal(format!("store: {e}")),
        }
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
}

pub type ApiResult<T> = Result<T, ApiError>;
