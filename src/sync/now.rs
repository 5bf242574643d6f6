//! `sync now`: preflight → lock → drain → pull → summary. Idempotent and safe to kill at any
//! point: the server deduplicates by event id, and a sync-state ref moves only after an answer.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::ClientConfig;
use super::error::SyncError;
use super::gate::{Sender, clear_to_send};
use super::http::{Limits, Reply};
use super::lock;
use super::pull::{self, Pulled};
use super::push::{self, DrainOptions, Progress, Pushed, Stop};
use super::session::Session;
use crate::store::{EventLog, StoredEvent};

/// How long a second `sync now` waits for the first to finish before saying who holds the lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Options of one run.
#[derive(Debug, Clone)]
pub struct NowOptions {
    pub dry_run: bool,
    /// The total deadline of the run.
    pub deadline: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Keep every event's result for `--verbose`.
    pub verbose: bool,
}

/// One pending event as `--dry-run` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PendingLine {
    pub event_id: String,
    pub node_id: String,
    pub event_type: String,
    pub summary: String,
    pub lamport_clock: u64,
}

/// Everything one run did (the `--json` object; see docs/how-to/sync-to-server.md).
#[derive(Debug, Clone, Serialize)]
pub struct SyncSummary {
    pub server_url: String,
    pub team: String,
    pub dry_run: bool,
    /// Pending when the run started.
    pub pending_before: u64,
    pub pushed: Pushed,
    pub pulled: Pulled,
    /// Pending when the run ended (rejected ones included).
    pub pending_after: u64,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_send: Vec<PendingLine>,
}

impl SyncSummary {
    /// 0 when nothing failed, 1 when some events were rejected (or the run stopped after
    /// sending some), 2 when nothing could be sent.
    pub fn exit_code(&self) -> u8 {
        let stopped = self.pushed.stop.is_some() || self.pulled.stop.is_some();
        if self.pushed.stop.is_some() && self.pushed.batches == 0 && self.pending_before > 0 {
            return 2;
        }
        if self.pulled.stop.is_some() && self.pending_before == 0 {
            return 2;
        }
        if !self.pushed.rejected.is_empty() || stopped {
            1
        } else {
            0
        }
    }
}

/// Runs `sync now` on the repository of `log`.
pub fn sync_now(
    log: &EventLog,
    config: &ClientConfig,
    options: &NowOptions,
    progress: Progress<'_>,
) -> Result<SyncSummary, SyncError> {
    let start = Instant::now();
    let deadline = start + options.deadline;
    // The one egress gate: the preflight, and the running daemon sending as the same identity.
    let cleared = clear_to_send(log, config, Sender::Foreground)?;
    // A count from the tips' sequence numbers, not a walk: the chain is walked once, under
    // the lock (or for `--dry-run` only, which lists what would be sent).
    let count = log.pending_count()?;
    let mut summary = SyncSummary {
        server_url: cleared.server_url.clone(),
        team: cleared.credentials.team_slug.clone(),
        dry_run: options.dry_run,
        pending_before: count,
        pushed: Pushed::default(),
        pulled: Pulled::default(),
        pending_after: count,
        warnings: cleared.warnings.clone(),
        would_send: Vec::new(),
    };
    if options.dry_run {
        let pending = log.pending_commits()?;
        summary.would_send = log.read_pending(&pending)?.iter().map(line).collect();
        return Ok(summary);
    }
    let _lock = lock::acquire(log.common_dir(), LOCK_WAIT)?;
    // Read again under the lock: a sync that held it may have settled some.
    let pending = log.pending_commits()?;
    summary.pending_before = pending.len() as u64;
    let mut session = Session::open(cleared.store, &cleared.server_url, options.request_timeout)?;
    if !pending.is_empty() {
        match limits(&session) {
            Ok(limits) => {
                let drain = DrainOptions {
                    verbose: options.verbose,
                };
                summary.pushed = push::drain(
                    log,
                    &mut session,
                    limits,
                    &pending,
                    deadline,
                    drain,
                    progress,
                );
            }
            Err(stop) => {
                summary.pushed.stop = Some(stop);
                summary.pushed.left = pending.len() as u64;
            }
        }
    }
    let push_unreachable = matches!(
        summary.pushed.stop,
        Some(Stop::Unreachable { .. } | Stop::Auth { .. })
    );
    if !push_unreachable {
        summary.pulled = pull::pull(log, &mut session, deadline);
    }
    summary.pending_after = log.pending_count()?;
    Ok(summary)
}

fn line(s: &StoredEvent) -> PendingLine {
    PendingLine {
        event_id: s.event.event_id.clone(),
        node_id: s.event.node_id.clone(),
        event_type: s.event.event_type.clone(),
        summary: s.event.summary(),
        lamport_clock: s.event.lamport_clock,
    }
}

/// The server's batch limits; a server without the health endpoint gets the protocol's.
fn limits(session: &Session) -> Result<Limits, Stop> {
    let default = Limits {
        max_events_per_batch: 1000,
        max_decompressed_bytes: None,
    };
    let mut last = String::new();
    for attempt in 1..=2 {
        match session.http.health() {
            Reply::Ok(l) => return Ok(l),
            Reply::Transient {
                reason,
                retry_after,
            } => {
                last = reason;
                if attempt == 1 {
                    std::thread::sleep(push::backoff(1, retry_after.map(|s| s.min(2))));
                }
            }
            // 404 from an older server, or anything else: the protocol's defaults.
            _ => return Ok(default),
        }
    }
    Err(Stop::Unreachable { reason: last })
}
