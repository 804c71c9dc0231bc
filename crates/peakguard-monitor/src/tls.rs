//! `kind = "tls"`: the certificate any `host:port` presents — days until it (or one of its
//! chain) expires, and whether the chain is trusted and valid for the name.
//!
//! Two handshakes: one that accepts any certificate, to read the chain even when it is
//! broken or expired, and (with `tls_verify`, the default) one against the system's trust
//! store, whose verdict is the chain check.

use crate::memory::Memory;
use crate::probe::{Probe, Problems, Registered, RunFuture};
use crate::result::{ProbeResult, TlsDetail};
use crate::sources::Sources;
use peakguard_config::ProbeConfig;
use serde::Deserialize;
use std::sync::Arc;
use std::time::SystemTime;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

pub(crate) struct Tls;
pub(crate) static PROBE: Registered<Tls> = Registered::NEW;

/// Days left below which the probe fails when `min_days` is not set.
const DEFAULT_MIN_DAYS: f64 = 14.0;

/// A `tls` probe's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsSettings {
    /// `host:port` to connect to.
    address: Option<String>,
    /// The name the certificate must be valid for (default: the address's host).
    host: Option<String>,
    /// Fail when the certificate (or one in its chain) expires within this many days.
    min_days: Option<f64>,
    /// Check the chain against the system's trust store and the name.
    #[serde(default = "yes")]
    tls_verify: bool,
}

pub(crate) fn yes() -> bool {
    true
}

impl Probe for Tls {
    type Settings = TlsSettings;
    const KIND: &'static str = "tls";
    const VALUES: &'static [&'static str] = &["success", "duration", "days_left", "chain_valid"];
    const SILENCED_BY_MAINTENANCE: bool = true;

    fn check(s: &TlsSettings) -> Problems {
        let mut problems = crate::probe::check_host_port(Self::KIND, s.address.as_deref());
        if let Some(d) = s.min_days
            && !(d >= 0.0 && d.is_finite())
        {
            problems.push(("min_days".into(), format!("{d} is not a number of days")));
        }
        problems
    }

    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: TlsSettings,
        _memory: &'a mut Memory,
        _sources: &'a Sources,
    ) -> RunFuture<'a> {
        Box::pin(run(probe, settings))
    }
}

async fn run(probe: &ProbeConfig, s: TlsSettings) -> ProbeResult {
    let Some(address) = s.address.as_deref() else {
        return ProbeResult::failed(probe, "no address".into());
    };
    let host = address
        .rsplit_once(':')
        .map_or(address, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = s.host.as_deref().unwrap_or(host).to_string();
    let chain = match handshake(address, &name, false).await {
        Ok(chain) => chain,
        Err(e) => return ProbeResult::failed(probe, e),
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let Some(earliest) = chain.iter().filter_map(|der| not_after(der)).min() else {
        return ProbeResult::failed(probe, "the server sent no certificate we could read".into());
    };
    let days_left = (earliest - now) as f64 / 86_400.0;
    let verified = if s.tls_verify {
        Some(handshake(address, &name, true).await.map(|_| ()))
    } else {
        None
    };
    let min_days = s.min_days.unwrap_or(DEFAULT_MIN_DAYS);
    let mut problems = Vec::new();
    if let Some(Err(e)) = &verified {
        problems.push(e.clone());
    }
    if days_left < min_days {
        problems.push(if days_left < 0.0 {
            format!("the certificate expired {:.1} days ago", -days_left)
        } else {
            format!("the certificate expires in {days_left:.1} days (min_days {min_days})")
        });
    }
    let mut result = if problems.is_empty() {
        ProbeResult::new(
            probe,
            true,
            format!(
                "expires in {days_left:.1} days{}",
                if verified.is_some() {
                    ", chain trusted and valid for the name"
                } else {
                    " (chain not checked: tls_verify = false)"
                }
            ),
        )
    } else {
        ProbeResult::failed(probe, problems.join("; "))
    };
    result.tls = Some(TlsDetail {
        earliest_expiry: earliest,
        days_left,
        chain_valid: verified.as_ref().map(Result::is_ok),
    });
    result
}

/// One handshake; the peer's chain (DER) or why it failed.
async fn handshake(address: &str, name: &str, verify: bool) -> Result<Vec<Vec<u8>>, String> {
    let config =
        peakguard_tls::client_config(verify, Vec::new()).map_err(|e| format!("TLS setup: {e}"))?;
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|_| format!("{name:?} is not a TLS server name"))?;
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS with {address}: {e}"))?;
    Ok(tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
        .unwrap_or_default())
}

/// A certificate's notAfter, seconds since the epoch.
fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}
