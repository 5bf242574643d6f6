//! `spec-kitty hooks status`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::render;
use crate::cli::print_json;
use crate::hooks::install;

/// Show, per hook, whether it is installed, missing or bypassed.
///
/// Installed means a commit (merge, worktree creation) records its event from every worktree:
/// the hooks directory git uses there exists, the hook file is executable, and running it
/// reaches a live `spec-kitty hooks run` line (our stub, or pre-commit, lefthook or husky
/// calling it). Bypassed means installed but not run, somewhere or everywhere:
/// SPEC_KITTY_HOOKS=0, a stub renamed by a hook manager, a commented-out line, core.hooksPath
/// pointing elsewhere, or a worktree where git runs no hook at all; the note says which.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty hooks status\n  \
    spec-kitty hooks status --json | jq '.hooks[] | {name, state}'")]
pub struct StatusArgs {
    /// Print {worktree_root, common_dir, default_dir, hooks_path, hooks_path_origin, dir, manager,
    /// disabled_by_env, hooks:[{name, state, path, via, chained, binary, note}], worktrees:[{path,
    /// hooks_dir, hooks_dir_exists, recording}], advice:[…]}.
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
