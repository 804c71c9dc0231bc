//! The journal: every intervention on a site — a purge, maintenance on or off, a waiting-room
//! switch, a backup, a silence — appended to one file as a line of JSON saying when, who (the
//! admin token's name), what, on which site, with what result. Each line carries the hash of
//! the line before it and its own, so a line edited, removed or moved is found by
//! [`verify`], which names the line.
//!
//! Owns: the journal's file format, appending (one writer at a time across processes, by a
//! lock on the file) and reading and verifying it. Must not touch: the network, the request
//! path (callers append off the async runtime: appending writes and syncs a file; what
//! happens on the request path goes through a [`Recorder`], which never waits).
#![forbid(unsafe_code)]

mod entry;
mod file;
mod recorder;

pub use entry::{Entry, Event, GENESIS};
pub use file::{Journal, JournalError, Problem, read, verify};
pub use recorder::Recorder;
