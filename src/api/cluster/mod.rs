//! Cluster mode in HTTP (contract §7): any node answers any request. A request for a session
//! another node holds is forwarded there (`forward`), `GET /api/sessions` gathers every node's
//! sessions, and `GET /api/server/cluster` shows the nodes. On a single node (no
//! `WAGATE_NATS_URL`) the middleware passes everything through and the view has one node.

mod forward;
pub mod lifecycle;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::Json;
use super::{AppState, KeyErrors};
use crate::cluster::{Cluster, ClusterConfig};
use crate::error::{ApiError, ApiResult};
use crate::ids::SessionName;
use crate::sessions::Registry;
pub use forward::{list_remote, FORWARDED_BY};

/// This node as the cluster (or a single gateway) knows it.
#[derive(Clone)]
pub struct Node {
    /// `WAGATE_NODE_ID` (default the host name).
    pub id: String,
    /// `WAGATE_ADVERTISE_URL` (default `http://<WAGATE_LISTEN>`).
    pub url: String,
    /// Set in cluster mode only.
    pub joined: Option<Joined>,
}

/// A node in a cluster: its placement and the HTTP client that forwards to the others.
#[derive(Clone)]
pub struct Joined {
    /// Shared by every request and the upkeep task.
    pub placement: Arc<Cluster>,
    /// One pool of connections to the other nodes; never follows redirects, no proxy.
    http: reqwest::Client,
    /// Serialises this node's creates, deletes and account changes: between the check of the
    /// local registry and the claim in NATS nothing else may take or free the same name.
    pub lifecycle: Arc<tokio::sync::Mutex<()>>,
}

impl Node {
    /// A gateway on its own: the one node of its view.
    pub fn single(config: &crate::Config) -> Self {
        Self {
            id: (config.node_id.clone()).unwrap_or_else(crate::config::hostname),
            url: (config.advertise_url.clone())
                .unwrap_or_else(|| format!("http://{}", config.listen)),
            joined: None,
        }
    }

    /// Joins the cluster: connects to NATS, starts the node's upkeep (its entry, the placement
    /// of the sessions it holds).
    pub async fn join(config: &ClusterConfig, registry: &Arc<Registry>) -> Result<Self, String> {
        let placement = Arc::new(Cluster::join(config).await?);
        let http = forward::client().map_err(|e| format!("cluster HTTP client: {e}"))?;
        crate::cluster::spawn_upkeep(placement.clone(), registry.clone());
        tracing::info!(node = %config.node, url = %config.advertise, "joined the cluster");
        Ok(Self {
            id: config.node.to_string(),
            url: config.advertise.clone(),
            joined: Some(Joined {
                placement,
                http,
                lifecycle: Arc::default(),
            }),
        })
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(cluster_view))
}

/// The session a request is about, when its path names one: `/api/sessions/{session}...` and
/// `/api/{session}/...`. WAHA's old `POST /api/sessions/{start,stop,logout}` name theirs in the
/// body (`old_operation`).
pub fn session_of(method: &Method, path: &str) -> Option<SessionName> {
    let mut parts = path.strip_prefix("/api/")?.split('/');
    let name = match parts.next()? {
        "sessions" => {
            let name = parts.next()?;
            let old = crate::api::sessions::OLD_OPERATIONS.contains(&name);
            if old && method == Method::POST && parts.next().is_none() {
                return None;
            }
            name
        }
        "server" => return None,
        name => parts.next().map(|_| name)?,
    };
    SessionName::parse(name).ok()
}

/// WAHA's old `POST /api/sessions/{start,stop,logout}`: the body read (at most 1 MiB, as any
/// body) to find the session it names in `name`, and the request rebuilt with it.
async fn old_operation(req: Request) -> Result<(Request, Option<SessionName>), ApiError> {
    let path = req.uri().path().strip_prefix("/api/sessions/");
    let old = path.is_some_and(|op| crate::api::sessions::OLD_OPERATIONS.contains(&op));
    if !old || req.method() != Method::POST {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return Err(ApiError::PayloadTooLarge(
            "request body is larger than 1 MiB".into(),
        ));
    };
    let name = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("name")?.as_str().map(SessionName::parse))
        .and_then(Result::ok);
    Ok((Request::from_parts(parts, bytes.into()), name))
}

