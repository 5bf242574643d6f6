//! `init`: make sure the project has an identity (`.kittify/config.yaml`, `project.uuid`).

use std::path::Path;

use super::WorkflowError;
use super::emit::{main_worktree_root, slugify};
use crate::project::identity::{self, ProjectIdentity};
use crate::store::EventLog;

/// Reads the project identity of the repository containing `dir`, creating it (in the main
/// checkout's `.kittify/config.yaml`, keeping every other key) when missing.
pub fn ensure_identity(dir: &Path) -> Result<ProjectIdentity, WorkflowError> {
    let log = EventLog::discover(dir)?;
    let worktree_root = log
        .repo()
        .workdir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.to_path_buf());
    let main_root = main_worktree_root(log.common_dir()).unwrap_or_else(|| worktree_root.clone());
    let default_slug = main_root
        .file_name()
        .map(|n| slugify(&n.to_string_lossy()))
        .filter(|s| !s.is_empty());
    Ok(identity::load_or_create(
        &worktree_root,
        &main_root,
        default_slug.as_deref(),
    )?)
}
