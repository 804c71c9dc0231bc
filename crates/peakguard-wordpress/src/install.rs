//! Writing the plugin into `mu-plugins` and removing it. The installed file holds tokens:
//! it is 0640 and belongs to the group PHP runs as, written under a temporary name and
//! renamed (WordPress never loads half a plugin). A `peakguard.php` that is not ours is
//! never overwritten or removed.

use crate::WordpressError;
use crate::plugin::PLUGIN_FILE;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What an install did.
#[derive(Debug)]
pub struct Installed {
    pub path: PathBuf,
    /// A previous copy was replaced (an upgrade, or new settings).
    pub replaced: bool,
    pub created_directory: bool,
}

/// How the plugin's header starts: tells our file from another plugin of the same name.
const OUR_HEADER: &str = " * Plugin Name: peakguard\n";

fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> WordpressError + 'a {
    move |source| WordpressError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn ours(path: &Path) -> Result<Option<bool>, WordpressError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(
            String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).contains(OUR_HEADER),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("cannot read", path)(e)),
    }
}

/// Writes `text` as `<mu_plugins>/peakguard.php`, readable by `web_group` and no other.
pub fn install(
    mu_plugins: &Path,
    text: &str,
    web_group: &str,
) -> Result<Installed, WordpressError> {
    let group = nix::unistd::Group::from_name(web_group)
        .map_err(|e| WordpressError::Config(format!("cannot look up group {web_group:?}: {e}")))?
        .ok_or_else(|| {
            WordpressError::Config(format!(
                "no group {web_group:?} on this machine: set [site.wordpress] web_group to the group PHP-FPM runs as (its pool's `group =`)"
            ))
        })?;
    let mut created_directory = false;
    if !mu_plugins.is_dir() {
        let parent = mu_plugins.parent().unwrap_or(Path::new("/"));
        if !parent.is_dir() {
            return Err(WordpressError::Refused(format!(
                "{} does not exist: is [site.wordpress] root (or mu_plugins) the WordPress directory?",
                parent.display()
            )));
        }
        std::fs::create_dir(mu_plugins).map_err(io("cannot create", mu_plugins))?;
        std::fs::set_permissions(mu_plugins, std::fs::Permissions::from_mode(0o755))
            .map_err(io("cannot set the mode of", mu_plugins))?;
        created_directory = true;
    }
    let path = mu_plugins.join(PLUGIN_FILE);
    let replaced = match ours(&path)? {
        Some(false) => {
            return Err(WordpressError::Refused(format!(
                "{} exists and is not peakguard's plugin; move it away first",
                path.display()
            )));
        }
        Some(true) => true,
        None => false,
    };
    let temporary = mu_plugins.join(format!(".{PLUGIN_FILE}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io("cannot create", &temporary))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io("cannot write", &temporary))?;
        std::os::unix::fs::chown(&temporary, None, Some(group.gid.as_raw())).map_err(|e| {
            WordpressError::Refused(format!(
                "cannot give {} to group {web_group:?} ({e}): run as root, or as a member of that group",
                temporary.display()
            ))
        })?;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o640))
            .map_err(io("cannot set the mode of", &temporary))?;
        std::fs::rename(&temporary, &path).map_err(io("cannot rename into place", &path))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    Ok(Installed {
        path,
        replaced,
        created_directory,
    })
}

/// Removes `<mu_plugins>/peakguard.php` if it is ours; `Ok(false)` when there was none.
pub fn uninstall(mu_plugins: &Path) -> Result<bool, WordpressError> {
    let path = mu_plugins.join(PLUGIN_FILE);
    match ours(&path)? {
        None => Ok(false),
        Some(false) => Err(WordpressError::Refused(format!(
            "{} is not peakguard's plugin; left in place",
            path.display()
        ))),
        Some(true) => {
            std::fs::remove_file(&path).map_err(io("cannot remove", &path))?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn own_group() -> String {
        let gid = nix::unistd::getegid();
        nix::unistd::Group::from_gid(gid)
            .ok()
            .flatten()
            .map_or_else(|| "root".into(), |g| g.name)
    }

    #[test]
    fn installs_privately_replaces_its_own_copy_and_uninstalls() {
        let dir = tempfile::tempdir().unwrap();
        let mu = dir.path().join("mu-plugins");
        let text = crate::plugin();
        let first = install(&mu, &text, &own_group()).unwrap();
        assert!(first.created_directory && !first.replaced);
        let meta = std::fs::metadata(&first.path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_to_string(&first.path).unwrap(), text);
        let again = install(&mu, &text, &own_group()).unwrap();
        assert!(again.replaced && !again.created_directory);
        assert_eq!(
            std::fs::read_dir(&mu).unwrap().count(),
            1,
            "no temporary left"
        );
        assert!(uninstall(&mu).unwrap());
        assert!(!uninstall(&mu).unwrap());
    }

    #[test]
    fn another_plugin_of_the_same_name_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join(PLUGIN_FILE);
        std::fs::write(&other, "<?php\n/* Plugin Name: something else */\n").unwrap();
        let e = install(dir.path(), &crate::plugin(), &own_group()).unwrap_err();
        assert!(e.to_string().contains("not peakguard's"), "{e}");
        assert!(uninstall(dir.path()).is_err());
        assert!(other.exists());
    }

    #[test]
    fn an_unknown_group_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = install(dir.path(), "x", "no-such-group-pg")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no-such-group-pg") && e.contains("web_group"),
            "{e}"
        );
    }
}
