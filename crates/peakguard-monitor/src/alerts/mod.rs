//! Alert rules, their states and silences (no I/O but the silence file).

pub mod engine;
pub mod silence;

pub use engine::{Alert, AlertState, Engine, Event, GroupNotice, TickOutput};
pub use silence::{Silence, SilenceError, Silences};
