//! The one egress gate: every path that sends events off the machine (`sync now`, the daemon's
//! live sends and batches) asks [`clear_to_send`] first. It runs the preflight (server, login,
//! project, every chain's sync state recorded for this server and team) and compares the
//! foreground identity (server URL, user, team, project uuid, node id, binary version and path)
//! with the running daemon's owner record. The inventory of egress paths is in docs/how-to/run-sync-daemon.md;
//! `tests/sync_daemon_egress.rs` fails when a new one appears.

use serde::Serialize;

use super::config::ClientConfig;
use super::daemon::control::{self, Liveness};
use super::daemon::identity::{Identity, Mismatch};
use super::daemon::record::OwnerRecord;
use super::error::SyncError;
use super::preflight::{Cleared, preflight};
use crate::store::EventLog;

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender<'a> {
    /// A foreground command (`sync now`): compared with the running daemon's record, if any.
    Foreground,
    /// The daemon itself, running as this identity (its own binary is not compared: the
    /// foreground identity it computes is its own process's).
    Daemon(&'a Identity),
}

/// Runs the gate; `Ok` carries what the preflight established.
pub fn clear_to_send(
    log: &EventLog,
    config: &ClientConfig,
    sender: Sender<'_>,
) -> Result<Cleared, SyncError> {
    let cleared = preflight(log, config)?;
    let foreground = Identity::of(log.node_id(), &cleared);
    let (daemon, skip_binary) = match sender {
        Sender::Daemon(identity) => (Some(identity.clone()), true),
        Sender::Foreground => (running_owner(log).map(|o| o.identity), false),
    };
    if let Some(daemon) = daemon {
        let mismatches: Vec<Mismatch> = foreground
            .mismatches(&daemon)
            .into_iter()
            .filter(|m| !(skip_binary && matches!(m.field, "binary" | "version")))
            .collect();
        if !mismatches.is_empty() {
            return Err(SyncError::IdentityMismatch {
                fields: describe(&mismatches),
            });
        }
    }
    Ok(cleared)
}

fn running_owner(log: &EventLog) -> Option<OwnerRecord> {
    let r = control::report(log.common_dir());
    (r.status == Liveness::Running).then_some(r.owner).flatten()
}

/// One line per field: `team: you acme, daemon beta` (at most 7 lines).
fn describe(mismatches: &[Mismatch]) -> String {
    mismatches
        .iter()
        .map(|m| format!("  {}: you {}, daemon {}", m.field, m.foreground, m.daemon))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The gate's result as `sync status --check --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// `null` when the preflight itself fails (`error` says why).
    pub foreground: Option<Identity>,
    pub daemon: Option<OwnerRecord>,
    pub mismatches: Vec<Mismatch>,
    /// Records of a daemon that is gone (`spec-kitty sync daemon clean` removes them).
    pub orphans: Vec<String>,
    pub error: Option<String>,
    /// Whether `sync now` would be let through.
    pub clear: bool,
}

/// Inspects the gate without sending anything.
pub fn inspect(log: &EventLog, config: &ClientConfig) -> GateReport {
    let report = control::report(log.common_dir());
    let orphans = match (report.status, &report.owner) {
        (Liveness::Stale, Some(o)) => vec![format!(
            "owner record of pid {} (started {}) whose process is gone",
            o.pid, o.started_at
        )],
        _ => Vec::new(),
    };
    let daemon = (report.status == Liveness::Running)
        .then_some(report.owner)
        .flatten();
    match preflight(log, config) {
        Ok(cleared) => {
            let foreground = Identity::of(log.node_id(), &cleared);
            let mismatches = daemon
                .as_ref()
                .map(|d| foreground.mismatches(&d.identity))
                .unwrap_or_default();
            GateReport {
                clear: mismatches.is_empty(),
                foreground: Some(foreground),
                daemon,
                mismatches,
                orphans,
                error: None,
            }
        }
        Err(e) => GateReport {
            foreground: None,
            daemon,
            mismatches: Vec::new(),
            orphans,
            error: Some(e.to_string()),
            clear: false,
        },
    }
}
