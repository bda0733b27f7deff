//! Sending one attempt: a narrow `Transport` (the process boundary that tests replace) and its
//! real implementation over one shared reqwest client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::metrics::Outcome;
use crate::networks::{literal_ip, DeniedNetwork, DenyList, DenyingResolver, DENIED_NETWORK};

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
    /// Not sent, and never will be (its host is in a denied network): dead-letter the job now.
    Refused(&'static str),
}

impl Answer {
    /// How the attempt ended, as the metrics count it: a refusal by the deny list and a request
    /// that failed after connecting count as connection errors.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Delivered => Outcome::Ok,
            Self::Failed { error, .. } if error.starts_with(HTTP_PREFIX) => Outcome::HttpError,
            Self::Failed { error, .. } if error.starts_with(TIMEOUT_PREFIX) => Outcome::Timeout,
            Self::Failed { .. } | Self::Refused(_) => Outcome::ConnectError,
        }
    }
}

const HTTP_PREFIX: &str = "HTTP ";
const TIMEOUT_PREFIX: &str = "timeout:";

pub type AnswerFuture = Pin<Box<dyn Future<Output = Answer> + Send + 'static>>;

/// Sends attempts. A trait object because it is the process boundary: tests drive the worker
/// with a scripted transport under paused time, where real sockets and timeouts cannot run.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, req: Request) -> AnswerFuture;
}

/// At most this much of an answer's body is read: a body read to its end lets the connection
/// go back to the pool; a larger one is dropped with its connection.
pub const MAX_BODY: u64 = 64 * 1024;

/// The real transport: one client (one connection pool) for every webhook of the gateway.
pub struct HttpTransport {
    client: reqwest::Client,
    timeout: Duration,
    /// Checked here for hosts that are addresses; the client's resolver checks names.
    deny: Arc<DenyList>,
}

impl HttpTransport {
    pub fn new(timeout: Duration, deny: Arc<DenyList>) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            // A redirected POST would silently turn into a GET: a 3xx is a failure to retry.
            .redirect(reqwest::redirect::Policy::none());
        if !deny.is_empty() {
            builder = builder.dns_resolver(Arc::new(DenyingResolver { deny: deny.clone() }));
        }
        Ok(Self {
            client: builder.build()?,
            timeout,
            deny,
        })
    }

    /// Whether the URL's host is an address in a denied network (names never reach the
    /// resolver when they are addresses, so they are checked here).
    fn denied(&self, url: &reqwest::Url) -> bool {
        !self.deny.is_empty() && literal_ip(url).is_some_and(|ip| self.deny.denies(ip))
    }
}

impl Transport for HttpTransport {
    fn send(&self, req: Request) -> AnswerFuture {
        let client = self.client.clone();
        let timeout = self.timeout;
        let denied = self.denied(&req.url);
        Box::pin(async move {
            if denied {
                return Answer::Refused(DENIED_NETWORK);
            }
            // One deadline for the whole attempt: connect, headers and body. A receiver that
            // trickles or never finishes must not hold a delivery slot longer than that.
            let deadline = tokio::time::Instant::now() + timeout;
            // The builder moves a URL's user-info into a (sensitive) Basic `Authorization`, as
            // WAHA's HTTP client does: left in the URL, it was not sent at all, and it showed in
            // the connection pool's debug log. A custom `Authorization` header still wins.
            let request = client.post(req.url).headers(req.headers).body(req.body);
            let resp = match tokio::time::timeout_at(deadline, request.send()).await {
                Ok(Ok(resp)) => resp,
                Ok(Err(e)) if caused_by_denied_network(&e) => {
                    return Answer::Refused(DENIED_NETWORK)
                }
                Ok(Err(e)) => {
                    return Answer::Failed {
                        error: describe(&e, timeout),
                        retry_after: None,
                    }
                }
                Err(_) => {
                    return Answer::Failed {
                        error: timed_out(timeout),
                        retry_after: None,
                    }
                }
            };
            // The status decides; the body carries nothing we use. A 2xx whose body is cut
            // short by the deadline is still delivered: the receiver has said it took the event.
            let answer = if resp.status().is_success() {
                Answer::Delivered
            } else {
                Answer::Failed {
                    error: format!("{HTTP_PREFIX}{}", resp.status().as_u16()),
                    retry_after: resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                }
            };
            let _ = tokio::time::timeout_at(deadline, drain(resp)).await;
            answer
        })
    }
}

