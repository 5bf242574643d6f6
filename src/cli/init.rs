//! `spec-kitty init`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::hooks::render;
use super::print_json;
use crate::hooks::HooksError;
use crate::hooks::install::{self, HooksReport};
use crate::workflow::init;

/// Set the project up: its identity, and (if you want) the git hooks.
///
/// Creates `project.uuid` (and `project.slug`) in `.kittify/config.yaml` when missing, keeping
/// every other key of the file. Then offers to install the git hooks that record commits,
/// merges and new worktrees as events; --hooks / --no-hooks decide without asking. Without
/// either and without a terminal to ask on, hooks are not installed (and it says how to).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty init\n  \
    spec-kitty init --hooks      # in scripts: install the hooks without asking\n  \
    spec-kitty init --no-hooks --json")]
pub struct InitArgs {
    /// Install the git hooks without asking.
    #[arg(long, conflicts_with = "no_hooks")]
    hooks: bool,
    /// Do not install the git hooks, and do not ask.
    #[arg(long)]
    no_hooks: bool,
    /// Print {project_uuid, project_slug, config_path, identity_created, hooks, hooks_report}.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct InitJson {
    project_uuid: String,
    project_slug: Option<String>,
    config_path: String,
    identity_created: bool,
    /// `installed`, `declined`, `skipped` (--no-hooks) or `not_asked` (no terminal).
    hooks: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hooks_report: Option<HooksReport>,
}

pub fn run(dir: &Path, a: InitArgs) -> miette::Result<ExitCode> {
    let identity = init::ensure_identity(dir)?;
    let decision = if a.hooks {
        "installed"
    } else if a.no_hooks {
        "skipped"
    } else if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() && !a.json {
        if ask("Install git hooks so that commits, merges and new worktrees record events? [Y/n] ")
        {
            "installed"
        } else {
            "declined"
        }
    } else {
        "not_asked"
    };
    let report = if decision == "installed" {
        let exe = std::env::current_exe()
            .and_then(std::fs::canonicalize)
            .map_err(|source| HooksError::NoExecutable { source })?;
        Some(install::install(dir, &exe, install::SharedDir::Refuse)?)
    } else {
        None
    };
    if a.json {
        print_json(&InitJson {
            project_uuid: identity.uuid.clone(),
            project_slug: identity.slug.clone(),
            config_path: identity.config_path.display().to_string(),
            identity_created: identity.created,
            hooks: decision,
            hooks_report: report,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if identity.created { "created" } else { "found" };
    crate::outln!(
        "project identity {verb}: {} ({}) in {}",
        identity.uuid,
        identity.slug.as_deref().unwrap_or("no slug"),
        identity.config_path.display()
    );
    match (decision, &report) {
        (_, Some(r)) => render(r),
        ("not_asked", None) => crate::outln!(
            "git hooks not installed (no terminal to ask on): install them with \
             `spec-kitty hooks install`, or run `spec-kitty init --hooks`"
        ),
        _ => {
            crate::outln!(
                "git hooks not installed; install them later with `spec-kitty hooks install`"
            )
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ask(question: &str) -> bool {
    crate::out!("{question}");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "" | "y" | "yes"
    )
}
