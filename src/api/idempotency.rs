//! `Idempotency-Key` on every write under `/api/` (contract §9): a retried request never acts
//! twice. The first request with a key runs as usual and its answer is kept — in the same store
//! transaction as its change (the handler renders it before the commit, see `crate::reply`), or,
//! for a request that changed nothing, right after it. A later request with the key and the same
//! method, path and body gets that answer again, byte for byte; with another request, 422; while
//! the first still runs, 409. 5xx answers are not kept.
//!
//! Where an answer is kept (the key's first byte says which scope it belongs to):
//! - `[0] key` in the session's own store: requests under `/api/{session}` and
//!   `/api/sessions/{session}`;
//! - `[1] key` in the store of the session a `POST /api/sessions` created (the gateway's scope,
//!   found through an index built at start-up), or in the gateway store when it created none;
//! - `[0] session [0] key` in the gateway store, for a session that does not exist (any more).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::ids::SessionName;
use crate::reply::{Render, Reply};
use crate::sessions::{now_ms, Registry};
use crate::store::{Remember, StoreResult};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The header of a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// The largest body a keyed request may have (the API's body limit).
const MAX_BODY: usize = 1024 * 1024;

/// Wall-clock time for key expiry, with an offset that tests move forward.
#[derive(Debug, Clone, Default)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    pub fn now_ms(&self) -> u64 {
        now_ms().saturating_add(self.0.load(Ordering::Relaxed))
    }

    /// Moves this clock `ms` ahead of the wall clock (tests).
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Whose keys a request uses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Session(SessionName),
    /// `POST /api/sessions`.
    Gateway,
}

impl Scope {
    /// The scope of a write, or `None` for a path that names no valid session (its answer is
    /// a 400 or 404 every time: there is nothing to keep).
    fn of(method: &Method, path: &str) -> Option<Self> {
        let mut segs = path.trim_start_matches("/api/").split('/');
        match (segs.next()?, segs.next()) {
            ("sessions", None) | ("sessions", Some("")) if method == Method::POST => {
                Some(Scope::Gateway)
            }
            // POST on `/api/sessions/{session}` is only WAHA's old start/stop/logout: for any
            // other name it is a 405, which a key must not turn into a kept answer or a 422.
            ("sessions", Some(name))
                if method == Method::POST
                    && segs.next().is_none()
                    && !super::sessions::OLD_OPERATIONS.contains(&name) =>
            {
                None
            }
            ("sessions", Some(name)) => SessionName::parse(name).ok().map(Scope::Session),
            ("server", _) => None,
            (name, _) => SessionName::parse(name).ok().map(Scope::Session),
        }
    }

    /// The key as kept in the scope's own store (a session's, or a created session's).
    fn own_key(&self, key: &str) -> Vec<u8> {
        let kind = match self {
            Scope::Session(_) => 0,
            Scope::Gateway => 1,
        };
        [&[kind][..], key.as_bytes()].concat()
    }

    /// The key as kept in the gateway store.
    fn gateway_key(&self, key: &str) -> Vec<u8> {
        match self {
            Scope::Session(name) => [&[0], name.as_str().as_bytes(), &[0], key.as_bytes()].concat(),
            Scope::Gateway => self.own_key(key),
        }
    }
}

/// A kept answer: `[expires ms: 8][status: 2][fingerprint: 32][body]`. The expiry comes first
/// because the store prunes records by it.
struct Record {
    expires_ms: u64,
    status: u16,
    fingerprint: [u8; 32],
    body: Bytes,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(42 + self.body.len());
        out.extend_from_slice(&self.expires_ms.to_be_bytes());
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&self.body);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let expires_ms = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let status = u16::from_be_bytes(bytes.get(8..10)?.try_into().ok()?);
        let fingerprint = bytes.get(10..42)?.try_into().ok()?;
        let body = Bytes::copy_from_slice(bytes.get(42..)?);
        Some(Self {
            expires_ms,
            status,
            fingerprint,
            body,
        })
    }
}

/// What a keyed request hands its handler (a request extension, read by `Key`).
#[derive(Debug, Clone)]
pub struct Keyed {
    key: String,
    scope: Scope,
    fingerprint: [u8; 32],
    expires_ms: u64,
}

