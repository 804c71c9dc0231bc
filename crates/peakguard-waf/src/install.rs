//! Rule sets and plugins installed side by side under `crs_home`:
//!
//! ```text
//! <crs_home>/4.28.0/          a CRS release tree (rules/, crs-setup.conf.example, …)
//! <crs_home>/4.27.0/
//! <crs_home>/current  → 4.28.0   what sites run (unless they name a crs_dir)
//! <crs_home>/previous → 4.27.0   what `rollback` returns to
//! <crs_home>/plugins/NAME/    a CRS 4 plugin's files
//! ```
//!
//! A release comes as the CRS project publishes it (a `.tar.gz` with a detached `.asc`
//! signature) or as a directory. A tarball is verified first: its SHA-256 against the one
//! the user pastes, or its signature with `gpgv` against a keyring the user names. It is
//! unpacked into a staging directory inside `crs_home` (regular files and directories only,
//! no path leaving it, bounded in size), compiled by libmodsecurity with the installed
//! plugins (a tree that does not load is refused before anything changes), moved into
//! place, and `current` is switched by renaming a new link over it (atomic: a reader sees
//! the old link or the new one). Releases other than `current` and `previous` are removed.
//! Only peakguard's own `crs_home` is ever written.

use crate::crs::{CrsVersion, Found, RuleSet};
use crate::plugin::Plugin;
use crate::{Settings, Waf};
use sha2::Digest;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The most an archive or directory may unpack to (a CRS release is ~2 MB).
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The most entries it may hold (a CRS release has ~100).
pub const MAX_ENTRIES: usize = 10_000;

/// How a tarball is checked before it is unpacked.
#[derive(Debug, Clone, Default)]
pub struct Verify {
    /// The SHA-256 the publisher gives (hex).
    pub sha256: Option<String>,
    /// A detached signature (`FILE.asc`) checked with `gpgv` against `keyring`.
    pub signature: Option<PathBuf>,
    /// A keyring `gpgv` reads (binary: `gpg --dearmor < KEY.asc > KEY.gpg`).
    pub keyring: Option<PathBuf>,
    /// Install without either check (the user said so).
    pub unverified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(
        "{0} is not verified: give --sha256 HASH (from the release page) or --signature FILE.asc --keyring KEYRING (or --unverified to install it as it is)"
    )]
    NotVerified(String),
    #[error("{file}: its SHA-256 is {actual}, not the {expected} given: not installed")]
    Sha256Mismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: the signature does not verify against {keyring}: {why}")]
    BadSignature {
        file: String,
        keyring: String,
        why: String,
    },
    #[error("{0}")]
    Unsafe(String),
    #[error("{0}")]
    NotARelease(String),
    #[error("{what} does not load in libmodsecurity, nothing changed: {why}")]
    DoesNotLoad { what: String, why: String },
    #[error("{0}")]
    NoPrevious(String),
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> InstallError {
    let what = what.to_string();
    move |e| InstallError::Io(what, e)
}

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub version: CrsVersion,
    pub dir: PathBuf,
    /// The release `current` named before (now `previous`), if another.
    pub previous: Option<CrsVersion>,
    /// Releases removed (older than `previous`).
    pub removed: Vec<String>,
    /// Plugins it was compiled with.
    pub checked_with: Vec<String>,
}

/// The releases under `home`, and which are current and previous.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Releases {
    pub current: Option<CrsVersion>,
    pub previous: Option<CrsVersion>,
    pub all: Vec<CrsVersion>,
    pub plugins: Vec<String>,
}

/// Creates `home` (0700) if it is not there.
fn ensure_home(home: &Path) -> Result<(), InstallError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .map_err(io(home.display()))
}

