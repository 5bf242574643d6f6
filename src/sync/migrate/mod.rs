//! `spec-kitty sync migrate`: carry the Python tool's offline queues into this repository's
//! event log as pending events.
//!
//! Every row of this project is carried, as recorded: its event id, node, Lamport clock and
//! retry count are kept, 7-lane status changes and event types this tool never emits included
//! (validated with the server's compatible rules). An event goes on the chain of its own node
//! (`refs/spec-kitty/events/<node_id>`, see [`crate::store::import`]), in clock order, one
//! commit per row, and is read back from the chain before it is counted. Rows already in the log
//! are skipped, so a second run imports nothing. Rows of other projects are left alone and
//! counted; `body_upload_queue` rows are counted and reported as not carried (the protocol has no
//! body uploads); a malformed row is reported with its row id and skipped. The source databases
//! are opened read-only and never changed.

mod lock;
mod row;
mod source;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use serde::Serialize;

use crate::event::Event;
use crate::store::import::{ImportError, Provenance};
use crate::store::{EventLog, StoreError};

pub use row::Classified;
pub use source::{QueueFile, QueueRow};

/// What `sync migrate` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// A Python-era home (holding `queue.db` and/or `queues/`) or one queue database;
    /// default: the spec-kitty home (`~/.spec-kitty`, or `SPEC_KITTY_HOME`).
    pub from: Option<PathBuf>,
    /// Count and list what would be imported; write nothing.
    pub dry_run: bool,
}

/// Why a migration could not run at all (a row-level problem is reported, not an error).
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum MigrateError {
    #[error("{} does not exist", path.display())]
    #[diagnostic(
        code(spec_kitty::migrate::no_source),
        help(
            "pass the Python tool's home (the directory holding queue.db) or one queue \
             database, e.g. `spec-kitty sync migrate --from ~/.spec-kitty`"
        )
    )]
    NoSource { path: PathBuf },

    #[error("cannot read {} as a spec-kitty queue database: {message}", path.display())]
    #[diagnostic(
        code(spec_kitty::migrate::unreadable),
        help(
            "nothing was imported and the file was not changed; check it with \
             `sqlite3 {} .tables`, or leave it out with `--from <another file>`",
            path.display()
        )
    )]
    Unreadable { path: PathBuf, message: String },

    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(
        code(spec_kitty::migrate::io),
        help("check the directory's permissions")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("this repository has no project identity (`project.uuid` in .kittify/config.yaml)")]
    #[diagnostic(
        code(spec_kitty::migrate::no_identity),
        help(
            "the queue's rows are matched to this project by project.uuid: restore the \
             .kittify/config.yaml the Python tool used (`git log -- .kittify/config.yaml`), \
             then rerun `spec-kitty sync migrate`"
        )
    )]
    NoIdentity,

    #[error("another `spec-kitty sync migrate` is running in this repository{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    #[diagnostic(
        code(spec_kitty::migrate::locked),
        help(
            "wait for it and rerun `spec-kitty sync migrate`; if no migration is running, \
             remove {} and rerun",
            path.display()
        )
    )]
    Locked { path: PathBuf, pid: Option<u32> },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Identity(#[from] crate::project::IdentityError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

/// One queue database that was read.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    pub path: PathBuf,
    /// Rows of its `queue` table.
    pub queue_rows: u64,
    /// Rows of its `body_upload_queue` table (any project).
    pub body_upload_rows: u64,
}

/// A row that was not carried, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedRow {
    pub source: PathBuf,
    pub row_id: i64,
    /// The `event_id` column, when the row has one.
    pub event_id: Option<String>,
    pub reason: String,
}

/// Imported events of one chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainImport {
    pub node_id: String,
    /// Events imported (or, with `--dry-run`, that would be).
    pub imported: u64,
    /// Lamport clocks of the first and last of them.
    pub first_clock: Option<u64>,
    pub last_clock: Option<u64>,
}

