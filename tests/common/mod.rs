//! Shared test harness: a real git repository in a temp dir, a hermetic environment, and the
//! real `spec-kitty` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_spec-kitty");

/// A throwaway repository with its own HOME, SPEC_KITTY_HOME and git configuration, so no test
/// ever reads or writes the user's real files.
pub struct TestRepo {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
}

impl TestRepo {
    /// `git init` with one commit on `main` and a local identity.
    pub fn new() -> TestRepo {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(home.join(".spec-kitty")).expect("home");
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(&root).expect("repo dir");
        let repo = TestRepo { tmp, root, home };
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
        cmd.env("HOME", &self.home)
            .env("SPEC_KITTY_HOME", self.home.join(".spec-kitty"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env_remove("SPEC_KITTY_SERVER_URL")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
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
