//! A webhook receiver on 127.0.0.1 port 0 whose answer the test switches while it runs (accept
//! all, fail every fourth, fail all); it records every request with when it came and its answer.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::Value;

/// How a recorder answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// 200 to everything.
    Accept = 0,
    /// 500 to every fourth request, 200 to the others.
    Flaky = 1,
    /// 500 to everything.
    Refuse = 2,
}

/// One request the recorder got.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Unix ms when it arrived.
    pub at_ms: u64,
    pub accepted: bool,
    pub body: Value,
}

impl Hit {
    pub fn id(&self) -> &str {
        self.body["id"].as_str().unwrap_or_default()
    }
    pub fn session(&self) -> &str {
        self.body["session"].as_str().unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct Recorder {
    pub url: String,
    mode: Arc<AtomicU8>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Recorder {
    pub async fn start(mode: Mode) -> Recorder {
        let rec = Recorder {
            url: String::new(),
            mode: Arc::new(AtomicU8::new(mode as u8)),
            hits: Arc::default(),
        };
        let count = Arc::new(AtomicUsize::new(0));
        let (mode, hits) = (rec.mode.clone(), rec.hits.clone());
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let accepted = match mode.load(Ordering::SeqCst) {
                0 => true,
                1 => n % 4 != 3,
                _ => false,
            };
            hits.lock().expect("hits").push(Hit {
                at_ms: super::http::now_ms(),
                accepted,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
            async move {
                if accepted {
                    StatusCode::OK
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        });
        let addr = super::serve_app(app).await;
        Recorder {
            url: format!("http://{addr}/hook"),
            ..rec
        }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }
}
