//! peakguard's shield: decisions about a request, with no network I/O of its own.
//!
//! Owns: who the client is (trusted-proxy rules for `X-Forwarded-For`), and whether
//! maintenance mode lets a request through. Later: rate limits, admission and the waiting
//! room, WAF, login brute-force. Must not touch: sockets, files, the cache; the edge acts on
//! what the shield decides.
#![forbid(unsafe_code)]

pub mod client;
pub mod maintenance;

pub use client::{ClientInfo, client_info};
pub use maintenance::{MaintenancePolicy, MaintenanceState};
