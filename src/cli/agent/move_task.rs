//! `spec-kitty agent tasks move-task`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::cli::outcome::finish;
use crate::workflow::{Attempt, Workspace, tasks};

/// Move a work package to another lane (records WPStatusChanged).
///
/// The previous lane is derived from the event log, so the event always says where the WP
/// really was; moving a WP to the lane it is already in is refused. No file is edited. Moving
/// to done also records DependencyResolved for the WPs that depend on it, and FeatureCompleted
/// when it was the last one.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty agent tasks move-task WP01 --to for_review\n  \
    spec-kitty agent tasks move-task WP03 --to doing --agent claude --note \"picking this up\"\n  \
    spec-kitty agent tasks move-task WP02 --to planned --feature 001-checkout-flow --json")]
pub struct MoveTaskArgs {
    /// The work package (e.g. WP01).
    wp: String,
    /// The lane to move it to: planned, doing, for_review or done.
    #[arg(long, value_name = "LANE")]
    to: String,
    /// The feature (inferred when the project has one, or from the WP branch you are on).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// Who is moving it (recorded as changed_by; defaults to git's user.name).
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// A note recorded with the move (as a HistoryAdded event).
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
    /// Print {feature, wp_id, previous_lane, new_lane, changed_by, events:[…]}.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: MoveTaskArgs) -> miette::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let result = tasks::move_task(
        &ws,
        a.feature.as_deref(),
        &a.wp,
        &a.to,
        a.agent.as_deref(),
        a.note.as_deref(),
    );
    let attempt = Attempt {
        command: "move-task",
        feature: a.feature.as_deref(),
        wp: Some(&a.wp),
        agent: a.agent.as_deref(),
    };
    finish(&ws, result, &attempt, a.json, |m| {
        let t = &m.transition;
        crate::outln!(
            "{} {}: {} → {}",
            t.feature,
            t.wp_id,
            t.previous_lane,
            t.new_lane
        );
    })
}