fn sha256_of(path: &Path) -> Result<String, InstallError> {
    let mut file = std::fs::File::open(path).map_err(io(path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io(path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks a downloaded file as `verify` says.
pub fn verify_file(file: &Path, verify: &Verify) -> Result<Vec<String>, InstallError> {
    let mut done = Vec::new();
    if let Some(expected) = &verify.sha256 {
        let expected = expected.trim().to_ascii_lowercase();
        let actual = sha256_of(file)?;
        if actual != expected {
            return Err(InstallError::Sha256Mismatch {
                file: file.display().to_string(),
                expected,
                actual,
            });
        }
        done.push(format!("SHA-256 {actual} matches"));
    }
    let signature = verify.signature.clone().or_else(|| {
        let beside = PathBuf::from(format!("{}.asc", file.display()));
        (verify.keyring.is_some() && beside.is_file()).then_some(beside)
    });
    match (&signature, &verify.keyring) {
        (Some(sig), Some(keyring)) => {
            gpgv(file, sig, keyring)?;
            done.push(format!(
                "signature {} verified against {}",
                sig.display(),
                keyring.display()
            ));
        }
        (Some(_), None) => {
            return Err(InstallError::NotVerified(format!(
                "{} (a signature needs --keyring)",
                file.display()
            )));
        }
        _ => {}
    }
    if done.is_empty() && !verify.unverified {
        return Err(InstallError::NotVerified(file.display().to_string()));
    }
    Ok(done)
}

fn gpgv(file: &Path, signature: &Path, keyring: &Path) -> Result<(), InstallError> {
    let bad = |why: String| InstallError::BadSignature {
        file: file.display().to_string(),
        keyring: keyring.display().to_string(),
        why,
    };
    let head = std::fs::read(keyring).map_err(io(keyring.display()))?;
    if head.starts_with(b"-----BEGIN PGP") {
        return Err(bad(
            "the keyring is ASCII-armored; gpgv reads binary keyrings: gpg --dearmor < KEY.asc > KEY.gpg"
                .into(),
        ));
    }
    let keyring = std::fs::canonicalize(keyring).map_err(io(keyring.display()))?;
    // gpgv must not read or write the user's own ~/.gnupg.
    let gnupg_home = tempfile::tempdir().map_err(io("a temporary GnuPG home"))?;
    let out = std::process::Command::new("gpgv")
        .arg("--homedir")
        .arg(gnupg_home.path())
        .arg("--keyring")
        .arg(&keyring)
        .arg(signature)
        .arg(file)
        .output()
        .map_err(|e| bad(format!("cannot run gpgv ({e}): apt-get install gpgv")))?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        let last = text
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("gpgv refused it")
            .trim()
            .to_string();
        Err(bad(last))
    }
}

/// Only a relative path made of plain names (no `..`, no root): where an entry may go.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

fn write_file(to: &Path, from: &mut impl Read, budget: &mut u64) -> Result<(), InstallError> {
    use std::io::Write;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent.display()))?;
    }
    let mut out = std::fs::File::create(to).map_err(io(to.display()))?;
    let mut limited = from.take(*budget + 1);
    let n = std::io::copy(&mut limited, &mut out).map_err(io(to.display()))?;
    if n > *budget {
        return Err(InstallError::Unsafe(format!(
            "it unpacks to more than {} MiB: not a CRS release",
            MAX_BYTES / 1024 / 1024
        )));
    }
    *budget -= n;
    out.flush().map_err(io(to.display()))
}

/// Unpacks a `.tar.gz` (or `.tar`) into `into`: regular files and directories only.
fn unpack(archive: &Path, into: &Path) -> Result<(), InstallError> {
    let file = std::fs::File::open(archive).map_err(io(archive.display()))?;
    let mut magic = [0u8; 2];
    let gz = {
        let mut f = &file;
        f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b]
    };
    let file = std::fs::File::open(archive).map_err(io(archive.display()))?;
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut tar = tar::Archive::new(reader);
    let mut budget = MAX_BYTES;
    let entries = tar
        .entries()
        .map_err(io(format!("{}: not a tar archive", archive.display())))?;
    for (n, entry) in entries.enumerate() {
        if n >= MAX_ENTRIES {
            return Err(InstallError::Unsafe(format!(
                "{}: more than {MAX_ENTRIES} entries: not a CRS release",
                archive.display()
            )));
        }
        let mut entry = entry.map_err(io(archive.display()))?;
        let raw = entry.path().map_err(io(archive.display()))?.into_owned();
        let Some(rel) = safe_relative(&raw) else {
            return Err(InstallError::Unsafe(format!(
                "{}: entry {} would be written outside the release directory: refused",
                archive.display(),
                raw.display()
            )));
        };
        let to = into.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&to).map_err(io(to.display()))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                write_file(&to, &mut entry, &mut budget)?;
            }
            // GitHub's archives carry a global header with the commit id.
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            other => {
                return Err(InstallError::Unsafe(format!(
                    "{}: entry {} is a {other:?}, not a file or directory: refused",
                    archive.display(),
                    raw.display()
                )));
            }
        }
    }
    Ok(())
}

