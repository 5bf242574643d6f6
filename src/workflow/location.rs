//! Where a command runs: the worktree it runs in, the main checkout (where `kitty-specs/`,
//! `.kittify/` and `.worktrees/` live), this worktree's git dir and branch, and the project
//! slug a new identity defaults to. Computed in one place for emission, workspaces, `init` and
//! the hooks.

use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;

use super::emit::slugify;
use crate::store::EventLog;

/// "Where am I" for one repository.
#[derive(Debug, Clone)]
pub struct Location {
    /// The worktree the command runs in (`dir` itself for a repository without a work tree).
    pub worktree_root: PathBuf,
    /// The main checkout: the parent of the common `.git` dir, else the worktree root.
    pub main_root: PathBuf,
    /// This worktree's own git dir (a linked worktree's is under `<common>/worktrees/`).
    pub git_dir: PathBuf,
    /// The checked-out branch (short name), if HEAD is on one.
    pub branch: Option<String>,
}

impl Location {
    /// The location of the repository `log` was opened in; `dir` stands in for the worktree
    /// root when the repository has no work tree.
    pub fn of(log: &EventLog, dir: &Path) -> Location {
        let repo = log.repo();
        let worktree_root = repo
            .workdir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.to_path_buf());
        let main_root =
            main_worktree_root(log.common_dir()).unwrap_or_else(|| worktree_root.clone());
        let branch = repo
            .head_name()
            .ok()
            .flatten()
            .map(|n| n.shorten().to_str_lossy().into_owned());
        Location {
            worktree_root,
            main_root,
            git_dir: repo.git_dir().to_path_buf(),
            branch,
        }
    }

    /// The slug a new project identity gets: the main checkout's directory name, slugified.
    pub fn default_slug(&self) -> Option<String> {
        self.main_root
            .file_name()
            .map(|n| slugify(&n.to_string_lossy()))
            .filter(|s| !s.is_empty())
    }

    /// Whether this repository holds a spec-kitty project (`kitty-specs/` or `.kittify/` in the
    /// main checkout). Hooks installed in a shared hooks directory do nothing elsewhere.
    pub fn has_project(&self) -> bool {
        self.main_root.join("kitty-specs").is_dir() || self.main_root.join(".kittify").is_dir()
    }
}

/// The main checkout of a repository whose common dir is `<root>/.git`.
pub fn main_worktree_root(common_dir: &Path) -> Option<PathBuf> {
    (common_dir.file_name()? == ".git").then(|| common_dir.parent().map(Path::to_path_buf))?
}