impl Keyed {
    fn remember(&self, status: u16, body: &[u8]) -> Remember {
        let record = Record {
            expires_ms: self.expires_ms,
            status,
            fingerprint: self.fingerprint,
            body: Bytes::copy_from_slice(body),
        };
        Remember {
            key: self.scope.own_key(&self.key),
            record: record.encode(),
        }
    }
}

/// The gateway's idempotency state: requests running, where created sessions keep their
/// create's answer, how long answers are kept.
pub struct Idempotency {
    /// Keys of requests in progress (scope + key). A std Mutex: held for an insert or a remove.
    running: Mutex<HashSet<Vec<u8>>>,
    /// Gateway-scope key → the session its create made.
    creates: RwLock<HashMap<String, SessionName>>,
    window_ms: u64,
    clock: Clock,
}

impl Idempotency {
    /// Reads, from every session's store, which keys created which session.
    pub fn open(registry: &Registry, window_hours: u64, clock: Clock) -> StoreResult<Self> {
        let mut creates = HashMap::new();
        for s in registry.list() {
            for k in s.store.keys()?.creates {
                let key = String::from_utf8_lossy(&k[1..]).into_owned();
                creates.insert(key, s.name.clone());
            }
        }
        Ok(Self {
            running: Mutex::new(HashSet::new()),
            creates: RwLock::new(creates),
            window_ms: window_hours.saturating_mul(3_600_000),
            clock,
        })
    }

    /// Notes that the create keyed `keyed` made session `name` (its answer is in that store).
    pub fn created(&self, keyed: &Keyed, name: &SessionName) {
        let mut creates = self.creates.write().unwrap_or_else(|p| p.into_inner());
        creates.insert(keyed.key.clone(), name.clone());
    }

    /// Marks `slot` running; `None` when it already is.
    fn begin(self: &Arc<Self>, slot: Vec<u8>) -> Option<Running> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.insert(slot.clone()).then(|| Running {
            owner: self.clone(),
            slot,
        })
    }
}

/// A request in progress; dropped, it is not any more.
struct Running {
    owner: Arc<Idempotency>,
    slot: Vec<u8>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.owner.running.lock().unwrap_or_else(|p| p.into_inner());
        running.remove(&self.slot);
    }
}

/// The answer kept for `key` in `scope`, if any and not expired.
fn lookup(state: &AppState, scope: &Scope, key: &str, now: u64) -> StoreResult<Option<Record>> {
    let own = match scope {
        Scope::Session(name) => state.registry.get(name),
        Scope::Gateway => {
            let creates = state.idempotency.creates.read();
            let name = creates.ok().and_then(|c| c.get(key).cloned());
            name.and_then(|n| state.registry.get(&n))
        }
    };
    let mut found = match own {
        Some(s) => s.store.remembered(&scope.own_key(key))?,
        None => None,
    };
    if found.is_none() {
        found = state
            .registry
            .gateway()
            .remembered(&scope.gateway_key(key))?;
    }
    Ok(found
        .and_then(|bytes| Record::decode(&bytes))
        .filter(|r| r.expires_ms >= now))
}

/// Keeps the answer to a request that changed nothing (or whose change kept none).
async fn keep(state: &AppState, keyed: &Keyed, status: u16, body: &[u8]) -> StoreResult<()> {
    let mut remember = keyed.remember(status, body);
    let session = match &keyed.scope {
        Scope::Session(name) => state.registry.get(name),
        Scope::Gateway => None,
    };
    match session {
        Some(s) => s.remember(remember).await,
        None => {
            remember.key = keyed.scope.gateway_key(&keyed.key);
            state.registry.remember(remember).await
        }
    }
}

/// The key of a write under `/api/`, if it carries one.
fn key_of(req: &Request) -> Option<HeaderValue> {
    let write = matches!(*req.method(), Method::POST | Method::PUT | Method::DELETE);
    (write && req.uri().path().starts_with("/api/"))
        .then(|| req.headers().get(HEADER).cloned())
        .flatten()
}

