//! The `spec-kitty` binary: parse arguments, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = spec_kitty::cli::Cli::parse();
    let code = match spec_kitty::cli::run(cli) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    };
    // A reader that closed the pipe early (`… | head -1`) is not an error; any other failure
    // to write the output is, once the command has finished.
    match spec_kitty::cli::stdout::finish() {
        Some(why) => {
            eprintln!(
                "error: the output could not be written to stdout: {why} \
                 (check where it is redirected, then run the command again)"
            );
            ExitCode::FAILURE
        }
        None => code,
    }
}
