//! `sync workspace`: bring a work package's worktree up to date with the branch it builds on.
//! A purely local git operation: it never talks to a server and records no event.

use std::path::PathBuf;

use serde::Serialize;

use super::git::{Git, MergeResult};
use super::implement::{base_config_key, branch_exists};
use super::{WorkflowError, Workspace};
use crate::event::Lane;
use crate::project::parse_wp_branch;

/// How to bring the branch up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMethod {
    Rebase,
    Merge,
}

/// What sync workspace did.
#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceSynced {
    pub feature: String,
    pub wp_id: String,
    pub worktree: PathBuf,
    /// The branch it was brought up to date with.
    pub upstream: String,
    pub method: SyncMethod,
    /// `already_up_to_date`, `updated` or `merge_commit`.
    pub result: &'static str,
}

/// Rebases (or merges) the WP branch onto its upstream: the base WP's branch while that WP is
/// still in progress, else the feature's target branch. Conflicts stop with the files listed,
/// the rebase or merge left in progress.
pub fn sync_workspace(
    ws: &Workspace,
    feature: Option<&str>,
    wp: Option<&str>,
    method: SyncMethod,
) -> Result<WorkspaceSynced, WorkflowError> {
    let feature = ws.feature(feature)?;
    let wp = ws.named_or_current_wp(&feature, wp, "sync workspace")?;
    let branch = feature.wp_branch(&wp.id);
    let worktree = if ws.branch() == Some(branch.as_str()) {
        ws.worktree_root().to_path_buf()
    } else {
        ws.wp_worktree(&feature, &wp.id)
    };
    if !worktree.is_dir() {
        return Err(WorkflowError::NoWorktree {
            wp: wp.id.clone(),
            path: worktree,
        });
    }
    let git = Git::new(&worktree);
    let upstream = upstream(ws, &git, &feature.target_branch, &branch)?;
    let dirty = git.dirty_files()?;
    if !dirty.is_empty() {
        return Err(WorkflowError::DirtyWorktree {
            path: worktree,
            files: dirty.join(", "),
        });
    }
    let result = match method {
        SyncMethod::Rebase => git.rebase(&upstream)?,
        SyncMethod::Merge => git.merge(&upstream, &format!("Merge {upstream} into {branch}"))?,
    };
    let result = match result {
        MergeResult::Conflict { files } => {
            return Err(conflict(method, &upstream, &branch, &worktree, &files));
        }
        MergeResult::AlreadyUpToDate => "already_up_to_date",
        MergeResult::FastForward => "updated",
        MergeResult::MergeCommit => "merge_commit",
    };
    Ok(WorkspaceSynced {
        feature: feature.slug.clone(),
        wp_id: wp.id.clone(),
        worktree,
        upstream,
        method,
        result,
    })
}

/// A stopped rebase or merge, with how to continue or undo it.
fn conflict(
    method: SyncMethod,
    upstream: &str,
    branch: &str,
    worktree: &std::path::Path,
    files: &[String],
) -> WorkflowError {
    let (what, help) = match method {
        SyncMethod::Rebase => (
            format!("rebase of {branch} onto {upstream}"),
            format!(
                "resolve them in {}, `git add` them and `git rebase --continue` (or undo with \
                 `git rebase --abort`)",
                worktree.display()
            ),
        ),
        SyncMethod::Merge => (
            format!("merge of {upstream} into {branch}"),
            format!(
                "resolve them in {} and commit (or undo with `git merge --abort`)",
                worktree.display()
            ),
        ),
    };
    WorkflowError::Conflict {
        what,
        files: files.join(", "),
        help,
    }
}

/// The base WP's branch (remembered by implement) while that WP is planned or doing, else
/// the target branch.
fn upstream(
    ws: &Workspace,
    git: &Git,
    target: &str,
    branch: &str,
) -> Result<String, WorkflowError> {
    if let Some(base) = git.config_get(&base_config_key(branch))
        && let Some((feature, base_wp)) = parse_wp_branch(&base)
        && branch_exists(ws, &base)
    {
        let f = ws.project().load_feature(feature)?;
        let lane = ws.lane(&f, f.work_package(base_wp)?)?;
        if matches!(lane, Lane::Planned | Lane::Doing) {
            return Ok(base);
        }
    }
    if !branch_exists(ws, target) {
        return Err(WorkflowError::MissingBranch {
            wp: branch.to_owned(),
            branch: target.to_owned(),
            help: "create it, or set `target_branch` in the feature's meta.json".to_owned(),
        });
    }
    Ok(target.to_owned())
}
