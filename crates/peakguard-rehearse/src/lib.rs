//! peakguard's rehearsal: the load generator that replays the expected peak before a campaign.
//!
//! Owns: load profiles (open model: requests start at their intended times), traffic classes,
//! URL lists and sitemap discovery, the request headers a browser sends, the HTTP client (HTTP/1.1, HTTP/2, rustls, `--resolve`),
//! following a waiting room like a browser, HDR statistics per URL group and class, and the reports (text, JSON, HTML, compare).
//! Must not touch: the edge or the cache (it is a client like any other), the terminal (the
//! binary prints progress from the callback).
#![forbid(unsafe_code)]

pub mod browser;
pub mod classes;
pub mod client;
pub mod html;
pub mod profile;
pub mod report;
pub mod room;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod targets;
