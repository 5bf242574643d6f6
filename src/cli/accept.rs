//! `spec-kitty accept`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::outcome::finish;
use crate::workflow::{Attempt, Workspace, accept};

/// Accept a reviewed work package: for_review → done.
///
/// Also records DependencyResolved for every WP that depends on it (the first time it is
/// done), and FeatureCompleted (total_wps, completed_at, total_duration) when it was the last
/// WP of the feature. All of them share one causation id.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty accept WP01\n  \
    spec-kitty accept WP07 --feature 028-cli-event-emission-sync --json")]
pub struct AcceptArgs {
    /// The work package (e.g. WP01); defaults to the WP of the worktree you are in.
    wp: Option<String>,
    /// The feature (inferred when the project has one, or from the WP branch you are on).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// Who accepts it (recorded as changed_by; defaults to git's user.name).
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// Print {feature, wp_id, previous_lane, new_lane, resolved, unblocked, feature_completed, events}.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: AcceptArgs) -> miette::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let result = accept::accept(
        &ws,
        a.feature.as_deref(),
        a.wp.as_deref(),
        a.agent.as_deref(),
    );
    let current = ws.current_wp().map(|(_, wp)| wp.to_owned());
    let attempt = Attempt {
        command: "accept",
        feature: a.feature.as_deref(),
        wp: a.wp.as_deref().or(current.as_deref()),
        agent: a.agent.as_deref(),
    };
    finish(&ws, result, &attempt, a.json, |r| {
        let t = &r.transition;
        crate::outln!("{} {}: for_review → done", t.feature, t.wp_id);
        if !r.completion.unblocked.is_empty() {
            crate::outln!("  ready to start: {}", r.completion.unblocked.join(", "));
        }
        if r.completion.feature_completed {
            crate::outln!("  feature {} is complete", t.feature);
        }
    })
}
