//! `spec-kitty sync server [URL]`: show or set the team server.

use std::process::ExitCode;

use clap::Args;

use crate::cli::print_json;
use crate::sync::ClientConfig;
use crate::sync::config::set_server_url;

/// Show or set the team server URL (`[sync] server_url` in ~/.spec-kitty/config.toml).
///
/// With a URL, validates it (https://, or http:// only for 127.0.0.1, ::1 and localhost) and
/// writes it into the file, keeping every other key and comment; the directory is created
/// with mode 0700. Without one, prints the URL in use and where it came from.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty sync server https://kitty.example.com\n  \
    spec-kitty sync server            # show it\n  \
    spec-kitty sync server --json")]
pub struct ServerArgs {
    /// The server's base URL.
    url: Option<String>,
    /// Print {server_url, source, config_file}.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ServerArgs) -> miette::Result<ExitCode> {
    let config = ClientConfig::load()?;
    if let Some(url) = a.url {
        let url = set_server_url(&config.path, &url)?;
        if a.json {
            print_json(&serde_json::json!({
                "server_url": url,
                "source": "sync_server_url",
                "config_file": config.path,
            }))?;
        } else {
            crate::outln!("Server URL set to {url} in {}", config.path.display());
            if std::env::var_os("SPEC_KITTY_SERVER_URL").is_some_and(|v| !v.is_empty()) {
                eprintln!("note: SPEC_KITTY_SERVER_URL is set and overrides it in this shell");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.json {
        print_json(&serde_json::json!({
            "server_url": config.server_url,
            "source": config.url_source,
            "config_file": config.path,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    match (&config.server_url, config.url_source) {
        (Some(url), Some(source)) => {
            crate::outln!("{url}  (from {})", source.describe());
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            crate::outln!("No server configured. Set one with `spec-kitty sync server <URL>`.");
            Ok(ExitCode::from(1))
        }
    }
}