/// Everything a migration found and did. Stable JSON (`sync migrate --json`, docs/how-to/migrate-from-python.md).
#[derive(Debug, Clone, Serialize)]
pub struct MigrateReport {
    pub dry_run: bool,
    pub project_uuid: String,
    pub sources: Vec<SourceSummary>,
    /// Events written to the log by this run (0 with `--dry-run`), each read back first.
    pub imported: u64,
    /// Events that `--dry-run` found to import (equals `imported` on a real run).
    pub to_import: u64,
    /// Events of this project already in the log (a previous migration, or pulled).
    pub already_present: u64,
    /// Rows holding an event id already seen in an earlier source (the Python tool copied
    /// `queue.db` into its scoped queues).
    pub duplicate_rows: u64,
    /// Rows of other projects, left alone.
    pub other_project_rows: u64,
    /// `body_upload_queue` rows of this project: not carried (no body uploads in this protocol).
    pub body_uploads_not_carried: u64,
    /// `body_upload_queue` rows of other projects.
    pub body_uploads_other_projects: u64,
    /// Imported events whose Python retry count was above 0 (kept as `Legacy-Retry-Count`).
    pub with_retry_count: u64,
    pub chains: Vec<ChainImport>,
    /// Rows that could not be carried: malformed, or refused by the chain (reason given).
    pub skipped: Vec<SkippedRow>,
    /// Queue files of the home that could not be read (left untouched; the others were read).
    pub unreadable_sources: Vec<UnreadableSource>,
}

/// A queue file that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct UnreadableSource {
    pub path: PathBuf,
    pub error: String,
}

impl MigrateReport {
    /// Whether every row of this project is now in the log (nothing was skipped or unreadable).
    pub fn is_complete(&self) -> bool {
        self.skipped.is_empty() && self.unreadable_sources.is_empty()
    }
}

/// The default place of the Python tool's queues: the spec-kitty home.
pub fn default_source() -> PathBuf {
    super::spec_kitty_home()
}

/// Counts the rows of the Python-era queues under `home` (`queue.db`, `queues/queue-*.db`)
/// that belong to `project_uuid`, whether or not they were migrated (the source is never
/// changed). Cheap when no queue exists: one `stat`. Unreadable files count as 0.
pub fn legacy_rows_for_project(home: &Path, project_uuid: &str) -> Result<usize, MigrateError> {
    Ok(project_rows(home, project_uuid)?.len())
}

/// The rows of `project_uuid` under `home` whose event is not yet in `log`: what `sync now`'s
/// preflight warns about ("run `spec-kitty sync migrate`"). Reads only the chains of the nodes
/// those rows name.
pub fn unmigrated_rows_for_project(
    log: &EventLog,
    home: &Path,
    project_uuid: &str,
) -> Result<usize, MigrateError> {
    let events = project_rows(home, project_uuid)?;
    let mut by_node: HashMap<String, HashSet<String>> = HashMap::new();
    let mut missing = 0;
    for e in events {
        if !by_node.contains_key(&e.node_id) {
            by_node.insert(e.node_id.clone(), chain_ids(log, &e.node_id)?);
        }
        if !by_node[&e.node_id].contains(&e.event_id) {
            missing += 1;
        }
    }
    Ok(missing)
}

/// The events of `project_uuid` in the queues under `home`, deduplicated by event id.
fn project_rows(home: &Path, project_uuid: &str) -> Result<Vec<Event>, MigrateError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for path in source::discover(home)? {
        let Ok(file) = source::read(&path) else {
            continue;
        };
        for r in &file.rows {
            if let Classified::Event(e) = row::classify(r, project_uuid)
                && seen.insert(e.event_id.clone())
            {
                out.push(*e);
            }
        }
    }
    Ok(out)
}

