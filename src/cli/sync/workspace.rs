//! `spec-kitty sync workspace`: the local operation (never talks to a server).

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::cli::outcome::finish;
use crate::workflow::sync_workspace::{self, SyncMethod};
use crate::workflow::{Attempt, Workspace};

/// Bring a work package's worktree up to date with the branch it builds on (local only).
///
/// This is a local git operation: it never talks to a server (to upload events to your team
/// server, use `spec-kitty sync now`). The WP branch is rebased (or, with --merge, merged)
/// onto its upstream: the branch of its base WP while that WP is still in progress
/// (`implement --base`), else the feature's target branch. The worktree must be clean; on
/// conflicts it stops and says how to continue or undo.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cd .worktrees/028-cli-event-emission-sync-WP02 && spec-kitty sync workspace\n  \
    spec-kitty sync workspace WP02 --merge   # from the main checkout, merging\n  \
    spec-kitty sync now                      # (server sync: uploads events, not code)")]
pub struct WorkspaceArgs {
    /// The work package; defaults to the WP of the worktree you are in.
    wp: Option<String>,
    /// The feature (inferred when the project has one, or from the WP branch you are on).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// Merge the upstream into the WP branch instead of rebasing onto it.
    #[arg(long)]
    merge: bool,
    /// Print {feature, wp_id, worktree, upstream, method, result}.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: WorkspaceArgs) -> miette::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let method = if a.merge {
        SyncMethod::Merge
    } else {
        SyncMethod::Rebase
    };
    let result = sync_workspace::sync_workspace(&ws, a.feature.as_deref(), a.wp.as_deref(), method);
    let current = ws.current_wp().map(|(_, wp)| wp.to_owned());
    let attempt = Attempt {
        command: "sync workspace",
        feature: a.feature.as_deref(),
        wp: a.wp.as_deref().or(current.as_deref()),
        agent: None,
    };
    finish(&ws, result, &attempt, a.json, |s| {
        let how = match s.method {
            SyncMethod::Rebase => "rebased onto",
            SyncMethod::Merge => "merged",
        };
        let what = match s.result {
            "already_up_to_date" => format!("already up to date with {}", s.upstream),
            _ => format!("{how} {}", s.upstream),
        };
        crate::outln!(
            "{} {}: {what} (local only; no server involved)",
            s.feature,
            s.wp_id
        );
    })
}
