//! What can stop `auth` and `sync` commands. Token values never appear in any of these.

use std::path::PathBuf;

use miette::Diagnostic;

use super::config::ConfigError;
use super::credentials::CredentialError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum SyncError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Credentials(#[from] CredentialError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Identity(#[from] crate::project::identity::IdentityError),

    #[error("this repository has no spec-kitty project identity (.kittify/config.yaml)")]
    #[diagnostic(
        code(spec_kitty::sync::no_project),
        help("run `spec-kitty init` (and commit .kittify/config.yaml so every clone shares it)")
    )]
    NoProject,

    #[error("no team server is configured")]
    #[diagnostic(
        code(spec_kitty::sync::no_server),
        help("set one with `spec-kitty sync server https://kitty.example.com`")
    )]
    NoServer,

    #[error("not logged in to {server}")]
    #[diagnostic(
        code(spec_kitty::sync::not_logged_in),
        help("run `spec-kitty auth login`")
    )]
    NotLoggedIn { server: String },

    #[error("session expired: the server refused the refresh token for {server}")]
    #[diagnostic(
        code(spec_kitty::sync::session_expired),
        help("run `spec-kitty auth login` (nothing was lost: pending events stay pending)")
    )]
    SessionExpired { server: String },

    #[error("invalid username or password for {server}")]
    #[diagnostic(
        code(spec_kitty::auth::invalid_credentials),
        help("check both and run `spec-kitty auth login` again")
    )]
    InvalidLogin { server: String },

    #[error("cannot reach {server}: {reason}")]
    #[diagnostic(
        code(spec_kitty::sync::unreachable),
        help(
            "check the URL (`spec-kitty sync server`) and your network, then run `spec-kitty \
             sync now` again (nothing was lost)"
        )
    )]
    Unreachable { server: String, reason: String },

    #[error("{server} answered {status}: {message}")]
    #[diagnostic(
        code(spec_kitty::sync::server_error),
        help("run `spec-kitty sync status --check`; if it persists, ask the server's operator")
    )]
    Server {
        server: String,
        status: u16,
        message: String,
    },

    #[error("{what} needs a terminal to prompt on, and stdin is not one")]
    #[diagnostic(
        code(spec_kitty::auth::no_terminal),
        help("pass `--username NAME` and `--password-stdin` (pipe the password in)")
    )]
    NoTerminal { what: &'static str },

    #[error("already logged in to {server} as {username}")]
    #[diagnostic(
        code(spec_kitty::auth::already_logged_in),
        help("use `spec-kitty auth login --force` to log in again")
    )]
    AlreadyLoggedIn { server: String, username: String },

    #[error(
        "the sync state of chain {node} was recorded for {recorded_server} (team {recorded_team}), \
         but you are now syncing to {server} (team {team})"
    )]
    #[diagnostic(
        code(spec_kitty::sync::server_mismatch),
        help(
            "to go back, run `spec-kitty sync server {recorded_server}` and log in as a member of \
             {recorded_team}; to send this chain to the new server instead, forget its sync \
             state with `git update-ref -d refs/spec-kitty/synced/{node}` (its events are then \
             sent again; nothing is lost)"
        )
    )]
    ServerMismatch {
        node: String,
        recorded_server: String,
        recorded_team: String,
        server: String,
        team: String,
    },

    #[error("another `spec-kitty sync now` holds {} (pid {holder})", path.display())]
    #[diagnostic(
        code(spec_kitty::sync::busy),
        help("wait for it to finish and run `spec-kitty sync now` again")
    )]
    Busy { path: PathBuf, holder: String },

    #[error("refusing to send: the running sync daemon sends as someone else\n{fields}")]
    #[diagnostic(
        code(spec_kitty::sync::identity_mismatch),
        help(
            "run `spec-kitty sync daemon stop` (the next event starts a daemon with your current \
             identity), then try again"
        )
    )]
    IdentityMismatch { fields: String },

    #[error("cannot read the input: {0}")]
    #[diagnostic(code(spec_kitty::auth::input))]
    Input(String),
}

impl SyncError {
    /// Whether the failure means nothing could be sent at all (exit code 2).
    pub fn is_no_contact(&self) -> bool {
        !matches!(self, SyncError::Store(_))
    }
}
