//! The dashboard (issue #17): a small page embedded in the binary that shows sessions, groups,
//! deliveries and events. It holds no secret and reads nothing itself: the page calls the
//! public `/api/` with the key the user enters, so it is open like the Swagger UI and stays
//! out of the OpenAPI document.

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::{ApiError, ErrorCode};

/// Only files served from this origin run or style the page, and it talks only to this origin:
/// no inline script, so an API value that slipped into markup could not run.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its name under `/dashboard/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!($name),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("sessions.js", JS),
    asset!("groups.js", JS),
    asset!("deliveries.js", JS),
    asset!("events.js", JS),
];

/// `/dashboard`, `/dashboard/` and `/dashboard/{file}`; unknown files are 404 in the API's shape.
pub fn router() -> Router {
    Router::new()
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/{file}", get(file))
        .layer(axum::middleware::map_response(secure))
}

async fn index() -> Response {
    serve("index.html")
}

async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => ([(CONTENT_TYPE, a.content_type)], a.body).into_response(),
        None => ApiError::not_found(
            ErrorCode::RouteNotFound,
            format!("no route for /dashboard/{name}"),
        )
        .into_response(),
    }
}

/// Every dashboard answer, a 404 included, carries the policy; `no-cache` so that a new binary's
/// page is never mixed with an old script.
async fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
