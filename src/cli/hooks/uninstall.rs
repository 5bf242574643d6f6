//! `spec-kitty hooks uninstall`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::render;
use crate::cli::print_json;
use crate::hooks::install;

/// Remove spec-kitty's hooks and put back the hooks they were chained to.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spec-kitty hooks uninstall\n  spec-kitty hooks uninstall --json"
)]
pub struct UninstallArgs {
    /// Print the resulting status as JSON (same shape as `hooks status --json`).
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: UninstallArgs) -> miette::Result<ExitCode> {
    let report = install::uninstall(dir)?;
    if a.json {
        print_json(&report)?;
    } else {
        render(&report);
    }
    Ok(ExitCode::SUCCESS)
}
