//! A raw HTTP/1.1 client (tests control every byte, which the smuggling set needs) and the
//! ports a test may use. Shared by the binary's tests (`common/mod.rs`) and the edge's
//! in-process tests (`crates/peakguard-edge/tests/`, through `#[path]`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// The `name=value` of every `Set-Cookie` (attributes dropped).
    pub fn set_cookies(&self) -> Vec<String> {
        self.header_all("set-cookie")
            .iter()
            .map(|c| c.split(';').next().unwrap_or("").to_string())
            .collect()
    }

    pub fn cache_status(&self) -> &str {
        self.header("cache-status").unwrap_or("")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The body a response carries, decoded from its `Content-Encoding` (gzip, br).
pub fn decoded(r: &Response) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match r.header("content-encoding") {
        None => out = r.body.clone(),
        Some("gzip") => {
            flate2::read::GzDecoder::new(&r.body[..])
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        Some("br") => {
            brotli::Decompressor::new(&r.body[..], 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
        }
        Some(other) => panic!("unexpected coding {other}"),
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses one response from the front of `buf`; returns it and the bytes it used, or `None`
/// when `buf` does not yet hold a whole response. `head_only`: no body (HEAD).
pub fn parse_response(buf: &[u8], head_only: bool) -> Option<(Response, usize)> {
    let end = find(buf, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut pos = end + 4;
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if head_only || status == 304 || status == 204 || (100..200).contains(&status) {
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let line_end = pos + find(&buf[pos..], b"\r\n")?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&buf[pos..line_end])
                    .split(';')
                    .next()?
                    .trim(),
                16,
            )
            .ok()?;
            pos = line_end + 2;
            if size == 0 {
                let trailer_end = pos + find(&buf[pos..], b"\r\n")?;
                pos = trailer_end + 2;
                break;
            }
            if buf.len() < pos + size + 2 {
                return None;
            }
            body.extend_from_slice(&buf[pos..pos + size]);
            pos += size + 2;
        }
    } else if let Some(len) = get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        if buf.len() < pos + len {
            return None;
        }
        body.extend_from_slice(&buf[pos..pos + len]);
        pos += len;
    } else {
        body.extend_from_slice(&buf[pos..]);
        pos = buf.len();
    }
    Some((
        Response {
            status,
            headers,
            body,
        },
        pos,
    ))
}

/// Sends raw bytes, reads until the server closes (or `timeout`), returns every complete
/// response found on the connection, in order.
pub fn exchange(addr: SocketAddr, raw: &[u8], timeout: Duration) -> std::io::Result<Vec<Response>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(raw)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    let head_only = raw.starts_with(b"HEAD ");
    let mut out = Vec::new();
    let mut rest = &buf[..];
    while let Some((r, used)) = parse_response(rest, head_only) {
        out.push(r);
        rest = &rest[used..];
        if rest.is_empty() {
            break;
        }
    }
    Ok(out)
}

/// One request on its own connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    let mut responses = exchange(addr, &bytes, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"));
    assert!(
        !responses.is_empty(),
        "{method} {path} on {addr}: no response"
    );
    responses.remove(0)
}

pub fn get(addr: SocketAddr, host: &str, path: &str) -> Response {
    request(addr, "GET", host, path, &[], b"")
}

/// Ports for one test: a block of 4 in 20000–29999, distinct per test in this process,
/// spread by PID across processes, and free when handed out.
pub fn ports() -> [u16; 4] {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Blocks of 4 in 20000–29999, spread by process; a block is taken only when all four
    // ports can be bound on loopback now (another test run or a service may hold some).
    for _ in 0..2500 {
        let block = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = 20000 + ((std::process::id() as u16 % 200) * 20 + block * 4) % 9996;
        let ports = [base, base + 1, base + 2, base + 3];
        if ports.iter().all(|p| port_is_free(*p)) {
            return ports;
        }
    }
    panic!("no block of 4 free ports in 20000-29999 on 127.0.0.1")
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}
