//! Everything a request can end in other than success, and every `code` it can carry. What each
//! means in HTTP (its status, the JSON shape, `Retry-After`) is `crate::api::error`'s to say: this
//! module speaks no HTTP, so the domain can return it.

use serde::Serialize;

use crate::store::{FaultKind, StoreError};

/// Every `code` an error answer can carry: the one list, so that a code is never misspelt and a
/// client can see them all in one place. Serialised as the snake_case string clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    /// The session's account is not an admin of the group.
    NotAdmin,
    /// Only admins may change the group's info (`infoAdminOnly` is on).
    InfoAdminOnly,
    RouteNotFound,
    SessionNotFound,
    GroupNotFound,
    InviteNotFound,
    PictureNotFound,
    DeliveryNotFound,
    /// A lid that names no account the session (or the gateway, for a participant) knows.
    LidNotFound,
    MethodNotAllowed,
    AlreadyMember,
    GroupFull,
    JoinRequestPending,
    /// Another session already has this account.
    AccountInUse,
    /// The session's account cannot change while it is in groups.
    SessionInGroups,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    PayloadTooLarge,
    UnsupportedMediaType,
    SessionNotWorking,
    SessionExists,
    InternalError,
    Unavailable,
    Overloaded,
    StorageFull,
    StorageUnavailable,
    GroupCatchingUp,
    /// The id names no community the session's account is in.
    CommunityNotFound,
    /// Only community admins may link, unlink, rename, describe or delete it.
    NotCommunityAdmin,
    /// Linking needs admin in the linked group too.
    NotGroupAdmin,
    /// A group is in at most one community.
    InOtherCommunity,
    /// A community holds at most 100 linked groups.
    CommunityFull,
    /// Who is in a community or its announcement group follows the community.
    CommunityManaged,
    /// Cluster mode: the node that holds the session does not answer.
    NodeUnavailable,
}

impl ErrorCode {
    /// The code as sent in error bodies.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotAdmin => "not_admin",
            Self::InfoAdminOnly => "info_admin_only",
            Self::RouteNotFound => "route_not_found",
            Self::SessionNotFound => "session_not_found",
            Self::GroupNotFound => "group_not_found",
            Self::InviteNotFound => "invite_not_found",
            Self::PictureNotFound => "picture_not_found",
            Self::DeliveryNotFound => "delivery_not_found",
            Self::LidNotFound => "lid_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::AlreadyMember => "already_member",
            Self::GroupFull => "group_full",
            Self::JoinRequestPending => "join_request_pending",
            Self::AccountInUse => "account_in_use",
            Self::SessionInGroups => "session_in_groups",
            Self::IdempotencyInProgress => "idempotency_in_progress",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::SessionNotWorking => "session_not_working",
            Self::SessionExists => "session_exists",
            Self::InternalError => "internal_error",
            Self::Unavailable => "unavailable",
            Self::Overloaded => "overloaded",
            Self::StorageFull => "storage_full",
            Self::StorageUnavailable => "storage_unavailable",
            Self::GroupCatchingUp => "group_catching_up",
            Self::CommunityNotFound => "community_not_found",
            Self::NotCommunityAdmin => "not_community_admin",
            Self::NotGroupAdmin => "not_group_admin",
            Self::InOtherCommunity => "in_other_community",
            Self::CommunityFull => "community_full",
            Self::CommunityManaged => "community_managed",
            Self::NodeUnavailable => "node_unavailable",
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The variants that carry a code keep it as the string it is sent as.
impl From<ErrorCode> for &'static str {
    fn from(code: ErrorCode) -> Self {
        code.as_str()
    }
}

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
    /// Cluster mode: the session's node (`node`, its id) does not answer.
    #[error("{message}")]
    NodeUnavailable { node: String, message: String },
    /// An `Idempotency-Key` sent again with another method, path or body.
    #[error("this Idempotency-Key was used for another request (method, path or body differ); use a new key")]
    KeyReused,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            code: ErrorCode::BadRequest.as_str(),
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::forbidden_as(ErrorCode::Forbidden, message)
    }
    /// A 403 with a code more precise than `forbidden` (`not_admin`, ...).
    pub fn forbidden_as(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Forbidden {
            message: message.into(),
            code: code.as_str(),
        }
    }
    /// `code`: an `ErrorCode` (a literal still compiles, for `groups::rules`).
    pub fn not_found(code: impl Into<&'static str>, message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
            code: code.into(),
        }
    }
    /// `code`: an `ErrorCode` (a literal still compiles, for `groups::rules`).
    pub fn conflict(code: impl Into<&'static str>, message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            code: code.into(),
        }
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    pub fn code(&self) -> &'static str {
        let code = match self {
            Self::BadRequest { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. } => return code,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Self::SessionNotFound(_) => ErrorCode::SessionNotFound,
            Self::SessionNotWorking { .. } => ErrorCode::SessionNotWorking,
            Self::SessionExists(_) => ErrorCode::SessionExists,
            Self::Internal(_) => ErrorCode::InternalError,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Overloaded => ErrorCode::Overloaded,
            Self::StorageFull(_) => ErrorCode::StorageFull,
            Self::StorageUnavailable(_) => ErrorCode::StorageUnavailable,
            Self::GroupCatchingUp(_) => ErrorCode::GroupCatchingUp,
            Self::KeyReused => ErrorCode::IdempotencyKeyReused,
            Self::NodeUnavailable { .. } => ErrorCode::NodeUnavailable,
        };
        code.as_str()
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

pub type ApiResult<T> = Result<T, ApiError>;
