//! The daemon process: setup (one per repository, the gate, the socket, the owner record), the
//! reconnect loop with its backoff and `Offline-BatchMode`, and teardown (records removed, the
//! state file left saying why it stopped).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::UnixDatagram;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::DaemonError;
use super::identity::Identity;
use super::inputs::GateInputs;
use super::logfile::DaemonLog;
use super::paths::DaemonPaths;
use super::process;
use super::record::{Connection, DaemonState, OwnerRecord, write_json};
use super::wake::SpawnMarker;
use crate::store::{Answered, EventLog, StoredEvent};
use crate::sync::SyncError;
use crate::sync::config::{ClientConfig, DaemonSettings};
use crate::sync::credentials::CredentialStore;
use crate::sync::gate::{self, Sender};
use crate::sync::preflight::preflight;
use crate::sync::session::Session;

/// How the daemon ended (the text goes to its state file and log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// `stop` (SIGTERM), idle exit: a later emit may start a new one.
    Done(String),
    /// The foreground identity no longer matches (logout, another team or server): no new
    /// daemon is started from the emit path until the configuration or the login changes.
    Refused(String),
}

impl Exit {
    pub fn reason(&self) -> &str {
        match self {
            Exit::Done(r) | Exit::Refused(r) => r,
        }
    }
}

/// An event sent over the WebSocket and not yet acknowledged.
pub(super) struct InFlight {
    pub event: StoredEvent,
    pub sent: Instant,
}

/// The running daemon's state (one per process).
pub(super) struct Daemon {
    pub log: EventLog,
    pub root: PathBuf,
    pub paths: DaemonPaths,
    pub journal: DaemonLog,
    pub settings: DaemonSettings,
    pub identity: Identity,
    pub session: Option<Session>,
    pub state: DaemonState,
    pub state_dirty: bool,
    pub wake: UnixDatagram,
    pub term: Signal,
    pub last_activity: Instant,
    pub inflight: HashMap<String, InFlight>,
    /// Acks received and not yet recorded: (chain, answer).
    pub acked: Vec<(String, Answered)>,
    pub last_batch: Option<Instant>,
    pub last_rejected_retry: Instant,
    /// What the once-a-second gate check compares before it runs the gate.
    pub gate_inputs: GateInputs,
    /// The server refused the refresh token: nothing is sent until `auth login` (as the same
    /// identity) writes new credentials, which the gate check notices.
    pub awaiting_login: bool,
}

/// Runs the daemon of the repository containing `dir` until it stops; returns why.
pub fn run(dir: &Path) -> Result<Exit, DaemonError> {
    let log = EventLog::discover(dir)?;
    let paths = DaemonPaths::new(log.common_dir());
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| DaemonError::Io { path, source }
    };
    paths.ensure_dir().map_err(io(&paths.dir))?;
    let journal = DaemonLog::new(paths.log.clone());
    // One daemon per repository: the lock is held for the process's life and released by the
    // kernel however it ends.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&paths.lock)
        .map_err(io(&paths.lock))?;
    if lock.try_lock().is_err() {
        journal.line("another daemon runs for this repository; exiting");
        return Ok(Exit::Done("another daemon runs for this repository".into()));
    }
    let config = ClientConfig::load()?;
    let cleared = match preflight(&log, &config) {
        Ok(c) => c,
        Err(e) => {
            let why = format!("refused to start: {}", one_line(&e));
            journal.line(&why);
            stopped_state(&paths, &why);
            let _ = write_json(&paths.spawn_marker, &SpawnMarker::now(Some(why.clone())));
            return Err(e.into());
        }
    };
    let identity = Identity::of(log.node_id(), &cleared);
    let root = std::env::current_dir().unwrap_or_else(|_| dir.to_path_buf());
    let _ = std::fs::remove_file(&paths.socket);
    let std_sock =
        std::os::unix::net::UnixDatagram::bind(&paths.socket).map_err(io(&paths.socket))?;
    std_sock.set_nonblocking(true).map_err(io(&paths.socket))?;
    let pid = std::process::id();
    let owner = OwnerRecord {
        pid,
        process_start: process::start_ticks(pid),
        started_at: crate::event::now_rfc3339(),
        root: root.display().to_string(),
        identity: identity.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io(&paths.dir))?;
    let exit = runtime.block_on(async {
        let wake = UnixDatagram::from_std(std_sock).map_err(io(&paths.socket))?;
        let term = signal(SignalKind::terminate()).map_err(io(&paths.dir))?;
        write_json(&paths.owner, &owner).map_err(io(&paths.owner))?;
        let _ = std::fs::remove_file(&paths.spawn_marker);
        journal.line(&format!(
            "started for {} as {} (team {}), node {}",
            identity.server_url, identity.username, identity.team, identity.node_id
        ));
        let common_dir = log.common_dir().to_path_buf();
        let gate_inputs = GateInputs::new(&common_dir, &root);
        let mut daemon = Daemon {
            log,
            root,
            paths: paths.clone(),
            journal: DaemonLog::new(paths.log.clone()),
            settings: config.daemon,
            identity,
            session: None,
            state: DaemonState {
                pid,
                since: crate::event::now_rfc3339(),
                ..DaemonState::default()
            },
            state_dirty: true,
            wake,
            term,
            last_activity: Instant::now(),
            inflight: HashMap::new(),
            acked: Vec::new(),
            last_batch: None,
            last_rejected_retry: Instant::now(),
            gate_inputs,
            awaiting_login: false,
        };
        daemon.save_state();
        let exit = daemon.main().await;
        daemon.close_session().await;
        Ok::<Exit, DaemonError>(exit)
    })?;
    journal.line(&format!("stopped: {}", exit.reason()));
    let _ = std::fs::remove_file(&paths.owner);
    let _ = std::fs::remove_file(&paths.socket);
    stopped_state(&paths, exit.reason());
    if let Exit::Refused(why) = &exit {
        let _ = write_json(&paths.spawn_marker, &SpawnMarker::now(Some(why.clone())));
    }
    drop(lock);
    Ok(exit)
}