/// Copies a directory's regular files and directories (links and `.git` left out).
fn copy_tree(from: &Path, into: &Path) -> Result<(), InstallError> {
    let mut budget = MAX_BYTES;
    let mut count = 0usize;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = from.join(&rel);
        std::fs::create_dir_all(into.join(&rel)).map_err(io(into.join(&rel).display()))?;
        for entry in std::fs::read_dir(&dir).map_err(io(dir.display()))? {
            let entry = entry.map_err(io(dir.display()))?;
            count += 1;
            if count > MAX_ENTRIES {
                return Err(InstallError::Unsafe(format!(
                    "{}: more than {MAX_ENTRIES} files: not a CRS release",
                    from.display()
                )));
            }
            let name = entry.file_name();
            if name == ".git" {
                continue;
            }
            let kind = entry.file_type().map_err(io(entry.path().display()))?;
            let rel_child = rel.join(&name);
            if kind.is_dir() {
                stack.push(rel_child);
            } else if kind.is_file() {
                let mut src =
                    std::fs::File::open(entry.path()).map_err(io(entry.path().display()))?;
                write_file(&into.join(&rel_child), &mut src, &mut budget)?;
            }
        }
    }
    Ok(())
}

/// Brings a tarball or directory into a new staging directory inside `home`.
fn stage(
    home: &Path,
    source: &Path,
    verify: &Verify,
) -> Result<(tempfile::TempDir, Vec<String>), InstallError> {
    ensure_home(home)?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(home)
        .map_err(io(home.display()))?;
    let meta = std::fs::metadata(source).map_err(io(source.display()))?;
    let checks = if meta.is_dir() {
        copy_tree(source, staging.path())?;
        vec![format!("copied from the directory {}", source.display())]
    } else {
        let checks = verify_file(source, verify)?;
        unpack(source, staging.path())?;
        checks
    };
    Ok((staging, checks))
}

/// The directory in `staged` that holds what `is_root` looks for: itself, or its one
/// top-level directory (`coreruleset-4.28.0/`).
fn root_in(staged: &Path, is_root: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    if is_root(staged) {
        return Some(staged.to_path_buf());
    }
    let dirs: Vec<PathBuf> = std::fs::read_dir(staged)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    match dirs.as_slice() {
        [one] if is_root(one) => Some(one.clone()),
        _ => None,
    }
}

