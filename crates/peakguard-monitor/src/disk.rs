//! `kind = "disk"`: free space, free share and free inodes of a path's filesystem.

use crate::memory::Memory;
use crate::probe::{Probe, Problems, Registered, RunFuture};
use crate::result::{DiskDetail, ProbeResult};
use crate::sources::Sources;
use peakguard_config::{ByteSize, ProbeConfig};
use serde::Deserialize;

pub(crate) struct Disk;
pub(crate) static PROBE: Registered<Disk> = Registered::NEW;

/// A `disk` probe's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiskSettings {
    /// A path on the filesystem to watch.
    pub(crate) path: Option<String>,
    /// Fail below this many free bytes.
    pub(crate) min_free_bytes: Option<ByteSize>,
    /// Fail below this share of free space, in percent.
    pub(crate) min_free_percent: Option<f64>,
    /// Fail below this many free inodes.
    pub(crate) min_free_inodes: Option<u64>,
}

impl Probe for Disk {
    type Settings = DiskSettings;
    const KIND: &'static str = "disk";
    const VALUES: &'static [&'static str] = &[
        "success",
        "duration",
        "free_bytes",
        "free_percent",
        "free_inodes",
    ];

    fn check(s: &DiskSettings) -> Problems {
        let mut problems = Vec::new();
        if s.path.is_none() {
            problems.push(("path".into(), "a disk probe needs `path = \"/var/www\"`".into()));
        }
        if let Some(pc) = s.min_free_percent
            && !(0.0..=100.0).contains(&pc)
        {
            problems.push((
                "min_free_percent".into(),
                format!("{pc} is not a percentage (0-100)"),
            ));
        }
        problems
    }

    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: DiskSettings,
        _memory: &'a mut Memory,
        _sources: &'a Sources,
    ) -> RunFuture<'a> {
        Box::pin(run(probe, settings))
    }
}

async fn run(probe: &ProbeConfig, s: DiskSettings) -> ProbeResult {
    let Some(path) = s.path.clone() else {
        return ProbeResult::failed(probe, "no path".into());
    };
    // statvfs may block on a slow or hung filesystem: on the blocking pool.
    let stat = tokio::task::spawn_blocking(move || rustix::fs::statvfs(path.as_str())).await;
    let stat = match stat {
        Ok(Ok(stat)) => stat,
        Ok(Err(e)) => {
            return ProbeResult::failed(
                probe,
                format!(
                    "cannot read the filesystem of {:?}: {e}",
                    s.path.as_deref().unwrap_or("")
                ),
            );
        }
        Err(_) => return ProbeResult::failed(probe, "the disk check stopped".into()),
    };
    let unit = stat.f_frsize.max(1);
    let detail = DiskDetail {
        free_bytes: stat.f_bavail.saturating_mul(unit),
        total_bytes: stat.f_blocks.saturating_mul(unit),
        free_percent: if stat.f_blocks == 0 {
            100.0
        } else {
            stat.f_bavail as f64 * 100.0 / stat.f_blocks as f64
        },
        free_inodes: stat.f_favail,
    };
    let mut short = Vec::new();
    if let Some(min) = s.min_free_bytes
        && detail.free_bytes < min.0
    {
        short.push(format!(
            "{} free, below {}",
            bytes(detail.free_bytes),
            bytes(min.0)
        ));
    }
    if let Some(min) = s.min_free_percent
        && detail.free_percent < min
    {
        short.push(format!("{:.1} % free, below {min} %", detail.free_percent));
    }
    // Filesystems without inode accounting report 0 files in all: nothing to check.
    if let Some(min) = s.min_free_inodes
        && stat.f_files > 0
        && detail.free_inodes < min
    {
        short.push(format!("{} inodes free, below {min}", detail.free_inodes));
    }
    let mut result = if short.is_empty() {
        ProbeResult::new(
            probe,
            true,
            format!(
                "{} free of {} ({:.1} %), {} inodes free",
                bytes(detail.free_bytes),
                bytes(detail.total_bytes),
                detail.free_percent,
                detail.free_inodes
            ),
        )
    } else {
        ProbeResult::failed(probe, short.join("; "))
    };
    result.disk = Some(detail);
    result
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
