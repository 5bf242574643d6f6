//! The daemon's log, `<common git dir>/spec-kitty/daemon.log`: one timestamped line per
//! happening, rotated to `daemon.log.1` past [`MAX_LOG_BYTES`]. Tokens never reach it: the
//! daemon only logs states, counts, event ids and error texts that are token-free by design.

use std::io::Write;
use std::path::PathBuf;

/// The size at which the log is rotated (the previous one is kept as `daemon.log.1`).
pub const MAX_LOG_BYTES: u64 = 1 << 20;

pub struct DaemonLog {
    path: PathBuf,
    max_bytes: u64,
}

impl DaemonLog {
    pub fn new(path: PathBuf) -> DaemonLog {
        DaemonLog {
            path,
            max_bytes: MAX_LOG_BYTES,
        }
    }

    /// Appends one line; failures to log are ignored (the log is a diagnostic, not a record).
    pub fn line(&self, message: &str) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.max_bytes) {
            let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            let _ = writeln!(
                f,
                "{} [{}] {message}",
                crate::event::now_rfc3339(),
                std::process::id()
            );
        }
    }
}
