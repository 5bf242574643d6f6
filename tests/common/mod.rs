//! The one test harness of the client integration tests: a hermetic environment, real git
//! repositories in temp dirs, and the real `spec-kitty` binary.
//!
//! * [`hermetic`] is the environment every child process gets (git, `spec-kitty`, `sh`): HOME,
//!   SPEC_KITTY_HOME, XDG_CONFIG_HOME and git's global config point into the test's temp dir,
//!   git's system config is off, and every `GIT_*` / `SPEC_KITTY_*` variable of the outer
//!   environment (a test run from inside a git hook sees GIT_DIR and GIT_INDEX_FILE) is removed,
//!   as is DBUS_SESSION_BUS_ADDRESS, so no test can reach the real keyring. Credentials go to a
//!   file (`SPEC_KITTY_CREDENTIAL_STORE=file`) unless a test opts out with [`Keyring::Allowed`].
//! * [`TestRepo`]: an empty repository with one commit (event-log tests).
//! * [`project::TestProject`]: the fixture spec-kitty project (workflow and hooks tests).
//! * [`rerun_hermetic`]: a test that calls library code in-process (`EventLog::discover`, the
//!   emitter) runs its body again in a child copy of the test binary with the hermetic
//!   environment, so in-process code cannot see the real one either.
#![allow(dead_code)]

pub mod project;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_spec-kitty");

/// Set in the child copy of a test binary started by [`rerun_hermetic`].
const CHILD_VAR: &str = "SPEC_KITTY_TEST_HERMETIC_CHILD";

/// Whether a test may let spec-kitty use the OS keyring (it still cannot reach the user's:
/// D-Bus is cut off). The default stores credentials in a file under the temp HOME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keyring {
    #[default]
    FileStore,
    Allowed,
}

/// The variables of the outer environment a test must never inherit.
fn leaked_vars() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            let k = k.to_string_lossy();
            k.starts_with("GIT_") || k.starts_with("SPEC_KITTY_") || k == "DBUS_SESSION_BUS_ADDRESS"
        })
        .collect()
}

/// Applies the hermetic environment rooted at `home` to `cmd` (see the module docs). Call it
/// before setting a test's own variables: those set afterwards win.
pub fn hermetic<'a>(cmd: &'a mut Command, home: &Path, keyring: Keyring) -> &'a mut Command {
    for k in leaked_vars() {
        cmd.env_remove(k);
    }
    cmd.env("HOME", home)
        .env("SPEC_KITTY_HOME", home.join(".spec-kitty"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
        // No test starts a live-sync daemon unless it asks for one (it sets this to "auto").
        .env("SPEC_KITTY_SYNC_BACKGROUND", "off")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    if keyring == Keyring::FileStore {
        cmd.env("SPEC_KITTY_CREDENTIAL_STORE", "file");
    }
    cmd
}

/// For a test that calls library code in-process: in the test process, runs `test` (the test
/// function's name) again in a child copy of this test binary with the hermetic environment,
/// asserts that it ran and passed, and returns `true` (the caller returns at once). In that
/// child it returns `false` and the test body runs. Usage, first line of the test:
/// `if common::rerun_hermetic("my_test_name") { return; }`.
pub fn rerun_hermetic(test: &str) -> bool {
    if std::env::var_os(CHILD_VAR).is_some() {
        return false;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".spec-kitty")).expect("home");
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    hermetic(&mut cmd, &home, Keyring::FileStore).env(CHILD_VAR, "1");
    let out = cmd.output().expect("rerun the test binary");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        out.status.success(),
        "hermetic rerun of {test} failed:\n{text}"
    );
    assert!(
        text.contains("1 passed"),
        "hermetic rerun of {test} ran no test (is the name right?):\n{text}"
    );
    true
}

/// A throwaway repository with its own HOME, SPEC_KITTY_HOME and git configuration, so no test
/// ever reads or writes the user's real files.
pub struct TestRepo {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub keyring: Keyring,
}

impl TestRepo {
    /// `git init` with one commit on `main` and a local identity.
    pub fn new() -> TestRepo {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(home.join(".spec-kitty")).expect("home");
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(&root).expect("repo dir");
        let repo = TestRepo {
            tmp,
            root,
            home,
            keyring: Keyring::default(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test User"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        std::fs::write(repo.root.join("README.md"), "# test\n").expect("write");
        repo.git(&["add", "README.md"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    /// Applies the hermetic environment to `cmd`.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        hermetic(cmd, &self.home, self.keyring)
    }

    /// Runs git in `dir` (default: the repo root) and returns stdout; panics on failure.
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self
            .env(Command::new("git").current_dir(dir).args(args))
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.root, args)
    }

    /// Runs `spec-kitty` in `dir`.
    pub fn sk_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.env(Command::new(BIN).current_dir(dir).args(args))
            .output()
            .expect("run spec-kitty")
    }

    pub fn sk(&self, args: &[&str]) -> Output {
        self.sk_in(&self.root, args)
    }

    /// Runs `spec-kitty` and asserts success; returns stdout.
    pub fn sk_ok(&self, args: &[&str]) -> String {
        let out = self.sk(args);
        assert!(
            out.status.success(),
            "spec-kitty {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `~/.spec-kitty/config.toml`.
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.home.join(".spec-kitty/config.toml"), toml).expect("config");
    }

    /// Adds a linked worktree on a new branch and returns its path.
    pub fn add_worktree(&self, name: &str) -> PathBuf {
        let path = self.tmp.path().join(name);
        self.git(&[
            "worktree",
            "add",
            "-q",
            "-b",
            name,
            path.to_str().expect("utf8"),
        ]);
        path
    }

    /// The JSON output of `events log --json -n N`, oldest first.
    pub fn events(&self, n: usize) -> Vec<serde_json::Value> {
        let out = self.sk_ok(&["events", "log", "--json", "-n", &n.to_string()]);
        let mut v: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
        v.reverse();
        v
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Undoes terminal line wrapping so that tests can look for whole phrases (whitespace runs and
/// miette's box-drawing gutters collapsed to one space).
pub fn unwrap_lines(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// A valid `WPStatusChanged` payload for `events emit`.
fn status_payload(wp: &str, from: &str, to: &str) -> String {
    format!(
        r#"{{"wp_id":"{wp}","previous_status":"{from}","new_status":"{to}","changed_by":"tester"}}"#
    )
}

impl TestRepo {
    /// `spec-kitty events emit WPStatusChanged` for `wp` moving `from` → `to`, run in `dir`.
    pub fn emit_status_in(&self, dir: &Path, wp: &str, from: &str, to: &str) -> Output {
        let payload = status_payload(wp, from, to);
        self.sk_in(
            dir,
            &["events", "emit", "WPStatusChanged", "--payload", &payload],
        )
    }

    /// The same in the repository root.
    pub fn emit_status(&self, wp: &str, from: &str, to: &str) -> Output {
        self.emit_status_in(&self.root, wp, from, to)
    }

    /// The same, asserting success; returns the new event id.
    pub fn emit_status_ok(&self, wp: &str, from: &str, to: &str) -> String {
        let out = self.emit_status(wp, from, to);
        assert!(out.status.success(), "events emit failed: {}", stderr(&out));
        stdout(&out).trim().to_owned()
    }
}
