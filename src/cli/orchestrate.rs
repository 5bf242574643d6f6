//! `spec-kitty orchestrate`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::outcome::{error_json, print_warnings};
use super::print_json;
use crate::workflow::orchestrate::{self, Progress};
use crate::workflow::{Attempt, WorkflowError, Workspace};

/// Run a feature to completion with the agents configured in .kittify/config.yaml.
///
/// For each work package whose dependencies are done: implement it (worktree, planned →
/// doing), run the implementer (WPAssigned implementation), merge it (doing → for_review),
/// run the reviewer (WPAssigned review) and accept it on approval (done; DependencyResolved
/// for the WPs it unblocks; FeatureCompleted after the last one). A failing agent is recorded
/// (ErrorLogged) and the next one of its role takes over (WPAssigned with retry_count). Agents
/// run with `sh -c` inside the WP worktree; exit 0 means done (implementer) or approved
/// (reviewer); their output goes to .git/spec-kitty/orchestrate/. A run can be repeated: it
/// resumes each WP from its lane. An agent still running after `agents.timeout_seconds`
/// (default 3600, one hour) is stopped and has failed. A bug that crashes one WP's worker fails
/// that WP (phase `internal`) instead of stopping the run. The `agents:` schema is in
/// docs/reference/workflow.md.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty orchestrate --feature 028-cli-event-emission-sync\n  \
    spec-kitty orchestrate --jobs 3 --json > run.json\n\n\
    .kittify/config.yaml:\n  \
    agents:\n    \
    implementer: [claude, codex]   # the first, then fallbacks in order\n    \
    reviewer: codex\n    \
    timeout_seconds: 7200          # optional; default 3600\n    \
    commands:\n      \
    claude: claude -p \"Implement {wp_id}: read {wp_file}, commit your work\"\n      \
    codex: codex exec \"Review {wp_id} in {worktree}; exit 0 to approve\"")]
pub struct OrchestrateArgs {
    /// The feature (inferred when the project has one, or from the WP branch you are on).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// How many work packages may run at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    jobs: usize,
    /// Print {feature, jobs, done, completed_now, failed, blocked, feature_completed, events};
    /// progress then goes to stderr.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: OrchestrateArgs) -> miette::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let json = a.json;
    let progress = move |p: Progress| {
        if json {
            eprintln!("[{}] {}", p.wp_id, p.message);
        } else {
            crate::outln!("[{}] {}", p.wp_id, p.message);
        }
    };
    let result = orchestrate::orchestrate(&ws, a.feature.as_deref(), a.jobs, &progress);
    let report = match result {
        Ok(r) => r,
        Err(err) => {
            let attempt = Attempt {
                command: "orchestrate",
                feature: a.feature.as_deref(),
                ..Attempt::default()
            };
            ws.log_failure(&err, &attempt);
            if json {
                print_json(&error_json(&err, ws.emitted()))?;
            }
            print_warnings(&ws);
            return Err(err.into());
        }
    };
    if json {
        print_json(&report)?;
    } else {
        crate::outln!(
            "{}: {}/{} work packages done{}",
            report.feature,
            report.done.len(),
            report.done.len() + report.failed.len() + report.blocked.len(),
            if report.feature_completed {
                ", feature complete"
            } else {
                ""
            }
        );
    }
    for w in report.events.iter().filter_map(|e| e.warning.as_deref()) {
        eprintln!("warning: {w}");
    }
    if report.failed.is_empty() && report.blocked.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let failed: Vec<String> = report
        .failed
        .iter()
        .map(|f| format!("{} ({}: {})", f.wp_id, f.phase, f.reason))
        .collect();
    let err = WorkflowError::Agents {
        what: format!(
            "orchestrate stopped: failed {}{}",
            failed.join(", "),
            if report.blocked.is_empty() {
                String::new()
            } else {
                format!("; blocked {}", report.blocked.join(", "))
            }
        ),
        help: "read the agents' output (paths above), fix the cause, and run \
               `spec-kitty orchestrate` again: it resumes each WP from its lane"
            .to_owned(),
    };
    Err(err.into())
}
