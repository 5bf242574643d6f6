//! Process plumbing: is a pid alive, is it *our* daemon, signal it, spawn one detached.
//!
//! A pid alone proves nothing (pids are reused), so a process is taken for the daemon only when
//! its start time matches the owner record and its command line is `spec-kitty … sync daemon
//! run`. Nothing here ever looks a process up by name.

use std::path::Path;
use std::process::{Command, Stdio};

/// The hidden subcommand a daemon process runs.
pub const RUN_ARGS: [&str; 3] = ["sync", "daemon", "run"];

/// Whether a process with this pid exists (it may belong to another user).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The process start time (clock ticks since boot) from `/proc/<pid>/stat`, where available.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is still a zombie or gone; a zombie counts as dead.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s[s.rfind(')')? + 1..].to_owned();
            rest.split_whitespace().next().map(|st| st == "Z")
        })
        .unwrap_or(false)
}

/// Whether `pid` is the daemon the record describes: alive, started when the record says, and
/// running `sync daemon run`. Where `/proc` is missing, liveness is all that can be checked.
pub fn is_daemon(pid: u32, process_start: Option<u64>) -> bool {
    if !alive(pid) || is_zombie(pid) {
        return false;
    }
    if let (Some(recorded), Some(now)) = (process_start, start_ticks(pid))
        && recorded != now
    {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.windows(3).any(|w| {
                w[0] == RUN_ARGS[0].as_bytes()
                    && w[1] == RUN_ARGS[1].as_bytes()
                    && w[2] == RUN_ARGS[2].as_bytes()
            })
        }
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Sends SIGTERM (or SIGKILL when `kill`) to `pid`.
pub fn signal(pid: u32, kill: bool) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    let sig = if kill { libc::SIGKILL } else { libc::SIGTERM };
    // SAFETY: a plain kill(2) on a pid checked by the caller to be our daemon.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Starts `exe sync daemon run` detached: a new session (no controlling terminal), stdin from
/// /dev/null, stdout and stderr appended to `log`, cwd = `root`. Returns the child's pid; the
/// child is not waited for (the caller exits and init adopts it).
pub fn spawn_detached(exe: &Path, root: &Path, log: &Path) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.arg("-C")
        .arg(root)
        .args(RUN_ARGS)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // SAFETY: setsid is async-signal-safe; it only detaches the child from our session.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}
