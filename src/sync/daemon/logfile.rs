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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_rotated_past_its_cap_and_one_previous_file_is_kept() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("daemon.log");
        let log = DaemonLog {
            path: path.clone(),
            max_bytes: 200,
        };
        for i in 0..40 {
            log.line(&format!("line {i}"));
        }
        let current = std::fs::read_to_string(&path).expect("log");
        let previous = std::fs::read_to_string(path.with_extension("log.1")).expect("log.1");
        // Each file stays within the cap plus one line; nothing beyond one previous file.
        assert!(current.len() < 200 + 80, "{}", current.len());
        assert!(previous.len() < 200 + 80, "{}", previous.len());
        assert!(current.contains("line 39"));
        let files = std::fs::read_dir(tmp.path()).expect("dir").count();
        assert_eq!(files, 2);
    }
}
