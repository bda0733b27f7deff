//! `X-Request-Id`: taken from the request when it is a sane token, else made up; echoed in the
//! answer, and the field `request_id` of a span around everything logged while the request runs
//! (a group change it starts keeps the span: `groups::running`).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use tracing::Instrument;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client's id is kept when it is 1 to 128 visible ASCII characters; anything else is
/// replaced, so that a log line never carries what a client smuggled into it.
fn usable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

fn made_up() -> String {
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

/// The request's id, in a span around it and in its answer.
pub async fn tag(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| usable(id))
        .map_or_else(made_up, str::to_owned);
    // Kept on the request too: a request forwarded to another node (cluster mode) carries it,
    // so that both nodes log it under one id and the owner's answer echoes it unchanged.
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(X_REQUEST_ID, v);
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    span.in_scope(|| tracing::debug!("started"));
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = resp.status().as_u16(), "answered"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(X_REQUEST_ID, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_ids_are_kept() {
        assert!(usable("abc-123_XYZ.=/"));
        assert!(usable(&"a".repeat(128)));
        assert!(!usable(""));
        assert!(!usable(&"a".repeat(129)));
        assert!(!usable("with space"));
        assert!(!usable("new\nline"));
        assert!(!usable("ünïcode"));
        let id = made_up();
        assert_eq!(id.len(), 16);
        assert!(usable(&id));
    }
}
