//! Actions that change workflow state, and the one path every event goes through.

pub mod emit;

pub use emit::{EmitError, EmitOutcome, Emitter};
