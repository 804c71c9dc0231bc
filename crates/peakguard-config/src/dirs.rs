//! Where peakguard keeps its state, cache and runtime files when the configuration does not
//! say: the directories systemd gives a unit (`STATE_DIRECTORY`, `CACHE_DIRECTORY`,
//! `RUNTIME_DIRECTORY`) when set; else the system's directories when it runs as root
//! (`/var/lib/peakguard`, `/var/cache/peakguard`, `/run/peakguard`), the user's XDG
//! directories otherwise — never a world-writable directory such as `/tmp`, where another
//! local user could plant a token, a cache entry or a socket before peakguard starts.

use crate::Config;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultDirs {
    /// Tokens, keys, flags and saved state.
    pub state: PathBuf,
    /// The disk cache.
    pub cache: PathBuf,
    /// The pid file and the upgrade socket.
    pub runtime: PathBuf,
}

impl DefaultDirs {
    /// For this process: root or not, and its environment.
    pub fn of_this_process() -> Self {
        Self::for_user(rustix::process::geteuid().is_root(), |name| {
            std::env::var(name).ok()
        })
    }

    /// `var` reads an environment variable (empty counts as unset, as XDG says).
    pub fn for_user(root: bool, var: impl Fn(&str) -> Option<String>) -> Self {
        let system = DefaultDirs {
            state: PathBuf::from("/var/lib/peakguard"),
            cache: PathBuf::from("/var/cache/peakguard"),
            runtime: PathBuf::from("/run/peakguard"),
        };
        let var = |name: &str| {
            var(name)
                .filter(|v| !v.is_empty() && Path::new(v).is_absolute())
                .map(PathBuf::from)
        };
        // systemd's: the first of a colon-separated list.
        let unit = |name: &str| {
            var(name).and_then(|v| {
                let first = v.to_str()?.split(':').next()?.to_string();
                Some(PathBuf::from(first)).filter(|p| p.is_absolute())
            })
        };
        let with_unit = |d: DefaultDirs| DefaultDirs {
            state: unit("STATE_DIRECTORY").unwrap_or(d.state),
            cache: unit("CACHE_DIRECTORY").unwrap_or(d.cache),
            runtime: unit("RUNTIME_DIRECTORY").unwrap_or(d.runtime),
        };
        let Some(home) = var("HOME").filter(|_| !root) else {
            // Root, or a user without a home: the system's places (creating them needs
            // root; the error at start says which path and what to do).
            return with_unit(system);
        };
        let state = var("XDG_STATE_HOME")
            .unwrap_or_else(|| home.join(".local/state"))
            .join("peakguard");
        with_unit(DefaultDirs {
            cache: var("XDG_CACHE_HOME")
                .unwrap_or_else(|| home.join(".cache"))
                .join("peakguard"),
            runtime: var("XDG_RUNTIME_DIR")
                .map_or_else(|| state.join("run"), |r| r.join("peakguard")),
            state,
        })
    }
}

/// Fills the paths the configuration leaves to the defaults. `given` says whether the file
/// set a key (`cache.disk_path = ""` switches the disk tier off; absent, it is the default).
pub(crate) fn apply(config: &mut Config, dirs: &DefaultDirs, given: impl Fn(&str, &str) -> bool) {
    let fill = |path: &mut PathBuf, default: PathBuf| {
        if path.as_os_str().is_empty() {
            *path = default;
        }
    };
    fill(
        &mut config.server.pid_file,
        dirs.runtime.join("peakguard.pid"),
    );
    fill(
        &mut config.server.upgrade_sock,
        dirs.runtime.join("upgrade.sock"),
    );
    fill(&mut config.admin.token_file, dirs.state.join("admin.token"));
    fill(&mut config.journal.file, dirs.state.join("journal.jsonl"));
    fill(&mut config.stats.dir, dirs.state.join("stats"));
    fill(
        &mut config.maintenance.state_file,
        dirs.state.join("maintenance.json"),
    );
    fill(
        &mut config.shield.state_file,
        dirs.state.join("shield.json"),
    );
    fill(&mut config.waf.log, dirs.state.join("waf.jsonl"));
    fill(&mut config.waf.crs_home, dirs.state.join("crs"));
    fill(
        &mut config.monitor.state_file,
        dirs.state.join("monitor.json"),
    );
    fill(
        &mut config.shield.room_key_file,
        dirs.state.join("room.key"),
    );
    if !given("cache", "disk_path") {
        config.cache.disk_path = dirs.cache.clone();
    }
    for site in &mut config.sites {
        if let Some(b) = &mut site.backup {
            fill(&mut b.state_dir, dirs.state.join("backup").join(&site.name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn root_gets_the_system_directories_and_a_user_their_own() {
        let root = DefaultDirs::for_user(true, env(&[("HOME", "/root")]));
        assert_eq!(root.state, Path::new("/var/lib/peakguard"));
        assert_eq!(root.cache, Path::new("/var/cache/peakguard"));
        assert_eq!(root.runtime, Path::new("/run/peakguard"));
        let user = DefaultDirs::for_user(
            false,
            env(&[("HOME", "/home/ann"), ("XDG_RUNTIME_DIR", "/run/user/1000")]),
        );
        assert_eq!(user.state, Path::new("/home/ann/.local/state/peakguard"));
        assert_eq!(user.cache, Path::new("/home/ann/.cache/peakguard"));
        assert_eq!(user.runtime, Path::new("/run/user/1000/peakguard"));
        let xdg = DefaultDirs::for_user(
            false,
            env(&[
                ("HOME", "/home/ann"),
                ("XDG_STATE_HOME", "/srv/state"),
                ("XDG_CACHE_HOME", ""),
            ]),
        );
        assert_eq!(xdg.state, Path::new("/srv/state/peakguard"));
        assert_eq!(xdg.cache, Path::new("/home/ann/.cache/peakguard"));
        assert_eq!(
            xdg.runtime,
            Path::new("/srv/state/peakguard/run"),
            "no runtime directory: under the state"
        );
        let unit = DefaultDirs::for_user(
            true,
            env(&[
                ("STATE_DIRECTORY", "/var/lib/shop-edge:/var/lib/other"),
                ("RUNTIME_DIRECTORY", "/run/shop-edge"),
            ]),
        );
        assert_eq!(
            unit.state,
            Path::new("/var/lib/shop-edge"),
            "systemd's first"
        );
        assert_eq!(unit.runtime, Path::new("/run/shop-edge"));
        assert_eq!(unit.cache, Path::new("/var/cache/peakguard"));
        for dirs in [root, user, xdg, unit] {
            for p in [dirs.state, dirs.cache, dirs.runtime] {
                assert!(!p.starts_with("/tmp"), "{}", p.display());
            }
        }
    }
}
