//! `spec-kitty agent tasks mark-status`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::cli::outcome::finish;
use crate::workflow::{Attempt, Workspace, tasks};

/// Mark work packages or subtasks: WP ids change lane (like move-task), subtask ids (T001…)
/// tick or untick their checkbox in tasks.md and record HistoryAdded on the owning WP.
///
/// Every id is checked before anything changes. For WP ids, --status is a lane (planned,
/// doing, for_review, done); for subtask ids, done or pending. A subtask already in that state
/// is left alone and nothing is recorded for it.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty agent tasks mark-status T001 T002 --status done\n  \
    spec-kitty agent tasks mark-status T003 --status pending\n  \
    spec-kitty agent tasks mark-status WP02 --status for_review --agent claude")]
pub struct MarkStatusArgs {
    /// WP ids (WP01) or subtask ids (T001).
    #[arg(required = true, value_name = "ID")]
    ids: Vec<String>,
    /// The new status: a lane for WPs, done/pending for subtasks.
    #[arg(long, value_name = "VALUE")]
    status: String,
    /// The feature (inferred when the project has one, or from the WP branch you are on).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// Who is marking (defaults to git's user.name).
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// Print {feature, work_packages:[…], subtasks:[…], events:[…]}.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: MarkStatusArgs) -> miette::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let result = tasks::mark_status(
        &ws,
        a.feature.as_deref(),
        &a.ids,
        &a.status,
        a.agent.as_deref(),
    );
    let wp = a
        .ids
        .iter()
        .find(|i| i.to_ascii_uppercase().starts_with("WP"));
    let attempt = Attempt {
        command: "mark-status",
        feature: a.feature.as_deref(),
        wp: wp.map(String::as_str),
        agent: a.agent.as_deref(),
    };
    finish(&ws, result, &attempt, a.json, |m| {
        for w in &m.work_packages {
            let t = &w.transition;
            crate::outln!(
                "{} {}: {} → {}",
                t.feature,
                t.wp_id,
                t.previous_lane,
                t.new_lane
            );
        }
        for s in &m.subtasks {
            let what = if s.changed { "marked" } else { "already" };
            crate::outln!(
                "{} {} ({}): {what} {}",
                m.feature,
                s.subtask,
                s.wp_id,
                s.status.as_str()
            );
        }
    })
}
