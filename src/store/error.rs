use std::path::PathBuf;

use miette::Diagnostic;

use crate::event::ValidationReport;

/// Everything that can go wrong reading or writing the event log.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum StoreError {
    #[error("{} is not inside a git repository", path.display())]
    #[diagnostic(
        code(spec_kitty::store::not_a_repository),
        help("run spec-kitty inside a git repository, or create one with `git init`")
    )]
    NotARepository { path: PathBuf },

    #[error("cannot open the git repository at {}: {message}", path.display())]
    #[diagnostic(
        code(spec_kitty::store::open),
        help(
            "check that you may read the directory and its `.git`, and that `git status` works \
             there (a broken git config or an untrusted owner stops git too)"
        )
    )]
    Open { path: PathBuf, message: String },

    #[error("the sync state {name} (commit {commit}) is broken: {reason}")]
    #[diagnostic(
        code(spec_kitty::store::broken_sync_state),
        help(
            "nothing was written. `git show {commit}` shows it; `git update-ref -d {name}` \
             forgets the sync state, so that chain's events are sent again by `spec-kitty sync \
             now` (the server answers them `duplicate`, nothing is counted twice)"
        )
    )]
    BrokenSyncState {
        name: String,
        commit: String,
        reason: String,
    },

    #[error("git operation failed while {action}: {message}")]
    #[diagnostic(
        code(spec_kitty::store::git),
        help(
            "check the repository with `git fsck`; `spec-kitty events verify` checks the event refs"
        )
    )]
    Git { action: String, message: String },

    #[error("{name} points at a {kind} ({id}), not at an event commit")]
    #[diagnostic(
        code(spec_kitty::store::ref_not_a_commit),
        help(
            "nothing was written. Inspect it with `git cat-file -p {id}`; point the ref back at \
             its last event commit with `git update-ref {name} <commit>` (see `git reflog {name}` \
             if reflogs are on), then run `spec-kitty events verify`"
        )
    )]
    RefNotACommit {
        name: String,
        id: String,
        kind: String,
    },

    #[error("commit {commit} on {chain} is not a valid {what}: {reason}")]
    #[diagnostic(
        code(spec_kitty::store::unparseable),
        help(
            "nothing was written. `spec-kitty events verify` lists every broken commit; \
             `git show {commit}` shows this one"
        )
    )]
    Unparseable {
        chain: String,
        commit: String,
        what: &'static str,
        reason: String,
    },

    #[error("the event is invalid: {0}")]
    #[diagnostic(
        code(spec_kitty::event::invalid),
        help("fix the fields listed above; docs/reference/events.md lists every rule")
    )]
    Invalid(ValidationReport),

    #[error("{pending} events are waiting to be uploaded, the limit is {limit}: new event refused")]
    #[diagnostic(
        code(spec_kitty::store::queue_full),
        help(
            "run `spec-kitty sync now` to upload pending events, or raise `queue_limit` under \
             [sync] in ~/.spec-kitty/config.toml"
        )
    )]
    QueueFull { pending: u64, limit: u64 },

    #[error("could not update {name} after {attempts} attempts: other writers kept winning")]
    #[diagnostic(
        code(spec_kitty::store::contention),
        help("retry the command; if it persists, look for a runaway process writing events")
    )]
    Contention { name: String, attempts: u32 },

    #[error("{} is held by another process and has not been released", path.display())]
    #[diagnostic(
        code(spec_kitty::store::locked),
        help(
            "if no git or spec-kitty process is running (a killed process can leave it behind), \
             remove it with `rm {}` and retry",
            path.display()
        )
    )]
    Locked { path: PathBuf },

    #[error("no event with id {0}")]
    #[diagnostic(
        code(spec_kitty::store::not_found),
        help("list events with `spec-kitty events log`")
    )]
    NotFound(String),
}

impl StoreError {
    pub(crate) fn git(action: impl Into<String>, err: impl std::fmt::Display) -> StoreError {
        StoreError::Git {
            action: action.into(),
            message: err.to_string(),
        }
    }
}