fn link_target(link: &Path) -> Option<String> {
    std::fs::read_link(link)
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// Points `home/name` at `target` (a sibling) by renaming a new link over it.
fn switch_link(home: &Path, name: &str, target: &str) -> Result<(), InstallError> {
    let tmp = home.join(format!(".{name}.new"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(io(tmp.display()))?;
    let link = home.join(name);
    std::fs::rename(&tmp, &link).map_err(io(link.display()))?;
    // The rename is durable once the directory is.
    if let Ok(dir) = std::fs::File::open(home) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The plugins installed under `home/plugins`.
pub fn installed_plugins(home: &Path) -> Vec<Plugin> {
    let Ok(entries) = std::fs::read_dir(home.join("plugins")) else {
        return Vec::new();
    };
    let mut out: Vec<Plugin> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Plugin::open(&e.path()).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Compiles a rule set with plugins, as a site would load it.
fn check_loads(crs: &RuleSet, plugins: &[Plugin], what: &str) -> Result<(), InstallError> {
    let mut settings = Settings::new(crs.clone());
    if crs.version.is_v4() {
        settings.plugins = plugins.to_vec();
    }
    settings.responses = true;
    Waf::build(settings)
        .map(|_| ())
        .map_err(|e| InstallError::DoesNotLoad {
            what: what.to_string(),
            why: e.to_string(),
        })
}

/// Installs a CRS release from a tarball or directory as `home/VERSION` and makes it
/// current (see the module's doc). `check` compiles it as the sites would (their
/// settings and plugins) before anything changes; an error there refuses it.
pub fn install_crs(
    home: &Path,
    source: &Path,
    verify: &Verify,
    check: &dyn Fn(&RuleSet) -> Result<(), String>,
) -> Result<(Installed, Vec<String>), InstallError> {
    let (staging, checks) = stage(home, source, verify)?;
    let root = root_in(staging.path(), |d| {
        d.join("rules/REQUEST-901-INITIALIZATION.conf").is_file()
    })
    .ok_or_else(|| {
        InstallError::NotARelease(format!(
            "{}: no rules/REQUEST-901-INITIALIZATION.conf at its top or in its one top-level directory: not a CRS release",
            source.display()
        ))
    })?;
    let staged = RuleSet::open(&root, Found::Installed)
        .map_err(|e| InstallError::NotARelease(e.to_string()))?;
    let version = staged.version;
    let plugins = installed_plugins(home);
    check_loads(&staged, &plugins, &format!("CRS {version}"))?;
    check(&staged).map_err(|why| InstallError::DoesNotLoad {
        what: format!("CRS {version} with the sites' settings"),
        why,
    })?;

    let name = version.to_string();
    let dir = home.join(&name);
    let old_current = link_target(&home.join("current"));
    if dir.exists() {
        // Reinstalled: the new copy replaces the old one.
        let aside = home.join(format!(".old-{name}-{}", std::process::id()));
        std::fs::rename(&dir, &aside).map_err(io(dir.display()))?;
        std::fs::rename(&root, &dir).map_err(io(dir.display()))?;
        let _ = std::fs::remove_dir_all(&aside);
    } else {
        std::fs::rename(&root, &dir).map_err(io(dir.display()))?;
    }
    drop(staging);
    let previous = old_current.filter(|p| *p != name);
    if let Some(p) = &previous {
        switch_link(home, "previous", p)?;
    }
    switch_link(home, "current", &name)?;
    let keep = [Some(name.clone()), link_target(&home.join("previous"))];
    let mut removed = Vec::new();
    for v in releases(home).all {
        let n = v.to_string();
        if !keep.contains(&Some(n.clone())) && std::fs::remove_dir_all(home.join(&n)).is_ok() {
            removed.push(n);
        }
    }
    Ok((
        Installed {
            version,
            dir,
            previous: previous.and_then(|p| CrsVersion::parse(&p)),
            removed,
            checked_with: plugins.iter().map(|p| p.name.clone()).collect(),
        },
        checks,
    ))
}

/// Makes `previous` current again (and the current one previous).
pub fn rollback(home: &Path) -> Result<(CrsVersion, CrsVersion), InstallError> {
    let current = link_target(&home.join("current"));
    let previous = link_target(&home.join("previous"));
    let (Some(current), Some(previous)) = (current, previous) else {
        return Err(InstallError::NoPrevious(format!(
            "no previous rule set under {} to return to (one is kept when a newer one is installed)",
            home.display()
        )));
    };
    if !home.join(&previous).join("rules").is_dir() {
        return Err(InstallError::NoPrevious(format!(
            "the previous rule set {previous} is gone from {}",
            home.display()
        )));
    }
    switch_link(home, "previous", &current)?;
    switch_link(home, "current", &previous)?;
    let parse = |s: &str| {
        CrsVersion::parse(s).ok_or_else(|| InstallError::NotARelease(format!("{s}: not a release")))
    };
    Ok((parse(&previous)?, parse(&current)?))
}

/// The releases and plugins under `home`.
pub fn releases(home: &Path) -> Releases {
    let mut all: Vec<CrsVersion> = std::fs::read_dir(home)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    CrsVersion::parse(&name).filter(|v| v.to_string() == name)
                })
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    Releases {
        current: link_target(&home.join("current")).and_then(|t| CrsVersion::parse(&t)),
        previous: link_target(&home.join("previous")).and_then(|t| CrsVersion::parse(&t)),
        all,
        plugins: installed_plugins(home)
            .into_iter()
            .map(|p| p.name)
            .collect(),
    }
}

/// Installs a CRS 4 plugin from a tarball or directory as `home/plugins/NAME`, after
/// compiling it with the current rule set (`crs`), replacing an older copy.
pub fn install_plugin(
    home: &Path,
    source: &Path,
    verify: &Verify,
    crs: Option<&RuleSet>,
) -> Result<(Plugin, Vec<String>), InstallError> {
    let (staging, checks) = stage(home, source, verify)?;
    let root = root_in(staging.path(), |d| Plugin::open(d).is_ok()).ok_or_else(|| {
        InstallError::NotARelease(format!(
            "{}: no CRS plugin files (NAME-config.conf, NAME-before.conf, NAME-after.conf) at its top, in plugins/, or in its one top-level directory",
            source.display()
        ))
    })?;
    let plugin = Plugin::open(&root).map_err(|e| InstallError::NotARelease(e.to_string()))?;
    let plugins = home.join("plugins");
    ensure_home(&plugins)?;
    // Only the plugin's own folder is kept (its conf and data files), not the release's
    // tests and documents.
    let new = plugins.join(format!(".new-{}-{}", plugin.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&new);
    std::fs::rename(&plugin.dir, &new).map_err(io(new.display()))?;
    drop(staging);
    let staged = Plugin::open(&new).map_err(|e| InstallError::NotARelease(e.to_string()))?;
    if let Some(crs) = crs.filter(|c| c.version.is_v4()) {
        let mut with: Vec<Plugin> = installed_plugins(home)
            .into_iter()
            .filter(|p| p.name != staged.name)
            .collect();
        with.push(staged.clone());
        if let Err(e) = check_loads(crs, &with, &format!("plugin {}", staged.name)) {
            let _ = std::fs::remove_dir_all(&new);
            return Err(e);
        }
    }
    let dir = plugins.join(&staged.name);
    if dir.exists() {
        let aside = plugins.join(format!(".old-{}-{}", staged.name, std::process::id()));
        std::fs::rename(&dir, &aside).map_err(io(dir.display()))?;
        std::fs::rename(&new, &dir).map_err(io(dir.display()))?;
        let _ = std::fs::remove_dir_all(&aside);
    } else {
        std::fs::rename(&new, &dir).map_err(io(dir.display()))?;
    }
    let installed = Plugin::open(&dir).map_err(|e| InstallError::NotARelease(e.to_string()))?;
    Ok((installed, checks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_cannot_leave_the_release_directory() {
        assert_eq!(
            safe_relative(Path::new("coreruleset-4.28.0/rules/x.conf")),
            Some(PathBuf::from("coreruleset-4.28.0/rules/x.conf"))
        );
        assert_eq!(safe_relative(Path::new("../etc/passwd")), None);
        assert_eq!(safe_relative(Path::new("/etc/passwd")), None);
        assert_eq!(safe_relative(Path::new("a/../../b")), None);
        assert_eq!(safe_relative(Path::new("./")), None);
    }

    #[test]
    fn an_unverified_tarball_is_refused_unless_asked_and_a_wrong_hash_always() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("crs.tar.gz");
        std::fs::write(&file, b"not really").expect("write");
        let err = verify_file(&file, &Verify::default()).expect_err("unverified");
        assert!(err.to_string().contains("--sha256"), "{err}");
        let ok = Verify {
            unverified: true,
            ..Verify::default()
        };
        assert!(verify_file(&file, &ok).is_ok());
        let right = sha256_of(&file).expect("hash");
        let checked = verify_file(
            &file,
            &Verify {
                sha256: Some(right.to_uppercase()),
                ..Verify::default()
            },
        )
        .expect("right hash");
        assert!(checked[0].contains("matches"));
        let wrong = Verify {
            sha256: Some("00".repeat(32)),
            unverified: true,
            ..Verify::default()
        };
        assert!(matches!(
            verify_file(&file, &wrong),
            Err(InstallError::Sha256Mismatch { .. })
        ));
    }
}
