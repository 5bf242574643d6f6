//! `spec-kitty sync status`: server, session, pending per chain, last sync, connection.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::cli::print_json;
use crate::store::{EventLog, StoreError};
use crate::sync::ClientConfig;
use crate::sync::status::{SyncStatus, status};

/// Show the sync state: server, login, pending events, last sync, connection.
///
/// Computed from the same refs `sync now` reads (refs/spec-kitty/events/* and
/// refs/spec-kitty/synced/*): there is no second source of truth. Run outside a repository it
/// shows the configuration and login only. `--check` probes the server with your real token
/// (an empty batch upload).
///
/// Exit status: 0; with --check, 0 only when the server answered `Connected`, else 1.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty sync status\n  \
    spec-kitty sync status --check     # Connected / Reachable (auth required) / Unreachable (…)\n  \
    spec-kitty sync status --json")]
pub struct StatusArgs {
    /// Probe the server (Connected, Reachable (auth required), Unreachable (why), Error: …).
    #[arg(short, long)]
    check: bool,
    /// Print the status as JSON (see docs/how-to/sync-to-server.md).
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, a: StatusArgs) -> miette::Result<ExitCode> {
    let config = ClientConfig::load()?;
    let log = match EventLog::discover(dir) {
        Ok(l) => Some(l),
        Err(StoreError::NotARepository { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let s = status(log.as_ref(), &config, a.check)?;
    if a.json {
        print_json(&s)?;
    } else {
        render(&s, log.is_some());
    }
    Ok(if a.check && !s.usable {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn row(label: &str, value: &str) {
    crate::outln!("{label:<14} {value}");
}

fn render(s: &SyncStatus, in_repo: bool) {
    crate::outln!("Spec Kitty Sync Status");
    crate::outln!();
    let url = match (&s.server_url, s.server_url_source) {
        (Some(u), Some(src)) => format!("{u}  (from {})", src.describe()),
        _ => "not configured (set it with `spec-kitty sync server <URL>`)".into(),
    };
    row("Server URL", &url);
    row("Config File", &s.config_file);
    if let Some(alias) = &s.shadowed_server_url {
        row(
            "",
            &format!("note: [sync] server_url wins over [server] url ({alias})"),
        );
    }
    match &s.auth {
        Some(auth) => {
            row("Auth", &format!("{} (team {})", auth.username, auth.team));
            row("Access token", &auth.access);
            row("Refresh token", &auth.refresh);
            row("Credentials", &auth.store);
        }
        None => row("Auth", "not logged in (run `spec-kitty auth login`)"),
    }
    if in_repo {
        row("Pending", &s.pending.to_string());
        for c in &s.chains {
            if c.pending() > 0 {
                row(
                    "",
                    &format!(
                        "chain {}: {} unsent, {} rejected (of {})",
                        c.node_id, c.unsent, c.rejected, c.total
                    ),
                );
            }
        }
        if s.rejected > 0 {
            let first = s.oldest_rejection_error.as_deref().unwrap_or("");
            row(
                "Rejected",
                &format!("{} (oldest error: {first})", s.rejected),
            );
        }
        if let Some(age) = s.oldest_pending_age_secs {
            let more = if s.oldest_pending_age_is_lower_bound {
                "more than "
            } else {
                ""
            };
            row("Oldest pending", &format!("{more}{} ago", human_age(age)));
        }
        match &s.last_sync {
            Some(l) => row(
                "Last sync",
                &format!(
                    "{} ({} acknowledged, {} rejected)",
                    l.time, l.acknowledged, l.rejected
                ),
            ),
            None => row("Last sync", "never"),
        }
    }
    row("Connection", &s.connection);
    if let Some(d) = &s.daemon {
        for (label, value) in super::daemon::daemon_lines(d) {
            row(&label, &value);
        }
    }
}

fn human_age(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else if secs < 86_400 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86_400)
    }
}
