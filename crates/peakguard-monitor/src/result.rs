//! What one run of a probe found.

use peakguard_config::ProbeConfig;
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// One phase of an HTTP request, as blackbox_exporter names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Resolve,
    Connect,
    Tls,
    Processing,
    Transfer,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Processing => "processing",
            Phase::Transfer => "transfer",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpDetail {
    /// The final response's status (0 when none came).
    pub status: u16,
    /// Redirects followed.
    pub redirects: u32,
    /// Seconds per phase, summed over redirects.
    pub phases: Vec<(Phase, f64)>,
    /// Body bytes read of the final response.
    pub body_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskDetail {
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub free_percent: f64,
    pub free_inodes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TlsDetail {
    /// The earliest notAfter in the chain, seconds since the epoch.
    pub earliest_expiry: i64,
    pub days_left: f64,
    /// Trusted and valid for the name; `None` when `tls_verify = false`.
    pub chain_valid: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub name: String,
    pub kind: &'static str,
    pub success: bool,
    /// Why it failed, or a short summary when it passed.
    pub message: String,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    #[serde(serialize_with = "unix_seconds")]
    pub at: SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsDetail>,
    /// The values of the other kinds (icmp `rtt`, mariadb `query_time`, wordpress
    /// `security_overdue`, edge `p99`…), by the names `when` compares.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub values: std::collections::BTreeMap<&'static str, f64>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

pub(crate) fn unix_seconds<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(unix(*t))
}

/// Seconds since the epoch (0 before it).
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ProbeResult {
    pub(crate) fn new(probe: &ProbeConfig, success: bool, message: String) -> Self {
        ProbeResult {
            name: probe.name.clone(),
            kind: crate::probe::kind_name(&probe.kind),
            success,
            message,
            duration: Duration::ZERO,
            at: SystemTime::now(),
            http: None,
            disk: None,
            tls: None,
            values: std::collections::BTreeMap::new(),
        }
    }

    /// With a value for rules to compare.
    pub(crate) fn with(mut self, name: &'static str, value: f64) -> Self {
        self.values.insert(name, value);
        self
    }

    pub(crate) fn failed(probe: &ProbeConfig, message: String) -> Self {
        Self::new(probe, false, message)
    }
}

impl ProbeResult {
    /// The values a rule's `when` may compare (each probe's `VALUES` lists them): `None`
    /// when this result does not carry it (a failed TLS handshake has no `days_left`).
    pub fn value(&self, name: &str) -> Option<f64> {
        match name {
            "success" => Some(f64::from(u8::from(self.success))),
            "duration" => Some(self.duration.as_secs_f64()),
            "status" => self.http.as_ref().map(|h| f64::from(h.status)),
            "redirects" => self.http.as_ref().map(|h| f64::from(h.redirects)),
            "body_bytes" => self.http.as_ref().map(|h| h.body_bytes as f64),
            "days_left" => self.tls.as_ref().map(|t| t.days_left),
            "chain_valid" => self
                .tls
                .as_ref()
                .and_then(|t| t.chain_valid)
                .map(|v| f64::from(u8::from(v))),
            "free_bytes" => self.disk.as_ref().map(|d| d.free_bytes as f64),
            "free_percent" => self.disk.as_ref().map(|d| d.free_percent),
            "free_inodes" => self.disk.as_ref().map(|d| d.free_inodes as f64),
            other => self.values.get(other).copied(),
        }
    }
}
