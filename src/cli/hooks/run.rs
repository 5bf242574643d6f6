//! `spec-kitty hooks run <hook> …` (hidden): what the stubs call. Silent unless something is
//! wrong, and always exits 0 so that git is never disturbed.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::hooks::handlers::{self, HookOutcome};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// post-commit, post-merge or post-checkout.
    hook: String,
    /// The arguments git passed to the hook.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(dir: &Path, a: RunArgs) -> ExitCode {
    match handlers::run(&a.hook, &a.args, dir) {
        Ok(HookOutcome::Recorded(events)) => {
            for w in events.iter().filter_map(|e| e.warning.as_deref()) {
                eprintln!("spec-kitty ({} hook): warning: {w}", a.hook);
            }
        }
        Ok(HookOutcome::Skipped(_)) => {}
        Err(e) => {
            let line = e.to_string();
            eprintln!(
                "spec-kitty ({} hook): {} (nothing recorded; git is unaffected)",
                a.hook,
                line.lines().next().unwrap_or("")
            );
        }
    }
    ExitCode::SUCCESS
}
