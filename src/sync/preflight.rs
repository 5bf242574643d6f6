//! The preflight every egress path runs first (`sync now` today, the live-sync daemon later):
//! read-only, no network. It answers "may this repository's events go to this server now?"

use std::path::Path;

use super::config::ClientConfig;
use super::credentials::{CredentialStore, Credentials};
use super::error::SyncError;
use super::session::server_url;
use crate::project::identity;
use crate::store::EventLog;
use crate::workflow::emit::main_worktree_root;

/// What the preflight established.
#[derive(Debug)]
pub struct Cleared {
    pub server_url: String,
    pub credentials: Credentials,
    pub store: CredentialStore,
    pub project_uuid: String,
    /// Warnings that do not stop a sync (one line each).
    pub warnings: Vec<String>,
}

/// Checks, in order: a server is configured (and its URL is valid), this user is logged in to
/// it, the project has an identity, and every chain's sync state was recorded for this same
/// server and team (a chain synced elsewhere is refused, naming both and the fix).
pub fn preflight(log: &EventLog, config: &ClientConfig) -> Result<Cleared, SyncError> {
    let url = server_url(config)?;
    let store = CredentialStore::from_env()?;
    let credentials = store.load(&url)?.ok_or_else(|| SyncError::NotLoggedIn {
        server: url.clone(),
    })?;
    let project_uuid = project_uuid(log)?;
    for range in log.pending_ranges()? {
        let Some(state) = &range.state else { continue };
        let r = &state.record;
        if r.server_url != url || r.team != credentials.team_slug {
            return Err(SyncError::ServerMismatch {
                node: range.node_id.clone(),
                recorded_server: r.server_url.clone(),
                recorded_team: r.team.clone(),
                server: url,
                team: credentials.team_slug,
            });
        }
    }
    let warnings = legacy_queue_warnings(log, &project_uuid);
    Ok(Cleared {
        server_url: url,
        credentials,
        store,
        project_uuid,
        warnings,
    })
}

/// The project's UUID from `.kittify/config.yaml` (this worktree's, else the main checkout's).
fn project_uuid(log: &EventLog) -> Result<String, SyncError> {
    let worktree = log.repo().workdir().map(Path::to_path_buf);
    let main = main_worktree_root(log.common_dir()).or_else(|| worktree.clone());
    for root in [worktree, main].into_iter().flatten() {
        if let Some(id) = identity::read(&root.join(identity::CONFIG_RELATIVE))? {
            return Ok(id.uuid);
        }
    }
    Err(SyncError::NoProject)
}

/// The warning about a Python-era offline queue that still holds rows of this project whose
/// events are not yet in the log: without `spec-kitty sync migrate` they would be stranded.
/// An unreadable queue is not this sync's business (`sync migrate` reports it).
pub fn legacy_queue_warnings(log: &EventLog, project_uuid: &str) -> Vec<String> {
    let home = crate::sync::spec_kitty_home();
    match crate::sync::migrate::unmigrated_rows_for_project(log, &home, project_uuid) {
        Ok(0) | Err(_) => Vec::new(),
        Ok(n) => vec![format!(
            "{n} event(s) of this project are still in the Python spec-kitty offline queue under {}: run `spec-kitty sync migrate` to carry them into the event log",
            home.display()
        )],
    }
}
