//! TLS termination: one certificate per site, chosen by SNI, loaded at start (and checked
//! then, so a bad file is a clear error instead of a failed handshake later).

use crate::EdgeError;
use peakguard_config::Config;
use pingora::listeners::tls::TlsSettings;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert, load_certs_and_key_files};
use std::collections::HashMap;
use std::sync::Arc;

/// Picks the certificate of the site whose host the client named; clients that name none (or
/// an unknown one) get the `*` site's certificate, else the first site's.
#[derive(Debug)]
pub struct SniResolver {
    by_host: HashMap<String, Arc<CertifiedKey>>,
    fallback: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let named = hello
            .server_name()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        Some(
            named
                .and_then(|n| self.by_host.get(&n).cloned())
                .unwrap_or_else(|| self.fallback.clone()),
        )
    }
}

fn load(cert_path: &str, key_path: &str) -> Result<Arc<CertifiedKey>, String> {
    let (chain, key) = load_certs_and_key_files(cert_path, key_path)
        .map_err(|e| format!("cannot read {cert_path} / {key_path}: {e}"))?
        .ok_or_else(|| {
            format!(
                "{cert_path} has no certificate or {key_path} has no private key (PEM expected)"
            )
        })?;
    pingora::tls::install_default_crypto_provider();
    let provider = CryptoProvider::get_default().ok_or("no TLS crypto provider installed")?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{key_path}: unsupported private key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

impl SniResolver {
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut by_host = HashMap::new();
        let mut fallback = None;
        let mut first = None;
        for site in &config.sites {
            let (Some(cert), Some(key)) = (&site.tls_cert, &site.tls_key) else {
                continue;
            };
            let certified = load(&cert.display().to_string(), &key.display().to_string())
                .map_err(|e| format!("site {:?}: {e}", site.name))?;
            first.get_or_insert_with(|| certified.clone());
            for host in &site.hosts {
                if host == "*" {
                    fallback = Some(certified.clone());
                } else {
                    by_host.insert(host.to_ascii_lowercase(), certified.clone());
                }
            }
        }
        let fallback = fallback
            .or(first)
            .ok_or("no site has tls_cert and tls_key")?;
        Ok(SniResolver { by_host, fallback })
    }
}

/// TLS settings for one listener: SNI resolver, HTTP/2 and HTTP/1.1 offered by ALPN.
pub fn settings(config: &Config, addr: &str) -> Result<TlsSettings, EdgeError> {
    let err = |reason: String| EdgeError::Tls {
        addr: addr.into(),
        reason,
    };
    let resolver = SniResolver::from_config(config).map_err(err)?;
    // The paths are unused when a resolver is set.
    let mut settings = TlsSettings::intermediate("", "").map_err(|e| err(e.to_string()))?;
    settings.set_cert_resolver(Arc::new(resolver));
    settings.enable_h2();
    Ok(settings)
}