/// Every event id on `node`'s chain.
fn chain_ids(log: &EventLog, node: &str) -> Result<HashSet<String>, StoreError> {
    Ok(log
        .chain_events(node)?
        .into_iter()
        .map(|s| s.event.event_id)
        .collect())
}

/// The project identity of the repository `log` belongs to, read (never created).
pub fn project_uuid(log: &EventLog) -> Result<String, MigrateError> {
    use crate::project::identity;
    let workdir = log.repo().workdir().map(Path::to_path_buf);
    let main_root = crate::workflow::emit::main_worktree_root(log.common_dir());
    for root in workdir.iter().chain(main_root.iter()) {
        if let Some(id) = identity::read(&root.join(identity::CONFIG_RELATIVE))? {
            return Ok(id.uuid);
        }
    }
    Err(MigrateError::NoIdentity)
}

/// A row of this project waiting to be carried.
struct Candidate {
    source: PathBuf,
    row_id: i64,
    retry_count: u32,
    raw: String,
    event: Event,
}

/// Runs the migration into `log` for the project `project_uuid`.
pub fn migrate(
    log: &EventLog,
    project_uuid: &str,
    options: &MigrateOptions,
) -> Result<MigrateReport, MigrateError> {
    let from = options.from.clone().unwrap_or_else(default_source);
    if options.from.is_some() && !from.exists() {
        return Err(MigrateError::NoSource { path: from });
    }
    let mut report = MigrateReport {
        dry_run: options.dry_run,
        project_uuid: project_uuid.to_owned(),
        sources: Vec::new(),
        imported: 0,
        to_import: 0,
        already_present: 0,
        duplicate_rows: 0,
        other_project_rows: 0,
        body_uploads_not_carried: 0,
        body_uploads_other_projects: 0,
        with_retry_count: 0,
        chains: Vec::new(),
        skipped: Vec::new(),
        unreadable_sources: Vec::new(),
    };
    // One named file that cannot be read is an error; in a home, a broken file is reported and
    // the others are still carried.
    let mut files = Vec::new();
    for path in source::discover(&from)? {
        match source::read(&path) {
            Ok(f) => files.push(f),
            Err(e) if from.is_file() => return Err(e),
            Err(e) => report.unreadable_sources.push(UnreadableSource {
                path,
                error: e.to_string(),
            }),
        }
    }
    let candidates = collect(&files, project_uuid, &mut report);
    // Held until the report is returned; a dry run writes nothing and needs no lock.
    let _lock = if options.dry_run {
        None
    } else {
        Some(lock::MigrateLock::acquire(log.common_dir())?)
    };
    // One chain per node, each in clock order (rows are in insertion order, not clock order).
    let mut by_node: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for c in candidates {
        by_node.entry(c.event.node_id.clone()).or_default().push(c);
    }
    for (node, mut rows) in by_node {
        rows.sort_by_key(|c| (c.event.lamport_clock, c.event.event_id.clone()));
        let chain = import_chain(log, &node, rows, options.dry_run, &mut report)?;
        if chain.imported > 0 {
            report.chains.push(chain);
        }
    }
    Ok(report)
}

/// Reads and classifies every row of `files`, keeping this project's events.
fn collect(files: &[QueueFile], project_uuid: &str, report: &mut MigrateReport) -> Vec<Candidate> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for file in files {
        report.sources.push(SourceSummary {
            path: file.path.clone(),
            queue_rows: file.rows.len() as u64,
            body_upload_rows: file.body_uploads.iter().map(|(_, n)| n).sum(),
        });
        for (project, n) in &file.body_uploads {
            if project == project_uuid {
                report.body_uploads_not_carried += n;
            } else {
                report.body_uploads_other_projects += n;
            }
        }
        for r in &file.rows {
            let skip = |reason: String| SkippedRow {
                source: file.path.clone(),
                row_id: r.row_id,
                event_id: r.event_id.clone(),
                reason,
            };
            match row::classify(r, project_uuid) {
                Classified::OtherProject(_) => report.other_project_rows += 1,
                Classified::Malformed(why) => {
                    report.skipped.push(skip(format!("malformed: {why}")))
                }
                Classified::Event(e) => {
                    if !seen.insert(e.event_id.clone()) {
                        report.duplicate_rows += 1;
                        continue;
                    }
                    out.push(Candidate {
                        source: file.path.clone(),
                        row_id: r.row_id,
                        retry_count: u32::try_from(r.retry_count.max(0)).unwrap_or(u32::MAX),
                        raw: r.data.clone().unwrap_or_default(),
                        event: *e,
                    });
                }
            }
        }
    }
    out
}

