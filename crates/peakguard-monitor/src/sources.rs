//! What the monitor reads in-process from the parts that run beside it in `serve`: the
//! edge's counters and the backup daemon's state. The binary fills these in (the monitor
//! knows neither the edge nor the backup crate); `peakguard monitor` and `peakguard probe`
//! have none, and their edge and backup probes say so.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use peakguard_admin::{BackupFreshness, EdgeCounters};

pub type EdgeFuture = Pin<Box<dyn Future<Output = EdgeCounters> + Send>>;
/// Reads the edge's counters (asynchronous: the waiting room's line is in the shield's
/// store).
pub type EdgeSource = Arc<dyn Fn() -> EdgeFuture + Send + Sync>;

pub type BackupSource = Arc<dyn Fn() -> Vec<BackupFreshness> + Send + Sync>;

/// The in-process sources a probe may read.
#[derive(Clone, Default)]
pub struct Sources {
    pub edge: Option<EdgeSource>,
    pub backup: Option<BackupSource>,
}
