//! CRS 4 plugins: a set of SecLang files named `NAME-config.conf`, `NAME-before.conf` and
//! `NAME-after.conf` (each optional), with the data files they read beside them. CRS loads
//! every plugin's config files, then every plugin's before files, then its own rules, then
//! every plugin's after files; so does peakguard (rules.rs).
//!
//! A site names a plugin by name or by directory. A name is looked for in
//! `<crs_home>/plugins/NAME/` (where `peakguard waf plugin install` puts it), then in the
//! rule set's own `plugins/` folder (where the CRS documentation copies them). A directory
//! is read as it is: the files in it, or in its `plugins/` folder (a plugin's release
//! tree).

use std::path::{Path, PathBuf};

/// The official WordPress rule exclusions plugin (CRS 4's replacement for 3.3's built-in
/// exclusions), loaded by default for the `wordpress` profile.
pub const WORDPRESS: &str = "wordpress-rule-exclusions";

/// Where its releases are published.
pub const WORDPRESS_RELEASES: &str =
    "https://github.com/coreruleset/wordpress-rule-exclusions-plugin/releases";

/// One plugin's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugin {
    pub name: String,
    /// The directory its files are in.
    pub dir: PathBuf,
    pub config: Option<PathBuf>,
    pub before: Option<PathBuf>,
    pub after: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(
        "CRS plugin {name:?} is not installed (looked in {looked}): install it with `peakguard waf plugin install FILE|DIR`"
    )]
    NotFound { name: String, looked: String },
    #[error("{dir}: {message}")]
    Invalid { dir: String, message: String },
}

const PHASES: [&str; 3] = ["-config.conf", "-before.conf", "-after.conf"];

/// A plugin name: what CRS plugin files are named with.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-')
}

/// The plugin names whose files are in `dir` (the `empty-*` placeholders left out).
fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|f| {
            PHASES
                .iter()
                .find_map(|suffix| f.strip_suffix(suffix).map(str::to_string))
        })
        .filter(|n| n != "empty" && valid_name(n))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn files_of(name: &str, dir: &Path) -> Plugin {
    let file = |suffix: &str| {
        let p = dir.join(format!("{name}{suffix}"));
        p.is_file().then_some(p)
    };
    Plugin {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        config: file(PHASES[0]),
        before: file(PHASES[1]),
        after: file(PHASES[2]),
    }
}

impl Plugin {
    /// The plugin in a directory (its files there or in its `plugins/` folder): exactly one
    /// plugin must be there.
    pub fn open(dir: &Path) -> Result<Plugin, PluginError> {
        let invalid = |message: String| PluginError::Invalid {
            dir: dir.display().to_string(),
            message,
        };
        for place in [dir.to_path_buf(), dir.join("plugins")] {
            let names = names_in(&place);
            match names.as_slice() {
                [] => continue,
                [one] => return Ok(files_of(one, &place)),
                many => {
                    return Err(invalid(format!(
                        "holds several plugins ({}): give one directory each",
                        many.join(", ")
                    )));
                }
            }
        }
        Err(invalid(
            "no CRS plugin files (NAME-config.conf, NAME-before.conf, NAME-after.conf) here or in plugins/"
                .into(),
        ))
    }

    /// A plugin by name (in `<home>/plugins/NAME/`, then the rule set's `plugins/`) or by
    /// directory (an absolute path).
    pub fn find(what: &str, home: &Path, crs_dir: &Path) -> Result<Plugin, PluginError> {
        if what.starts_with('/') {
            return Plugin::open(Path::new(what));
        }
        let installed = home.join("plugins").join(what);
        if installed.is_dir() {
            let plugin = Plugin::open(&installed)?;
            if plugin.name != what {
                return Err(PluginError::Invalid {
                    dir: installed.display().to_string(),
                    message: format!("holds plugin {:?}, not {what:?}", plugin.name),
                });
            }
            return Ok(plugin);
        }
        let beside = crs_dir.join("plugins");
        if names_in(&beside).iter().any(|n| n == what) {
            return Ok(files_of(what, &beside));
        }
        Err(PluginError::NotFound {
            name: what.to_string(),
            looked: format!("{} and {}", installed.display(), beside.display()),
        })
    }

    /// Its files for one CRS phase: 0 config, 1 before, 2 after.
    pub fn file(&self, phase: usize) -> Option<&Path> {
        match phase {
            0 => self.config.as_deref(),
            1 => self.before.as_deref(),
            _ => self.after.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_is_found_by_its_files_by_name_or_directory() {
        let home = tempfile::tempdir().expect("tmp");
        let crs = tempfile::tempdir().expect("tmp");
        let release = home.path().join("release");
        std::fs::create_dir_all(release.join("plugins")).expect("mkdir");
        for f in ["fake-bot-config.conf", "fake-bot-before.conf"] {
            std::fs::write(release.join("plugins").join(f), "# x\n").expect("write");
        }
        let p = Plugin::open(&release).expect("found in plugins/");
        assert_eq!(p.name, "fake-bot");
        assert!(p.config.is_some() && p.before.is_some() && p.after.is_none());

        // By name: the CRS tree's own plugins/ folder, placeholders ignored.
        std::fs::create_dir_all(crs.path().join("plugins")).expect("mkdir");
        std::fs::write(crs.path().join("plugins/empty-before.conf"), "").expect("write");
        std::fs::write(crs.path().join("plugins/fake-bot-after.conf"), "").expect("write");
        let beside = Plugin::find("fake-bot", home.path(), crs.path()).expect("beside");
        assert!(beside.after.is_some() && beside.before.is_none());
        // …and the installed copy first.
        let installed = home.path().join("plugins/fake-bot");
        std::fs::create_dir_all(&installed).expect("mkdir");
        std::fs::write(installed.join("fake-bot-before.conf"), "").expect("write");
        let first = Plugin::find("fake-bot", home.path(), crs.path()).expect("installed");
        assert_eq!(first.dir, installed);

        let missing = Plugin::find("nope", home.path(), crs.path()).expect_err("missing");
        assert!(
            missing.to_string().contains("peakguard waf plugin install"),
            "{missing}"
        );
        std::fs::write(release.join("plugins/other-after.conf"), "").expect("write");
        assert!(
            Plugin::open(&release).is_err(),
            "two plugins in one directory"
        );
        assert!(!valid_name("../x") && valid_name("wordpress-rule-exclusions"));
    }
}
