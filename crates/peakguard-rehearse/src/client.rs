//! The rehearsal's HTTP client: HTTP/1.1 keep-alive connections (one request at a time each,
//! reused), or HTTP/2 (one multiplexed connection; ALPN on TLS, prior knowledge on plain
//! http), TLS via rustls, and curl-style `--resolve host:port:addr` so a new server is
//! rehearsed before the DNS switch with the right Host and SNI.

use crate::stats::Outcome;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("target {0:?} is not an http:// or https:// URL")]
    Url(String),
    #[error(
        "--resolve {0:?}: write HOST:PORT:ADDRESS (e.g. shop.example.com:443:127.0.0.1) or HOST:PORT:ADDRESS:PORT2 to reach another port"
    )]
    Resolve(String),
    #[error("cannot resolve {0}: {1}")]
    Lookup(String, String),
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub base: url::Url,
    pub tls: bool,
    /// `Host` header and SNI name (with port when not the default).
    pub host_header: String,
    pub server_name: String,
    pub connect_to: SocketAddr,
    pub http2: bool,
    pub insecure: bool,
}

impl Target {
    /// `resolve`: curl-style overrides `HOST:PORT:ADDR`.
    pub fn new(
        url: &str,
        resolve: &[String],
        http2: bool,
        insecure: bool,
    ) -> Result<Self, TargetError> {
        let base = url::Url::parse(url).map_err(|_| TargetError::Url(url.into()))?;
        let tls = match base.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(TargetError::Url(url.into())),
        };
        let host = base
            .host_str()
            .ok_or_else(|| TargetError::Url(url.into()))?
            .to_string();
        let port = base
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let mut connect_to = None;
        for r in resolve {
            let bad = || TargetError::Resolve(r.clone());
            let (h, rest) = r.split_once(':').ok_or_else(bad)?;
            let (p, addr) = rest.split_once(':').ok_or_else(bad)?;
            let p: u16 = p.parse().map_err(|_| bad())?;
            // ADDR, [V6ADDR], ADDR:PORT2 or [V6ADDR]:PORT2
            let (a, p2) = match addr.rsplit_once(':') {
                Some((a, p2)) if !a.is_empty() && (a.ends_with(']') || !a.contains(':')) => {
                    (a, Some(p2))
                }
                _ => (addr, None),
            };
            let a: std::net::IpAddr = a.trim_matches(['[', ']']).parse().map_err(|_| bad())?;
            let p2: u16 = match p2 {
                Some(x) => x.parse().map_err(|_| bad())?,
                None => p,
            };
            if h.eq_ignore_ascii_case(&host) && p == port {
                connect_to = Some(SocketAddr::new(a, p2));
            }
        }
        let connect_to = match connect_to {
            Some(a) => a,
            None => {
                std::net::ToSocketAddrs::to_socket_addrs(&(host.trim_matches(['[', ']']), port))
                    .map_err(|e| TargetError::Lookup(host.clone(), e.to_string()))?
                    .next()
                    .ok_or_else(|| TargetError::Lookup(host.clone(), "no address".into()))?
            }
        };
        let host_header = match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        Ok(Target {
            base,
            tls,
            host_header,
            server_name: host,
            connect_to,
            http2,
            insecure,
        })
    }
}

/// A finished exchange.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body when it was kept ([`Client::fetch`]); empty for [`Client::send`].
    pub body: Bytes,
    pub body_len: u64,
}

type Body = Full<Bytes>;

enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

pub struct Client {
    target: Target,
    tls: Option<TlsConnector>,
    idle: Mutex<Vec<http1::SendRequest<Body>>>,
    h2: tokio::sync::Mutex<Option<http2::SendRequest<Body>>>,
    timeout: Duration,
    /// The Host header, built once.
    host_value: http::HeaderValue,
    /// Connections opened so far.
    pub connections_opened: std::sync::atomic::AtomicU64,
}

fn tls_connector(target: &Target) -> Result<TlsConnector, TargetError> {
    let alpn = if target.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let config = peakguard_tls::client_config(!target.insecure, alpn)
        .map_err(|e| TargetError::Tls(e.to_string()))?;
    Ok(TlsConnector::from(Arc::new(config)))
}

