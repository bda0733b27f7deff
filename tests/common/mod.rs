//! Shared test harness: a gateway on a temp data dir, driven through the real router (no socket)
//! or served on 127.0.0.1 port 0; and a webhook receiver on port 0 that hands every request to the test.
#![allow(dead_code)]

pub mod abuse;
pub mod cluster;
pub mod communities;
pub mod groups;
pub mod history;
pub mod http;
pub mod local_network;
pub mod logs;
pub mod poller;
pub mod process;
pub mod raw;
pub mod recorder;
pub mod workload;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub state: wagate::AppState,
    pub router: axum::Router,
}

/// A gateway with no API key on a fresh temp dir.
pub async fn gateway() -> Gateway {
    let dir = tempfile::tempdir().expect("temp dir");
    gateway_in(dir, |_| {}).await
}

/// A gateway on `dir` (reopen a dir to test persistence), with `tweak` applied to its config.
pub async fn gateway_in(
    dir: tempfile::TempDir,
    tweak: impl FnOnce(&mut wagate::Config),
) -> Gateway {
    let mut config = wagate::Config::for_dir(dir.path());
    tweak(&mut config);
    let (state, _) = wagate::open(&config).await.expect("gateway opens");
    let router = wagate::app(state.clone());
    Gateway { dir, state, router }
}

impl Gateway {
    /// Sends one request through the router; answers status and JSON body (Null when empty or not JSON).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.raw(req.body(body).expect("request")).await
    }

    pub async fn raw(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router answers");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("PUT", path, Some(body)).await
    }

    /// Creates a WORKING session; `me` is its account id (derived from the name when None).
    pub async fn session(&self, name: &str, me: Option<&str>, webhooks: Option<Value>) -> Value {
        let mut config = serde_json::json!({});
        if let Some(me) = me {
            config["local"] = serde_json::json!({"me": {"id": me, "pushName": name}});
        }
        if let Some(w) = webhooks {
            config["webhooks"] = w;
        }
        let (status, body) = self
            .post(
                "/api/sessions",
                serde_json::json!({"name": name, "config": config}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates a group in `session` with `participants`; answers its GroupInfo.
    pub async fn group(&self, session: &str, subject: &str, participants: &[&str]) -> Value {
        let parts: Vec<Value> = participants
            .iter()
            .map(|p| serde_json::json!({"id": p}))
            .collect();
        let (status, body) = self
            .post(
                &format!("/api/{session}/groups"),
                serde_json::json!({"name": subject, "participants": parts}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The envelopes of the session's event log, oldest first.
    pub async fn events(&self, session: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/{session}/events?limit=1000")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array()
            .expect("array")
            .iter()
            .map(|e| e["envelope"].clone())
            .collect()
    }

    /// Event names of the session's log, oldest first, without session.status.
    pub async fn event_names(&self, session: &str) -> Vec<String> {
        self.events(session)
            .await
            .iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
            .filter(|n| n != "session.status")
            .collect()
    }

    /// Serves the same state on 127.0.0.1:0; answers the address. The server runs until the test ends.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = self.state.clone();
        tokio::spawn(async move {
            let _ = wagate::run(listener, state, std::future::pending()).await;
        });
        addr
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A webhook receiver on 127.0.0.1 port 0. `answer` decides each response's status from the
/// request count so far (0-based); every request is sent to the channel.
pub struct Receiver {
    pub url: String,
    pub rx: tokio::sync::mpsc::UnboundedReceiver<Received>,
}

pub async fn receiver(answer: impl Fn(usize) -> u16 + Send + Sync + 'static) -> Receiver {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let count = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            let n = count.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            async move {
                let _ = tx.send(Received {
                    headers,
                    body: body.to_vec(),
                });
                StatusCode::from_u16(answer(n)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        },
    );
    let addr = serve_app(app).await;
    Receiver {
        url: format!("http://{addr}/webhook"),
        rx,
    }
}

impl Receiver {
    /// The next request, or a panic after `secs` seconds.
    pub async fn next(&mut self, secs: u64) -> Received {
        tokio::time::timeout(Duration::from_secs(secs), self.rx.recv())
            .await
            .expect("a webhook request arrives in time")
            .expect("receiver open")
    }
}

/// Runs one life of the gateway on `dir` on a runtime of its own, dropped at the end, so every
/// task holding a store is gone before the dir is opened again; hands the dir back.
pub fn life<F, Fut, T>(dir: tempfile::TempDir, body: F) -> (tempfile::TempDir, T)
where
    F: FnOnce(Gateway) -> Fut,
    Fut: std::future::Future<Output = (Gateway, T)>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (dir, out) = rt.block_on(async move {
        let gw = gateway_in(dir, |_| {}).await;
        let (gw, out) = body(gw).await;
        let Gateway { dir, state, router } = gw;
        drop(router);
        drop(state);
        (dir, out)
    });
    drop(rt);
    (dir, out)
}

/// Waits until `cond` holds, checking every 20 ms, or panics after `secs` seconds.
pub async fn wait_for<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The keys of a JSON object in their order (serde_json keeps the order they came in).
pub fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// Serves `app` on a free port of 127.0.0.1 in the background; answers its address.
pub async fn serve_app(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Every envelope of a session's log, paging through `/events` a thousand at a time: `get`
/// answers the status and JSON body of a GET of the path it is given.
pub async fn whole_log<F, Fut>(session: &str, mut get: F) -> Vec<Value>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let q = if after.is_empty() {
            String::new()
        } else {
            format!("&after={after}")
        };
        let (status, page) = get(format!("/api/{session}/events?limit=1000{q}")).await;
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().expect("array").clone();
        let Some(last) = page.last() else {
            return out;
        };
        after = last["cursor"].as_str().expect("cursor").to_owned();
        out.extend(page.into_iter().map(|e| e["envelope"].clone()));
    }
}