fn stopped_state(paths: &DaemonPaths, why: &str) {
    let mut state: DaemonState = super::record::read_json(&paths.state).unwrap_or_default();
    state.pid = std::process::id();
    state.connection = Connection::Stopped;
    state.since = crate::event::now_rfc3339();
    state.stopped = Some(why.to_owned());
    let _ = write_json(&paths.state, &state);
}

/// The first line of an error with its help, for the state file.
pub(super) fn one_line(e: &dyn miette::Diagnostic) -> String {
    let first = e.to_string().lines().next().unwrap_or_default().to_owned();
    match e.help() {
        Some(h) => format!("{first} ({h})"),
        None => first,
    }
}

/// `min(base·2^n, max)` plus up to `jitter`.
pub fn reconnect_delay(settings: &DaemonSettings, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    let delay = settings
        .reconnect_base
        .saturating_mul(factor)
        .min(settings.reconnect_max);
    let jitter_ms = settings.reconnect_jitter.as_millis() as u64;
    let jitter = if jitter_ms == 0 {
        0
    } else {
        rand::random_range(0..=jitter_ms)
    };
    delay + Duration::from_millis(jitter)
}

/// What a wait was cut short by.
pub(super) enum Interrupt {
    Exit(Exit),
}

impl Daemon {
    /// The reconnect loop: WebSocket while it works, backoff between attempts, and after the
    /// last attempt `Offline-BatchMode` until a batch succeeds.
    async fn main(&mut self) -> Exit {
        let mut attempt: u32 = 0;
        loop {
            if let Some(exit) = self.should_exit() {
                return exit;
            }
            if self.awaiting_login {
                if let Err(Interrupt::Exit(exit)) = self.await_login().await {
                    return exit;
                }
                attempt = 0;
                continue;
            }
            match self.connect().await {
                Ok(ws) => {
                    attempt = 0;
                    match self.live(ws).await {
                        Ok(lost) => {
                            self.journal.line(&format!("connection lost: {lost}"));
                            self.state.last_error = Some(lost);
                            self.set_connection(Connection::Reconnecting);
                        }
                        Err(Interrupt::Exit(exit)) => return exit,
                    }
                }
                Err(why) => {
                    attempt += 1;
                    self.journal
                        .line(&format!("connect attempt {attempt} failed: {why}"));
                    self.state.last_error = Some(why);
                    if attempt >= self.settings.reconnect_attempts {
                        if let Err(Interrupt::Exit(exit)) = self.offline_batch_mode().await {
                            return exit;
                        }
                        attempt = 0;
                        continue;
                    }
                    self.set_connection(Connection::Reconnecting);
                    let delay = reconnect_delay(&self.settings, attempt);
                    if let Err(Interrupt::Exit(exit)) = self.pause(delay).await {
                        return exit;
                    }
                }
            }
        }
    }

    /// The session expired (the server refused the refresh token): send nothing, say so in the
    /// state, and wait — still answering SIGTERM and the idle exit — until `auth login` writes
    /// credentials again. The gate check then decides: the same identity resumes here, another
    /// one stops the daemon.
    async fn await_login(&mut self) -> Result<(), Interrupt> {
        self.journal
            .line("session expired: the server refused the refresh token; waiting for `spec-kitty auth login`");
        self.state.last_error = Some(
            "session expired: the server refused the refresh token; run `spec-kitty auth login` \
             (pending events stay pending; the daemon resumes by itself)"
                .into(),
        );
        self.state_dirty = true;
        self.set_connection(Connection::Offline);
        self.save_state();
        while self.awaiting_login {
            self.pause(Duration::from_secs(1)).await?;
        }
        self.journal.line("logged in again; reconnecting");
        Ok(())
    }

