//! Forwarding to the node that holds a session: the request goes on as it came (method, path,
//! query, headers, body streamed), the owner's answer comes back unchanged (status, headers,
//! body streamed). A forwarded request carries `X-Wagate-Forwarded-By` and is never forwarded
//! again, so two nodes that disagree about an owner cannot bounce a request between them.

use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::Response;
use futures_util::future::join_all;
use serde_json::Value;

use super::Joined;
use crate::error::ApiError;
use crate::ids::SessionName;

/// Marks a forwarded request; its value is the id of the node that forwarded it.
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("x-wagate-forwarded-by");

/// How long a node waits to connect to another (a node that is down refuses at once; one
/// whose host is gone would otherwise hold the request for the OS's timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The bound on a whole forwarded request, body included.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);
/// The bound on fetching one node's sessions for `GET /api/sessions`.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers of one connection, not of the request or answer (RFC 9110 §7.6.1), and `Host`.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
}

fn strip(headers: &mut HeaderMap) {
    for h in &HOP_BY_HOP {
        headers.remove(h);
    }
}

/// The headers a request to another node carries: the client's (its API key among them), less
/// those of the connection, plus the mark of this node.
fn onward(mut headers: HeaderMap, joined: &Joined) -> HeaderMap {
    strip(&mut headers);
    headers.remove(header::HOST);
    if let Ok(me) = HeaderValue::from_str(joined.placement.node.as_str()) {
        headers.insert(FORWARDED_BY, me);
    }
    headers
}

fn unreachable_node(node: &str, session: &SessionName, why: impl std::fmt::Display) -> ApiError {
    tracing::warn!(%node, %session, error = %why, "cluster: the session's node does not answer");
    ApiError::NodeUnavailable {
        node: node.to_owned(),
        message: format!(
            "session \"{session}\" is held by node \"{node}\", which does not answer; retry later"
        ),
    }
}

/// `req` answered by `node`, the owner of `session`; 503 `node_unavailable` if it cannot be
/// reached (or is not listed in `wagate_nodes`).
pub async fn to_owner(
    joined: &Joined,
    node: &str,
    session: &SessionName,
    req: Request,
) -> Result<Response, ApiError> {
    let entry = (joined.placement.node_recent(node).await?)
        .ok_or_else(|| unreachable_node(node, session, "it has no entry in wagate_nodes"))?;
    let (parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = joined
        .http
        .request(parts.method, format!("{}{target}", entry.url))
        .headers(onward(parts.headers, joined))
        .timeout(FORWARD_TIMEOUT);
    if body.size_hint().exact() != Some(0) {
        out = out.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let answer = (out.send().await).map_err(|e| unreachable_node(node, session, e))?;
    let status = answer.status();
    let mut headers = answer.headers().clone();
    strip(&mut headers);
    let mut resp = Response::new(Body::from_stream(answer.bytes_stream()));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    Ok(resp)
}

/// The sessions of every other node for `GET /api/sessions` (the same query, the client's
/// headers), and the ids of the nodes that did not answer: those are left out, and logged.
pub async fn list_remote(
    joined: &Joined,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(Vec<Value>, Vec<String>), ApiError> {
    let target = uri.path_and_query().map_or("/api/sessions", |p| p.as_str());
    let nodes = joined.placement.nodes().await?;
    let others = nodes
        .into_iter()
        .filter(|(id, _)| id != joined.placement.node.as_str());
    let asks = others.map(|(id, entry)| async move {
        let sent = joined
            .http
            .get(format!("{}{target}", entry.url))
            .headers(onward(headers.clone(), joined))
            .timeout(LIST_TIMEOUT)
            .send()
            .await;
        let listed = match sent {
            Ok(r) if r.status().is_success() => {
                r.json::<Vec<Value>>().await.map_err(|e| e.to_string())
            }
            Ok(r) => Err(format!("it answered {}", r.status())),
            Err(e) => Err(e.to_string()),
        };
        (id, listed)
    });
    let mut sessions = Vec::new();
    let mut missing = Vec::new();
    for (node, listed) in join_all(asks).await {
        match listed {
            Ok(list) => sessions.extend(list),
            Err(error) => {
                tracing::warn!(%node, %error, "cluster: listing sessions without a node that does not answer");
                missing.push(node);
            }
        }
    }
    Ok((sessions, missing))
}
