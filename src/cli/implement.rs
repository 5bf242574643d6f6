//! `spec-kitty implement`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::outcome::finish;
use crate::workflow::{Attempt, Workspace, implement};

/// Start a work package: create its worktree and move it from planned to doing.
///
/// Creates `.worktrees/<feature>-<WP>` in the main checkout, on a new branch `<feature>-<WP>`
/// made from the feature's target branch (meta.json `target_branch`), or from the branch of
/// the WP named by --base. Refuses, saying why, when the WP is not planned or one of its
/// dependencies is not done (a dependency named by --base may still be in progress).
/// Records WPStatusChanged planned → doing.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty implement WP01\n  \
    spec-kitty implement WP05 --base WP01 --agent claude\n  \
    cd .worktrees/028-cli-event-emission-sync-WP01   # then work and commit there")]
pub struct ImplementArgs {
    /// The work package (e.g. WP01).
    wp: String,
    /// The feature (inferred when the project has one, or from the WP branch you are on).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// Start from this WP's branch instead of the target branch (for a WP whose dependency is
    /// not merged yet).
    #[arg(long, value_name = "WP")]
    base: Option<String>,
    /// Who is starting it (recorded as changed_by; defaults to git's user.name).
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// Print {feature, wp_id, branch, worktree, start_point, created_worktree, transition, events}.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: ImplementArgs) -> miette::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let result = implement::implement(
        &ws,
        a.feature.as_deref(),
        &a.wp,
        a.base.as_deref(),
        a.agent.as_deref(),
    );
    let attempt = Attempt {
        command: "implement",
        feature: a.feature.as_deref(),
        wp: Some(&a.wp),
        agent: a.agent.as_deref(),
    };
    finish(&ws, result, &attempt, a.json, |i| {
        let how = if i.created_worktree {
            "created"
        } else {
            "reused"
        };
        crate::outln!(
            "{} {}: planned → doing; worktree {how} at {} (branch {} from {})",
            i.feature,
            i.wp_id,
            i.worktree.display(),
            i.branch,
            i.start_point
        );
    })
}
