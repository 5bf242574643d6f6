//! `init`: make sure the project has an identity (`.kittify/config.yaml`, `project.uuid`).

use std::path::Path;

use super::WorkflowError;
use super::location::Location;
use crate::project::identity::{self, ProjectIdentity};
use crate::store::EventLog;

/// Reads the project identity of the repository containing `dir`, creating it (in the main
/// checkout's `.kittify/config.yaml`, keeping every other key) when missing.
pub fn ensure_identity(dir: &Path) -> Result<ProjectIdentity, WorkflowError> {
    let log = EventLog::discover(dir)?;
    let here = Location::of(&log, dir);
    Ok(identity::load_or_create(
        &here.worktree_root,
        &here.main_root,
        here.default_slug().as_deref(),
    )?)
}
