//! `spec-kitty agent feature finalize-tasks`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::cli::outcome::finish;
use crate::workflow::{Attempt, Workspace, finalize};

/// Announce a feature and its work packages: FeatureCreated + one WPCreated per WP.
///
/// Reads kitty-specs/<feature>/meta.json and every tasks/WPnn-*.md, validates them (the
/// frontmatter, that dependencies name known WPs, that there is no cycle), then records the
/// events, all with one causation id. Running it again records nothing for the WPs already
/// announced (and says so); a WP file added since is announced.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty agent feature finalize-tasks\n  \
    spec-kitty agent feature finalize-tasks --feature 028-cli-event-emission-sync --json")]
pub struct FinalizeTasksArgs {
    /// The feature (inferred when the project has one, or from the WP branch you are on).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// Print {feature, wp_count, feature_created, created, already_created, causation_id, events}.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: FinalizeTasksArgs) -> miette::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let result = finalize::finalize_tasks(&ws, a.feature.as_deref());
    let attempt = Attempt {
        command: "finalize-tasks",
        feature: a.feature.as_deref(),
        ..Attempt::default()
    };
    finish(&ws, result, &attempt, a.json, |f| {
        if f.feature_created {
            crate::outln!(
                "{}: feature created ({} work packages)",
                f.feature,
                f.wp_count
            );
        }
        if !f.created.is_empty() {
            crate::outln!("{}: announced {}", f.feature, f.created.join(", "));
        }
        if !f.already_created.is_empty() {
            crate::outln!(
                "{}: already announced, nothing recorded for {}",
                f.feature,
                f.already_created.join(", ")
            );
        }
    })
}
