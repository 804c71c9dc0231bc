//! Which Core Rule Set a site runs, and which release it is.
//!
//! Looked for in this order: the site's `crs_dir` (a user who names one gets that one or an
//! error, never another), peakguard's own installed copy (`<crs_home>/current`, what
//! `peakguard waf crs install` switches), then Debian's `modsecurity-crs` (CRS 3.3 on
//! Debian 12 and 13). The release is read from the rules themselves (`OWASP_CRS/4.28.0`).

use std::fmt;
use std::path::{Path, PathBuf};

/// Where Debian's `modsecurity-crs` installs the rules.
pub const DEBIAN_CRS: &str = "/usr/share/modsecurity-crs";

/// Where the CRS project publishes its releases (with a detached `.asc` signature each).
pub const RELEASES: &str = "https://github.com/coreruleset/coreruleset/releases";

/// A CRS release number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CrsVersion {
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
}

impl fmt::Display for CrsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl CrsVersion {
    /// `4.28.0` (a leading `v` is allowed).
    pub fn parse(text: &str) -> Option<CrsVersion> {
        let mut parts = text.trim().trim_start_matches('v').splitn(3, '.');
        let mut next = || -> Option<u16> {
            let digits: String = parts
                .next()?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        };
        Some(CrsVersion {
            major: next()?,
            minor: next()?,
            patch: next().unwrap_or(0),
        })
    }

    /// CRS 4 and later: plugins, `blocking_paranoia_level`, no built-in application
    /// exclusions.
    pub fn is_v4(&self) -> bool {
        self.major >= 4
    }

    /// What `tx.crs_setup_version` says for this release (4.28.0 → 4280, 3.3.4 → 334).
    pub fn setup_number(&self) -> u32 {
        u32::from(self.major) * if self.major >= 4 { 1000 } else { 100 }
            + u32::from(self.minor) * 10
            + u32::from(self.patch)
    }
}

/// How a rule set was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The site's `crs_dir`.
    Site,
    /// peakguard's installed copy (`<crs_home>/current`).
    Installed,
    /// Debian's `modsecurity-crs`.
    Debian,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Found::Site => "the site's crs_dir",
            Found::Installed => "peakguard's installed copy",
            Found::Debian => "Debian's modsecurity-crs",
        })
    }
}

/// A Core Rule Set tree: `rules/` inside, its release read from the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    /// The directory as found (`…/crs/current`).
    pub dir: PathBuf,
    /// The same with every link resolved (`…/crs/4.28.0`): what a reload compares.
    pub real_dir: PathBuf,
    pub version: CrsVersion,
    pub found: Found,
}

#[derive(Debug, thiserror::Error)]
pub enum CrsError {
    #[error(
        "no Core Rule Set: not in {home} (install a CRS 4 release with `peakguard waf crs install FILE`; releases: {RELEASES}) nor {DEBIAN_CRS} (Debian's modsecurity-crs)"
    )]
    NoneFound { home: String },
    #[error(
        "the Core Rule Set in {dir}: {message} (install one with `peakguard waf crs install FILE`, or Debian's modsecurity-crs)"
    )]
    Unusable { dir: String, message: String },
}

impl RuleSet {
    /// Opens a CRS tree: `rules/REQUEST-901-INITIALIZATION.conf` must be there and name its
    /// release.
    pub fn open(dir: &Path, found: Found) -> Result<RuleSet, CrsError> {
        let unusable = |message: String| CrsError::Unusable {
            dir: dir.display().to_string(),
            message,
        };
        let init = dir.join("rules").join("REQUEST-901-INITIALIZATION.conf");
        let text = std::fs::read_to_string(&init)
            .map_err(|e| unusable(format!("cannot read {}: {e}", init.display())))?;
        let version = release_in(&text).ok_or_else(|| {
            unusable(format!(
                "{} names no release (OWASP_CRS/x.y.z)",
                init.display()
            ))
        })?;
        let real_dir = std::fs::canonicalize(dir)
            .map_err(|e| unusable(format!("cannot resolve the directory: {e}")))?;
        if real_dir.to_string_lossy().contains('+') {
            // libmodsecurity 3 does not find files under a path with a `+` in it.
            return Err(unusable(
                "its path holds a '+', which libmodsecurity 3 cannot load files from: move it"
                    .into(),
            ));
        }
        Ok(RuleSet {
            dir: dir.to_path_buf(),
            real_dir,
            version,
            found,
        })
    }

