//! `spec-kitty hooks status`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::render;
use crate::cli::print_json;
use crate::hooks::install;

/// Show, per hook, whether it is installed, missing or bypassed.
///
/// Bypassed means installed but not run: SPEC_KITTY_HOOKS=0 is set, or core.hooksPath makes
/// git look in another directory than the one holding the stub.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty hooks status\n  \
    spec-kitty hooks status --json | jq '.hooks[] | {name, state}'")]
pub struct StatusArgs {
    /// Print {worktree_root, default_dir, hooks_path, dir, manager, disabled_by_env, hooks:[…], advice:[…]}.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: StatusArgs) -> miette::Result<ExitCode> {
    let report = install::status(dir)?;
    if a.json {
        print_json(&report)?;
    } else {
        render(&report);
    }
    Ok(ExitCode::SUCCESS)
}
