//! `kind = "http"`: one GET (and its redirects when asked), timed per phase like
//! blackbox_exporter: resolve, connect, tls, processing (to the response header), transfer.
//!
//! The keyword checks read the first [`KEEP`] bytes of the body; the rest is counted, up to
//! [`READ_LIMIT`], then the read stops (the probe's timeout bounds it too).

use crate::memory::Memory;
use crate::probe::{Probe, Problems, Registered, RunFuture};
use crate::result::{HttpDetail, Phase, ProbeResult};
use crate::sources::Sources;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use peakguard_config::{ProbeConfig, Seconds};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use url::Url;

pub(crate) struct Http;
pub(crate) static PROBE: Registered<Http> = Registered::NEW;

/// An `http` probe's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpSettings {
    /// `http://` or `https://` URL.
    pub(crate) url: Option<String>,
    /// Accepted statuses; empty: any 2xx or 3xx.
    #[serde(default)]
    pub(crate) expect_status: Vec<u16>,
    /// Text the body must contain.
    pub(crate) keyword: Option<String>,
    /// Text the body must not contain (`"Fatal error"`).
    pub(crate) keyword_absent: Option<String>,
    /// The longest acceptable response time (whole request, body included).
    pub(crate) max_time: Option<Seconds>,
    /// Follow redirects (at most 10); off: a 3xx is the answer.
    #[serde(default)]
    pub(crate) follow_redirects: bool,
    /// The `Host` header (and TLS server name) instead of the URL's host.
    pub(crate) host: Option<String>,
    /// Connect here instead of resolving the URL's host (`"203.0.113.7:443"`): test the new
    /// server before the DNS switch.
    pub(crate) resolve: Option<String>,
    /// Verify the server's certificate (chain and name) for `https://`.
    #[serde(default = "crate::tls::yes")]
    pub(crate) tls_verify: bool,
}

impl Probe for Http {
    type Settings = HttpSettings;
    const KIND: &'static str = "http";
    const VALUES: &'static [&'static str] =
        &["success", "duration", "status", "redirects", "body_bytes"];
    const SILENCED_BY_MAINTENANCE: bool = true;

    fn check(s: &HttpSettings) -> Problems {
        let mut problems: Problems = Vec::new();
        let mut p = |k: &str, m: String| problems.push((k.to_string(), m));
        match s.url.as_deref().map(Url::parse) {
            None => p("url", "an http probe needs `url = \"https://...\"`".into()),
            Some(Err(e)) => p("url", format!("not a URL ({e})")),
            Some(Ok(u)) if !matches!(u.scheme(), "http" | "https") || u.host().is_none() => p(
                "url",
                "the URL must be http:// or https:// with a host".into(),
            ),
            Some(Ok(_)) => {
                if let Some(r) = &s.resolve
                    && r.parse::<SocketAddr>().is_err()
                {
                    p(
                        "resolve",
                        format!("{r:?} is not an address such as \"203.0.113.7:443\""),
                    );
                }
                for status in &s.expect_status {
                    if !(100..=599).contains(status) {
                        p("expect_status", format!("{status} is not an HTTP status"));
                    }
                }
            }
        }
        problems
    }

    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: HttpSettings,
        _memory: &'a mut Memory,
        _sources: &'a Sources,
    ) -> RunFuture<'a> {
        Box::pin(run(probe, settings))
    }
}

/// Body bytes kept for the keyword checks.
const KEEP: usize = 1 << 20;
/// Body bytes read at most.
const READ_LIMIT: u64 = 64 << 20;
/// Redirects followed at most.
const MAX_REDIRECTS: u32 = 10;

const PHASES: [Phase; 5] = [
    Phase::Resolve,
    Phase::Connect,
    Phase::Tls,
    Phase::Processing,
    Phase::Transfer,
];

struct Fetched {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
    body_bytes: u64,
}