    /// The rule set a site runs: its own `crs_dir` if it names one, else the installed copy
    /// under `home`, else Debian's.
    pub fn locate(site_dir: Option<&Path>, home: &Path) -> Result<RuleSet, CrsError> {
        if let Some(dir) = site_dir {
            return RuleSet::open(dir, Found::Site);
        }
        let current = home.join("current");
        if current.exists() {
            return RuleSet::open(&current, Found::Installed);
        }
        let debian = Path::new(DEBIAN_CRS);
        if debian.join("rules").exists() {
            return RuleSet::open(debian, Found::Debian);
        }
        Err(CrsError::NoneFound {
            home: current.display().to_string(),
        })
    }

    /// The request rule files (`REQUEST-*.conf`), in order; with `responses`, the response
    /// rule files (`RESPONSE-*.conf`) after them.
    pub fn rule_files(&self, responses: bool) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("rules"))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.ends_with(".conf")
                        && (n.starts_with("REQUEST-") || (responses && n.starts_with("RESPONSE-")))
                })
            })
            .collect();
        // REQUEST-… sorts before RESPONSE-…, and the numbers in order within each.
        files.sort();
        Ok(files)
    }

    /// The setup version the rules check (`tx.crs_setup_version`): what the release's
    /// `crs-setup.conf.example` sets, else derived from the release.
    pub fn setup_version(&self) -> u32 {
        std::fs::read_to_string(self.dir.join("crs-setup.conf.example"))
            .ok()
            .and_then(|text| {
                let i = text.find("tx.crs_setup_version=")? + "tx.crs_setup_version=".len();
                let digits: String = text[i..].chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .unwrap_or_else(|| self.version.setup_number())
    }

    /// Whether the rule set defines `tx.NAME` (in its initialisation rules or its setup
    /// example): how a `crs_setup` key the release does not know is caught.
    pub fn knows_setting(&self, name: &str) -> bool {
        let needle = format!("tx.{}", name.to_ascii_lowercase());
        let has = |path: PathBuf| {
            std::fs::read_to_string(path)
                .map(|t| t.to_ascii_lowercase().contains(&needle))
                .unwrap_or(false)
        };
        has(self
            .dir
            .join("rules")
            .join("REQUEST-901-INITIALIZATION.conf"))
            || has(self.dir.join("crs-setup.conf.example"))
    }
}

/// The release the initialisation rules carry (`ver:'OWASP_CRS/4.28.0'`, or CRS 3's
/// `SecComponentSignature "OWASP_CRS/3.3.4"`); comments are skipped (3.3's name older
/// releases in theirs).
pub fn release_in(text: &str) -> Option<CrsVersion> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| {
            let i = l.find("OWASP_CRS/")? + "OWASP_CRS/".len();
            CrsVersion::parse(&l[i..])
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_read_from_the_rules_not_their_comments() {
        let v3 = "# Producer: ModSecurity; OWASP_CRS/3.1.0.\nSecComponentSignature \"OWASP_CRS/3.3.4\"\n";
        assert_eq!(release_in(v3), CrsVersion::parse("3.3.4"));
        let v4 = "SecRule &TX:crs_setup_version \"@eq 0\" \\\n    ver:'OWASP_CRS/4.28.0',\\\n";
        let v = release_in(v4).expect("a release");
        assert_eq!(v.to_string(), "4.28.0");
        assert!(v.is_v4());
        assert_eq!(v.setup_number(), 4280);
        assert_eq!(
            CrsVersion::parse("3.3.4").map(|v| v.setup_number()),
            Some(334)
        );
        assert_eq!(release_in("nothing here"), None);
        assert_eq!(CrsVersion::parse("v4.2"), CrsVersion::parse("4.2.0"));
    }
}
