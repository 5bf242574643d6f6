//! `spec-kitty completions <SHELL>`: a shell completion script, generated from the clap
//! definitions.

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;

/// Print a shell completion script for spec-kitty on stdout.
///
/// Generated from the same definitions as `--help`, so it always knows every command and
/// flag of this version. Install it where your shell looks for completions (see the
/// examples), then start a new shell.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty completions bash > ~/.local/share/bash-completion/completions/spec-kitty\n  \
    spec-kitty completions zsh > \"${fpath[1]}/_spec-kitty\"\n  \
    spec-kitty completions fish > ~/.config/fish/completions/spec-kitty.fish")]
pub struct CompletionsArgs {
    /// The shell to generate the script for.
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

pub fn run(a: CompletionsArgs) -> miette::Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "spec-kitty", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