async fn run(probe: &ProbeConfig, s: HttpSettings) -> ProbeResult {
    let started = Instant::now();
    let mut phases = [0f64; 5];
    let mut redirects = 0;
    let Some(mut url) = s.url.as_deref().and_then(|u| Url::parse(u).ok()) else {
        return ProbeResult::failed(probe, "no valid url".into());
    };
    let outcome = loop {
        match fetch(&s, &url, &mut phases).await {
            Err(message) => break Err(message),
            Ok(f) => {
                let next = f
                    .location
                    .as_deref()
                    .filter(|_| s.follow_redirects && (300..400).contains(&f.status))
                    .and_then(|l| url.join(l).ok());
                match next {
                    Some(next) if redirects < MAX_REDIRECTS => {
                        redirects += 1;
                        url = next;
                    }
                    Some(_) => break Err(format!("more than {MAX_REDIRECTS} redirects")),
                    None => break Ok(f),
                }
            }
        }
    };
    let elapsed = started.elapsed();
    let mut detail = HttpDetail {
        status: 0,
        redirects,
        phases: PHASES.iter().copied().zip(phases).collect(),
        body_bytes: 0,
    };
    let mut result = match outcome {
        Err(message) => ProbeResult::failed(probe, message),
        Ok(f) => {
            detail.status = f.status;
            detail.body_bytes = f.body_bytes;
            match judge(&s, &f, elapsed) {
                Some(why) => ProbeResult::failed(probe, why),
                None => ProbeResult::new(
                    probe,
                    true,
                    format!("{} in {}", f.status, crate::humantime_short(elapsed)),
                ),
            }
        }
    };
    result.http = Some(detail);
    result
}

/// Why an answer fails the probe, if it does.
fn judge(s: &HttpSettings, f: &Fetched, elapsed: std::time::Duration) -> Option<String> {
    let status_ok = if s.expect_status.is_empty() {
        (200..400).contains(&f.status)
    } else {
        s.expect_status.contains(&f.status)
    };
    if !status_ok {
        let wanted = if s.expect_status.is_empty() {
            "2xx or 3xx".to_string()
        } else {
            format!("{:?}", s.expect_status)
        };
        return Some(format!("status {} (expected {wanted})", f.status));
    }
    let body = String::from_utf8_lossy(&f.body);
    if let Some(k) = &s.keyword
        && !body.contains(k.as_str())
    {
        return Some(format!("the body lacks {k:?}"));
    }
    if let Some(k) = &s.keyword_absent
        && body.contains(k.as_str())
    {
        return Some(format!("the body contains {k:?}"));
    }
    if let Some(max) = s.max_time
        && elapsed > max.0
    {
        return Some(format!(
            "{} took {}, over max_time {}",
            f.status,
            crate::humantime_short(elapsed),
            crate::humantime_short(max.0)
        ));
    }
    None
}

async fn fetch(s: &HttpSettings, url: &Url, phases: &mut [f64; 5]) -> Result<Fetched, String> {
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let t = Instant::now();
    let addr: SocketAddr = match &s.resolve {
        Some(r) => r
            .parse()
            .map_err(|_| format!("resolve {r:?} is not an address"))?,
        None => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to nothing"))?,
    };
    phases[0] += t.elapsed().as_secs_f64();
    let t = Instant::now();
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    phases[1] += t.elapsed().as_secs_f64();
    let name = s.host.as_deref().unwrap_or(host);
    let host_header = match url.port() {
        Some(p) if s.host.is_none() => format!("{name}:{p}"),
        _ => name.to_string(),
    };
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    if url.scheme() == "https" {
        let t = Instant::now();
        let config = peakguard_tls::client_config(s.tls_verify, vec![b"http/1.1".to_vec()])
            .map_err(|e| format!("TLS setup: {e}"))?;
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| format!("{name:?} is not a TLS server name"))?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("TLS with {addr}: {e}"))?;
        phases[2] += t.elapsed().as_secs_f64();
        exchange(tls, &target, &host_header, phases).await
    } else {
        exchange(tcp, &target, &host_header, phases).await
    }
}

async fn exchange<IO>(
    io: IO,
    target: &str,
    host: &str,
    phases: &mut [f64; 5],
) -> Result<Fetched, String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    // The connection task ends with the connection (Connection: close).
    tokio::spawn(conn);
    let request = http::Request::get(target)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "peakguard-probe")
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("the request cannot be built: {e}"))?;
    let t = Instant::now();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("no response: {e}"))?;
    phases[3] += t.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let t = Instant::now();
    let mut body = response.into_body();
    let (mut kept, mut read) = (Vec::new(), 0u64);
    while read < READ_LIMIT {
        match body.frame().await {
            None => break,
            Some(Err(e)) => return Err(format!("the body broke off after {read} bytes: {e}")),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read += data.len() as u64;
                    let room = KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
    }
    phases[4] += t.elapsed().as_secs_f64();
    Ok(Fetched {
        status,
        location,
        body: kept,
        body_bytes: read,
    })
}
