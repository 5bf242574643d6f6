//! `sync daemon start | stop | status | clean`: the foreground's view of a repository's daemon,
//! read from its owner record and state file and checked against the process table by pid.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::DaemonError;
use super::paths::DaemonPaths;
use super::process;
use super::record::{DaemonState, OwnerRecord, read_json};

/// Whether a daemon runs, as `sync daemon status` and `sync status` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// The recorded pid is alive and is our daemon.
    Running,
    /// A record exists but its process is gone (or the pid now belongs to another process).
    Stale,
    NotRunning,
}

/// The `--json` object of `sync daemon status`.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonReport {
    pub status: Liveness,
    /// `Connected`, `Reconnecting`, `Offline`, `Offline-BatchMode`, …; `Offline` when stale.
    pub connection: Option<String>,
    pub owner: Option<OwnerRecord>,
    pub state: Option<DaemonState>,
    /// When the stale record was written (its daemon's start).
    pub stale_since: Option<String>,
    pub log: String,
    pub socket: String,
}

/// Reads the records of the daemon of the repository at `common_dir`.
pub fn report(common_dir: &Path) -> DaemonReport {
    let paths = DaemonPaths::new(common_dir);
    let owner: Option<OwnerRecord> = read_json(&paths.owner);
    let state: Option<DaemonState> = read_json(&paths.state);
    let status = match &owner {
        Some(o) if process::is_daemon(o.pid, o.process_start) => Liveness::Running,
        Some(_) => Liveness::Stale,
        None => Liveness::NotRunning,
    };
    let connection = match (status, &state) {
        (Liveness::Running, Some(s)) => Some(s.connection.label().to_owned()),
        (Liveness::Running, None) => Some("Starting".into()),
        (Liveness::Stale, _) => Some("Offline".into()),
        (Liveness::NotRunning, _) => None,
    };
    DaemonReport {
        status,
        connection,
        stale_since: (status == Liveness::Stale)
            .then(|| owner.as_ref().map(|o| o.started_at.clone()))
            .flatten(),
        owner,
        state,
        log: paths.log.display().to_string(),
        socket: paths.socket.display().to_string(),
    }
}

/// What `start` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Started {
    AlreadyRunning { pid: u32 },
    Started { pid: u32 },
}

/// Starts the daemon of the repository at `root` unless one runs; waits (bounded) until it has
/// written its owner record, or reports why it exited.
pub fn start(common_dir: &Path, root: &Path, wait: Duration) -> Result<Started, DaemonError> {
    let before = report(common_dir);
    if let (Liveness::Running, Some(o)) = (before.status, &before.owner) {
        return Ok(Started::AlreadyRunning { pid: o.pid });
    }
    let paths = DaemonPaths::new(common_dir);
    clean(common_dir);
    let _ = std::fs::remove_file(&paths.spawn_marker);
    let exe = std::env::current_exe().map_err(|e| DaemonError::Spawn(e.to_string()))?;
    let mut child = process::spawn_detached(&exe, root, &paths.log)
        .map_err(|e| DaemonError::Spawn(e.to_string()))?;
    let pid = child.id();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Some(o) = read_json::<OwnerRecord>(&paths.owner)
            && process::is_daemon(o.pid, o.process_start)
        {
            return Ok(if o.pid == pid {
                Started::Started { pid }
            } else {
                Started::AlreadyRunning { pid: o.pid }
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            let why = read_json::<DaemonState>(&paths.state)
                .filter(|s| s.pid == pid)
                .and_then(|s| s.stopped.or(s.last_error))
                .unwrap_or_else(|| format!("it exited with {status}"));
            return Err(DaemonError::Exited { why });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(DaemonError::Exited {
        why: format!("it did not report ready within {} s", wait.as_secs()),
    })
}

/// What `stop` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Stopped {
    Stopped {
        pid: u32,
    },
    /// It did not exit within the flush time plus a margin and was killed.
    Killed {
        pid: u32,
    },
    NotRunning,
}

/// Stops the daemon: SIGTERM, then waits for it to flush and exit (`flush` plus a margin),
/// then SIGKILL. Only ever signals a pid verified to be our daemon.
pub fn stop(common_dir: &Path, flush: Duration) -> Stopped {
    let r = report(common_dir);
    let Some(owner) = r.owner.filter(|_| r.status == Liveness::Running) else {
        clean(common_dir);
        return Stopped::NotRunning;
    };
    let pid = owner.pid;
    process::signal(pid, false);
    let deadline = Instant::now() + flush + Duration::from_secs(3);
    while Instant::now() < deadline {
        if !process::is_daemon(pid, owner.process_start) {
            clean(common_dir);
            return Stopped::Stopped { pid };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if process::is_daemon(pid, owner.process_start) {
        process::signal(pid, true);
    }
    clean(common_dir);
    Stopped::Killed { pid }
}

/// What `clean` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cleaned {
    /// Files removed.
    pub removed: Vec<String>,
    /// Why the record was an orphan (`pid 123 is dead`, `binary … is gone`, …).
    pub reason: Option<String>,
}

/// Removes orphan records: an owner record whose pid is dead or is not our daemon, or whose
/// binary is gone. Never kills anything; leaves a live daemon's records alone.
pub fn clean(common_dir: &Path) -> Cleaned {
    let paths = DaemonPaths::new(common_dir);
    let mut out = Cleaned::default();
    let Some(owner) = read_json::<OwnerRecord>(&paths.owner) else {
        if paths.owner.exists() {
            out.reason = Some("the owner record is unreadable".into());
            remove(&paths.owner, &mut out);
        }
        return out;
    };
    let binary_gone = !Path::new(&owner.identity.binary).exists();
    let ours = process::is_daemon(owner.pid, owner.process_start);
    if ours && !binary_gone {
        return out;
    }
    out.reason = Some(if !process::alive(owner.pid) {
        format!("pid {} is dead", owner.pid)
    } else if !ours {
        format!("pid {} is another process now (not killed)", owner.pid)
    } else {
        format!(
            "binary {} is gone (pid {} left running)",
            owner.identity.binary, owner.pid
        )
    });
    remove(&paths.owner, &mut out);
    if !ours {
        remove(&paths.socket, &mut out);
    }
    out
}

fn remove(path: &Path, out: &mut Cleaned) {
    if std::fs::remove_file(path).is_ok() {
        out.removed.push(path.display().to_string());
    }
}
