//! Actions that change workflow state, and the one path every event goes through.
//!
//! Each action takes a [`Workspace`] (the repository, its event log and the project's specs),
//! validates its input, does its git work if any (through [`git`]) and records its events with
//! [`Workspace::emit`], which never fails the action. A failed action's error is recorded as an
//! ErrorLogged event by [`Workspace::log_failure`].

pub mod accept;
mod agent_run;
pub mod board;
pub mod emit;
mod error;
pub mod finalize;
pub mod git;
pub mod implement;
pub mod init;
pub mod location;
pub mod merge;
pub mod orchestrate;
pub mod state;
pub mod state_cache;
pub mod sync_workspace;
pub mod tasks;
pub mod transition;
mod workspace;

pub use emit::{EmitError, EmitOutcome, Emitter};
pub use error::WorkflowError;
pub use location::Location;
pub use workspace::{Attempt, Emitted, Workspace, runtime_error};
