//! The demo's team server: the real `spec-kitty-server` binary, found next to this executable,
//! spawned on 127.0.0.1 with an ephemeral port and its database in the demo's temp dir. It is a
//! separate process so that the server's code (tokio, axum, SQLite) stays out of the
//! `spec-kitty` binary that every git hook starts; it is stopped by pid when the demo ends, on
//! an error, and on Ctrl-C / SIGTERM.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};

use crate::store::EventLog;
use crate::sync::http::{EnvelopeHead, Http, Reply};

/// The demo users' password (throwaway, like everything in the demo).
pub const PASSWORD: &str = "demo password 1234";

/// The running server's pid, for the signal handler (0 when none).
static SERVER_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe calls: kill(2) and _exit(2).
    let pid = SERVER_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill and _exit are async-signal-safe; the pid is the child this process
        // spawned and has not reaped yet (it is cleared before the child is waited for).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    unsafe { libc::_exit(128 + sig) }
}

/// The `spec-kitty-server` binary next to `exe` (the running spec-kitty).
fn server_binary(exe: &Path) -> miette::Result<PathBuf> {
    let dir = exe.parent().unwrap_or(Path::new("."));
    let bin = dir.join("spec-kitty-server");
    if bin.is_file() {
        return Ok(bin);
    }
    Err(miette::miette!(
        help = "build or install both binaries: `cargo build --release` (then run target/release/spec-kitty demo) or `cargo install --path .`",
        "the demo needs spec-kitty-server next to spec-kitty, but {} does not exist",
        bin.display()
    ))
}

pub struct TeamServer {
    pub url: String,
    pub db: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

impl TeamServer {
    /// Starts the server found next to `exe` and waits until it listens.
    pub fn start(dir: &Path, exe: &Path) -> miette::Result<TeamServer> {
        let bin = server_binary(exe)?;
        let db = dir.join("server.db");
        let mut child = Command::new(&bin)
            .arg("--db")
            .arg(&db)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env_remove("SPEC_KITTY_TEST_INGEST_DELAY_MS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot start {}", bin.display()))?;
        SERVER_PID.store(child.id() as i32, Ordering::SeqCst);
        // SAFETY: installing a handler that only calls async-signal-safe functions.
        unsafe {
            libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        }
        let mut server = TeamServer {
            url: String::new(),
            db,
            bin,
            child: None,
        };
        let stdout = child.stdout.take();
        server.child = Some(child);
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        if let Some(out) = stdout {
            // Reads the "listening on URL" line, then drains the rest so the server never
            // blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        let _ = tx.send(url.trim().to_owned());
                    }
                }
            });
        }
        server.url = rx
            .recv_timeout(Duration::from_secs(30))
            .into_diagnostic()
            .wrap_err("the demo's spec-kitty-server did not start listening within 30 s")?;
        Ok(server)
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn add_user(&self, username: &str, team: &str) -> miette::Result<()> {
        let mut child = Command::new(&self.bin)
            .arg("--db")
            .arg(&self.db)
            .args(["user", "add", username, "--team", team, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot run {}", self.bin.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "{PASSWORD}");
        }
        let out = child.wait_with_output().into_diagnostic()?;
        if !out.status.success() {
            miette::bail!(
                "cannot create the demo user {username}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Every event id the server holds for the demo team, through the real pull API.
    pub fn event_ids(&self, _team: &str) -> miette::Result<HashSet<String>> {
        let http = Http::new(&self.url, Duration::from_secs(30))?;
        let tokens = match http.login("alice", PASSWORD) {
            Reply::Ok(t) => t,
            _ => miette::bail!("cannot log in to the demo's server"),
        };
        let mut ids = HashSet::new();
        let mut after: Option<String> = None;
        for _ in 0..1000 {
            let page = match http.pull(&tokens.access, after.as_deref(), 1000) {
                Reply::Ok(p) => p,
                _ => miette::bail!("cannot pull from the demo's server"),
            };
            for e in &page.events {
                if let Some(id) = EnvelopeHead::of(e).event_id {
                    ids.insert(id.into_owned());
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        Ok(ids)
    }

    /// Stops the server (SIGTERM by pid) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            SERVER_PID.store(0, Ordering::SeqCst);
            // SAFETY: signalling the child this process spawned and has not yet waited for.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TeamServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The ids of every event this clone recorded (its own chain).
pub fn local_event_ids(repo: &Path) -> miette::Result<HashSet<String>> {
    let log = EventLog::discover(repo)?;
    Ok(log
        .chain_events(log.node_id())?
        .into_iter()
        .map(|s| s.event.event_id)
        .collect())
}
