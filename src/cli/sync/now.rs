//! `spec-kitty sync now`: upload pending events, pull the team's, report.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::cli::print_json;
use crate::store::EventLog;
use crate::sync::ClientConfig;
use crate::sync::now::{NowOptions, SyncSummary, sync_now};
use crate::sync::push::Stop;

/// Upload every pending event to the team server, then pull your teammates' events.
///
/// Works from the main checkout and from any directory of any linked worktree (the event refs
/// are shared). First a preflight (no network): a server is configured, you are logged in,
/// the project has an identity, and every chain's sync state belongs to this server and team.
/// Then pending events go up oldest first, in gzip batches of at most 1000 (or the server's
/// limit); the server's answer for each event is recorded in refs/spec-kitty/synced/<node>.
/// Network faults (timeouts, 429, 5xx, dropped connections) are retried with backoff and never
/// count against an event; only a `rejected` answer raises its retry count. Then the team's
/// events are pulled into refs/spec-kitty/events/<their node>, so `spec-kitty status` shows
/// their moves. Safe to interrupt at any point and run again.
///
/// Exit status: 0 when nothing failed; 1 when some events were rejected (they stay pending) or
/// the run stopped part-way (deadline, server error); 2 when nothing could be sent (server
/// unreachable, not logged in, preflight refused).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty sync now\n  \
    spec-kitty sync now --dry-run            # count and list what would be sent\n  \
    spec-kitty sync now --verbose            # every event and its result\n  \
    spec-kitty sync now --json --report failures.json\n\n\
Exit status: 0 nothing failed, 1 some events rejected or run stopped part-way, \
2 nothing could be sent.")]
pub struct NowArgs {
    /// Count and list what would be sent; contact nothing, change nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// List every event sent and the server's answer.
    #[arg(short, long)]
    verbose: bool,
    /// Print the summary as JSON (see docs/how-to/sync-to-server.md).
    #[arg(long)]
    json: bool,
    /// Also write the failures (rejected events, skipped pulled events, why the run stopped)
    /// as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Give up after this many seconds in total (default: `[sync] deadline_secs`, 300).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
}

pub fn run(dir: &Path, a: NowArgs) -> miette::Result<ExitCode> {
    let log = EventLog::discover(dir)?;
    let config = ClientConfig::load()?;
    let deadline = Duration::from_secs(a.timeout.unwrap_or(config.sync_deadline_secs).max(1));
    let options = NowOptions {
        dry_run: a.dry_run,
        deadline,
        request_timeout: deadline.min(Duration::from_secs(60)),
        verbose: a.verbose,
    };
    if !a.json
        && !a.dry_run
        && let Some(url) = &config.server_url
    {
        crate::outln!("Syncing with {url}...");
    }
    let mut bar: Option<indicatif::ProgressBar> = None;
    let on_terminal = std::io::stderr().is_terminal();
    let mut progress = |done: u64, total: u64| {
        if !on_terminal || total <= 1000 {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec})")
            {
                b.set_style(style);
            }
            b
        });
        b.set_position(done);
    };
    let result = sync_now(&log, &config, &options, &mut progress);
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            if let Some(path) = &a.report {
                let failure = serde_json::json!({"error": e.to_string()});
                write_report(path, &failure)?;
            }
            eprintln!("{:?}", miette::Report::new(e));
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(path) = &a.report {
        write_report(path, &failures(&summary))?;
    }
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        let mut value = serde_json::to_value(&summary)
            .map_err(|e| miette::miette!("cannot serialise output: {e}"))?;
        value["exit_code"] = summary.exit_code().into();
        print_json(&value)?;
    } else if a.dry_run {
        render_dry_run(&summary, a.verbose);
    } else {
        render(&summary, a.verbose);
    }
    Ok(ExitCode::from(summary.exit_code()))
}

fn write_report(path: &Path, value: &serde_json::Value) -> miette::Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| miette::miette!("cannot serialise the report: {e}"))?;
    std::fs::write(path, text + "\n")
        .map_err(|e| miette::miette!("cannot write the report {}: {e}", path.display()))
}

