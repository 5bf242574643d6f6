//! The event log in git refs: plumbing only.
//!
//! * `refs/spec-kitty/events/<node>`: one commit per event, parent = previous event of that
//!   node, tree = the empty tree, message = [`message::format_event`].
//! * `refs/spec-kitty/synced/<node>`: sync-state commits, parents = (newest event commit the
//!   server answered for, previous sync-state commit), message = [`message::format_sync`].
//!
//! Appending is a compare-and-swap on the node's ref with the Lamport clock recomputed inside
//! the loop, so concurrent processes (in any worktree of the repository) never lose an event or
//! reuse a clock value. Every ref write goes through the one loop in `cas`; what is pending
//! is computed in one place, [`PendingRange`].
//!
//! Module layering (no cycles): `log` (open, read refs and commits) ← `cas` ← `sync_state` ←
//! `pending` ← `append`, `pulled`; `outgoing` (the index of unsent events) beside `pending`.

mod append;
mod cas;
mod error;
pub mod import;
mod log;
mod loose;
pub mod message;
mod oldest;
mod outgoing;
mod pending;
mod pulled;
mod read;
mod sync_state;
mod verify;
pub mod watch;

pub use error::StoreError;
pub use log::{Appended, Chain, EventLog, StoredEvent};
pub use message::{RejectedEvent, SyncRecord};
pub use pending::{
    Answer, Answered, ChainPending, OutgoingEvent, PendingCommit, PendingRange, Settlement, settle,
};
pub use pulled::PulledWrite;
pub use read::EventFilter;
pub use sync_state::{SyncReport, SyncState};
pub use verify::{Problem, VerifyReport};

/// Namespace of the event chains.
pub const EVENTS_PREFIX: &str = "refs/spec-kitty/events/";
/// Namespace of the sync-state refs.
pub const SYNCED_PREFIX: &str = "refs/spec-kitty/synced/";

/// The default cap on pending events per repository (`[sync] queue_limit`).
pub const DEFAULT_QUEUE_LIMIT: u64 = 10_000;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
