//! What the daemon's once-a-second gate check looks at before it runs the gate: the files the
//! gate reads (client configuration, credentials, the project identity, the sync-state refs),
//! fingerprinted by `stat`. The full gate (configuration parsed, credentials read, every
//! chain's sync state walked: ~1.5 ms) then runs only when one of them changed, and as a
//! backstop once a minute, so an idle daemon costs a handful of `stat` calls per second.
//!
//! Every file is written by atomic rename (a new inode) or by git's lock-and-rename of a ref
//! (the directory's mtime moves), so a change cannot hide behind an unchanged fingerprint.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::project::identity::CONFIG_RELATIVE;
use crate::store::SYNCED_PREFIX;
use crate::sync::spec_kitty_home;
use crate::workflow::emit::main_worktree_root;

/// The full gate runs at least this often even when no input changed.
const BACKSTOP: Duration = Duration::from_secs(60);

/// One file's identity and version: (inode, mtime s, mtime ns, size); `None` when absent.
type Stamp = Option<(u64, i64, i64, u64)>;

/// The gate's inputs, and when the gate last ran on them.
#[derive(Debug)]
pub struct GateInputs {
    paths: Vec<PathBuf>,
    last: Option<(Vec<Stamp>, Instant)>,
}

impl GateInputs {
    /// The inputs of the gate for the repository whose common git dir is `common_dir`, as
    /// seen from the worktree `root`.
    pub fn new(common_dir: &Path, root: &Path) -> GateInputs {
        GateInputs::with_home(&spec_kitty_home(), common_dir, root)
    }

    fn with_home(home: &Path, common_dir: &Path, root: &Path) -> GateInputs {
        let mut paths = vec![
            home.join("config.toml"),
            home.join("credentials"),
            root.join(CONFIG_RELATIVE),
            common_dir.join("packed-refs"),
            common_dir.join(SYNCED_PREFIX.trim_end_matches('/')),
        ];
        if let Some(main) = main_worktree_root(common_dir).filter(|m| m != root) {
            paths.push(main.join(CONFIG_RELATIVE));
        }
        GateInputs { paths, last: None }
    }

    /// Whether the gate must run now: an input changed since it last ran, or the backstop
    /// interval passed. Call [`GateInputs::checked`] with the stamps once it ran.
    pub fn due(&self) -> Option<Vec<Stamp>> {
        let now = self.stamps();
        match &self.last {
            Some((seen, at)) if *seen == now && at.elapsed() < BACKSTOP => None,
            _ => Some(now),
        }
    }

    /// Records that the gate ran on inputs stamped `stamps` (taken before it ran, so that a
    /// change during the check is seen next time).
    pub fn checked(&mut self, stamps: Vec<Stamp>) {
        self.last = Some((stamps, Instant::now()));
    }

    /// Forgets the last check: the gate is due at the next look.
    pub fn forget(&mut self) {
        self.last = None;
    }

    fn stamps(&self) -> Vec<Stamp> {
        self.paths
            .iter()
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(dir: &Path) -> GateInputs {
        let common = dir.join("repo/.git");
        std::fs::create_dir_all(common.join("refs/spec-kitty/synced")).expect("dirs");
        GateInputs::with_home(&dir.join("home"), &common, &dir.join("repo"))
    }

    #[test]
    fn the_gate_is_due_first_then_only_after_an_input_changed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut g = inputs(tmp.path());
        let stamps = g.due().expect("due before the first check");
        g.checked(stamps);
        assert!(g.due().is_none(), "nothing changed");

        // A sync-state ref written the way git writes one: lock file renamed into place.
        let synced = tmp.path().join("repo/.git/refs/spec-kitty/synced");
        std::fs::write(synced.join("abc.lock"), "x\n").expect("lock");
        std::fs::rename(synced.join("abc.lock"), synced.join("abc")).expect("rename");
        let stamps = g.due().expect("a ref moved");
        g.checked(stamps);
        assert!(g.due().is_none());

        // The project identity appearing, then replaced by an atomic rename.
        let kittify = tmp.path().join("repo/.kittify");
        std::fs::create_dir_all(&kittify).expect("dir");
        std::fs::write(kittify.join("config.yaml"), "project: {}\n").expect("write");
        let stamps = g.due().expect("a file appeared");
        g.checked(stamps);
        std::fs::write(kittify.join("new"), "project: {}\n").expect("write");
        std::fs::rename(kittify.join("new"), kittify.join("config.yaml")).expect("rename");
        assert!(g.due().is_some(), "same size, new inode");
    }
}
