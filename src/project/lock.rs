//! A lock file for short critical sections that several processes may enter at once (e.g. the
//! first use of a project creating its identity).
//!
//! The file is created exclusively and holds `<pid> <host>` of its holder; it is removed on
//! drop. Staleness is decided by the holder's liveness, never by age alone: a lock whose holder
//! runs on this host and no longer exists is taken over at once; a lock held by a live process
//! is never removed — after the wait, acquiring fails and names the holder.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use miette::Diagnostic;

/// How long [`FileLock::acquire`] waits for a live holder.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(15);

/// A lock file whose holder never wrote its pid (it died between creating and writing, or
/// runs a version that writes none) counts as stale after this long.
const UNNAMED_STALE_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LockError {
    #[error("{} is held by {holder}, which is still running", path.display())]
    #[diagnostic(
        code(spec_kitty::project::locked),
        help(
            "wait for that process to finish and run the command again; if it is not a \
             spec-kitty process, remove the lock file"
        )
    )]
    Held { path: PathBuf, holder: String },

    #[error("cannot lock {}: {source}", path.display())]
    #[diagnostic(
        code(spec_kitty::project::lock_io),
        help("check the permissions of the file's directory")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Who holds a lock, as recorded in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: u32,
    host: String,
}

impl Holder {
    fn me() -> Holder {
        Holder {
            pid: std::process::id(),
            host: host_name(),
        }
    }

    fn parse(text: &str) -> Option<Holder> {
        let mut parts = text.split_whitespace();
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next().unwrap_or("").to_owned();
        Some(Holder { pid, host })
    }

    /// `Some(false)` only when the holder certainly no longer runs.
    fn alive(&self) -> Option<bool> {
        if self.host != host_name() {
            return None;
        }
        process_alive(self.pid)
    }
}

fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Whether process `pid` exists, when this platform can tell.
fn process_alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return None;
    }
    Some(proc.join(pid.to_string()).exists())
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock(PathBuf);

impl FileLock {
    /// Takes the lock at `path`, waiting up to [`DEFAULT_WAIT`] for a live holder.
    pub fn acquire(path: &Path) -> Result<FileLock, LockError> {
        Self::acquire_within(path, DEFAULT_WAIT)
    }

    /// Takes the lock at `path`, waiting up to `wait` for a live holder.
    pub fn acquire_within(path: &Path, wait: Duration) -> Result<FileLock, LockError> {
        let start = Instant::now();
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    let me = Holder::me();
                    // A lock without a pid is only ever taken over after a delay.
                    let _ = writeln!(f, "{} {}", me.pid, me.host);
                    return Ok(FileLock(path.to_path_buf()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = fs::read_to_string(path).unwrap_or_default();
                    if is_stale(path, &text) {
                        // Remove it only if it is still the lock we judged.
                        if fs::read_to_string(path).is_ok_and(|t| t == text) {
                            let _ = fs::remove_file(path);
                        }
                        continue;
                    }
                    if start.elapsed() >= wait {
                        let holder = match Holder::parse(&text) {
                            Some(h) => format!("process {} on {}", h.pid, h.host),
                            None => "another process".to_owned(),
                        };
                        return Err(LockError::Held {
                            path: path.to_path_buf(),
                            holder,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(io(e)),
            }
        }
    }
}

/// Whether the lock at `path` with contents `text` can be taken over.
fn is_stale(path: &Path, text: &str) -> bool {
    match Holder::parse(text).and_then(|h| h.alive()) {
        Some(alive) => !alive,
        // Unknown holder (no pid yet, another host, no /proc): only a long-unwritten file.
        None if Holder::parse(text).is_none() => fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > UNNAMED_STALE_AFTER),
        None => false,
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_held_by_a_live_process_is_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = FileLock::acquire(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(&format!("{} ", std::process::id())),
            "{text}"
        );

        let err = FileLock::acquire_within(&path, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(
            err.to_string().contains(&std::process::id().to_string()),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            text,
            "still the holder's"
        );
        drop(held);
        assert!(!path.exists());
        let _again = FileLock::acquire_within(&path, Duration::ZERO).unwrap();
    }

    #[test]
    fn a_lock_whose_holder_is_gone_is_taken_over_at_once() {
        if process_alive(1).is_none() {
            return; // no way to tell liveness here
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        fs::write(&path, format!("{pid} {}\n", host_name())).unwrap();
        let _lock = FileLock::acquire_within(&path, Duration::ZERO).unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .starts_with(&std::process::id().to_string())
        );
    }

    #[test]
    fn a_fresh_lock_without_a_pid_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        fs::write(&path, "").unwrap();
        let err = FileLock::acquire_within(&path, Duration::ZERO).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(path.exists());
    }
}
