//! The live-sync daemon: one small process per repository (all its worktrees) that holds the
//! WebSocket to the team server, sends new events within moments of their recording, writes
//! teammates' events into their chains as they arrive, and falls back to batch upload when the
//! WebSocket is down (docs/how-to/run-sync-daemon.md).
//!
//! * [`paths`], [`record`]: its files under `<common git dir>/spec-kitty/` (owner record, state
//!   file, log, wake socket), written atomically, never holding a token.
//! * [`process`]: pids, signals and the detached spawn; a pid is only ever signalled after it
//!   was verified to be our daemon.
//! * [`wake`]: the emit path's side (no tokio, no TLS): wake-up datagram, auto-start, inline
//!   connection state.
//! * [`control`]: `start`, `stop`, `status`, `clean`, as the foreground sees them.
//! * [`identity`]: who sends; the gate compares the foreground's with the daemon's.
//! * [`inputs`]: the files the gate reads, so that the daemon re-runs it only when they change.
//! * [`run`] (setup and teardown), [`link`] (the WebSocket), [`live`] (the connected loop),
//!   [`egress`] (batch, pull and acks through the session): the daemon process itself, the only
//!   async code of the client.

pub mod control;
mod egress;
pub mod identity;
mod inputs;
mod link;
mod live;
pub mod logfile;
pub mod paths;
pub mod process;
pub mod record;
pub mod run;
pub mod wake;

use miette::Diagnostic;

/// What can stop a daemon command or the daemon itself.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum DaemonError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Sync(#[from] crate::sync::SyncError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::store::StoreError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] crate::sync::ConfigError),

    #[error("cannot start the sync daemon: {0}")]
    #[diagnostic(
        code(spec_kitty::daemon::spawn),
        help(
            "check that the spec-kitty binary is still in place, then run `spec-kitty sync daemon start`"
        )
    )]
    Spawn(String),

    #[error("the sync daemon exited right away: {why}")]
    #[diagnostic(
        code(spec_kitty::daemon::exited),
        help(
            "run `spec-kitty sync status --check` to see what stops it (its log: `<git dir>/spec-kitty/daemon.log`)"
        )
    )]
    Exited { why: String },

    #[error("cannot set up the sync daemon's files in {path}: {source}")]
    #[diagnostic(
        code(spec_kitty::daemon::io),
        help("check the permissions of the repository's .git directory")
    )]
    Io {
        path: String,
        source: std::io::Error,
    },
}
