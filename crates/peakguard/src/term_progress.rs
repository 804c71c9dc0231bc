//! The backups' progress (peakguard-backup reports through rustic's `ProgressBars`) drawn
//! with indicatif on a terminal, hidden otherwise.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use peakguard_backup::progress::{Progress, ProgressBars, ProgressType, RusticProgress};
use std::time::Duration;

/// Terminal progress bars (stderr); `hidden()` for scripts, `--json` and the daemon.
#[derive(Debug, Clone, Copy)]
pub struct TermProgress {
    pub visible: bool,
}

impl ProgressBars for TermProgress {
    fn progress(&self, kind: ProgressType, prefix: &str) -> Progress {
        if !self.visible {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = match kind {
            ProgressType::Bytes => ProgressStyle::with_template(
                "{prefix:20} [{elapsed_precise}] {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} eta {eta}",
            ),
            ProgressType::Counter => ProgressStyle::with_template(
                "{prefix:20} [{elapsed_precise}] {bar:30} {pos:>8}/{len:8}",
            ),
            ProgressType::Spinner => {
                ProgressStyle::with_template("{prefix:20} [{elapsed_precise}] {spinner}")
            }
        };
        if let Ok(style) = style {
            bar.set_style(style);
        }
        bar.set_prefix(prefix.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress::new(Bar(bar))
    }
}

impl peakguard_backup::Reporter for TermProgress {
    fn visible(&self) -> bool {
        self.visible
    }
}

#[derive(Debug)]
struct Bar(ProgressBar);

impl RusticProgress for Bar {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn set_title(&self, title: &str) {
        self.0.set_prefix(title.to_string());
    }
    fn inc(&self, inc: u64) {
        self.0.inc(inc);
    }
    fn finish(&self) {
        self.0.finish();
    }
}
