//! The command line: clap definitions and one module per command group. The only place that
//! prints. Each command parses, calls the library, and renders text or `--json`.

mod accept;
mod agent;
mod auth;
mod completions;
mod demo;
mod docs_gen;
mod events;
mod hooks;
mod implement;
mod init;
mod man;
mod merge;
mod orchestrate;
pub mod outcome;
mod status;
pub mod stdout;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::workflow::EmitOutcome;

/// Spec-driven workflow events, stored in git refs and synced to your team.
///
/// Every workflow action (a work package changing lane, a feature being created, a note added)
/// becomes an event: one commit on `refs/spec-kitty/events/<node>` in your repository. Read
/// them with `spec-kitty events log`, or with plain git: `git log --glob=refs/spec-kitty/events`.
#[derive(Debug, Parser)]
#[command(
    name = "spec-kitty",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Run as if spec-kitty was started in <DIR> (like `git -C`).
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read, emit and check the events stored in this repository.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Try spec-kitty on a throwaway repository: emit events and show them.
    Demo(demo::DemoArgs),
    Init(init::InitArgs),
    Status(status::StatusArgs),
    Implement(implement::ImplementArgs),
    Merge(merge::MergeArgs),
    Accept(accept::AcceptArgs),
    Orchestrate(orchestrate::OrchestrateArgs),
    /// Git hooks that record commits, merges and new worktrees as events.
    #[command(subcommand)]
    Hooks(hooks::HooksCommand),
    /// Log in to the team server, log out, show the session.
    ///
    /// These commands are for server sync only. `spec-kitty sync now` and `spec-kitty sync
    /// status` (and the sync daemon) use the session `auth login` creates to upload this
    /// repository's events to the team server set with `spec-kitty sync server`, and to pull
    /// your teammates' events. `spec-kitty sync workspace` is a different, local operation: it
    /// brings a work package's worktree up to date with its target branch, never talks to a
    /// server, and needs no login.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Sync events with the team server (`now`, `status`, `server`, `migrate`); `workspace` is local.
    ///
    /// Two different things are called sync here. Server sync: `sync now` uploads this
    /// repository's pending events to the team server and pulls your teammates' events,
    /// `sync status` shows what is pending and (with --check) whether the server answers, and
    /// `sync daemon` does the same live over a WebSocket; they need `spec-kitty sync server`
    /// and `spec-kitty auth login` first. Local sync: `sync workspace` brings a work package's
    /// worktree up to date with the branch it builds on; it is plain git, never talks to a
    /// server and needs no login.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// Commands for agents (and people) working through a feature's work packages.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
    /// Write docs/reference/cli-commands.md from these definitions (for the docs test).
    #[command(name = "__generate-docs", hide = true)]
    GenerateDocs(docs_gen::GenerateDocsArgs),
}

/// Runs the parsed command. Errors are rendered by `main` with miette.
pub fn run(cli: Cli) -> miette::Result<ExitCode> {
    let dir = match cli.directory {
        Some(d) => d,
        None => std::env::current_dir()
            .map_err(|e| miette::miette!("cannot read the current directory: {e}"))?,
    };
    match cli.command {
        Command::Events(cmd) => events::run(&dir, cmd),
        Command::Demo(args) => demo::run(args),
        Command::Init(args) => init::run(&dir, args),
        Command::Status(args) => status::run(&dir, args),
        Command::Hooks(cmd) => hooks::run(&dir, cmd),
        Command::Implement(args) => implement::run(&dir, args),
        Command::Merge(args) => merge::run(&dir, args),
        Command::Accept(args) => accept::run(&dir, args),
        Command::Orchestrate(args) => orchestrate::run(&dir, args),
        Command::Auth(cmd) => auth::run(cmd),
        Command::Sync(cmd) => sync::run(&dir, cmd),
        Command::Agent(cmd) => agent::run(&dir, cmd),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::GenerateDocs(args) => docs_gen::run(args),
    }
}

/// Prints the warning of an event that could not be recorded: one line on stderr. The
/// command's own result stands.
pub fn report_emit(outcome: &EmitOutcome) {
    if let Some(w) = outcome.warning() {
        eprintln!("warning: {w}");
    }
}

/// Prints `value` as pretty JSON on stdout (quietly dropped when the reader has gone away).
pub fn print_json(value: &impl serde::Serialize) -> miette::Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| miette::miette!("cannot serialise output: {e}"))?;
    crate::outln!("{text}");
    Ok(())
}
