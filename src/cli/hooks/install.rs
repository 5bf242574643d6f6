//! `spec-kitty hooks install`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::render;
use crate::cli::print_json;
use crate::hooks::{HooksError, install};

/// Install the post-commit, post-merge and post-checkout hooks.
///
/// The stubs go where git looks for hooks (core.hooksPath is respected) and call this binary
/// by its absolute path. A hook already there keeps working: it is moved to
/// `.spec-kitty-chained/<hook>` in the hooks directory and runs first, under its own name, with
/// the same arguments and stdin. What hook managers left of an earlier install (our stub
/// renamed to `<hook>.old` by lefthook or `<hook>.legacy` by pre-commit) is cleaned up or
/// refreshed. With husky, nothing is written to husky's directory; the exact line to add to
/// each `.husky/<hook>` is printed instead. Run it again after moving the binary. See
/// docs/how-to/install-hooks.md.
///
/// When core.hooksPath comes from your global or system git config, that directory is shared
/// by every repository: install refuses and names two remedies, a hooks path of this
/// repository's own, or --shared.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty hooks install\n  \
    spec-kitty hooks install --json\n  \
    spec-kitty hooks install --shared   # core.hooksPath is global: install there knowingly\n  \
    SPEC_KITTY_HOOKS=0 git commit -m wip   # one commit without spec-kitty's hooks")]
pub struct InstallArgs {
    /// Install into a hooks directory shared by every repository (core.hooksPath set in the
    /// global or system git config). The stubs then run in every repository and do nothing
    /// where there is no spec-kitty project, at the cost of one process start.
    #[arg(long)]
    shared: bool,
    /// Print the resulting status as JSON (same shape as `hooks status --json`).
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: InstallArgs) -> miette::Result<ExitCode> {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|source| HooksError::NoExecutable { source })?;
    let shared = if a.shared {
        install::SharedDir::Allow
    } else {
        install::SharedDir::Refuse
    };
    let report = install::install(dir, &exe, shared)?;
    if a.json {
        print_json(&report)?;
    } else {
        render(&report);
    }
    Ok(ExitCode::SUCCESS)
}
