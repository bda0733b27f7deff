//! The session a path names, as extractors: its name, the session (it exists), the session
//! WORKING. A bad name is a 400 naming `session`; a missing or stopped session, today's 422.

use std::sync::Arc;

use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::Target;
use super::{field_err, AppState};
use crate::error::ApiResult;
use crate::ids::SessionName;
use crate::sessions::Session;

/// `{session}` as sent; documents the parameter of every path under a session.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// Session name.
    #[param(example = "default", pattern = "^[a-zA-Z0-9_-]{1,54}$")]
    pub session: String,
}

/// `{session}`, parsed.
fn session_name(text: &str) -> ApiResult<SessionName> {
    SessionName::parse(text).map_err(|e| field_err("session", e))
}

impl Target for SessionName {
    type Path = SessionPath;
    fn resolve(path: SessionPath, _: &AppState) -> ApiResult<Self> {
        session_name(&path.session)
    }
}

/// The session the path names; 422 `session_not_found` when there is none.
pub struct KnownSession(pub Arc<Session>);

impl KnownSession {
    /// The session named `text`.
    pub fn named(text: &str, state: &AppState) -> ApiResult<Self> {
        let name = session_name(text)?;
        Ok(Self(state.registry.require(&name)?))
    }
}

impl Target for KnownSession {
    type Path = SessionPath;
    fn resolve(path: SessionPath, state: &AppState) -> ApiResult<Self> {
        Self::named(&path.session, state)
    }
}

/// The session the path names, WORKING; 422 `session_not_found` or `session_not_working`.
pub struct WorkingSession(pub Arc<Session>);

impl WorkingSession {
    /// The session named `text`, WORKING.
    pub fn named(text: &str, state: &AppState) -> ApiResult<Self> {
        let KnownSession(session) = KnownSession::named(text, state)?;
        session.require_working()?;
        Ok(Self(session))
    }
}

impl Target for WorkingSession {
    type Path = SessionPath;
    fn resolve(path: SessionPath, state: &AppState) -> ApiResult<Self> {
        Self::named(&path.session, state)
    }
}

/// Makes `Target`s extractors on their own, for handlers that take nothing but the path.
macro_rules! from_path {
    ($($t:ty),*) => {$(
        impl axum::extract::FromRequestParts<$crate::api::AppState> for $t {
            type Rejection = $crate::error::ApiError;
            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                state: &$crate::api::AppState,
            ) -> $crate::error::ApiResult<Self> {
                $crate::api::extract::target(parts, state).await
            }
        }
    )*};
}

pub(crate) use from_path;

from_path!(SessionName, KnownSession, WorkingSession);
