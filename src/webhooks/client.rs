//! Sending one attempt: a narrow `Transport` (the process boundary that tests replace) and its
//! real implementation over one shared reqwest client.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reqwest::header::HeaderMap;

/// One POST to a webhook.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// What came of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx within the timeout.
    Delivered,
    /// Anything else: the reason for the log, and the receiver's `Retry-After` if it sent one.
    Failed {
        error: String,
        retry_after: Option<String>,
    },
}

pub type AnswerFuture = Pin<Box<dyn Future<Output = Answer> + Send + 'static>>;

/// Sends attempts. A trait object because it is the process boundary: tests drive the worker
/// with a scripted transport under paused time, where real sockets and timeouts cannot run.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, req: Request) -> AnswerFuture;
}

/// The real transport: one client (one connection pool) for every webhook of the gateway.
pub struct HttpTransport {
    client: reqwest::Client,
    timeout: Duration,
}

impl HttpTransport {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // A redirected POST would silently turn into a GET: a 3xx is a failure to retry.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, timeout })
    }
}

impl Transport for HttpTransport {
    fn send(&self, req: Request) -> AnswerFuture {
        let client = self.client.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let mut request = reqwest::Request::new(reqwest::Method::POST, req.url);
            *request.headers_mut() = req.headers;
            *request.body_mut() = Some(req.body.into());
            match client.execute(request).await {
                Ok(resp) if resp.status().is_success() => Answer::Delivered,
                Ok(resp) => Answer::Failed {
                    error: format!("HTTP {}", resp.status().as_u16()),
                    retry_after: resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                },
                Err(e) => Answer::Failed {
                    error: describe(&e, timeout),
                    retry_after: None,
                },
            }
        })
    }
}

/// The URL for logs: a password in it is masked.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A short reason without the URL (logged next to it anyway) and with the root cause.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timeout: no answer within {} s", timeout.as_secs());
    }
    let mut msg = if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(root) = last {
        msg.push_str(": ");
        msg.push_str(&root);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_webhook_url_is_masked_in_logs() {
        assert_eq!(
            redact("https://user:s3cret@example.com/hook?x=1"),
            "https://user:***@example.com/hook?x=1"
        );
        assert_eq!(redact("http://example.com/h"), "http://example.com/h");
    }
}
