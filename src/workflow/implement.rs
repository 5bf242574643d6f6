//! `implement WP`: create the work package's worktree and move it from planned to doing.

use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;
use serde::Serialize;

use super::git::Git;
use super::transition::{self, Transition};
use super::{WorkflowError, Workspace};
use crate::event::Lane;
use crate::project::{Feature, WorkPackage, normalize_wp_id};

/// The git config key (per branch) that remembers which branch a WP was started from, so that
/// `sync workspace` knows what to bring it up to date with.
pub fn base_config_key(branch: &str) -> String {
    format!("branch.{branch}.specKittyBase")
}

/// What implement did.
#[derive(Debug, Clone, Serialize)]
pub struct Implemented {
    pub feature: String,
    pub wp_id: String,
    pub branch: String,
    pub worktree: PathBuf,
    /// The branch the WP branch was created from.
    pub start_point: String,
    /// False when an existing worktree of the WP branch was reused.
    pub created_worktree: bool,
    pub transition: Transition,
}

/// Creates `.worktrees/<feature>-<wp>` on branch `<feature>-<wp>` (from the target branch, or
/// from the base WP's branch) and records planned→doing. Refuses when the WP is not planned
/// or a dependency is not done (unless `base` names it).
pub fn implement(
    ws: &Workspace,
    feature: Option<&str>,
    wp: &str,
    base: Option<&str>,
    agent: Option<&str>,
) -> Result<Implemented, WorkflowError> {
    let feature = ws.feature(feature)?;
    let wp = feature.work_package(wp)?;
    check_startable(ws, &feature, wp, base)?;
    let (start_point, base_branch) = start_point(ws, &feature, wp, base)?;
    let branch = feature.wp_branch(&wp.id);
    let worktree = ws.wp_worktree(&feature, &wp.id);
    let created_worktree = create_worktree(ws, &worktree, &branch, &start_point)?;
    let git = Git::new(ws.main_root());
    if let Some(base_branch) = &base_branch {
        git.config_set(&base_config_key(&branch), base_branch)?;
    }
    exclude_worktrees_dir(ws);
    let actor = ws.actor(agent);
    let transition = transition::change_lane(ws, &feature, wp, Lane::Doing, &actor, None)?;
    Ok(Implemented {
        feature: feature.slug.clone(),
        wp_id: wp.id.clone(),
        branch,
        worktree,
        start_point,
        created_worktree,
        transition,
    })
}

/// The WP must be planned and its dependencies done (or the base).
pub fn check_startable(
    ws: &Workspace,
    feature: &Feature,
    wp: &WorkPackage,
    base: Option<&str>,
) -> Result<(), WorkflowError> {
    let lane = ws.lane(feature, wp)?;
    if lane != Lane::Planned {
        let help = match lane {
            Lane::Doing => format!(
                "it is being implemented in {}; to start over, move it back with \
                 `spec-kitty agent tasks move-task {} --to planned`",
                ws.wp_worktree(feature, &wp.id).display(),
                wp.id
            ),
            _ => format!(
                "to rework it, move it back first: `spec-kitty agent tasks move-task {} --to planned`",
                wp.id
            ),
        };
        return Err(WorkflowError::WrongLane {
            wp: wp.id.clone(),
            lane: lane.to_string(),
            action: "implement",
            expected: "planned",
            help,
        });
    }
    let base = base.map(normalize_wp_id).transpose()?;
    let mut pending = Vec::new();
    for dep in &wp.dependencies {
        let dep_wp = feature.work_package(dep)?;
        let dep_lane = ws.lane(feature, dep_wp)?;
        if dep_lane != Lane::Done && base.as_deref() != Some(dep.as_str()) {
            pending.push(format!("{dep} ({dep_lane})"));
        }
    }
    if !pending.is_empty() {
        return Err(WorkflowError::DependenciesNotDone {
            wp: wp.id.clone(),
            pending: pending.join(", "),
        });
    }
    Ok(())
}

/// Where the WP branch starts: the base WP's branch, or the feature's target branch. Returns
/// (start point, the base branch to remember if any).
fn start_point(
    ws: &Workspace,
    feature: &Feature,
    wp: &WorkPackage,
    base: Option<&str>,
) -> Result<(String, Option<String>), WorkflowError> {
    if let Some(base) = base {
        let base_wp = feature.work_package(base)?;
        if base_wp.id == wp.id {
            return Err(WorkflowError::bad_argument(
                format!("{} cannot be its own base", wp.id),
                "name one of its dependencies with --base",
            ));
        }
        let branch = feature.wp_branch(&base_wp.id);
        if !branch_exists(ws, &branch) {
            return Err(WorkflowError::MissingBranch {
                wp: wp.id.clone(),
                branch,
                help: format!(
                    "start the base first: `spec-kitty implement {}`",
                    base_wp.id
                ),
            });
        }
        return Ok((branch.clone(), Some(branch)));
    }
    let target = feature.target_branch.clone();
    if !branch_exists(ws, &target) {
        return Err(WorkflowError::MissingBranch {
            wp: wp.id.clone(),
            branch: target,
            help: format!(
                "create the branch, or set `target_branch` in {}",
                feature.meta_path().display()
            ),
        });
    }
    Ok((target, None))
}

/// Whether `refs/heads/<branch>` exists.
pub fn branch_exists(ws: &Workspace, branch: &str) -> bool {
    ws.log()
        .repo()
        .try_find_reference(format!("refs/heads/{branch}").as_str())
        .ok()
        .flatten()
        .is_some()
}

/// Creates the worktree, or reuses it when it already is the worktree of `branch`.
fn create_worktree(
    ws: &Workspace,
    path: &Path,
    branch: &str,
    start: &str,
) -> Result<bool, WorkflowError> {
    if path.exists() {
        let on_branch = gix::open(path)
            .ok()
            .and_then(|r| r.head_name().ok().flatten())
            .is_some_and(|n| n.shorten().to_str_lossy() == branch);
        if on_branch {
            return Ok(false);
        }
        return Err(WorkflowError::WorktreeInTheWay {
            path: path.to_path_buf(),
            branch: branch.to_owned(),
        });
    }
    let git = Git::new(ws.main_root());
    if branch_exists(ws, branch) {
        git.worktree_add(path, branch, None)?;
    } else {
        git.worktree_add(path, branch, Some(start))?;
    }
    Ok(true)
}

/// Keeps `.worktrees/` out of `git status` in the main checkout (in `.git/info/exclude`, which
/// is not a tracked file). Best effort: a failure here changes nothing that matters.
fn exclude_worktrees_dir(ws: &Workspace) {
    let path = ws.log().common_dir().join("info").join("exclude");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if text
        .lines()
        .any(|l| l.trim() == "/.worktrees/" || l.trim() == ".worktrees/")
    {
        return;
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str("# spec-kitty work package worktrees\n/.worktrees/\n");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&path, new);
}
