//! `spec-kitty man --out DIR`: man pages (roff), generated from the clap definitions.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory};

use crate::cli::Cli;

/// Write man pages for spec-kitty and every subcommand into DIR.
///
/// One page per command (`spec-kitty.1`, `spec-kitty-sync-now.1`, …), generated from the same
/// definitions as `--help`. DIR is created when missing. Point `MANPATH` at its parent
/// directory, or copy the pages into a `man1` directory your `man` searches.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty man --out ~/.local/share/man/man1 && man spec-kitty-sync-now\n  \
    spec-kitty man --out /tmp/man1 && man -l /tmp/man1/spec-kitty.1")]
pub struct ManArgs {
    /// The directory to write the pages into (created when missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(a: ManArgs) -> miette::Result<ExitCode> {
    let fail = |e: std::io::Error| {
        miette::miette!(
            help = "choose a directory you can write to, e.g. --out ~/.local/share/man/man1",
            "cannot write man pages into {}: {e}",
            a.out.display()
        )
    };
    std::fs::create_dir_all(&a.out).map_err(fail)?;
    clap_mangen::generate_to(Cli::command(), &a.out).map_err(fail)?;
    println!("wrote man pages into {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
