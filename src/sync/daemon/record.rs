//! The daemon's two small files: the owner record (who runs, for whom; written once at start)
//! and the state file (connection state, last send, last error; rewritten on change). Both are
//! JSON, written atomically (temp file + rename), and never hold a token.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::identity::Identity;

/// `daemon.json`: the running daemon and the identity it sends as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub pid: u32,
    /// The process start time in clock ticks since boot (`/proc/<pid>/stat`), so a reused pid
    /// is never mistaken for the daemon.
    pub process_start: Option<u64>,
    pub started_at: String,
    /// The repository root the daemon runs in.
    pub root: String,
    #[serde(flatten)]
    pub identity: Identity,
}

/// The connection states shown to users (PROTOCOL.md), plus the daemon's own start and stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Connection {
    #[default]
    Starting,
    Connected,
    Reconnecting,
    Offline,
    #[serde(rename = "Offline-BatchMode")]
    OfflineBatchMode,
    Stopped,
}

impl Connection {
    pub fn label(self) -> &'static str {
        match self {
            Connection::Starting => "Starting",
            Connection::Connected => "Connected",
            Connection::Reconnecting => "Reconnecting",
            Connection::Offline => "Offline",
            Connection::OfflineBatchMode => "Offline-BatchMode",
            Connection::Stopped => "Stopped",
        }
    }
}

/// `daemon-state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DaemonState {
    pub pid: u32,
    pub connection: Connection,
    /// When the connection state last changed.
    pub since: String,
    pub last_send: Option<String>,
    pub last_receive: Option<String>,
    pub last_error: Option<String>,
    /// Pending events the daemon saw at its last look.
    pub pending_seen: u64,
    /// Events sent over the WebSocket and acknowledged, since start.
    pub sent_live: u64,
    /// Events sent by batch, since start.
    pub sent_batch: u64,
    /// Teammates' events written into their chains, since start.
    pub received_live: u64,
    /// Why the daemon stopped (set on its way out).
    pub stopped: Option<String>,
}

/// Reads a JSON file; `None` when missing or unreadable (a half-written file cannot exist:
/// writes are atomic).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Writes a JSON file atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    crate::sync::config::write_atomically(path, &bytes, Some(0o600))
}
