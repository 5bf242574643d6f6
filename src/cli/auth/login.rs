//! `spec-kitty auth login`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;

use crate::cli::print_json;
use crate::sync::credentials::CredentialStore;
use crate::sync::session::{login, server_url};
use crate::sync::{ClientConfig, SyncError};

/// Log in to the team server and store the session's tokens.
///
/// Prompts for what is missing (the password without echo) when stdin is a terminal; refuses
/// to prompt when it is not. Credentials are stored per server URL (logging in to a second
/// server keeps the first session): the tokens in the OS keyring when one works here (Secret
/// Service, Keychain), else in ~/.spec-kitty/credentials with mode 0600;
/// SPEC_KITTY_CREDENTIAL_STORE=file|keyring picks one. Tokens never appear in output, logs or
/// git objects.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty auth login\n  \
    spec-kitty auth login -u alice@example.com\n  \
    printf '%s\\n' \"$PASSWORD\" | spec-kitty auth login -u alice@example.com --password-stdin\n  \
    spec-kitty auth login --force        # replace the current session")]
pub struct LoginArgs {
    /// Your username (usually your email).
    #[arg(short, long)]
    username: Option<String>,
    /// The password on the command line (accepted for compatibility: it lands in shell
    /// history and process lists; prefer the prompt or --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    password_stdin: bool,
    /// Log in again even when already logged in.
    #[arg(short, long)]
    force: bool,
    /// Print {username, team, server_url, credential_store}.
    #[arg(long)]
    json: bool,
}

pub fn run(a: LoginArgs) -> miette::Result<ExitCode> {
    let config = ClientConfig::load()?;
    let url = server_url(&config)?;
    let store = CredentialStore::from_env().map_err(SyncError::from)?;
    if !a.force
        && let Some(c) = store.identity(&url).map_err(SyncError::from)?
    {
        return Err(SyncError::AlreadyLoggedIn {
            server: url,
            username: c.username,
        }
        .into());
    }
    if a.password.is_some() {
        eprintln!(
            "warning: a password given with -p lands in your shell history and in process \
             lists; prefer the prompt or --password-stdin"
        );
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match a.username {
        Some(u) => u,
        None if interactive => prompt_line("Username: ")?,
        None => {
            return Err(SyncError::NoTerminal {
                what: "the username prompt",
            }
            .into());
        }
    };
    let password = match (a.password, a.password_stdin) {
        (Some(p), _) => p,
        (None, true) => read_stdin_line()?,
        (None, false) if interactive => {
            rpassword::prompt_password("Password: ").map_err(|e| SyncError::Input(e.to_string()))?
        }
        (None, false) => {
            return Err(SyncError::NoTerminal {
                what: "the password prompt",
            }
            .into());
        }
    };
    if !a.json {
        crate::outln!("Authenticating with {url}...");
    }
    let creds = login(&store, &url, &username, &password)?;
    if a.json {
        print_json(&serde_json::json!({
            "username": creds.username,
            "team": creds.team_slug,
            "server_url": creds.server_url,
            "credential_store": store.describe(&url),
        }))?;
    } else {
        crate::outln!("✅ Login successful!");
        crate::outln!("   Logged in as: {}", creds.username);
        crate::outln!("   Team:         {}", creds.team_slug);
        crate::outln!("   Server:       {}", creds.server_url);
        crate::outln!("   Credentials:  {}", store.describe(&url));
    }
    Ok(ExitCode::SUCCESS)
}

fn prompt_line(prompt: &str) -> miette::Result<String> {
    crate::out!("{prompt}");
    let _ = std::io::stdout().flush();
    read_stdin_line()
}

fn read_stdin_line() -> miette::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| SyncError::Input(e.to_string()))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
