//! Where one repository's daemon keeps its files: `<common git dir>/spec-kitty/`, shared by
//! every worktree of the repository.

use std::path::{Path, PathBuf};

/// Unix socket paths longer than this do not fit in `sockaddr_un` (108 bytes with the NUL,
/// less on some systems): such a repository's socket lives in the temp dir instead.
const MAX_SOCKET_PATH: usize = 100;

/// The daemon's files for one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonPaths {
    /// `<common git dir>/spec-kitty`.
    pub dir: PathBuf,
    /// The owner record (`daemon.json`): who runs, for whom.
    pub owner: PathBuf,
    /// The state file (`daemon-state.json`): connection state, last send, last error.
    pub state: PathBuf,
    /// The log (`daemon.log`, rotated to `daemon.log.1`).
    pub log: PathBuf,
    /// The datagram socket the emit path wakes the daemon through.
    pub socket: PathBuf,
    /// Held (flock) by the running daemon for its whole life: one daemon per repository.
    pub lock: PathBuf,
    /// Written by whoever spawns a daemon, removed by the daemon once it runs: the emit path
    /// spawns at most once per dead daemon.
    pub spawn_marker: PathBuf,
}

impl DaemonPaths {
    pub fn new(common_dir: &Path) -> DaemonPaths {
        let dir = common_dir.join("spec-kitty");
        let mut socket = dir.join("daemon.sock");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(common_dir.as_os_str().as_encoded_bytes());
            let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            socket = std::env::temp_dir().join(format!("spec-kitty-{short}.sock"));
        }
        DaemonPaths {
            owner: dir.join("daemon.json"),
            state: dir.join("daemon-state.json"),
            log: dir.join("daemon.log"),
            lock: dir.join("daemon.lock"),
            spawn_marker: dir.join("daemon.spawn"),
            socket,
            dir,
        }
    }

    /// Creates the directory if needed.
    pub fn ensure_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)
    }
}
