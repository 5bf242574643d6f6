//! `spec-kitty sync …`: one file per command; this module only lists and dispatches them.

pub mod daemon;
mod migrate;
mod now;
mod server;
mod status;
mod workspace;

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    Now(now::NowArgs),
    Daemon(daemon::DaemonArgs),
    Status(status::StatusArgs),
    Server(server::ServerArgs),
    Migrate(migrate::MigrateArgs),
    Workspace(workspace::WorkspaceArgs),
}

pub fn run(dir: &Path, cmd: SyncCommand) -> miette::Result<ExitCode> {
    match cmd {
        SyncCommand::Now(a) => now::run(dir, a),
        SyncCommand::Daemon(a) => daemon::run(dir, a),
        SyncCommand::Status(a) => status::run(dir, a),
        SyncCommand::Server(a) => server::run(a),
        SyncCommand::Migrate(a) => migrate::run(dir, a),
        SyncCommand::Workspace(a) => workspace::run(dir, a),
    }
}
