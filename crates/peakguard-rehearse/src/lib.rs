//! peakguard's rehearsal: the load generator.
pub mod client;
pub mod profile;
pub mod stats;
pub mod targets;
