//! The emit path's side of live sync: wake the daemon, start it when none runs, and read its
//! connection state. No tokio, no TLS, no network: a datagram on a unix socket in the common git
//! dir (a few microseconds), and at most two small file reads when no daemon answers.
//!
//! Spawning happens at most once per dead daemon: the spawner leaves a marker
//! (`daemon.spawn`) that the new daemon removes once it runs. While the marker stays (the daemon
//! could not start, or it stopped itself because the identity no longer matched) the emit path
//! does not spawn again until the configuration or the credentials file changes, or someone runs
//! `spec-kitty sync daemon start`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::paths::DaemonPaths;
use super::process;
use super::record::{Connection, DaemonState, read_json};

/// The one byte a wake-up carries (its content does not matter).
pub const WAKE: &[u8] = b"w";

/// What [`after_emit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Woken {
    /// A running daemon got the datagram.
    Delivered,
    /// No daemon answered and one was started (its pid).
    Spawned(u32),
    /// No daemon answered; none was started (a spawn for this dead daemon was already tried).
    NotRunning,
    /// No daemon answered and starting one failed (why).
    SpawnFailed(String),
}

/// Sends the wake-up datagram; `true` when a daemon is bound to the socket.
pub fn wake(paths: &DaemonPaths) -> bool {
    match UnixDatagram::unbound() {
        Ok(sock) => {
            let _ = sock.set_nonblocking(true);
            match sock.send_to(WAKE, &paths.socket) {
                Ok(_) => true,
                // A full queue means a daemon is there and has wake-ups to read already.
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            }
        }
        Err(_) => false,
    }
}

/// The spawn marker: what the files looked like when a spawn was tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnMarker {
    pub config_mtime: Option<u128>,
    pub credentials_mtime: Option<u128>,
    /// Why no daemon runs, when a daemon left the marker on its way out.
    pub reason: Option<String>,
}

fn mtime(path: &Path) -> Option<u128> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    m.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_nanos())
}

impl SpawnMarker {
    /// The marker for the files as they are now.
    pub fn now(reason: Option<String>) -> SpawnMarker {
        let home = crate::sync::spec_kitty_home();
        SpawnMarker {
            config_mtime: mtime(&home.join("config.toml")),
            credentials_mtime: mtime(&home.join("credentials")),
            reason,
        }
    }

    fn same_files(&self, other: &SpawnMarker) -> bool {
        self.config_mtime == other.config_mtime && self.credentials_mtime == other.credentials_mtime
    }
}

/// Claims the right to spawn: `false` when a spawn was already tried with the files as they
/// are. Concurrent emitters race on `create_new`, so only one of them wins.
fn claim_spawn(paths: &DaemonPaths) -> bool {
    let now = SpawnMarker::now(None);
    if let Some(old) = read_json::<SpawnMarker>(&paths.spawn_marker) {
        if old.same_files(&now) {
            return false;
        }
        let _ = std::fs::remove_file(&paths.spawn_marker);
    } else if paths.spawn_marker.exists() {
        return false;
    }
    if paths.ensure_dir().is_err() {
        return false;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&paths.spawn_marker)
    else {
        return false;
    };
    serde_json::to_writer(file, &now).is_ok()
}

/// After an event was recorded: wake the daemon, or start one when `autostart` (logged in and
/// `[sync] background = "auto"`) and none runs.
pub fn after_emit(common_dir: &Path, root: &Path, autostart: bool) -> Woken {
    let paths = DaemonPaths::new(common_dir);
    if wake(&paths) {
        return Woken::Delivered;
    }
    if !autostart || !claim_spawn(&paths) {
        return Woken::NotRunning;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Woken::SpawnFailed(e.to_string()),
    };
    match process::spawn_detached(&exe, root, &paths.log) {
        Ok(child) => Woken::Spawned(child.id()),
        Err(e) => Woken::SpawnFailed(e.to_string()),
    }
}

/// The connection state to show inline (`[Connected]`, …), from the state file: `None` when no
/// daemon has a live state.
pub fn inline_state(common_dir: &Path) -> Option<Connection> {
    let paths = DaemonPaths::new(common_dir);
    let state: DaemonState = read_json(&paths.state)?;
    if state.connection == Connection::Stopped || !process::alive(state.pid) {
        return Some(Connection::Offline);
    }
    Some(state.connection)
}
