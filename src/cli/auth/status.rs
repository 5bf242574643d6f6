//! `spec-kitty auth status`.

use std::process::ExitCode;

use clap::Args;

use crate::cli::print_json;
use crate::sync::credentials::CredentialStore;
use crate::sync::session::server_url;
use crate::sync::status::auth_summary;
use crate::sync::{ClientConfig, SyncError};

/// Show who you are logged in as on the configured server, and for how long.
///
/// No network: read from the stored credentials. Exit status 0 when logged in (even if the
/// access token has expired: it is refreshed on next use), 1 when not.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  spec-kitty auth status\n  spec-kitty auth status --json")]
pub struct StatusArgs {
    /// Print {logged_in, username, team, server_url, access, refresh, …, store}.
    #[arg(long)]
    json: bool,
}

pub fn run(a: StatusArgs) -> miette::Result<ExitCode> {
    let config = ClientConfig::load()?;
    let url = server_url(&config)?;
    let store = CredentialStore::from_env().map_err(SyncError::from)?;
    let summary = auth_summary(&store, &url)?;
    let logged_in = summary
        .as_ref()
        .is_some_and(|s| s.refresh_remaining_secs > 0);
    if a.json {
        let mut v = serde_json::to_value(&summary)
            .map_err(|e| miette::miette!("cannot serialise output: {e}"))?;
        if v.is_null() {
            v = serde_json::json!({"server_url": url, "store": store.describe(&url)});
        }
        v["logged_in"] = logged_in.into();
        print_json(&v)?;
    } else {
        match &summary {
            Some(s) if logged_in => {
                crate::outln!("✅ Authenticated");
                crate::outln!("   Username: {}", s.username);
                crate::outln!("   Team:     {}", s.team);
                crate::outln!("   Server:   {}", s.server_url);
                crate::outln!("   Access token: {}", s.access);
                crate::outln!("   Refresh token: {}", s.refresh);
                crate::outln!("   Credentials: {}", s.store);
            }
            Some(s) => {
                crate::outln!("❌ Session expired");
                crate::outln!("   Username: {}", s.username);
                crate::outln!("   Server:   {}", s.server_url);
                crate::outln!("   Run `spec-kitty auth login` to log in again.");
            }
            None => {
                crate::outln!("❌ Not authenticated");
                crate::outln!("   Server:   {url}");
                crate::outln!("   Run `spec-kitty auth login` to log in.");
            }
        }
    }
    Ok(if logged_in {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
