//! One migration per repository at a time.
//!
//! Two migrations of the same queue build byte-identical commits, and a ref update to the value
//! the ref already has succeeds, so without this lock both runs would count the same import.
//! The lock is a file under the common git dir holding the owner's pid, created exclusively and
//! removed on drop; a lock whose owner is gone (or that is older than [`STALE_AFTER`]) is stale
//! and taken over.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::MigrateError;

const LOCK_FILE: &str = "spec-kitty-migrate.lock";
/// How long a second migration waits for the first before giving up.
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);
/// A lock older than this is stale whatever its pid says (a migration takes seconds).
const STALE_AFTER: Duration = Duration::from_secs(600);

/// Held while a migration writes; released on drop.
#[derive(Debug)]
pub struct MigrateLock {
    path: PathBuf,
}

impl MigrateLock {
    /// Takes the lock of the repository whose common git dir is `common_dir`, waiting a short
    /// while for a running migration to finish.
    pub fn acquire(common_dir: &Path) -> Result<MigrateLock, MigrateError> {
        let path = common_dir.join(LOCK_FILE);
        let attempts = WAIT.as_millis() / POLL.as_millis();
        let mut holder = None;
        for _ in 0..attempts {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    // The pid is informational (and used for staleness); the file itself is
                    // the lock, so a failed write does not matter.
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(MigrateLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    if is_stale(&path, holder) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    std::thread::sleep(POLL);
                }
                Err(source) => return Err(MigrateError::Io { path, source }),
            }
        }
        Err(MigrateError::Locked { path, pid: holder })
    }
}

impl Drop for MigrateLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn is_stale(path: &Path, pid: Option<u32>) -> bool {
    let old = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_AFTER);
    // Where /proc exists (Linux), a pid with no entry there is a process that is gone.
    let gone = match pid {
        Some(p) => Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{p}")).exists(),
        // Being written right now, or garbage: only age decides.
        None => false,
    };
    old || gone
}