/// Forwards a request for a session another node holds to that node; everything else (and
/// every request that was forwarded already: never twice) is answered here.
pub async fn route(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(joined) = &state.cluster.joined else {
        return next.run(req).await;
    };
    if req.headers().contains_key(FORWARDED_BY) {
        return next.run(req).await;
    }
    let (req, named) = match session_of(req.method(), req.uri().path()) {
        Some(name) => (req, Some(name)),
        None => match old_operation(req).await {
            Ok(found) => found,
            Err(e) => return e.into_response(),
        },
    };
    let Some(name) = named else {
        return next.run(req).await;
    };
    if state.registry.get(&name).is_some() {
        return next.run(req).await;
    }
    match joined.placement.owner(&name).await {
        Ok(Some(p)) if p.node != joined.placement.node.as_str() => {
            forward::to_owner(joined, &p.node, &name, req)
                .await
                .unwrap_or_else(IntoResponse::into_response)
        }
        Ok(_) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Names the nodes a cluster-wide list had to leave out because they did not answer.
pub const UNAVAILABLE_NODES: HeaderName = HeaderName::from_static("x-wagate-unavailable-nodes");

/// `GET /api/sessions`: this node's sessions (`local`), and in cluster mode, unless the request
/// was forwarded, every other node's, by name. A node that does not answer is left out, logged,
/// and named in `X-Wagate-Unavailable-Nodes`: the list stays available while a node is down.
pub async fn list_all<T: Serialize>(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    local: Vec<T>,
) -> ApiResult<Response> {
    let joined = match &state.cluster.joined {
        Some(j) if !headers.contains_key(FORWARDED_BY) => j,
        _ => return Ok(axum::Json(local).into_response()),
    };
    let mut all = local
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(crate::error::ApiError::internal)?;
    let (remote, missing) = list_remote(joined, headers, uri).await?;
    all.extend(remote);
    all.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut resp = axum::Json(all).into_response();
    if let Ok(v) = HeaderValue::from_str(&missing.join(",")) {
        if !missing.is_empty() {
            resp.headers_mut().insert(UNAVAILABLE_NODES, v);
        }
    }
    Ok(resp)
}

/// A node of the cluster.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    #[schema(example = "node-a")]
    id: String,
    /// Its advertise URL.
    #[schema(example = "http://10.0.0.1:3000")]
    url: String,
    /// Sessions it held at its last refresh (every 3 s).
    sessions: usize,
    /// Unix ms of its last refresh; a node that stopped keeps its last value.
    last_seen: u64,
}

/// The nodes that form this gateway, and which of them answered.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"nodes": [{"id": "node-a", "url": "http://10.0.0.1:3000", "sessions": 2, "lastSeen": 1763769600000u64}], "self": "node-a"}))]
pub struct ClusterView {
    nodes: Vec<NodeView>,
    /// The id of the node that answered.
    #[serde(rename = "self")]
    #[schema(rename = "self")]
    this: String,
}

/// The nodes of the cluster (every node that ever joined, with when it was last seen). A
/// gateway without `WAGATE_NATS_URL` is a cluster of one.
#[utoipa::path(get, path = "/api/server/cluster", tag = "Server",
    responses((status = 200, body = ClusterView), KeyErrors))]
async fn cluster_view(State(state): State<AppState>) -> ApiResult<Json<ClusterView>> {
    let node = &state.cluster;
    let nodes = match &node.joined {
        None => vec![NodeView {
            id: node.id.clone(),
            url: node.url.clone(),
            sessions: state.registry.list().len(),
            last_seen: crate::sessions::now_ms(),
        }],
        Some(joined) => (joined.placement.nodes().await?)
            .into_iter()
            .map(|(id, e)| NodeView {
                id,
                url: e.url,
                sessions: e.sessions,
                last_seen: e.last_seen,
            })
            .collect(),
    };
    Ok(Json(ClusterView {
        nodes,
        this: node.id.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: Method, path: &str) -> Option<String> {
        session_of(&method, path).map(|n| n.to_string())
    }

    #[test]
    fn session_paths_name_their_session_and_others_name_none() {
        assert_eq!(of(Method::GET, "/api/sessions/a"), Some("a".into()));
        assert_eq!(of(Method::POST, "/api/sessions/a/start"), Some("a".into()));
        assert_eq!(of(Method::GET, "/api/b/groups"), Some("b".into()));
        assert_eq!(
            of(Method::PUT, "/api/b/groups/1@g.us/subject"),
            Some("b".into())
        );
        assert_eq!(of(Method::GET, "/api/sessions/start"), Some("start".into()));
        for (m, p) in [
            (Method::GET, "/api/sessions"),
            (Method::POST, "/api/sessions/"),
            (Method::POST, "/api/sessions/start"),
            (Method::POST, "/api/sessions/logout"),
            (Method::GET, "/api/server/version"),
            (Method::GET, "/api/server/cluster"),
            (Method::GET, "/api/b"),
            (Method::GET, "/api/bad%20name/groups"),
            (Method::GET, "/ping"),
        ] {
            assert_eq!(of(m.clone(), p), None, "{m} {p}");
        }
    }
}