/// 1-255 printable ASCII characters.
fn parse_key(v: &HeaderValue) -> Result<String, ApiError> {
    let b = v.as_bytes();
    if b.is_empty() || b.len() > 255 || !b.iter().all(|c| (0x20..=0x7e).contains(c)) {
        return Err(ApiError::bad_request(
            "Idempotency-Key: must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn fingerprint(method: &Method, uri: &axum::http::Uri, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b"\n");
    h.update(uri.path_and_query().map_or("", |p| p.as_str()).as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize().into()
}

fn json_response(status: u16, body: Bytes) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The middleware: replays, refuses, or runs the request and keeps its answer.
pub async fn keyed(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(value) = key_of(&req) else {
        return next.run(req).await;
    };
    let key = match parse_key(&value) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let Some(scope) = Scope::of(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::PayloadTooLarge("the request body is larger than 1 MiB".into())
            .into_response();
    };
    let now = state.idempotency.clock.now_ms();
    let keyed = Keyed {
        fingerprint: fingerprint(&parts.method, &parts.uri, &body),
        expires_ms: now.saturating_add(state.idempotency.window_ms),
        scope,
        key,
    };
    let Some(_running) = state.idempotency.begin(keyed.scope.gateway_key(&keyed.key)) else {
        return ApiError::conflict(
            ErrorCode::IdempotencyInProgress,
            "a request with this Idempotency-Key is still in progress; retry once it has answered",
        )
        .into_response();
    };
    match lookup(&state, &keyed.scope, &keyed.key, now) {
        Ok(Some(r)) if r.fingerprint == keyed.fingerprint => return replay(r),
        Ok(Some(_)) => return ApiError::KeyReused.into_response(),
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    parts.extensions.insert(keyed.clone());
    let resp = next.run(Request::from_parts(parts, Body::from(body))).await;
    finish(&state, &keyed, resp).await
}

fn replay(r: Record) -> Response {
    let mut resp = json_response(r.status, r.body);
    resp.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    resp
}

/// Keeps the answer unless it is a 5xx or its change already kept it.
async fn finish(state: &AppState, keyed: &Keyed, resp: Response) -> Response {
    let status = resp.status();
    if status.is_server_error() {
        return resp;
    }
    let kept = lookup(state, &keyed.scope, &keyed.key, 0)
        .ok()
        .flatten()
        .is_some_and(|r| r.fingerprint == keyed.fingerprint && r.expires_ms == keyed.expires_ms);
    if kept {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::internal("reading an answer to keep it").into_response();
    };
    if let Err(e) = keep(state, keyed, status.as_u16(), &body).await {
        tracing::warn!(
            "keeping the answer of an idempotent request: {e}; a retry with its key will run again"
        );
    }
    Response::from_parts(parts, Body::from(body))
}

/// The extractor: the request's `Idempotency-Key`, when it has one.
pub struct Key(pub Option<Keyed>);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Key(parts.extensions.get::<Keyed>().cloned()))
    }
}

impl Key {
    /// Renders a write's answer from its outcome: `answer`'s value as JSON with `status`, and,
    /// when the request has a key, the record the change keeps with it.
    pub fn render<O, T: Serialize + 'static>(
        &self,
        status: StatusCode,
        answer: impl FnOnce(&O) -> T + Send + 'static,
    ) -> Render<O> {
        let keyed = self.0.clone();
        Box::new(move |outcome: &O| {
            // Serialising our answer types (plain structs, strings, bools) cannot fail.
            let body = serde_json::to_vec(&answer(outcome)).unwrap_or_default();
            let remember = keyed.map(|k| k.remember(status.as_u16(), &body));
            Reply {
                status: status.as_u16(),
                body,
                remember,
            }
        })
    }
}

/// A rendered answer as the response.
pub struct Answer(pub Reply);

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        json_response(self.0.status, Bytes::from(self.0.body))
    }
}

/// Adds the optional `Idempotency-Key` header to every write of the document, so that the
/// Swagger UI offers it and clients generated from the spec can send it.
pub fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::Required;
    let header = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Sent again with the same request, the first answer is replayed (header \
             `Idempotent-Replayed: true`) and nothing is done twice; with another request, 422 \
             `idempotency_key_reused`; while the first runs, 409 `idempotency_in_progress`. \
             Answers are kept `WAGATE_IDEMPOTENCY_HOURS` (24).",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                // No space at either end: HTTP trims them, and the key must arrive as sent.
                .pattern(Some("^[!-~]([ -~]*[!-~])?$")),
        ))
        .build();
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.post, &mut item.put, &mut item.delete]
            .into_iter()
            .flatten()
        {
            op.parameters
                .get_or_insert_with(Vec::new)
                .push(header.clone());
        }
    }
}
