//! The client configuration file, `~/.spec-kitty/config.toml` (`SPEC_KITTY_HOME` overrides
//! `~/.spec-kitty`).
//!
//! The server URL is read from `[sync] server_url`, else from `[server] url` (the form the
//! Python tool's tutorial shows), and `SPEC_KITTY_SERVER_URL` overrides both for one process.
//! [`set_server_url`] edits the file in place (toml_edit), keeping every other key and comment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::Diagnostic;
use serde::{Deserialize, Serialize};

use crate::store::DEFAULT_QUEUE_LIMIT;

/// Where the server URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UrlSource {
    /// `SPEC_KITTY_SERVER_URL`.
    Env,
    /// `[sync] server_url`.
    SyncServerUrl,
    /// `[server] url`.
    ServerUrl,
}

impl UrlSource {
    pub fn describe(self) -> &'static str {
        match self {
            UrlSource::Env => "SPEC_KITTY_SERVER_URL",
            UrlSource::SyncServerUrl => "[sync] server_url",
            UrlSource::ServerUrl => "[server] url",
        }
    }
}

/// What the client reads from its configuration file and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The file the settings came from (it may not exist).
    pub path: PathBuf,
    /// The server URL, normalised (no trailing slash).
    pub server_url: Option<String>,
    pub url_source: Option<UrlSource>,
    /// Set when the file has both `[sync] server_url` and `[server] url` (the first wins).
    pub shadowed_server_url: Option<String>,
    pub queue_limit: u64,
    /// Total deadline of one `sync now`, in seconds (`[sync] deadline_secs`).
    pub sync_deadline_secs: u64,
    /// Whether emitting commands start the live-sync daemon (`[sync] background`).
    pub background: Background,
    /// The live-sync daemon's intervals (`[sync] daemon_*`; docs/how-to/run-sync-daemon.md).
    pub daemon: DaemonSettings,
}

/// `[sync] background`: `"auto"` (default) starts the daemon from the emit path when logged
/// in; `"off"` never does. `SPEC_KITTY_SYNC_BACKGROUND` overrides it for one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Background {
    Auto,
    Off,
}

/// The live-sync daemon's timings. The defaults are the protocol's; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DaemonSettings {
    /// Exit after this long without an event sent or received (`daemon_idle_exit`, 30 min).
    pub idle_exit: Duration,
    /// Reconnect delay `min(base·2^n, max)` (`daemon_reconnect_base` 0.5 s,
    /// `daemon_reconnect_max` 30 s) plus up to `daemon_reconnect_jitter` (1 s).
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    pub reconnect_jitter: Duration,
    /// Attempts before `Offline-BatchMode` (`daemon_reconnect_attempts`, 10).
    pub reconnect_attempts: u32,
    /// At most one batch per this interval while connected (`daemon_batch_interval`, 5 s).
    pub batch_interval: Duration,
    /// A batch attempt per this interval in `Offline-BatchMode` (`daemon_offline_batch_interval`, 30 s).
    pub offline_batch_interval: Duration,
    /// How long the daemon may take to flush on SIGTERM (`daemon_flush_timeout`, 5 s).
    pub flush_timeout: Duration,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            idle_exit: Duration::from_secs(30 * 60),
            reconnect_base: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            reconnect_jitter: Duration::from_secs(1),
            reconnect_attempts: 10,
            batch_interval: Duration::from_secs(5),
            offline_batch_interval: Duration::from_secs(30),
            flush_timeout: Duration::from_secs(5),
        }
    }
}

