//! `sync status`: everything computed from the same refs `sync now` reads, plus the
//! configuration and the session; `--check` adds one authenticated probe (an empty batch).

use std::time::Duration;

use serde::Serialize;

use super::config::{ClientConfig, UrlSource};
use super::credentials::{CredentialStore, describe_remaining};
use super::error::SyncError;
use super::http::{Http, Reply};
use super::session::Session;
use crate::store::{ChainPending, EventLog, PendingRange};

/// How many commits per chain `sync status` reads back looking for the oldest unsent event.
const OLDEST_WALK: usize = 2_000;

/// The session as `sync status` and `auth status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct AuthSummary {
    pub username: String,
    pub team: String,
    pub server_url: String,
    /// Seconds left (negative once expired).
    pub access_remaining_secs: i64,
    pub refresh_remaining_secs: i64,
    pub access: String,
    pub refresh: String,
    pub store: String,
}

/// The last successful sync, from the newest sync-state commit.
#[derive(Debug, Clone, Serialize)]
pub struct LastSync {
    pub node_id: String,
    pub time: String,
    pub acknowledged: u64,
    pub rejected: u64,
}

/// The `--json` object of `sync status` (docs/how-to/sync-to-server.md).
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    pub server_url: Option<String>,
    pub server_url_source: Option<UrlSource>,
    pub config_file: String,
    /// Set when `[server] url` is also present and loses to `[sync] server_url`.
    pub shadowed_server_url: Option<String>,
    pub auth: Option<AuthSummary>,
    pub chains: Vec<ChainPending>,
    pub pending: u64,
    pub rejected: u64,
    pub oldest_rejection_error: Option<String>,
    /// Timestamp of the oldest unsent event.
    pub oldest_pending_timestamp: Option<String>,
    pub oldest_pending_age_secs: Option<i64>,
    /// Set when the chain was too long to read to its oldest unsent event: the age is then at
    /// least the one given.
    pub oldest_pending_age_is_lower_bound: bool,
    pub last_sync: Option<LastSync>,
    /// `Not checked`, `Connected`, `Reachable (auth required)`, `Unreachable (…)`, `Error: …`.
    pub connection: String,
    /// Whether the server can be used (only meaningful with `--check`).
    pub usable: bool,
    /// The repository's live-sync daemon (running / stale / not running, its connection
    /// state and last error), from its records checked by pid (docs/how-to/run-sync-daemon.md).
    pub daemon: Option<super::daemon::control::DaemonReport>,
    /// With `--check` in a repository: the egress gate's result (foreground identity, daemon
    /// owner record, mismatches, orphans), docs/how-to/run-sync-daemon.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<super::gate::GateReport>,
}

/// The session summary of `url`, if logged in.
pub fn auth_summary(store: &CredentialStore, url: &str) -> Result<Option<AuthSummary>, SyncError> {
    // The tokens themselves, not only the record: an OS keyring can lose them, and an honest
    // status then fails here with the command that fixes it.
    let Some((c, held)) = store.load_held(url)? else {
        return Ok(None);
    };
    let now = chrono::Utc::now().timestamp();
    Ok(Some(AuthSummary {
        username: c.username.clone(),
        team: c.team_slug.clone(),
        server_url: c.server_url.clone(),
        access_remaining_secs: c.access_remaining(now),
        refresh_remaining_secs: c.refresh_remaining(now),
        access: describe_remaining(c.access_remaining(now)),
        refresh: describe_remaining(c.refresh_remaining(now)),
        store: store.describe_held(held),
    }))
}

