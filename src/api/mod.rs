//! The HTTP surface: router, OpenAPI document, auth, error fallbacks, Swagger UI.

pub mod backup;
pub mod cluster;
pub mod communities;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod extract;
pub mod groups;
pub mod idempotency;
pub mod lids;
pub mod metrics;
pub mod path;
pub mod query;
mod refusal;
pub mod render;
pub mod request_id;
pub mod schemas;
pub mod server;
pub mod sessions;
pub mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ApiError, ErrorCode};
use crate::groups::service::GroupService;
use crate::ids::IdError;
use crate::sessions::Registry;
use error::{ErrorBody, InternalFault};

/// Everything a handler needs, behind one `Arc`: axum clones the state into every layer of a
/// route's service stack for each request, and with a handle per field those clones (and their
/// drops) took half the gateway's CPU on a cached `GET` (docs/benchmarks.md, "The read path").
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    /// Sessions and their stores; shared by the API, the group service and the dispatcher.
    pub registry: Arc<Registry>,
    /// The one write path for group state.
    pub groups: Arc<GroupService>,
    /// GroupInfo JSON rendered once per stored version of a group, shared by every request.
    pub rendered: Arc<render::RenderCache>,
    /// The API key check; `Arc` because it is read-only and shared by every request.
    pub auth: Arc<Auth>,
    /// Start time, for `/api/server/status`.
    pub started: Instant,
    pub started_ms: u64,
    /// Health of the dispatcher: set by it, read by `/health`.
    pub dispatcher: crate::webhooks::Handle,
    /// Permits for requests in progress under /api/ (`WAGATE_MAX_INFLIGHT`); a request that
    /// finds none left is answered 503 `overloaded` at once.
    pub inflight: Arc<tokio::sync::Semaphore>,
    /// Requests with an `Idempotency-Key` in progress, and where created sessions keep their
    /// create's answer.
    pub idempotency: Arc<idempotency::Idempotency>,
    /// `/metrics` needs the API key (`WAGATE_METRICS_KEY`); else it is open like `/ping`.
    pub metrics_key: bool,
    /// Cluster mode (`WAGATE_NATS_URL`): placement and forwarding; `None` on a single node.
    pub cluster: cluster::Node,
}

/// How requests prove they may use the API.
pub enum Auth {
    Open,
    /// sha512 of the key: comparing digests keeps the comparison constant-time and length-independent.
    Key([u8; 64]),
}

impl Auth {
    /// From a plain key or `sha512:<hex>`.
    pub fn from_key(key: &str) -> Result<Self, String> {
        if let Some(hex) = key.strip_prefix("sha512:") {
            let bytes = decode_hex(hex)
                .filter(|b| b.len() == 64)
                .ok_or("WAHA_API_KEY: sha512: must be followed by 128 hex digits")?;
            let mut d = [0u8; 64];
            d.copy_from_slice(&bytes);
            Ok(Self::Key(d))
        } else {
            Ok(Self::Key(Sha512::digest(key.as_bytes()).into()))
        }
    }

    fn allows(&self, given: Option<&[u8]>) -> bool {
        match self {
            Auth::Open => true,
            Auth::Key(want) => given.is_some_and(|g| {
                let d: [u8; 64] = Sha512::digest(g).into();
                bool::from(d.ct_eq(want))
            }),
        }
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// A 400 that names the field an id came from.
pub fn field_err(field: &str, e: IdError) -> ApiError {
    ApiError::bad_request(format!("{field}: {}", e.0))
}

/// The errors any session-scoped operation can answer with.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Errors {
    /// Invalid input; the message names the field.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// Missing or wrong API key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The session's account lacks the right; the message names the rule.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Unknown group, participant, code or delivery.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Conflict: already a member, request pending, ...
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Session missing (`session_not_found`) or not WORKING (`session_not_working`).
    #[response(status = 422)]
    Unprocessable(ErrorBody),
}

/// The extra errors of an operation that takes a JSON body.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    /// The body is larger than 1 MiB.
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// The body is not `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
}

/// The one error of an operation that needs only the API key.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum KeyErrors {
    /// Missing or wrong API key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "wagate", description = "A WAHA-compatible WhatsApp session gateway. Built-in engine LOCAL: groups live in the gateway's own store; every change is delivered to webhooks, signed and retried."),
    modifiers(&Security),
    security(("api_key" = [])),
    tags(
        (name = "Sessions", description = "Sessions: one account each, as WAHA"),
        (name = "Groups", description = "Groups of a session's account"),
        (name = "Lids", description = "Linked ids (@lid) and phone numbers of the accounts a session knows"),
        (name = "Communities", description = "Communities: parent groups that link groups and own an announcement group"),
        (name = "Events", description = "The session's event log and webhook deliveries"),
        (name = "Server", description = "Server information"),
    ),
    components(schemas(ErrorBody, crate::sessions::config::WebhookConfig))
)]
pub struct ApiDoc;

