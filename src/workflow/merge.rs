//! `merge`: merge a work package's branch into its target branch in the main checkout, then
//! move it from doing to for_review.

use gix::bstr::ByteSlice;
use serde::Serialize;

use super::git::{Git, MergeResult};
use super::implement::branch_exists;
use super::transition::{self, Transition};
use super::{WorkflowError, Workspace};
use crate::event::Lane;
use crate::project::{Feature, WorkPackage, graph};

/// One merged work package.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub feature: String,
    pub wp_id: String,
    pub branch: String,
    pub target_branch: String,
    /// `fast_forward`, `merge_commit` or `already_up_to_date`.
    pub merge: &'static str,
    pub transition: Transition,
}

/// Merges `wp` (or the WP of the current worktree; or, from the main checkout, every WP of
/// the feature in doing, in dependency order). Stops at the first failure.
pub fn merge(
    ws: &Workspace,
    feature: Option<&str>,
    wp: Option<&str>,
    agent: Option<&str>,
) -> Result<Vec<Merged>, WorkflowError> {
    let feature = ws.feature(feature)?;
    let ids: Vec<String> = match wp {
        Some(wp) => vec![feature.work_package(wp)?.id.clone()],
        None => match ws.current_wp() {
            Some((f, wp)) if f == feature.slug => vec![wp.to_owned()],
            _ => in_doing(ws, &feature)?,
        },
    };
    if ids.is_empty() {
        return Err(WorkflowError::bad_argument(
            format!(
                "nothing to merge: no work package of {} is in doing",
                feature.slug
            ),
            "see the board with `spec-kitty status`, or name the WP: `spec-kitty merge WP01`",
        ));
    }
    let actor = ws.actor(agent);
    let mut merged = Vec::new();
    for id in ids {
        let wp = feature.work_package(&id)?;
        merged.push(merge_one(ws, &feature, wp, &actor)?);
    }
    Ok(merged)
}

fn in_doing(ws: &Workspace, feature: &Feature) -> Result<Vec<String>, WorkflowError> {
    let mut ids = Vec::new();
    for id in graph::topological_order(feature) {
        let wp = feature.work_package(&id)?;
        if ws.lane(feature, wp)? == Lane::Doing {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The main checkout must have the feature's target branch checked out: merges happen there.
pub fn check_main_on_target(ws: &Workspace, feature: &Feature) -> Result<(), WorkflowError> {
    let main = ws.main_root().to_path_buf();
    let current = gix::open(&main)
        .ok()
        .and_then(|r| r.head_name().ok().flatten())
        .map(|n| n.shorten().to_str_lossy().into_owned())
        .unwrap_or_else(|| "a detached HEAD".to_owned());
    if current != feature.target_branch {
        return Err(WorkflowError::MainOnOtherBranch {
            main,
            current,
            target: feature.target_branch.clone(),
            feature: feature.slug.clone(),
        });
    }
    Ok(())
}

/// Merges one WP branch into the target branch checked out in the main checkout; on
/// conflicts stops with the list of files and leaves the repository as git left it.
pub fn merge_one(
    ws: &Workspace,
    feature: &Feature,
    wp: &WorkPackage,
    actor: &str,
) -> Result<Merged, WorkflowError> {
    let lane = ws.lane(feature, wp)?;
    if lane != Lane::Doing {
        return Err(WorkflowError::WrongLane {
            wp: wp.id.clone(),
            lane: lane.to_string(),
            action: "merge",
            expected: "doing",
            help: match lane {
                Lane::Planned => format!("start it first: `spec-kitty implement {}`", wp.id),
                _ => "see the board with `spec-kitty status`".to_owned(),
            },
        });
    }
    let branch = feature.wp_branch(&wp.id);
    if !branch_exists(ws, &branch) {
        return Err(WorkflowError::MissingBranch {
            wp: wp.id.clone(),
            branch,
            help: format!("create it with `spec-kitty implement {}`", wp.id),
        });
    }
    let worktree = ws.wp_worktree(feature, &wp.id);
    if worktree.is_dir() {
        let dirty = Git::new(&worktree).dirty_files()?;
        if !dirty.is_empty() {
            return Err(WorkflowError::DirtyWorktree {
                path: worktree,
                files: dirty.join(", "),
            });
        }
    }
    check_main_on_target(ws, feature)?;
    let main = ws.main_root().to_path_buf();
    let message = format!("Merge {branch}: {} {}", wp.id, wp.title);
    let merge = match Git::new(&main).merge(&branch, &message)? {
        MergeResult::Conflict { files } => {
            return Err(WorkflowError::Conflict {
                what: format!("merge of {branch} into {}", feature.target_branch),
                files: files.join(", "),
                help: format!(
                    "resolve them in {} and commit (or undo with `git merge --abort`), then \
                     record the move: `spec-kitty agent tasks move-task {} --to for_review`",
                    main.display(),
                    wp.id
                ),
            });
        }
        MergeResult::FastForward => "fast_forward",
        MergeResult::MergeCommit => "merge_commit",
        MergeResult::AlreadyUpToDate => "already_up_to_date",
    };
    let transition = transition::change_lane(ws, feature, wp, Lane::ForReview, actor, None)?;
    Ok(Merged {
        feature: feature.slug.clone(),
        wp_id: wp.id.clone(),
        branch,
        target_branch: feature.target_branch.clone(),
        merge,
        transition,
    })
}