/// The default total deadline of one `sync now`.
pub const DEFAULT_SYNC_DEADLINE_SECS: u64 = 300;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConfigError {
    #[error("{}: {message}", path.display())]
    #[diagnostic(
        code(spec_kitty::config::invalid),
        help(
            "fix the file (see docs/reference/configuration.md), or remove it to use the defaults"
        )
    )]
    Invalid { path: PathBuf, message: String },

    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(code(spec_kitty::config::io), help("check the file's permissions"))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot write {}: {source}", path.display())]
    #[diagnostic(
        code(spec_kitty::config::write),
        help("check that you may write to the directory (SPEC_KITTY_HOME relocates it)")
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("invalid server URL '{url}': {reason}")]
    #[diagnostic(
        code(spec_kitty::config::bad_url),
        help(
            "give the server's base URL, e.g. `spec-kitty sync server https://kitty.example.com` \
             (http:// only for 127.0.0.1, ::1 or localhost)"
        )
    )]
    BadUrl { url: String, reason: String },
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    sync: SyncSection,
    #[serde(default)]
    server: ServerSection,
}

#[derive(Debug, Default, Deserialize)]
struct SyncSection {
    server_url: Option<String>,
    queue_limit: Option<i64>,
    deadline_secs: Option<i64>,
    background: Option<String>,
    daemon_idle_exit: Option<toml::Value>,
    daemon_reconnect_base: Option<toml::Value>,
    daemon_reconnect_max: Option<toml::Value>,
    daemon_reconnect_jitter: Option<toml::Value>,
    daemon_reconnect_attempts: Option<i64>,
    daemon_batch_interval: Option<toml::Value>,
    daemon_offline_batch_interval: Option<toml::Value>,
    daemon_flush_timeout: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ServerSection {
    url: Option<String>,
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

/// Creates [`spec_kitty_home`] (mode 0700 on Unix) if it is missing, and returns it.
pub fn ensure_home() -> Result<PathBuf, std::io::Error> {
    let dir = spec_kitty_home();
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(&dir)?;
    }
    Ok(dir)
}

fn env_url() -> Option<String> {
    std::env::var("SPEC_KITTY_SERVER_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

impl ClientConfig {
    /// Loads `config.toml` from [`spec_kitty_home`], applying `SPEC_KITTY_SERVER_URL`.
    pub fn load() -> Result<ClientConfig, ConfigError> {
        Self::load_from(&spec_kitty_home().join("config.toml"))
    }

    /// The defaults, used when the file cannot be read and a caller must carry on.
    pub fn defaults() -> ClientConfig {
        let server_url = env_url().map(|u| normalise(&u));
        ClientConfig {
            path: spec_kitty_home().join("config.toml"),
            url_source: server_url.as_ref().map(|_| UrlSource::Env),
            server_url,
            shadowed_server_url: None,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            sync_deadline_secs: DEFAULT_SYNC_DEADLINE_SECS,
            background: env_background().unwrap_or(Background::Auto),
            daemon: DaemonSettings::default(),
        }
    }

    pub fn load_from(path: &Path) -> Result<ClientConfig, ConfigError> {
        let text = read_or_empty(path)?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let file: File = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let positive = |key: &str, v: Option<i64>, default: u64| match v {
            None => Ok(default),
            Some(n) if n >= 1 => Ok(n as u64),
            Some(n) => Err(invalid(format!(
                "[sync] {key} must be a positive integer, found {n}"
            ))),
        };
        let queue_limit = positive("queue_limit", file.sync.queue_limit, DEFAULT_QUEUE_LIMIT)?;
        let sync_deadline_secs = positive(
            "deadline_secs",
            file.sync.deadline_secs,
            DEFAULT_SYNC_DEADLINE_SECS,
        )?;
        let background = match (env_background(), file.sync.background.as_deref()) {
            (Some(b), _) => b,
            (None, None | Some("auto")) => Background::Auto,
            (None, Some("off")) => Background::Off,
            (None, Some(other)) => {
                return Err(invalid(format!(
                    "[sync] background must be \"auto\" or \"off\", found \"{other}\""
                )));
            }
        };
        let daemon = daemon_settings(&file.sync).map_err(invalid)?;
        let (server_url, url_source) = match (env_url(), &file.sync.server_url, &file.server.url) {
            (Some(u), _, _) => (Some(u), Some(UrlSource::Env)),
            (None, Some(u), _) => (Some(u.clone()), Some(UrlSource::SyncServerUrl)),
            (None, None, Some(u)) => (Some(u.clone()), Some(UrlSource::ServerUrl)),
            (None, None, None) => (None, None),
        };
        let shadowed_server_url = match (&file.sync.server_url, &file.server.url) {
            (Some(_), Some(alias)) => Some(normalise(alias)),
            _ => None,
        };
        Ok(ClientConfig {
            path: path.to_path_buf(),
            server_url: server_url.map(|u| normalise(&u)),
            url_source,
            shadowed_server_url,
            queue_limit,
            sync_deadline_secs,
            background,
            daemon,
        })
    }
}

fn env_background() -> Option<Background> {
    match std::env::var("SPEC_KITTY_SYNC_BACKGROUND").ok()?.as_str() {
        "off" => Some(Background::Off),
        "auto" => Some(Background::Auto),
        _ => None,
    }
}

fn daemon_settings(s: &SyncSection) -> Result<DaemonSettings, String> {
    let d = DaemonSettings::default();
    let dur = |key: &str, v: &Option<toml::Value>, default: Duration| {
        match v {
        None => Ok(default),
        Some(v) => parse_duration(v).ok_or_else(|| {
            format!("[sync] {key} must be seconds or a duration like \"500ms\", \"5s\", \"30m\", found {v}")
        }),
    }
    };
    let attempts = match s.daemon_reconnect_attempts {
        None => d.reconnect_attempts,
        Some(n) if (1..=1000).contains(&n) => n as u32,
        Some(n) => {
            return Err(format!(
                "[sync] daemon_reconnect_attempts must be between 1 and 1000, found {n}"
            ));
        }
    };
    Ok(DaemonSettings {
        idle_exit: dur("daemon_idle_exit", &s.daemon_idle_exit, d.idle_exit)?,
        reconnect_base: dur(
            "daemon_reconnect_base",
            &s.daemon_reconnect_base,
            d.reconnect_base,
        )?,
        reconnect_max: dur(
            "daemon_reconnect_max",
            &s.daemon_reconnect_max,
            d.reconnect_max,
        )?,
        reconnect_jitter: dur(
            "daemon_reconnect_jitter",
            &s.daemon_reconnect_jitter,
            d.reconnect_jitter,
        )?,
        reconnect_attempts: attempts,
        batch_interval: dur(
            "daemon_batch_interval",
            &s.daemon_batch_interval,
            d.batch_interval,
        )?,
        offline_batch_interval: dur(
            "daemon_offline_batch_interval",
            &s.daemon_offline_batch_interval,
            d.offline_batch_interval,
        )?,
        flush_timeout: dur(
            "daemon_flush_timeout",
            &s.daemon_flush_timeout,
            d.flush_timeout,
        )?,
    })
}

/// A duration from a TOML value: an integer number of seconds, or a string `500ms`, `5s`,
/// `30m`, `2h`.
pub fn parse_duration(v: &toml::Value) -> Option<Duration> {
    match v {
        toml::Value::Integer(n) if *n >= 0 => Some(Duration::from_secs(*n as u64)),
        toml::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num.parse().ok()?;
            match unit.trim() {
                "ms" => Some(Duration::from_millis(n)),
                "" | "s" => Some(Duration::from_secs(n)),
                "m" | "min" => Some(Duration::from_secs(n * 60)),
                "h" => Some(Duration::from_secs(n * 3600)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The URL without trailing slashes (so `https://h/` and `https://h` are one server).
pub fn normalise(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

/// Checks a server URL: `https://`, or `http://` on a loopback host only. Returns it normalised.
pub fn validate_server_url(url: &str) -> Result<String, ConfigError> {
    let bad = |reason: &str| ConfigError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
    let host = parsed.host_str().ok_or_else(|| bad("it has no host"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(bad(
                "http:// is only allowed for a loopback host; use https://",
            ));
        }
        other => return Err(bad(&format!("the scheme must be https, not {other}"))),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a server URL has no query or fragment"));
    }
    Ok(normalise(url))
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
}

/// The file's text, or empty when it does not exist (a missing config means the defaults).
fn read_or_empty(path: &Path) -> Result<String, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Sets `[sync] server_url` in `path`, keeping every other key and comment, creating the
/// directory (0700) and the file if needed. Written atomically (temp file + rename).
pub fn set_server_url(path: &Path, url: &str) -> Result<String, ConfigError> {
    let url = validate_server_url(url)?;
    let text = read_or_empty(path)?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Invalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
    if !doc.contains_table("sync") {
        doc["sync"] = toml_edit::table();
    }
    doc["sync"]["server_url"] = toml_edit::value(url.clone());
    let write_err = |source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        if dir == spec_kitty_home() {
            ensure_home().map_err(write_err)?;
        } else {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
    }
    write_atomically(path, doc.to_string().as_bytes(), None).map_err(write_err)?;
    Ok(url)
}

/// Writes `bytes` to `path` through a temp file in the same directory and a rename, so a reader
/// sees the old file or the new one, never half of one. `mode` sets Unix permissions first.
pub(crate) fn write_atomically(
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
) -> Result<(), std::io::Error> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_durations_are_seconds_or_suffixed_strings() {
        let v = |s: &str| parse_duration(&toml::Value::String(s.into()));
        assert_eq!(v("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(v("5s"), Some(Duration::from_secs(5)));
        assert_eq!(v("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(v("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(v("soon"), None);
        assert_eq!(
            parse_duration(&toml::Value::Integer(7)),
            Some(Duration::from_secs(7))
        );
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, "[sync]\nbackground = \"sometimes\"\n").unwrap();
        if std::env::var_os("SPEC_KITTY_SYNC_BACKGROUND").is_none() {
            assert!(ClientConfig::load_from(&path).is_err());
        }
        std::fs::write(&path, "[sync]\ndaemon_idle_exit = \"2s\"\n").unwrap();
        let c = ClientConfig::load_from(&path).unwrap();
        assert_eq!(c.daemon.idle_exit, Duration::from_secs(2));
    }

    #[test]
    fn urls_need_https_except_on_loopback() {
        assert_eq!(
            validate_server_url("https://kitty.example.com/").unwrap(),
            "https://kitty.example.com"
        );
        assert!(validate_server_url("http://127.0.0.1:8080").is_ok());
        assert!(validate_server_url("http://localhost:1").is_ok());
        assert!(validate_server_url("http://[::1]:1").is_ok());
        assert!(validate_server_url("http://kitty.example.com").is_err());
        assert!(validate_server_url("ftp://kitty.example.com").is_err());
        assert!(validate_server_url("kitty").is_err());
    }

    #[test]
    fn setting_the_url_keeps_other_keys_and_comments() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(
            &path,
            "# my settings\n[sync]\nqueue_limit = 5 # small\n\n[other]\nkeep = true\n",
        )
        .unwrap();
        set_server_url(&path, "https://kitty.example.com/").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# my settings"), "{text}");
        assert!(text.contains("queue_limit = 5 # small"), "{text}");
        assert!(text.contains("keep = true"), "{text}");
        assert!(
            text.contains("server_url = \"https://kitty.example.com\""),
            "{text}"
        );
    }

    #[test]
    fn the_server_url_alias_is_read_and_sync_server_url_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, "[server]\nurl = \"https://alias.example.com\"\n").unwrap();
        let c = ClientConfig::load_from(&path).unwrap();
        if c.url_source != Some(UrlSource::Env) {
            assert_eq!(c.server_url.as_deref(), Some("https://alias.example.com"));
            assert_eq!(c.url_source, Some(UrlSource::ServerUrl));
        }
        std::fs::write(
            &path,
            "[server]\nurl = \"https://alias.example.com\"\n[sync]\nserver_url = \"https://main.example.com\"\n",
        )
        .unwrap();
        let c = ClientConfig::load_from(&path).unwrap();
        assert_eq!(
            c.shadowed_server_url.as_deref(),
            Some("https://alias.example.com")
        );
        if c.url_source != Some(UrlSource::Env) {
            assert_eq!(c.server_url.as_deref(), Some("https://main.example.com"));
        }
    }
}