/// The router's API routes together with the OpenAPI document generated from them.
pub fn api_parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(server::router())
        .merge(cluster::router())
        .merge(backup::router())
        .merge(sessions::router())
        .merge(groups::router())
        .merge(lids::router())
        .merge(communities::router())
        .merge(events::router())
        .merge(webhooks::router())
        .split_for_parts();
    idempotency::document(&mut doc);
    (router, doc)
}

/// The OpenAPI document as served (and committed as `openapi/openapi.json`).
pub fn openapi_json() -> String {
    let (_, doc) = api_parts();
    spec_json(&doc)
}

/// `doc` with what utoipa cannot say: the `webhooks` section.
fn spec_value(doc: &utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut value = serde_json::to_value(doc).unwrap_or_default();
    schemas::webhooks::document(&mut value);
    value
}

fn spec_json(doc: &utoipa::openapi::OpenApi) -> String {
    serde_json::to_string_pretty(&spec_value(doc)).unwrap_or_default()
}

/// The whole app: API, Swagger UI, dashboard, auth, limits, error shape for everything.
pub fn app(state: AppState) -> Router {
    // Installed before the first request, so that nothing recorded before a scrape is lost.
    let _ = crate::metrics::handle();
    let (api, doc) = api_parts();
    let spec = spec_json(&doc);
    let api = api
        // Only where a route and method matched: a 404 or 405 stays what it is, key or not.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::keyed,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside the in-flight limit and the key check: a forwarded request is checked here too.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            cluster::route,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_inflight,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), require_key));
    let spec_route = get(move || {
        let spec = spec.clone();
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                spec,
            )
        }
    });
    let mut metrics_route = get(metrics::exposition);
    if state.metrics_key {
        metrics_route =
            metrics_route.layer(middleware::from_fn_with_state(state.clone(), require_key));
    }
    let metrics = Router::new()
        .route("/metrics", metrics_route)
        .with_state(state.clone());
    Router::new()
        .merge(SwaggerUi::new("/swagger").external_url_unchecked("/-json", spec_value(&doc)))
        .merge(metrics)
        .route("/", get(|| async { Redirect::temporary("/swagger/") }))
        // Open like the Swagger UI, and not in the document: the page's own API calls carry the key.
        .merge(dashboard::router())
        .route("/openapi.json", spec_route)
        .merge(api.with_state(state))
        .layer(DefaultBodyLimit::max(1024 * 1024))
        // A client that sends its body slower than this holds a permit and a task for nothing.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(30),
        ))
        .layer(middleware::from_fn(log_faults))
        .layer(middleware::from_fn(metrics::track))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(middleware::from_fn(request_id::tag))
}

const OPEN_PATHS: &[&str] = &["/ping"];

async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    // Read from the request in place: the HeaderMap and Uri extractors would clone both for
    // every request.
    let given = match req.headers().get("x-api-key") {
        Some(v) => Some(v.as_bytes().to_vec()),
        // Percent-decoded, so a key with reserved characters works when a client URL-encodes it.
        None => axum::extract::Query::<Vec<(String, String)>>::try_from_uri(req.uri())
            .ok()
            .and_then(|q| {
                q.0.into_iter()
                    .find_map(|(k, v)| (k == "x-api-key").then(|| v.into_bytes()))
            }),
    };
    if state.auth.allows(given.as_deref()) {
        next.run(req).await
    } else {
        let msg = if given.is_some() {
            "the API key is wrong"
        } else {
            "send the API key in the X-Api-Key header"
        };
        ApiError::Unauthorized(msg.into()).into_response()
    }
}

/// At most `WAGATE_MAX_INFLIGHT` requests in progress; beyond it 503 `overloaded` with
/// `Retry-After: 1`, before any store is touched. `/ping` and `/health` are never limited, so
/// that an operator can see the gateway alive under a flood.
async fn limit_inflight(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&req.uri().path()) || req.uri().path() == "/health" {
        return next.run(req).await;
    }
    match state.inflight.clone().try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => ApiError::Overloaded.into_response(),
    }
}

/// Logs each internal fault once, with its detail; the client saw only a generic message.
async fn log_faults(method: Method, uri: Uri, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if let Some(InternalFault(detail)) = resp.extensions().get::<InternalFault>() {
        tracing::error!(%method, path = %uri.path(), %detail, "request failed");
    }
    resp
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(
        ErrorCode::RouteNotFound,
        format!("no route for {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let refused = ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()));
    // The router lists every method of a route; one path answers fewer than its route has.
    match sessions::allow_of(uri.path()) {
        Some(allow) => ([(axum::http::header::ALLOW, allow)], refused).into_response(),
        None => refused.into_response(),
    }
}