/// Carries the rows of one node, oldest clock first, one commit each.
fn import_chain(
    log: &EventLog,
    node: &str,
    rows: Vec<Candidate>,
    dry_run: bool,
    report: &mut MigrateReport,
) -> Result<ChainImport, MigrateError> {
    let present = chain_ids(log, node)?;
    let mut chain = ChainImport {
        node_id: node.to_owned(),
        imported: 0,
        first_clock: None,
        last_clock: None,
    };
    // What a dry run believes the tip to be after the rows it would have written.
    let mut dry_tip = log.import_tip(node)?;
    for c in rows {
        let skip = |reason: String| SkippedRow {
            source: c.source.clone(),
            row_id: c.row_id,
            event_id: Some(c.event.event_id.clone()),
            reason,
        };
        if present.contains(&c.event.event_id) {
            report.already_present += 1;
            continue;
        }
        let outcome = if dry_run {
            dry_check(log, node, &c.event, &mut dry_tip)
        } else {
            let provenance = Provenance {
                source: format!("{} row {}", c.source.display(), c.row_id),
                retry_count: c.retry_count,
                raw: c.raw.clone(),
            };
            log.append_recorded(&c.event, &provenance).map(|_| ())
        };
        match outcome {
            Ok(()) => {
                report.to_import += 1;
                if !dry_run {
                    report.imported += 1;
                }
                if c.retry_count > 0 {
                    report.with_retry_count += 1;
                }
                chain.imported += 1;
                chain.first_clock.get_or_insert(c.event.lamport_clock);
                chain.last_clock = Some(c.event.lamport_clock);
            }
            Err(ImportError::Store(e)) => return Err(e.into()),
            Err(ImportError::ClockNotAbove { .. })
                if chain_ids(log, node)?.contains(&c.event.event_id) =>
            {
                // A concurrent migration wrote it first.
                report.already_present += 1;
            }
            Err(e) => report.skipped.push(skip(e.to_string())),
        }
    }
    Ok(chain)
}

/// The checks [`EventLog::append_recorded`] would make, against the tip a dry run tracks.
fn dry_check(
    log: &EventLog,
    node: &str,
    event: &Event,
    tip: &mut Option<crate::store::import::ImportTip>,
) -> Result<(), ImportError> {
    if node == log.node_id() {
        return Err(ImportError::OwnNode {
            node: node.to_owned(),
        });
    }
    if let Some(t) = tip.as_ref() {
        if !t.imported {
            return Err(ImportError::ForeignChain {
                node: node.to_owned(),
            });
        }
        if t.lamport >= event.lamport_clock {
            return Err(ImportError::ClockNotAbove {
                node: node.to_owned(),
                clock: event.lamport_clock,
                tip: t.lamport,
            });
        }
    }
    let value = serde_json::to_value(event).unwrap_or_default();
    crate::event::validate(&value, crate::event::Strictness::Server)
        .map_err(ImportError::Invalid)?;
    let seq = tip.as_ref().map_or(0, |t| t.seq) + 1;
    *tip = Some(crate::store::import::ImportTip {
        commit: gix::ObjectId::null(gix::hash::Kind::Sha1),
        lamport: event.lamport_clock,
        seq,
        imported: true,
    });
    Ok(())
}