fn failures(s: &SyncSummary) -> serde_json::Value {
    serde_json::json!({
        "server_url": s.server_url,
        "rejected": s.pushed.rejected,
        "push_stopped": s.pushed.stop,
        "pull_stopped": s.pulled.stop,
        "skipped_pulled": s.pulled.skipped,
        "left": s.pushed.left,
        "pending_after": s.pending_after,
    })
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn render_dry_run(s: &SyncSummary, verbose: bool) {
    crate::outln!(
        "Would send {} to {} (team {}); nothing was contacted.",
        plural(s.pending_before, "event", "events"),
        s.server_url,
        s.team
    );
    let shown = if verbose { usize::MAX } else { 20 };
    for line in s.would_send.iter().take(shown) {
        crate::outln!("  {}  {}", line.event_id, line.summary);
    }
    if s.would_send.len() > shown {
        crate::outln!(
            "  … and {} more (use --verbose)",
            s.would_send.len() - shown
        );
    }
}

fn render(s: &SyncSummary, verbose: bool) {
    if verbose {
        for line in &s.pushed.lines {
            crate::outln!("  {:<9} {}  {}", line.status, line.event_id, line.summary);
        }
    }
    crate::outln!(
        "↑ Pushed {} ({})",
        plural(s.pushed.settled, "event", "events"),
        plural(s.pushed.batches, "batch", "batches")
    );
    if s.pulled.stop.is_none() || s.pulled.written > 0 {
        crate::outln!(
            "↓ Pulled {}",
            plural(s.pulled.written, "new event", "new events")
        );
    }
    let mut failed = false;
    if !s.pushed.rejected.is_empty() {
        failed = true;
        crate::outln!(
            "✗ {} rejected by the server; they stay pending with their retry count raised:",
            plural(s.pushed.rejected.len() as u64, "event", "events")
        );
        for r in s.pushed.rejected.iter().take(5) {
            crate::outln!(
                "    {} {} (retry {}): {}",
                r.event_id,
                r.event_type,
                r.retry_count,
                r.error
            );
        }
        if s.pushed.rejected.len() > 5 {
            crate::outln!(
                "    … and {} more (--report FILE lists all)",
                s.pushed.rejected.len() - 5
            );
        }
        crate::outln!(
            "  fix: correct what the errors name, then `spec-kitty sync now`; `spec-kitty sync status` shows them"
        );
    }
    for (what, stop) in [("push", &s.pushed.stop), ("pull", &s.pulled.stop)] {
        let Some(stop) = stop else { continue };
        failed = true;
        match stop {
            Stop::Unreachable { reason } => crate::outln!(
                "✗ Server unreachable during {what} ({reason}); {} still pending, nothing lost: run `spec-kitty sync now` again when it is back",
                plural(s.pending_after, "event", "events")
            ),
            Stop::Auth { message } => crate::outln!(
                "✗ Authentication failed during {what}: {message}: run `spec-kitty auth login`, then `spec-kitty sync now`"
            ),
            Stop::Server { status, message } => crate::outln!(
                "✗ The server answered {status} during {what}: {message}; run `spec-kitty sync status --check`"
            ),
            Stop::Deadline => crate::outln!(
                "✗ Stopped at the deadline during {what}; {} still pending: run `spec-kitty sync now` again (or raise --timeout)",
                plural(s.pending_after, "event", "events")
            ),
        }
    }
    if !s.pulled.skipped.is_empty() {
        crate::outln!(
            "! {} from the server failed validation and were skipped (not written):",
            plural(
                s.pulled.skipped.len() as u64,
                "pulled event",
                "pulled events"
            )
        );
        for k in s.pulled.skipped.iter().take(3) {
            crate::outln!(
                "    {}: {}",
                k.event_id.as_deref().unwrap_or("(no id)"),
                k.error
            );
        }
    }
    if !failed {
        crate::outln!("✅ Sync complete");
    }
}