    /// Called when a session came back expired.
    pub(super) fn session_expired(&mut self) {
        self.awaiting_login = true;
        self.gate_inputs.forget();
    }

    /// `Offline-BatchMode`: a batch now and every `offline_batch_interval`, until one succeeds.
    async fn offline_batch_mode(&mut self) -> Result<(), Interrupt> {
        self.set_connection(Connection::OfflineBatchMode);
        loop {
            if self.awaiting_login {
                return Ok(());
            }
            match self.batch_all().await {
                Ok(()) => {
                    self.journal.line("batch succeeded; back to the WebSocket");
                    return Ok(());
                }
                Err(why) => {
                    self.state.last_error = Some(why);
                    self.state_dirty = true;
                    self.save_state();
                }
            }
            self.pause(self.settings.offline_batch_interval).await?;
        }
    }

    /// Waits `d`, still answering SIGTERM, wake-ups and the gate.
    pub(super) async fn pause(&mut self, d: Duration) -> Result<(), Interrupt> {
        let deadline = tokio::time::Instant::now() + d;
        let mut gate = tokio::time::interval(Duration::from_secs(1));
        let mut buf = [0u8; 16];
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(()),
                _ = self.term.recv() => {
                    return Err(Interrupt::Exit(Exit::Done("stopped (SIGTERM)".into())));
                }
                _ = self.wake.recv(&mut buf) => {
                    self.last_activity = Instant::now();
                }
                _ = gate.tick() => {
                    if let Some(exit) = self.should_exit() {
                        return Err(Interrupt::Exit(exit));
                    }
                    self.save_state();
                }
            }
        }
    }

    /// The daemon's side of the egress gate, run every second: idle exit, and the foreground
    /// identity (configuration, login, sync-state refs) still being the one it runs as. The
    /// gate itself runs only when one of the files it reads changed (or once a minute), so
    /// that an idle daemon does next to nothing.
    pub(super) fn should_exit(&mut self) -> Option<Exit> {
        if self.last_activity.elapsed() >= self.settings.idle_exit {
            return Some(Exit::Done(format!(
                "idle for {} s",
                self.settings.idle_exit.as_secs()
            )));
        }
        let stamps = self.gate_inputs.due()?;
        if self.awaiting_login && !self.logged_in() {
            self.gate_inputs.checked(stamps);
            return None;
        }
        match self.gate() {
            Ok(()) => {
                self.gate_inputs.checked(stamps);
                self.awaiting_login = false;
                None
            }
            Err(why) => Some(Exit::Refused(why)),
        }
    }

    /// Whether credentials for the daemon's server are stored (read, not checked).
    fn logged_in(&self) -> bool {
        CredentialStore::from_env()
            .ok()
            .and_then(|s| s.load(&self.identity.server_url).ok().flatten())
            .is_some()
    }

    /// The egress gate for the daemon: the foreground identity (configuration, login and
    /// sync-state refs on disk, right now) must still be the one it runs as.
    pub(super) fn gate(&self) -> Result<(), String> {
        let config = ClientConfig::load().map_err(|e| one_line(&e))?;
        match gate::clear_to_send(&self.log, &config, Sender::Daemon(&self.identity)) {
            Ok(_) => Ok(()),
            Err(SyncError::IdentityMismatch { fields }) => Err(format!(
                "refused to send: the identity changed:\n{fields}\nrun `spec-kitty sync daemon start` to sync as the new one"
            )),
            Err(e) => Err(format!("refused to send: {}", one_line(&e))),
        }
    }

    pub(super) fn set_connection(&mut self, c: Connection) {
        if self.state.connection != c {
            self.journal.line(&format!("connection: {}", c.label()));
            self.state.connection = c;
            self.state.since = crate::event::now_rfc3339();
            self.state_dirty = true;
            self.save_state();
        }
    }

    /// Rewrites the state file if anything changed since the last write.
    pub(super) fn save_state(&mut self) {
        if self.state_dirty {
            let _ = write_json(&self.paths.state, &self.state);
            self.state_dirty = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_double_from_half_a_second_to_thirty() {
        let s = DaemonSettings {
            reconnect_jitter: Duration::ZERO,
            ..DaemonSettings::default()
        };
        let secs: Vec<f64> = (1..=10)
            .map(|n| reconnect_delay(&s, n).as_secs_f64())
            .collect();
        assert_eq!(
            secs,
            [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
        );
        let jittered = DaemonSettings::default();
        let d = reconnect_delay(&jittered, 1);
        assert!(d >= Duration::from_millis(500) && d <= Duration::from_millis(1500));
    }
}