/// Reads an answer's body chunk by chunk (none is kept) until its end, or until more than
/// `MAX_BODY` came: then the response and its connection are dropped.
async fn drain(mut resp: reqwest::Response) {
    if resp.content_length().is_some_and(|n| n > MAX_BODY) {
        return;
    }
    let mut read = 0u64;
    while let Ok(Some(chunk)) = resp.chunk().await {
        read = read.saturating_add(chunk.len() as u64);
        if read > MAX_BODY {
            return;
        }
    }
}

/// Whether the request failed because the resolver found only denied addresses.
fn caused_by_denied_network(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<DeniedNetwork>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn timed_out(timeout: Duration) -> String {
    format!("{TIMEOUT_PREFIX} no answer within {} s", timeout.as_secs())
}

/// A webhook URL as logs and answers show it: `scheme://host[:port]/path`, then `?…` when it
/// had a query. User-info, query and fragment are where receivers put tokens and passwords;
/// none of them is shown. A URL that does not parse is not shown at all.
pub fn redact(url: &str) -> String {
    let Ok(u) = reqwest::Url::parse(url) else {
        return "(a URL that does not parse)".to_owned();
    };
    let mut out = format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default());
    if let Some(port) = u.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(u.path());
    if u.query().is_some() {
        out.push_str("?…");
    }
    out
}

/// A short reason without the URL (logged next to it anyway) and with the root cause.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return timed_out(timeout);
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
    fn a_webhook_url_is_shown_without_user_info_query_or_fragment() {
        assert_eq!(
            redact("https://user:s3cret@example.com/hook?token=abc&x=1#frag"),
            "https://example.com/hook?…"
        );
        assert_eq!(
            redact("https://user@example.com:8443/h"),
            "https://example.com:8443/h"
        );
        assert_eq!(redact("http://[::1]:9000/a/b?"), "http://[::1]:9000/a/b?…");
        assert_eq!(redact("http://example.com/h#x"), "http://example.com/h");
        assert_eq!(redact("http://example.com"), "http://example.com/");
        assert_eq!(
            redact("http://u:p@exa mple/?k=v"),
            "(a URL that does not parse)"
        );
    }

    #[tokio::test]
    async fn a_failed_attempt_describes_its_cause_without_the_url() {
        // A port nobody listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("http://hookuser:Pa55word@127.0.0.1:{port}/hook?token=T0ken#frag");
        let transport = HttpTransport::new(Duration::from_secs(2), Arc::default()).expect("client");
        let answer = transport
            .send(Request {
                url: reqwest::Url::parse(&url).expect("url"),
                headers: HeaderMap::new(),
                body: b"{}".to_vec(),
            })
            .await;
        let Answer::Failed { error, .. } = answer else {
            panic!("a closed port cannot accept: {answer:?}");
        };
        assert!(error.starts_with("connection failed"), "{error}");
        for secret in ["hookuser", "Pa55word", "T0ken", "127.0.0.1", "/hook"] {
            assert!(!error.contains(secret), "{secret} in {error:?}");
        }
    }

    #[tokio::test]
    async fn a_2xx_whose_body_never_finishes_is_delivered_when_the_timeout_ends_the_attempt() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n";
            sock.write_all(head).await.expect("write");
            // Holds the connection without another byte until the client gives up.
            while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        let transport = HttpTransport::new(Duration::from_secs(1), Arc::default()).expect("client");
        let started = std::time::Instant::now();
        let send = transport.send(Request {
            url: reqwest::Url::parse(&format!("http://{addr}/hook")).expect("url"),
            headers: HeaderMap::new(),
            body: b"{}".to_vec(),
        });
        let answer = tokio::time::timeout(Duration::from_secs(3), send)
            .await
            .expect("the attempt ends");
        assert_eq!(answer, Answer::Delivered);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1800), "{took:?}");
    }

    #[tokio::test]
    async fn a_host_in_a_denied_network_is_refused_whether_named_or_written_as_an_address() {
        let deny = Arc::new(DenyList::parse("private").expect("private"));
        let transport = HttpTransport::new(Duration::from_secs(2), deny).expect("client");
        for url in [
            "http://localhost:9/hook",
            "http://127.0.0.1:9/hook",
            "http://[::ffff:127.0.0.1]:9/hook",
        ] {
            let answer = transport
                .send(Request {
                    url: reqwest::Url::parse(url).expect("url"),
                    headers: HeaderMap::new(),
                    body: b"{}".to_vec(),
                })
                .await;
            assert_eq!(answer, Answer::Refused(DENIED_NETWORK), "{url}");
        }
    }
}
