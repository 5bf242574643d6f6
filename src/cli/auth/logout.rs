//! `spec-kitty auth logout`.

use std::process::ExitCode;

use clap::Args;

use crate::cli::print_json;
use crate::sync::credentials::CredentialStore;
use crate::sync::session::{logout, server_url};
use crate::sync::{ClientConfig, SyncError};

/// Log out: revoke the session on the server (best effort, 5 s) and delete the local
/// credentials (always, whether or not the server could be reached).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  spec-kitty auth logout\n  spec-kitty auth logout --json")]
pub struct LogoutArgs {
    /// Print {server_url, had_credentials, revoked_on_server}.
    #[arg(long)]
    json: bool,
}

pub fn run(a: LogoutArgs) -> miette::Result<ExitCode> {
    let config = ClientConfig::load()?;
    let url = server_url(&config)?;
    let store = CredentialStore::from_env().map_err(SyncError::from)?;
    let out = logout(&store, &url)?;
    if a.json {
        print_json(&serde_json::json!({
            "server_url": url,
            "had_credentials": out.had_credentials,
            "revoked_on_server": out.revoked_on_server,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if !out.had_credentials {
        crate::outln!("Not logged in to {url}; nothing to do.");
    } else if out.revoked_on_server {
        crate::outln!(
            "✅ Logged out of {url} (session revoked on the server, local credentials deleted)"
        );
    } else {
        crate::outln!(
            "✅ Logged out of {url} (local credentials deleted; the server could not confirm the \
             revocation, the session expires on its own)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
