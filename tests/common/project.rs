//! The workflow and hooks tests' project: a copy of the fixture project in a temporary git
//! repository, with the real binary run in the harness's hermetic environment (plus fixed
//! commit dates, so commit ids are reproducible).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

#[allow(unused_imports)]
pub use super::{BIN, Keyring, hermetic, stderr, stdout, unwrap_lines};

pub const FEATURE: &str = "028-cli-event-emission-sync";

pub struct TestProject {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub keyring: Keyring,
}

/// Copies the directory tree `from` to `to` (used to lay the fixture project into a repository).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl TestProject {
    /// The fixture project, committed on `main` in a fresh repository.
    pub fn new() -> TestProject {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("kitty-demo");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".gitconfig"), "").unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/workflow-project");
        copy_dir(&fixture, &root);
        let p = TestProject {
            _tmp: tmp,
            root,
            home,
            keyring: Keyring::default(),
        };
        p.git(&["init", "-q", "-b", "main"]);
        p.git(&["config", "user.name", "Test User"]);
        p.git(&["config", "user.email", "test@example.com"]);
        p.git(&["add", "-A"]);
        p.git(&["commit", "-q", "-m", "Initial project"]);
        p
    }

    /// Sets the hermetic environment on `cmd`.
    pub fn env(&self, cmd: &mut Command) {
        hermetic(cmd, &self.home, self.keyring)
            .env("GIT_AUTHOR_DATE", "2026-02-05T10:00:00+00:00")
            .env("GIT_COMMITTER_DATE", "2026-02-05T10:00:00+00:00");
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn feature_dir(&self) -> PathBuf {
        self.root.join("kitty-specs").join(FEATURE)
    }

    /// Runs git in the project (or `dir`) and returns stdout; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.root, args)
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_output(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn git_output(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new("git");
        cmd.current_dir(dir).args(args);
        self.env(&mut cmd);
        cmd.output().unwrap()
    }

    /// Runs spec-kitty in `dir`.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir).args(args);
        self.env(&mut cmd);
        cmd.output().unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_in(&self.root, args)
    }

    /// Runs spec-kitty and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_in(&self.root, args)
    }

    pub fn ok_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run_in(dir, args);
        assert!(
            out.status.success(),
            "spec-kitty {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs spec-kitty, asserts failure; returns stderr with miette's line wrapping undone
    /// (whitespace runs and box-drawing gutters collapsed to one space).
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_in(&self.root, args)
    }

    pub fn fails_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run_in(dir, args);
        assert!(
            !out.status.success(),
            "spec-kitty {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        unwrap_lines(&String::from_utf8_lossy(&out.stderr))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Every event, oldest first, from `spec-kitty events log --json`.
    pub fn events(&self) -> Vec<Value> {
        let v = self.json(&["events", "log", "--json", "-n", "100000"]);
        let mut events: Vec<Value> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].clone())
            .collect();
        events.reverse();
        events
    }

    /// Events recorded after the first `skip`.
    pub fn events_since(&self, skip: usize) -> Vec<Value> {
        self.events().into_iter().skip(skip).collect()
    }

    /// Writes `text` to a project file (relative path) and commits it.
    pub fn commit_file(&self, rel: &str, text: &str, message: &str) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    pub fn wp_file(&self, wp: &str) -> PathBuf {
        let dir = self.feature_dir().join("tasks");
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(wp))
            .unwrap()
    }

    /// The lane `status --json` shows for `wp`.
    pub fn lane(&self, wp: &str) -> String {
        let boards = self.json(&["status", "--json"]);
        boards[0]["work_packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["wp_id"] == wp)
            .unwrap()["lane"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn worktree(&self, wp: &str) -> PathBuf {
        self.root.join(".worktrees").join(format!("{FEATURE}-{wp}"))
    }
}

/// The events of `events` with type `t`.
pub fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

/// `(previous, new)` of a WPStatusChanged event.
pub fn transition(e: &Value) -> (String, String, String) {
    (
        e["payload"]["wp_id"].as_str().unwrap().to_owned(),
        e["payload"]["previous_status"].as_str().unwrap().to_owned(),
        e["payload"]["new_status"].as_str().unwrap().to_owned(),
    )
}

pub fn t(wp: &str, from: &str, to: &str) -> (String, String, String) {
    (wp.to_owned(), from.to_owned(), to.to_owned())
}

/// Helpers of the hooks tests: plain git the way a user runs it, with the hooks firing.
impl TestProject {
    /// `git worktree add -b <feature>-<wp> .worktrees/<…>`: the plain-git way to start a WP.
    pub fn git_worktree_add(&self, wp: &str) -> PathBuf {
        let wt = self.worktree(wp);
        let branch = format!("{FEATURE}-{wp}");
        let wt_str = wt.to_str().expect("utf8");
        self.git(&["worktree", "add", "-q", "-b", &branch, wt_str]);
        wt
    }

    /// Writes `file` in `dir` and commits it with `git commit` (hooks fire); returns stderr.
    pub fn commit_in(&self, dir: &Path, file: &str, subject: &str) -> String {
        std::fs::write(dir.join(file), subject).expect("write");
        self.git_in(dir, &["add", "-A"]);
        let out = self.git_output(dir, &["commit", "-q", "-m", subject]);
        assert!(out.status.success(), "git commit failed: {}", stderr(&out));
        stderr(&out)
    }

    /// `hooks status --json` run in `dir`.
    pub fn hooks_status_in(&self, dir: &Path) -> Value {
        let out = self.ok_in(dir, &["hooks", "status", "--json"]);
        serde_json::from_str(&out).expect("json")
    }

    /// The HistoryAdded events recorded so far.
    pub fn history(&self) -> Vec<Value> {
        of_type(&self.events(), "HistoryAdded")
            .into_iter()
            .cloned()
            .collect()
    }
}

/// The `state` of each hook in a `hooks status --json` report.
pub fn hook_states(report: &Value) -> Vec<String> {
    report["hooks"]
        .as_array()
        .expect("hooks")
        .iter()
        .map(|h| h["state"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// `chmod 755`.
pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
