//! `spec-kitty agent tasks add-history`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::cli::outcome::finish;
use crate::workflow::{Attempt, Workspace, tasks};

/// Add an entry to a work package's history (records HistoryAdded).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty agent tasks add-history WP01 --note \"Parser done, tests green\"\n  \
    spec-kitty agent tasks add-history WP02 --type review --author codex --note \"Two nits, approved\"")]
pub struct AddHistoryArgs {
    /// The work package (e.g. WP01).
    wp: String,
    /// The entry's text.
    #[arg(long, value_name = "TEXT")]
    note: String,
    /// The kind of entry: note, review, error or comment.
    #[arg(long = "type", value_name = "TYPE", default_value = "note")]
    entry_type: String,
    /// Who wrote it (defaults to git's user.name).
    #[arg(long, value_name = "NAME")]
    author: Option<String>,
    /// The feature (inferred when the project has one, or from the WP branch you are on).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// Print {feature, wp_id, entry_type, author, events:[…]}.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: AddHistoryArgs) -> miette::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let result = tasks::add_history(
        &ws,
        a.feature.as_deref(),
        &a.wp,
        &a.note,
        &a.entry_type,
        a.author.as_deref(),
    );
    let attempt = Attempt {
        command: "add-history",
        feature: a.feature.as_deref(),
        wp: Some(&a.wp),
        agent: a.author.as_deref(),
    };
    finish(&ws, result, &attempt, a.json, |h| {
        crate::outln!("{} {}: history entry added", h.feature, h.wp_id);
    })
}
