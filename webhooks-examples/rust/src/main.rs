//! A wagate webhook receiver on std's TcpListener: verifies both signatures, prints one JSON
//! line per new verified event. Run: `WEBHOOK_HMAC_KEY=... cargo run --release -- [PORT]`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use webhook_receiver::{Headers, Key, Receiver};

const MAX_HEAD_BYTES: u64 = 64 * 1024;
const MAX_BODY_BYTES: usize = 1024 * 1024;

fn main() -> std::process::ExitCode {
    let key = match Key::new(&std::env::var("WEBHOOK_HMAC_KEY").unwrap_or_default()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("WEBHOOK_HMAC_KEY (the webhook's hmac.key): {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let port = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .unwrap_or_else(|| "8000".into());
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let listener = match TcpListener::bind(format!("{host}:{port}")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {host}:{port}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!("listening on http://{addr}/webhook"),
        Err(e) => eprintln!("listening (address unknown: {e})"),
    }
    let receiver = Arc::new(Receiver::new(key));
    for stream in listener.incoming().flatten() {
        let receiver = Arc::clone(&receiver);
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, &receiver) {
                eprintln!("connection: {e}");
            }
        });
    }
    std::process::ExitCode::SUCCESS
}

/// A minimal HTTP/1.1 server side: one request per connection, answered with `Connection: close`.
fn serve(stream: TcpStream, receiver: &Receiver) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(MAX_HEAD_BYTES));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let method = request_line.split(' ').next().unwrap_or("").to_owned();
    let mut headers = Headers::default();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(()); // closed, or the head was too long
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers
                .0
                .push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let answer = if headers.get("Transfer-Encoding").is_some() {
        (411, "Content-Length required", None)
    } else {
        match headers
            .get("Content-Length")
            .unwrap_or("0")
            .parse::<usize>()
        {
            Ok(n) if n <= MAX_BODY_BYTES => {
                // The head's byte limit must not cut the body: lift it before reading on.
                reader.get_mut().set_limit(n as u64);
                let mut body = vec![0; n];
                reader.read_exact(&mut body)?;
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let a = receiver.handle(&method, &headers, &body, now);
                (a.status, a.reason, a.line)
            }
            Ok(_) => (413, "body too large", None),
            Err(_) => (400, "bad Content-Length", None),
        }
    };
    let (status, reason, line) = answer;
    if let Some(line) = line {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    if status == 401 {
        eprintln!("rejected: {reason}");
    }
    let text = match status {
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        _ => "",
    };
    let body = if reason.is_empty() {
        String::new()
    } else {
        format!("{reason}\n")
    };
    let mut head = format!("HTTP/1.1 {status} {text}\r\nConnection: close\r\n");
    if status != 204 {
        head.push_str(&format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    let mut stream = stream;
    stream.write_all(format!("{head}\r\n{body}").as_bytes())?;
    stream.flush()
}
