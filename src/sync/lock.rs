//! One `sync now` per repository at a time: an advisory lock on
//! `<common git dir>/spec-kitty-sync.lock`, shared by every worktree.
//!
//! The operating system releases the lock when its holder exits, however it exits (a SIGKILL
//! included), so a stale lock cannot exist; the file itself stays and only records the holder's
//! pid for the "who holds it" message.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::SyncError;
use crate::store::StoreError;

/// Holds the repository's sync lock until dropped.
pub struct SyncLock {
    _file: File,
}

pub fn lock_path(common_dir: &Path) -> PathBuf {
    common_dir.join("spec-kitty-sync.lock")
}

/// Takes the lock, waiting up to `wait` for a running sync to finish.
pub fn acquire(common_dir: &Path, wait: Duration) -> Result<SyncLock, SyncError> {
    let path = lock_path(common_dir);
    let io = |e: std::io::Error| {
        SyncError::Store(StoreError::git(
            format!("opening the sync lock {}", path.display()),
            e,
        ))
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(SyncError::Busy {
                    path,
                    holder: holder.trim().to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(SyncLock { _file: file })
}
