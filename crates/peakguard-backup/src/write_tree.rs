//! Writing a snapshot's tree into an empty directory, the way `cp` would: directories
//! first, then each file opened once and its blobs written in order by a few writer
//! threads, then directory modes and times, deepest first.
//!
//! Why not rustic's restore: it opens, seeks and closes the file for every blob, allocates
//! files under one global lock, runs 20 threads whatever the machine, and unwraps read
//! errors inside them (a damaged pack panics). Here a blob that cannot be read marks its
//! file as damaged, the other files are still written, and the error names every damaged
//! file.
//!
//! Restored: regular files (content, permission bits incl. setuid/setgid/sticky, owner when
//! running as root, mtime/atime), directories (same), symlinks (target, owner). Device
//! nodes, FIFOs and sockets are not restored (a WordPress tree has none); they are counted
//! and named in the log.

use crate::error::{BackupError, Result};
use crate::restore::Indexed;
use parking_lot::Mutex;
use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{BlobId, LsOptions};
use std::fs::{File, FileTimes};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};

/// Go's `os.FileMode` bits that restic stores (the low nine are the Unix permission bits).
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_STICKY: u32 = 1 << 20;

/// Unix permission bits from a node's Go file mode.
fn unix_permissions(go_mode: u32) -> u32 {
    let mut mode = go_mode & 0o777;
    if go_mode & GO_SETUID != 0 {
        mode |= 0o4000;
    }
    if go_mode & GO_SETGID != 0 {
        mode |= 0o2000;
    }
    if go_mode & GO_STICKY != 0 {
        mode |= 0o1000;
    }
    mode
}

/// What went wrong while writing, shared by the writer threads.
#[derive(Default)]
struct Failures {
    /// Files whose content could not be read from the repository, with the reason.
    damaged: Vec<(String, String)>,
    /// The first local error (disk full, permissions): it stops the restore.
    local: Option<BackupError>,
}

fn times(meta: &Metadata) -> Option<FileTimes> {
    let modified = meta.mtime.map(std::time::SystemTime::from)?;
    let accessed = meta
        .atime
        .map(std::time::SystemTime::from)
        .unwrap_or(modified);
    Some(
        FileTimes::new()
            .set_modified(modified)
            .set_accessed(accessed),
    )
}

fn apply_owner(path: &Path, meta: &Metadata) -> std::io::Result<()> {
    if rustix::process::geteuid().is_root() && (meta.uid.is_some() || meta.gid.is_some()) {
        std::os::unix::fs::lchown(path, meta.uid, meta.gid)?;
    }
    Ok(())
}

fn apply_meta(file: &File, path: &Path, meta: &Metadata) -> std::io::Result<()> {
    apply_owner(path, meta)?;
    if let Some(mode) = meta.mode {
        file.set_permissions(std::fs::Permissions::from_mode(unix_permissions(mode)))?;
    }
    if let Some(t) = times(meta) {
        file.set_times(t)?;
    }
    Ok(())
}

fn write_file(repo: &Indexed, dest: &Path, rel: &Path, node: &Node, failures: &Mutex<Failures>) {
    let path = dest.join(rel);
    let local = |what: &'static str, e: std::io::Error| BackupError::io(what, &path, e);
    let result = (|| -> std::result::Result<(), BackupError> {
        // 0600 until the snapshot's own mode is applied at the end: a restored
        // wp-config.php is never readable by others, not even for a moment.
        let mut file = peakguard_config::private_fs::create_private(&path)
            .map_err(|e| local("creating", e))?;
        for id in node.content.iter().flatten() {
            let blob = match repo
                .get_blob_cached(&BlobId::from(**id), rustic_core::repofile::BlobType::Data)
            {
                Ok(b) => b,
                Err(e) => {
                    failures
                        .lock()
                        .damaged
                        .push((format!("/{}", rel.display()), e.display_log()));
                    return Ok(());
                }
            };
            file.write_all(&blob).map_err(|e| local("writing", e))?;
        }
        apply_meta(&file, &path, &node.meta).map_err(|e| local("setting metadata of", e))
    })();
    if let Err(e) = result {
        let mut f = failures.lock();
        if f.local.is_none() {
            f.local = Some(e);
        }
    }
}

fn writer(
    repo: &Indexed,
    dest: &Path,
    jobs: &Mutex<Receiver<(PathBuf, Node)>>,
    failures: &Mutex<Failures>,
) {
    loop {
        let job = jobs.lock().recv();
        let Ok((rel, node)) = job else {
            return;
        };
        if failures.lock().local.is_some() {
            continue; // drain: the restore is stopping
        }
        write_file(repo, dest, &rel, &node, failures);
    }
}

/// Writes `root` (a directory node of the snapshot) into `dest` (existing and empty).
/// Returns the damaged files (path, reason); an empty list means everything was written.
pub(crate) fn write_tree(
    repo: &Indexed,
    root: &Node,
    dest: &Path,
) -> Result<Vec<(String, String)>> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let ls = repo.ls(root, &LsOptions::default()).map_err(|e| {
        BackupError::Other(format!("reading the snapshot's trees: {}", e.display_log()))
    })?;
    let (tx, rx) = sync_channel::<(PathBuf, Node)>(1024);
    let jobs = Mutex::new(rx);
    let failures = Mutex::new(Failures::default());
    let mut dirs: Vec<(PathBuf, Metadata)> = Vec::new();
    let mut special = 0usize;
    let walked = std::thread::scope(|s| -> Result<()> {
        for _ in 0..workers {
            s.spawn(|| writer(repo, dest, &jobs, &failures));
        }
        let tx = tx; // dropped on every way out, so the writers end
        for item in ls {
            let (rel, node) = item.map_err(|e| {
                BackupError::Other(format!("reading the snapshot's trees: {}", e.display_log()))
            })?;
            let path = dest.join(&rel);
            match &node.node_type {
                NodeType::Dir => {
                    std::fs::create_dir_all(&path)
                        .map_err(|e| BackupError::io("creating", &path, e))?;
                    dirs.push((path, node.meta.clone()));
                }
                NodeType::File => {
                    if tx.send((rel, node)).is_err() {
                        break;
                    }
                }
                NodeType::Symlink { .. } => {
                    std::os::unix::fs::symlink(node.node_type.to_link(), &path)
                        .map_err(|e| BackupError::io("creating the symlink", &path, e))?;
                    apply_owner(&path, &node.meta)
                        .map_err(|e| BackupError::io("setting the owner of", &path, e))?;
                }
                _ => {
                    log::warn!("not restored (device, FIFO or socket): {}", path.display());
                    special += 1;
                }
            }
            if failures.lock().local.is_some() {
                break;
            }
        }
        Ok(())
    });
    let failures = failures.into_inner();
    if let Some(e) = failures.local {
        return Err(e);
    }
    walked?;
    // Deepest first: writing into a directory changes its mtime. The root last.
    dirs.insert(0, (dest.to_path_buf(), root.meta.clone()));
    for (path, meta) in dirs.iter().rev() {
        let dir = File::open(path).map_err(|e| BackupError::io("opening", path, e))?;
        apply_meta(&dir, path, meta)
            .map_err(|e| BackupError::io("setting metadata of", path, e))?;
    }
    if special > 0 {
        log::warn!("{special} device node(s), FIFO(s) or socket(s) were not restored");
    }
    Ok(failures.damaged)
}
