//! What the edge's in-process tests share: the raw HTTP client (the binary's tests use the
//! same file) and [`Edge`], an edge run by `peakguard_edge::harness` with its files in a
//! directory removed after it stopped.
#![allow(dead_code)]

#[path = "../../../peakguard/tests/common/client.rs"]
mod client;
pub use client::*;

use peakguard_edge::harness::Harness;
/// An edge in this process, with its files in a directory removed after it stopped.
pub struct Edge {
    pub addr: std::net::SocketAddr,
    pub admin: std::net::SocketAddr,
    token: String,
    _harness: Harness,
    _dir: tempfile::TempDir,
}

impl Edge {
    pub fn start(sites: &str) -> Edge {
        let dir = tempfile::tempdir().expect("dir");
        let harness = Harness::start(dir.path(), sites).expect("the edge starts");
        Edge {
            addr: harness.addr,
            admin: harness.admin,
            token: harness.token.clone(),
            _harness: harness,
            _dir: dir,
        }
    }
}

impl Edge {
    /// A GET on the admin API, with its token.
    pub fn admin_get(&self, path: &str) -> Response {
        let auth = format!("Bearer {}", self.token);
        request(
            self.admin,
            "GET",
            "127.0.0.1",
            path,
            &[("Authorization", auth.as_str())],
            b"",
        )
    }
}
