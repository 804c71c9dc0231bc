//! The WordPress side of peakguard (issue P9): the companion must-use plugin (one PHP file,
//! `plugin/peakguard.php`, shipped inside the binary and versioned with it), its settings
//! block, and writing it into a site or removing it again.
//!
//! Owns: the plugin's text, which `[site.wordpress]` and `[[admin.tokens]]` it is installed
//! with (target.rs), and the file it writes (install.rs: 0640, the web server's group,
//! written under a temporary name and renamed). Must not touch: the edge, the network (the
//! binary checks the admin API answers), WordPress's database.
#![forbid(unsafe_code)]

mod install;
mod plugin;
mod target;

pub use install::{Installed, install, uninstall};
pub use plugin::{PLUGIN_FILE, Settings, plugin, plugin_with_settings};
pub use target::{Target, resolve};

/// Why the plugin cannot be installed or removed; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum WordpressError {
    #[error("{0}")]
    Config(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}
