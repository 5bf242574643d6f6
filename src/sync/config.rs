//! The client configuration file, `~/.spec-kitty/config.toml` (`SPEC_KITTY_HOME` overrides
//! `~/.spec-kitty`).

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use serde::Deserialize;

use crate::store::DEFAULT_QUEUE_LIMIT;

/// What the client reads from its configuration file and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The file the settings came from (it may not exist).
    pub path: PathBuf,
    pub server_url: Option<String>,
    pub queue_limit: u64,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConfigError {
    #[error("{}: {message}", path.display())]
    #[diagnostic(
        code(spec_kitty::config::invalid),
        help("fix the file (see docs/configuration.md), or remove it to use the defaults")
    )]
    Invalid { path: PathBuf, message: String },

    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(code(spec_kitty::config::io), help("check the file's permissions"))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    sync: SyncSection,
}

#[derive(Debug, Default, Deserialize)]
struct SyncSection {
    server_url: Option<String>,
    queue_limit: Option<i64>,
}

/// The directory holding the client's configuration and credential files.
pub fn spec_kitty_home() -> PathBuf {
    if let Some(dir) = std::env::var_os("SPEC_KITTY_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .or_else(dirs::home_dir)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".spec-kitty")
}

impl ClientConfig {
    /// Loads `config.toml` from [`spec_kitty_home`], applying `SPEC_KITTY_SERVER_URL`.
    pub fn load() -> Result<ClientConfig, ConfigError> {
        Self::load_from(&spec_kitty_home().join("config.toml"))
    }

    /// The defaults, used when the file cannot be read and a caller must carry on.
    pub fn defaults() -> ClientConfig {
        ClientConfig {
            path: spec_kitty_home().join("config.toml"),
            server_url: std::env::var("SPEC_KITTY_SERVER_URL")
                .ok()
                .filter(|s| !s.is_empty()),
            queue_limit: DEFAULT_QUEUE_LIMIT,
        }
    }

    pub fn load_from(path: &Path) -> Result<ClientConfig, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let file: File = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let queue_limit = match file.sync.queue_limit {
            None => DEFAULT_QUEUE_LIMIT,
            Some(n) if n >= 1 => n as u64,
            Some(n) => {
                return Err(invalid(format!(
                    "[sync] queue_limit must be a positive integer, found {n}"
                )));
            }
        };
        let server_url = std::env::var("SPEC_KITTY_SERVER_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .or(file.sync.server_url);
        Ok(ClientConfig {
            path: path.to_path_buf(),
            server_url,
            queue_limit,
        })
    }
}
