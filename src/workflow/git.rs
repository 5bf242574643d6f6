//! The few git operations gix cannot do for us (creating worktrees, merging, rebasing), run as
//! `git` subprocesses with clear errors.
//!
//! Every call runs with `SPEC_KITTY_HOOKS=0`: the workflow action that runs git emits its own
//! events, so our hook handlers must not emit them a second time. Hooks the user had before
//! spec-kitty still run (the stubs chain them regardless of that variable). Variables that
//! would point git at another repository (`GIT_DIR`, `GIT_WORK_TREE`, …) are cleared, so a
//! command started from inside a hook still acts on the directory it names.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use miette::Diagnostic;

/// A git subprocess that failed, with what it said.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum GitError {
    #[error("cannot run git: {source}")]
    #[diagnostic(
        code(spec_kitty::git::missing),
        help("install git and make sure it is on PATH")
    )]
    Spawn { source: std::io::Error },

    #[error("`git {args}` failed in {}: {message}", dir.display())]
    #[diagnostic(
        code(spec_kitty::git::failed),
        help("run the same git command yourself to see the whole story, fix it, then retry")
    )]
    Failed {
        args: String,
        dir: PathBuf,
        message: String,
    },
}

/// How a merge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeResult {
    AlreadyUpToDate,
    FastForward,
    MergeCommit,
    /// Stopped on conflicts in these files; the repository is left as git left it.
    Conflict {
        files: Vec<String>,
    },
}

/// Runs git in one directory.
pub struct Git {
    dir: PathBuf,
}

impl Git {
    pub fn new(dir: impl Into<PathBuf>) -> Git {
        Git { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir).args(args);
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_PREFIX",
            "GIT_COMMON_DIR",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("SPEC_KITTY_HOOKS", "0")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_MERGE_AUTOEDIT", "no")
            .stdin(std::process::Stdio::null());
        cmd
    }

    fn output(&self, args: &[&str]) -> Result<Output, GitError> {
        self.command(args)
            .output()
            .map_err(|source| GitError::Spawn { source })
    }

    fn failed(&self, args: &[&str], out: &Output) -> GitError {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let message = if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        };
        GitError::Failed {
            args: args.join(" "),
            dir: self.dir.clone(),
            message: message
                .trim()
                .lines()
                .take(6)
                .collect::<Vec<_>>()
                .join(" / "),
        }
    }

    /// Runs git and returns its stdout, or the failure with its stderr.
    pub fn run(&self, args: &[&str]) -> Result<String, GitError> {
        let out = self.output(args)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(self.failed(args, &out))
        }
    }

    /// `git worktree add`: a new branch from `start` when `start` is given, else the existing
    /// `branch`.
    pub fn worktree_add(
        &self,
        path: &Path,
        branch: &str,
        start: Option<&str>,
    ) -> Result<(), GitError> {
        let path = path.to_string_lossy();
        match start {
            Some(start) => self.run(&["worktree", "add", "-q", "-b", branch, &path, start]),
            None => self.run(&["worktree", "add", "-q", &path, branch]),
        }
        .map(drop)
    }

    /// The files `git status --porcelain` lists (modified, staged or untracked).
    pub fn dirty_files(&self) -> Result<Vec<String>, GitError> {
        let out = self.run(&["status", "--porcelain", "--untracked-files=normal"])?;
        Ok(out
            .lines()
            .filter(|l| l.len() > 3)
            .map(|l| l[3..].to_owned())
            .collect())
    }

    /// Merges `branch` into the checked-out branch: fast-forward when possible, else a merge
    /// commit. Conflicts are reported, not resolved or aborted.
    pub fn merge(&self, branch: &str, message: &str) -> Result<MergeResult, GitError> {
        let moved = self.run_until_conflict(&["merge", "--no-edit", "-m", message, branch])?;
        Ok(match moved {
            Err(files) => MergeResult::Conflict { files },
            Ok(false) => MergeResult::AlreadyUpToDate,
            Ok(true) => {
                let parents = self.run(&["rev-list", "--parents", "-n", "1", "HEAD"])?;
                if parents.split_whitespace().count() > 2 {
                    MergeResult::MergeCommit
                } else {
                    MergeResult::FastForward
                }
            }
        })
    }

    /// Rebases the checked-out branch onto `upstream`; conflicts are reported and the rebase is
    /// left in progress for the user to continue or abort.
    pub fn rebase(&self, upstream: &str) -> Result<MergeResult, GitError> {
        Ok(match self.run_until_conflict(&["rebase", upstream])? {
            Err(files) => MergeResult::Conflict { files },
            Ok(false) => MergeResult::AlreadyUpToDate,
            Ok(true) => MergeResult::FastForward,
        })
    }

    /// Runs a merge-like command: `Ok(Ok(whether HEAD moved))`, or `Ok(Err(conflicted
    /// files))` when it stopped on conflicts; any other failure is an error.
    fn run_until_conflict(&self, args: &[&str]) -> Result<Result<bool, Vec<String>>, GitError> {
        let before = self.run(&["rev-parse", "HEAD"])?;
        let out = self.output(args)?;
        if !out.status.success() {
            let files = self.conflicted_files()?;
            if files.is_empty() {
                return Err(self.failed(args, &out));
            }
            return Ok(Err(files));
        }
        Ok(Ok(self.run(&["rev-parse", "HEAD"])? != before))
    }

    /// `git merge --abort` (used by orchestrate so that one conflict does not block the main
    /// checkout for every other work package).
    pub fn merge_abort(&self) -> Result<(), GitError> {
        self.run(&["merge", "--abort"]).map(drop)
    }

    fn conflicted_files(&self) -> Result<Vec<String>, GitError> {
        let out = self.run(&["diff", "--name-only", "--diff-filter=U"])?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// Stages everything and commits it; `Ok(false)` when there was nothing to commit.
    pub fn commit_all(&self, message: &str) -> Result<bool, GitError> {
        if self.dirty_files()?.is_empty() {
            return Ok(false);
        }
        self.run(&["add", "-A"])?;
        self.run(&["commit", "-q", "-m", message])?;
        Ok(true)
    }

    /// A local config value (`git config --get`), if set.
    pub fn config_get(&self, key: &str) -> Option<String> {
        self.run(&["config", "--get", key])
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    pub fn config_set(&self, key: &str, value: &str) -> Result<(), GitError> {
        self.run(&["config", key, value]).map(drop)
    }
}
