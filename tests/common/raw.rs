//! A webhook receiver on raw TCP (127.0.0.1 port 0), for what a well-behaved HTTP server
//! would not do: bodies of any size or speed, headers that never come. It counts the
//! connections it accepted and hands every request to the test through a channel.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// One request, as read from the socket.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// When its head and body had been read.
    pub at: Instant,
    /// The request line and headers.
    pub head: String,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// How to answer one request.
pub enum Reply {
    /// A complete answer with a Content-Length; the connection stays open for the next request.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// A Content-Length of `len` bytes, zeros written as they are taken, never held whole.
    Huge { status: u16, len: u64 },
    /// A chunked body that never ends.
    Endless { status: u16 },
    /// A chunked body of one byte every `every`, without end (no length that could tell the
    /// gateway in advance that it is too long).
    Trickle { status: u16, every: Duration },
    /// The request is read; no answer ever comes.
    Silent,
}

pub struct RawReceiver {
    pub url: String,
    pub addr: SocketAddr,
    pub rx: UnboundedReceiver<RawRequest>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
}

impl RawReceiver {
    /// The next request, or a panic after `secs` seconds.
    pub async fn next(&mut self, secs: u64) -> RawRequest {
        tokio::time::timeout(Duration::from_secs(secs), self.rx.recv())
            .await
            .expect("a webhook request arrives in time")
            .expect("receiver open")
    }
}

type Replier = Arc<dyn Fn(&RawRequest) -> Reply + Send + Sync>;

pub async fn raw_receiver(
    reply: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static,
) -> RawReceiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind raw receiver");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    let reply: Replier = Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(sock, reply.clone(), tx.clone()));
        }
    });
    RawReceiver {
        url: format!("http://{addr}/hook"),
        addr,
        rx,
        connections,
    }
}

/// Answers the requests of one connection until the peer closes it or a reply ends it.
async fn serve(mut sock: TcpStream, reply: Replier, tx: UnboundedSender<RawRequest>) {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut sock, &mut buf).await {
        let answer = reply(&req);
        let _ = tx.send(req);
        let done = match answer {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (n, v) in headers {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let mut out = head.into_bytes();
                out.extend_from_slice(&body);
                sock.write_all(&out).await.is_err()
            }
            Reply::Huge { status, len } => {
                let head = format!("HTTP/1.1 {status} X\r\ncontent-length: {len}\r\n\r\n");
                let zeros = vec![0u8; 64 * 1024];
                let mut left = len;
                let mut ok = sock.write_all(head.as_bytes()).await.is_ok();
                while ok && left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    ok = sock.write_all(&zeros[..n]).await.is_ok();
                    left -= n as u64;
                }
                true
            }
            Reply::Endless { status } => {
                let head = format!("HTTP/1.1 {status} X\r\ntransfer-encoding: chunked\r\n\r\n");
                let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
                chunk.extend_from_slice(&[b'x'; 64 * 1024]);
                chunk.extend_from_slice(b"\r\n");
                let mut ok = sock.write_all(head.as_bytes()).await.is_ok();
                while ok {
                    ok = sock.write_all(&chunk).await.is_ok();
                }
                true
            }
            Reply::Trickle { status, every } => {
                let head = format!("HTTP/1.1 {status} X\r\ntransfer-encoding: chunked\r\n\r\n");
                let mut ok = sock.write_all(head.as_bytes()).await.is_ok();
                while ok {
                    // The receiver's pace, not a wait for anything.
                    tokio::time::sleep(every).await;
                    ok = sock.write_all(b"1\r\nx\r\n").await.is_ok();
                }
                true
            }
            Reply::Silent => {
                // Until the gateway gives up and closes.
                let mut sink = [0u8; 1024];
                while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
                true
            }
        };
        if done {
            return;
        }
    }
}

/// Reads one request (head and Content-Length body); `None` once the peer closed.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<RawRequest> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(RawRequest {
        at: Instant::now(),
        head,
        body,
    })
}
