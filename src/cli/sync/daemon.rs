//! `spec-kitty sync daemon start | stop | status | clean` (and the hidden `run`, which is the
//! daemon process itself).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::cli::print_json;
use crate::store::EventLog;
use crate::sync::ClientConfig;
use crate::sync::daemon::control::{self, DaemonReport, Liveness, Started, Stopped};
use crate::sync::daemon::run::Exit;
use crate::workflow::emit::main_worktree_root;

/// The live-sync daemon of this repository: holds the WebSocket, sends events as they are
/// recorded, receives teammates' events, and falls back to batches when offline.
///
/// One daemon serves every worktree of the repository. It starts by itself when you are logged
/// in and `[sync] background = "auto"` (the default) and a command records an event; these
/// commands control it by hand. Its files live in `<common git dir>/spec-kitty/` (see
/// docs/how-to/run-sync-daemon.md).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty sync daemon start\n  \
    spec-kitty sync daemon status --json\n  \
    spec-kitty sync daemon stop\n  \
    spec-kitty sync daemon clean      # remove records left by a daemon that died")]
pub struct DaemonArgs {
    #[command(subcommand)]
    command: DaemonCommand,
}

#[derive(Debug, Subcommand)]
enum DaemonCommand {
    /// Start the daemon, in the main checkout from any worktree (when one runs already, say so
    /// and exit 0).
    Start(JsonArg),
    /// Stop it: SIGTERM; it records the acks it is waiting for (≤ 5 s) and exits.
    Stop(JsonArg),
    /// Show whether it runs (running / stale / not running), its connection and last error.
    Status(JsonArg),
    /// Remove orphan records (pid dead, or its binary gone). Never kills a process.
    Clean(JsonArg),
    /// Run the daemon in the foreground (what `start` spawns).
    #[command(hide = true)]
    Run,
}

#[derive(Debug, Args)]
struct JsonArg {
    /// Print the result as JSON (see docs/how-to/run-sync-daemon.md).
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: DaemonArgs) -> miette::Result<ExitCode> {
    let log = EventLog::discover(dir)?;
    let common = log.common_dir().to_path_buf();
    match a.command {
        DaemonCommand::Start(j) => {
            // The main checkout, as when the emit path starts it: a WP worktree the daemon
            // was started from may be removed while it runs.
            let root = main_worktree_root(&common)
                .or_else(|| log.repo().workdir().map(Path::to_path_buf))
                .unwrap_or_else(|| dir.to_path_buf());
            drop(log);
            let started = control::start(&common, &root, Duration::from_secs(15))?;
            if j.json {
                print_json(&started)?;
            } else {
                match started {
                    Started::AlreadyRunning { pid } => {
                        crate::outln!("The sync daemon is already running (pid {pid}).");
                    }
                    Started::Started { pid } => {
                        crate::outln!("Started the sync daemon (pid {pid}).")
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DaemonCommand::Stop(j) => {
            let flush = ClientConfig::load()
                .map(|c| c.daemon.flush_timeout)
                .unwrap_or(Duration::from_secs(5));
            let stopped = control::stop(&common, flush);
            if j.json {
                print_json(&stopped)?;
            } else {
                match stopped {
                    Stopped::Stopped { pid } => {
                        crate::outln!("Stopped the sync daemon (pid {pid}).")
                    }
                    Stopped::Killed { pid } => crate::outln!(
                        "The sync daemon (pid {pid}) did not stop within its flush time and was killed; nothing is lost (unsent events stay pending)."
                    ),
                    Stopped::NotRunning => {
                        crate::outln!("No sync daemon runs for this repository.")
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DaemonCommand::Status(j) => {
            let r = control::report(&common);
            if j.json {
                print_json(&r)?;
            } else {
                render(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        DaemonCommand::Clean(j) => {
            let cleaned = control::clean(&common);
            if j.json {
                print_json(&cleaned)?;
            } else if cleaned.removed.is_empty() {
                crate::outln!("Nothing to clean.");
            } else {
                crate::outln!(
                    "Removed {} ({}).",
                    cleaned.removed.join(", "),
                    cleaned.reason.as_deref().unwrap_or("orphan")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DaemonCommand::Run => {
            drop(log);
            match crate::sync::daemon::run::run(dir)? {
                Exit::Done(_) => Ok(ExitCode::SUCCESS),
                Exit::Refused(why) => {
                    eprintln!("spec-kitty sync daemon: {why}");
                    Ok(ExitCode::from(3))
                }
            }
        }
    }
}

/// One line per fact, as `sync status` shows the daemon too.
pub fn daemon_lines(r: &DaemonReport) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let status = match (r.status, &r.owner) {
        (Liveness::Running, Some(o)) => format!("running (pid {}, since {})", o.pid, o.started_at),
        (Liveness::Stale, Some(o)) => format!(
            "stale since {} (pid {} is gone; `spec-kitty sync daemon clean` removes the record)",
            o.started_at, o.pid
        ),
        _ => "not running".to_owned(),
    };
    rows.push(("Daemon".to_owned(), status));
    if let Some(c) = &r.connection {
        rows.push(("Live".to_owned(), c.clone()));
    }
    if let Some(s) = &r.state {
        if let Some(e) = &s.last_error {
            rows.push(("Last error".to_owned(), e.clone()));
        }
        if r.status != Liveness::Running {
            if let Some(why) = &s.stopped {
                rows.push(("Stopped".to_owned(), format!("{why} ({})", s.since)));
            }
        } else if let Some(t) = &s.last_send {
            rows.push(("Last send".to_owned(), t.clone()));
        }
    }
    rows
}

fn render(r: &DaemonReport) {
    for (label, value) in daemon_lines(r) {
        crate::outln!("{label:<14} {value}");
    }
    crate::outln!("{:<14} {}", "Log", r.log);
}
