//! `spec-kitty merge`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::outcome::finish;
use crate::workflow::{Attempt, Workspace, merge};

/// Merge a work package's branch into its target branch, then move it to for_review.
///
/// The merge happens in the main checkout, which must have the target branch checked out:
/// a fast-forward when possible, else a merge commit. On conflicts the merge stops, lists the
/// files, and leaves the repository as git left it. The WP's worktree must have no
/// uncommitted changes. Without a WP id: the WP of the worktree you are in, or (from the main
/// checkout) every WP of the feature in doing, in dependency order. Records WPStatusChanged
/// doing → for_review per merged WP.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty merge WP01\n  \
    spec-kitty merge --feature 028-cli-event-emission-sync   # every WP in doing\n  \
    spec-kitty merge --json")]
pub struct MergeArgs {
    /// The work package (e.g. WP01).
    wp: Option<String>,
    /// The feature (inferred when the project has one, or from the WP branch you are on).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// Who is merging (recorded as changed_by; defaults to git's user.name).
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// Print {merged:[{feature, wp_id, branch, target_branch, merge, transition}], events}.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct MergedJson {
    merged: Vec<merge::Merged>,
}

pub fn run(dir: &Path, a: MergeArgs) -> miette::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let result = merge::merge(
        &ws,
        a.feature.as_deref(),
        a.wp.as_deref(),
        a.agent.as_deref(),
    )
    .map(|merged| MergedJson { merged });
    let current = ws.current_wp().map(|(_, wp)| wp.to_owned());
    let attempt = Attempt {
        command: "merge",
        feature: a.feature.as_deref(),
        wp: a.wp.as_deref().or(current.as_deref()),
        agent: a.agent.as_deref(),
    };
    finish(&ws, result, &attempt, a.json, |m| {
        for w in &m.merged {
            crate::outln!(
                "{} {}: merged {} into {} ({}); doing → for_review",
                w.feature,
                w.wp_id,
                w.branch,
                w.target_branch,
                w.merge.replace('_', " ")
            );
        }
    })
}
