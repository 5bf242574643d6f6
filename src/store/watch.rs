//! Waiting for the event log to change without polling: inotify on the directories the event
//! refs live in (`refs/spec-kitty/events/`, `refs/spec-kitty/`) and on `packed-refs`, so
//! `spec-kitty status --watch` redraws as soon as any worktree, hook or the sync daemon writes
//! an event, and sleeps otherwise.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// Changes to these names in the common git dir itself count (everything else there, such as
/// the index, does not).
const COMMON_DIR_NAMES: [&[u8]; 1] = [b"packed-refs"];

/// An inotify watch on a repository's event refs.
pub struct RefWatch {
    fd: OwnedFd,
    /// The watch descriptor of the common git dir (its events are filtered by name).
    common_wd: i32,
}

impl RefWatch {
    /// Watches the event refs of the repository whose common git dir is `common_dir`.
    pub fn new(common_dir: &Path) -> std::io::Result<RefWatch> {
        // SAFETY: plain syscalls; the fd is owned right away.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let _ = std::fs::create_dir_all(common_dir.join("refs/spec-kitty/events"));
        let mask = libc::IN_MOVED_TO | libc::IN_CREATE | libc::IN_DELETE | libc::IN_CLOSE_WRITE;
        let add = |p: &Path| -> i32 {
            let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
                return -1;
            };
            // SAFETY: a valid C string and our own inotify descriptor.
            unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) }
        };
        add(&common_dir.join("refs/spec-kitty/events"));
        add(&common_dir.join("refs/spec-kitty"));
        let common_wd = add(common_dir);
        Ok(RefWatch { fd, common_wd })
    }

    /// Blocks until the event refs change (then lets a burst settle for `settle`) or `timeout`
    /// passes; `true` when they changed.
    pub fn wait(&self, timeout: Duration, settle: Duration) -> std::io::Result<bool> {
        let mut changed = false;
        let mut wait = timeout;
        loop {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = wait.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one pollfd on our own descriptor.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                return Ok(changed);
            }
            if self.read_relevant()? {
                changed = true;
                wait = settle;
            }
        }
    }

    /// Reads the queued events; whether any concerns the event refs.
    fn read_relevant(&self) -> std::io::Result<bool> {
        let mut buf = [0u8; 8192];
        let mut relevant = false;
        loop {
            // SAFETY: reading into our own buffer from our own descriptor.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return Ok(relevant);
            }
            let mut at = 0usize;
            let n = n as usize;
            let header = std::mem::size_of::<libc::inotify_event>();
            while at + header <= n {
                // SAFETY: the kernel wrote whole events; read_unaligned copes with alignment.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                let name_end = (at + header + ev.len as usize).min(n);
                let name = &buf[at + header..name_end];
                let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
                let counts = ev.wd != self.common_wd || COMMON_DIR_NAMES.contains(&name);
                relevant |= counts;
                at = name_end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_event_ref_wakes_the_watch_and_the_index_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let common = tmp.path();
        let w = RefWatch::new(common).unwrap();
        std::fs::write(common.join("index"), "x").unwrap();
        assert!(!w.wait(Duration::from_millis(50), Duration::ZERO).unwrap());
        let events = common.join("refs/spec-kitty/events");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(events.join("abc.lock"), "x").unwrap();
            std::fs::rename(events.join("abc.lock"), events.join("abc")).unwrap();
        });
        assert!(
            w.wait(Duration::from_secs(10), Duration::from_millis(10))
                .unwrap()
        );
        writer.join().unwrap();
        std::fs::write(common.join("packed-refs"), "x").unwrap();
        assert!(w.wait(Duration::from_secs(10), Duration::ZERO).unwrap());
    }
}
