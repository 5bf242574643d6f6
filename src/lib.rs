//! spec-kitty: a spec-driven workflow recorded as events in git refs.
//!
//! * [`event`]: the envelope shared with the server, its eight types and validation.
//! * [`store`]: the append-only event log under `refs/spec-kitty/`.
//! * [`project`]: project identity and the workflow model.
//! * [`hooks`]: the git hook stubs, their installer and their handlers.
//! * [`workflow`]: actions that emit events, through [`workflow::Emitter`].
//! * [`sync`]: the client side of the sync protocol.
//! * [`server`]: the team sync server behind `spec-kitty-server`.
//!
//! Library modules never print and never exit; the binaries render their errors.

pub mod cli;
pub mod event;
pub mod hooks;
pub mod project;
pub mod server;
pub mod store;
pub mod sync;
pub mod workflow;