impl Client {
    pub fn new(target: Target, timeout: Duration) -> Result<Self, TargetError> {
        let host_value = http::HeaderValue::from_str(&target.host_header)
            .map_err(|_| TargetError::Url(target.base.to_string()))?;
        let tls = if target.tls {
            Some(tls_connector(&target)?)
        } else {
            None
        };
        Ok(Client {
            target,
            tls,
            idle: Mutex::new(Vec::new()),
            h2: tokio::sync::Mutex::new(None),
            timeout,
            host_value,
            connections_opened: Default::default(),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A request for `path_and_query` with the target's Host.
    pub fn request(&self, method: http::Method, path_and_query: &str) -> http::request::Builder {
        let uri = if self.target.http2 {
            format!(
                "{}://{}{}",
                if self.target.tls { "https" } else { "http" },
                self.target.host_header,
                path_and_query
            )
        } else {
            path_and_query.to_string()
        };
        let b = Request::builder().method(method).uri(uri);
        if self.target.http2 {
            b
        } else {
            b.header(http::header::HOST, self.host_value.clone())
        }
    }

    async fn connect(&self) -> Result<Sender, Outcome> {
        let tcp = TcpStream::connect(self.target.connect_to)
            .await
            .map_err(|_| Outcome::ConnectError)?;
        let _ = tcp.set_nodelay(true);
        self.connections_opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match &self.tls {
            Some(tls) => {
                let name = ServerName::try_from(self.target.server_name.clone())
                    .map_err(|_| Outcome::ConnectError)?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|_| Outcome::ConnectError)?;
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                self.handshake(TokioIo::new(stream), h2).await
            }
            None => self.handshake(TokioIo::new(tcp), self.target.http2).await,
        }
    }

    async fn handshake<I>(&self, io: I, h2: bool) -> Result<Sender, Outcome>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|_| Outcome::ConnectError)?;
            tokio::spawn(conn);
            Ok(Sender::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io)
                .await
                .map_err(|_| Outcome::ConnectError)?;
            tokio::spawn(conn);
            Ok(Sender::H1(sender))
        }
    }

    async fn sender(&self) -> Result<Sender, Outcome> {
        if self.target.http2 {
            let mut h2 = self.h2.lock().await;
            if let Some(s) = h2.as_ref().filter(|s| !s.is_closed()) {
                return Ok(Sender::H2(s.clone()));
            }
            match self.connect().await? {
                Sender::H2(s) => {
                    *h2 = Some(s.clone());
                    return Ok(Sender::H2(s));
                }
                other => return Ok(other), // the server refused h2 over ALPN
            }
        }
        loop {
            let idle = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
            match idle {
                Some(s) if !s.is_closed() && s.is_ready() => return Ok(Sender::H1(s)),
                Some(_) => continue,
                None => return self.connect().await,
            }
        }
    }

    /// Sends one request; the whole response body is read (and returned).
    /// Sends one request and reads the whole response, counting the body's bytes without
    /// keeping them (the load path: no copy).
    pub async fn send(&self, req: Request<Body>) -> Result<Reply, Outcome> {
        self.exchange(req, false).await
    }

    /// Sends one request and keeps the response body (discovery, login).
    pub async fn fetch(&self, req: Request<Body>) -> Result<Reply, Outcome> {
        self.exchange(req, true).await
    }

    async fn exchange(&self, req: Request<Body>, keep_body: bool) -> Result<Reply, Outcome> {
        match tokio::time::timeout(self.timeout, self.send_inner(req, keep_body)).await {
            Ok(r) => r,
            Err(_) => Err(Outcome::Timeout),
        }
    }

    async fn send_inner(&self, req: Request<Body>, keep_body: bool) -> Result<Reply, Outcome> {
        let sender = self.sender().await?;
        let (resp, back) = match sender {
            Sender::H1(mut s) => {
                let resp = s.send_request(req).await.map_err(|_| Outcome::IoError)?;
                (resp, Some(s))
            }
            Sender::H2(mut s) => (
                s.send_request(req).await.map_err(|_| Outcome::IoError)?,
                None,
            ),
        };
        let (parts, body) = resp.into_parts();
        let (body, body_len) = if keep_body {
            let b = body
                .collect()
                .await
                .map_err(|_| Outcome::IoError)?
                .to_bytes();
            let n = b.len() as u64;
            (b, n)
        } else {
            let mut body = body;
            let mut n = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|_| Outcome::IoError)?;
                n += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            (Bytes::new(), n)
        };
        if let Some(s) = back {
            let keep = !parts
                .headers
                .get(http::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            if let (true, Ok(mut idle)) = (keep, self.idle.lock()) {
                idle.push(s);
            }
        }
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
            body_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_keeps_host_and_changes_the_address() {
        let t = Target::new(
            "https://shop.test/",
            &["shop.test:443:127.0.0.2".into()],
            false,
            false,
        )
        .unwrap();
        assert_eq!(t.connect_to, "127.0.0.2:443".parse().unwrap());
        assert_eq!(t.host_header, "shop.test");
        assert_eq!(t.server_name, "shop.test");
        let t = Target::new(
            "http://shop.test",
            &["shop.test:80:127.0.0.1:24180".into()],
            false,
            false,
        )
        .unwrap();
        assert_eq!(t.connect_to, "127.0.0.1:24180".parse().unwrap());
        assert_eq!(t.host_header, "shop.test");
        let t = Target::new(
            "http://shop.test",
            &["shop.test:80:[::1]:8080".into()],
            false,
            false,
        )
        .unwrap();
        assert_eq!(t.connect_to, "[::1]:8080".parse().unwrap());
        assert!(Target::new("http://shop.test", &["shop.test:80".into()], false, false).is_err());
        assert!(Target::new("ftp://x", &[], false, false).is_err());
    }
}
