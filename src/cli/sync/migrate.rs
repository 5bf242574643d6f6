//! `spec-kitty sync migrate`: import the Python tool's offline queues into the event log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::cli::print_json;
use crate::store::EventLog;
use crate::sync::migrate::{self, MigrateOptions, MigrateReport};

/// Import the Python spec-kitty's offline queues into this repository's event log.
///
/// Reads `~/.spec-kitty/queue.db` and `~/.spec-kitty/queues/queue-*.db` (the spec-kitty home;
/// `SPEC_KITTY_HOME` or --from change it) and records every queued event of this project
/// (matched by `project.uuid`) as a pending event, exactly as recorded: its event id, node,
/// Lamport clock and retry count are kept, 7-lane status changes and event types this tool does
/// not emit included. Each event goes on the chain of its own node,
/// `refs/spec-kitty/events/<node_id>`, in clock order, one commit per row, read back before it
/// is counted. `spec-kitty sync now` then uploads them.
///
/// Safe to rerun: events already in the log are skipped, so a second run imports 0. Rows of
/// other projects are left alone and counted; `body_upload_queue` rows are counted and not
/// carried (this protocol has no body uploads); a malformed row is reported with its row id and
/// skipped. The queue databases are opened read-only and never changed or deleted.
///
/// Exit status: 0 when every row of this project is in the log, 1 when some rows or queue files
/// were skipped (each is listed; the rest was imported) or nothing could be read.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty sync migrate --dry-run            # what would be imported, nothing written\n  \
    spec-kitty sync migrate                      # import from ~/.spec-kitty\n  \
    spec-kitty sync migrate --from /backup/.spec-kitty/queues/queue-3f2a.db\n  \
    spec-kitty sync migrate --json | jq '.imported, .skipped'\n  \
    spec-kitty sync now                          # then upload them")]
pub struct MigrateArgs {
    /// A Python-era spec-kitty home (holding queue.db and/or queues/), or one queue database.
    #[arg(long, value_name = "PATH")]
    from: Option<PathBuf>,
    /// Count and list what would be imported; write nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Print the report as JSON (documented in docs/how-to/migrate-from-python.md).
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: MigrateArgs) -> miette::Result<ExitCode> {
    let log = EventLog::discover(dir)?;
    let project = migrate::project_uuid(&log)?;
    let options = MigrateOptions {
        from: a.from,
        dry_run: a.dry_run,
    };
    let report = migrate::migrate(&log, &project, &options)?;
    if a.json {
        print_json(&report)?;
    } else {
        render(&report, &options);
    }
    Ok(if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn render(r: &MigrateReport, options: &MigrateOptions) {
    if r.sources.is_empty() && r.unreadable_sources.is_empty() {
        let from = options.from.clone().unwrap_or_else(migrate::default_source);
        crate::outln!(
            "No Python-era queue found in {} (queue.db, queues/queue-*.db): nothing to migrate.",
            from.display()
        );
        return;
    }
    crate::outln!(
        "Migrating the Python spec-kitty offline queues of project {}",
        r.project_uuid
    );
    for s in &r.sources {
        crate::outln!(
            "  {}: {} queued, {}",
            s.path.display(),
            plural(s.queue_rows, "event"),
            plural(s.body_upload_rows, "body upload")
        );
    }
    render_outcome(r);
    render_counts(r);
    render_problems(r);
}

/// The headline and the chains written.
fn render_outcome(r: &MigrateReport) {
    if r.dry_run {
        crate::outln!(
            "Dry run: {} would be imported (nothing written)",
            plural(r.to_import, "event")
        );
    } else if r.imported == 0 {
        crate::outln!(
            "Imported 0 events: {} already in the event log, nothing new to carry",
            r.already_present
        );
    } else {
        crate::outln!(
            "✅ Imported {} onto {} (pending; upload with `spec-kitty sync now`)",
            plural(r.imported, "event"),
            plural(r.chains.len() as u64, "chain")
        );
    }
    for c in &r.chains {
        let clocks = match (c.first_clock, c.last_clock) {
            (Some(a), Some(b)) => format!(", clocks {a}–{b}"),
            _ => String::new(),
        };
        crate::outln!(
            "  refs/spec-kitty/events/{}: {}{clocks}",
            c.node_id,
            plural(c.imported, "event")
        );
    }
}

/// What was not imported and why that is fine.
fn render_counts(r: &MigrateReport) {
    if r.already_present > 0 && (r.imported > 0 || r.dry_run) {
        crate::outln!(
            "  {} already in the event log",
            plural(r.already_present, "event")
        );
    }
    let lines = [
        (
            r.duplicate_rows,
            "duplicate row",
            "(the same event in two queue files)",
        ),
        (
            r.with_retry_count,
            "event",
            "kept the Python retry count (trailer Legacy-Retry-Count)",
        ),
        (r.other_project_rows, "row", "of other projects left alone"),
        (
            r.body_uploads_not_carried,
            "body upload",
            "of this project not carried (this protocol has no body uploads)",
        ),
        (
            r.body_uploads_other_projects,
            "body upload",
            "of other projects left alone",
        ),
    ];
    for (n, noun, what) in lines {
        if n > 0 {
            crate::outln!("  {} {what}", plural(n, noun));
        }
    }
}

/// Rows and files that could not be carried.
fn render_problems(r: &MigrateReport) {
    for u in &r.unreadable_sources {
        crate::outln!(
            "  ⚠ {}: {} — skipped (not changed)",
            u.path.display(),
            u.error
        );
    }
    for s in &r.skipped {
        crate::outln!(
            "  ⚠ {} row {}{}: {} — skipped",
            s.source.display(),
            s.row_id,
            s.event_id
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            s.reason
        );
    }
    if !r.skipped.is_empty() {
        crate::outln!(
            "{} not carried (listed above); the queue files were not changed.",
            plural(r.skipped.len() as u64, "row")
        );
    }
}

/// `1 event`, `2 events`.
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
