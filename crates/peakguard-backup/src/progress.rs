//! How long operations report progress: rustic's own [`ProgressBars`] trait, which the
//! caller implements (the binary draws terminal bars; the daemon shows nothing). This crate
//! never draws anything itself.

/// rustic's progress types, for implementers (the binary never names rustic itself).
pub use rustic_core::{Progress, ProgressBars, ProgressType, RusticProgress};
use std::sync::Arc;

/// Progress reporting for a repository's operations.
pub trait Reporter: ProgressBars {
    /// Whether anyone watches: when not, the size scan that only feeds an ETA is skipped.
    fn visible(&self) -> bool;
}

/// Shows nothing (daemons, `--json`, scripts).
#[derive(Debug, Clone, Copy, Default)]
pub struct Hidden;

impl ProgressBars for Hidden {
    fn progress(&self, _kind: ProgressType, _prefix: &str) -> Progress {
        Progress::hidden()
    }
}

impl Reporter for Hidden {
    fn visible(&self) -> bool {
        false
    }
}

/// A shared reporter, handed to rustic for every operation.
#[derive(Debug, Clone)]
pub struct SharedReporter(pub Arc<dyn Reporter>);

impl SharedReporter {
    pub fn new(reporter: impl Reporter) -> Self {
        SharedReporter(Arc::new(reporter))
    }

    pub fn visible(&self) -> bool {
        self.0.visible()
    }
}

impl ProgressBars for SharedReporter {
    fn progress(&self, kind: ProgressType, prefix: &str) -> Progress {
        self.0.progress(kind, prefix)
    }
}