/// Computes the status; with `check`, probes the server.
pub fn status(
    log: Option<&EventLog>,
    config: &ClientConfig,
    check: bool,
) -> Result<SyncStatus, SyncError> {
    let store = CredentialStore::from_env()?;
    let auth = match &config.server_url {
        Some(url) => auth_summary(&store, url)?,
        None => None,
    };
    let ranges = match log {
        Some(l) => l.pending_ranges()?,
        None => Vec::new(),
    };
    let chains: Vec<ChainPending> = ranges.iter().map(PendingRange::summary).collect();
    let mut status = SyncStatus {
        server_url: config.server_url.clone(),
        server_url_source: config.url_source,
        config_file: config.path.display().to_string(),
        shadowed_server_url: config.shadowed_server_url.clone(),
        auth,
        pending: chains.iter().map(ChainPending::pending).sum(),
        rejected: chains.iter().map(|c| c.rejected).sum(),
        chains,
        oldest_rejection_error: None,
        oldest_pending_timestamp: None,
        oldest_pending_age_secs: None,
        oldest_pending_age_is_lower_bound: false,
        last_sync: None,
        connection: "Not checked (use --check to test)".into(),
        usable: true,
        daemon: log.map(|l| super::daemon::control::report(l.common_dir())),
        preflight: None,
    };
    if let Some(log) = log {
        fill_from_refs(log, &ranges, &mut status)?;
    }
    if check {
        status.preflight = log.map(|l| super::gate::inspect(l, config));
        let (text, usable) = probe(&store, config);
        status.connection = text;
        status.usable = usable;
    }
    Ok(status)
}

fn fill_from_refs(
    log: &EventLog,
    ranges: &[PendingRange],
    status: &mut SyncStatus,
) -> Result<(), SyncError> {
    for r in ranges {
        if let Some(s) = &r.state {
            if let Some(first) = s.record.rejected.first()
                && status.oldest_rejection_error.is_none()
            {
                status.oldest_rejection_error = Some(first.error.clone());
            }
            let newer = status
                .last_sync
                .as_ref()
                .is_none_or(|l| l.time < s.record.time);
            if newer && r.node_id == log.node_id() {
                status.last_sync = Some(LastSync {
                    node_id: r.node_id.clone(),
                    time: s.record.time.clone(),
                    acknowledged: s.record.acknowledged,
                    rejected: s.record.rejected.len() as u64,
                });
            }
        }
    }
    // The oldest unsent event is the one right after the mark of each chain with any. The
    // chain is read back from its tip, at most OLDEST_WALK commits per chain, so the status
    // stays fast with 100,000 pending; past that the age is a lower bound (and says so).
    let mut oldest: Option<String> = None;
    for r in ranges {
        let Some((stored, exact)) = r.oldest_unsent(log, OLDEST_WALK)? else {
            continue;
        };
        if !exact {
            status.oldest_pending_age_is_lower_bound = true;
        }
        let t = stored.event.timestamp;
        if oldest.as_ref().is_none_or(|o| t < *o) {
            oldest = Some(t);
        }
    }
    if let Some(t) = oldest {
        status.oldest_pending_age_secs = chrono::DateTime::parse_from_rfc3339(&t)
            .ok()
            .map(|d| chrono::Utc::now().timestamp() - d.timestamp());
        status.oldest_pending_timestamp = Some(t);
    }
    Ok(())
}

/// The connection state, probing with the real token when logged in.
fn probe(store: &CredentialStore, config: &ClientConfig) -> (String, bool) {
    let Some(url) = config.server_url.as_deref() else {
        return ("Unreachable (no server configured)".into(), false);
    };
    let timeout = Duration::from_secs(10);
    let reply = match Session::open(store.clone(), url, timeout) {
        Ok(mut s) => match s.access() {
            Ok(token) => match s.http.probe(Some(&token)) {
                Reply::Unauthorized => match s.after_unauthorized() {
                    Ok(token) => s.http.probe(Some(&token)),
                    Err(_) => Reply::Unauthorized,
                },
                other => other,
            },
            Err(SyncError::Unreachable { reason, .. }) => Reply::Transient {
                reason,
                retry_after: None,
            },
            Err(_) => Reply::Unauthorized,
        },
        Err(_) => match Http::new(url, timeout) {
            Ok(h) => h.probe(None),
            Err(e) => Reply::Transient {
                reason: e.to_string(),
                retry_after: None,
            },
        },
    };
    match reply {
        Reply::Ok(()) => ("Connected".into(), true),
        Reply::Unauthorized => ("Reachable (auth required)".into(), false),
        Reply::Transient { reason, .. } if reason.starts_with("5") || reason.starts_with("429") => {
            (format!("Error: {reason}"), false)
        }
        Reply::Transient { reason, .. } => (format!("Unreachable ({reason})"), false),
        Reply::TooLarge => ("Error: 413 Payload Too Large".into(), false),
        Reply::Failed { status, message } => (format!("Error: {status} {message}"), false),
    }
}
