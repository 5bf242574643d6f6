//! Where git looks for hooks in a repository: `core.hooksPath` (and which config file set it)
//! or `<common git dir>/hooks`, and the hook manager in charge, if any.

use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;
use serde::Serialize;

use super::HooksError;

/// A hook manager found in the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Manager {
    /// core.hooksPath points into `.husky`: husky regenerates that directory, so the line
    /// that calls spec-kitty belongs in the user scripts `.husky/<hook>`.
    Husky { scripts_dir: PathBuf },
    /// A lefthook config: its hook scripts are chained; `lefthook install` would replace the
    /// stubs, so the config should call spec-kitty too.
    Lefthook { config: PathBuf },
    /// A pre-commit config: its hook scripts are chained (a later `pre-commit install` keeps
    /// our stub as `<hook>.legacy` and still runs it).
    PreCommit { config: PathBuf },
}

/// Where git looks for hooks in this repository.
#[derive(Debug, Clone, Serialize)]
pub struct HooksLocation {
    /// The worktree the command runs in.
    pub worktree_root: PathBuf,
    /// The common git dir shared by every worktree.
    pub common_dir: PathBuf,
    /// `<common git dir>/hooks`, git's default.
    pub default_dir: PathBuf,
    /// The raw `core.hooksPath`, if set.
    pub hooks_path: Option<String>,
    /// Which config set `core.hooksPath`.
    pub hooks_path_origin: Option<HooksPathOrigin>,
    /// The directory git runs hooks from.
    pub dir: PathBuf,
    pub manager: Option<Manager>,
}

/// Which git configuration set `core.hooksPath`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigScope {
    /// The repository's own `.git/config` (or a worktree's `config.worktree`).
    Repository,
    /// The user's global config (`~/.gitconfig`, `~/.config/git/config`, GIT_CONFIG_GLOBAL).
    Global,
    /// The system's (`/etc/gitconfig`) or the git installation's.
    System,
    /// The command line or the environment (`git -c`, GIT_CONFIG_COUNT).
    Environment,
}

impl ConfigScope {
    /// Global and system configs apply to every repository on the machine: a hooks directory
    /// they name is shared.
    pub fn is_shared(self) -> bool {
        matches!(self, ConfigScope::Global | ConfigScope::System)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConfigScope::Repository => "repository",
            ConfigScope::Global => "global",
            ConfigScope::System => "system",
            ConfigScope::Environment => "environment",
        }
    }

    fn of(source: gix::config::Source) -> ConfigScope {
        use gix::config::Source;
        match source {
            Source::Local | Source::Worktree => ConfigScope::Repository,
            Source::User | Source::Git => ConfigScope::Global,
            Source::System | Source::GitInstallation => ConfigScope::System,
            Source::Env | Source::Cli | Source::Api | Source::EnvOverride => {
                ConfigScope::Environment
            }
        }
    }
}

/// Where the effective `core.hooksPath` was set.
#[derive(Debug, Clone, Serialize)]
pub struct HooksPathOrigin {
    pub scope: ConfigScope,
    /// The config file (an included file when set through `include.path`), if known.
    pub file: Option<PathBuf>,
}

/// Finds the hooks directory of the repository containing `dir`.
pub fn locate(dir: &Path) -> Result<HooksLocation, HooksError> {
    let repo = gix::discover(dir).map_err(|_| HooksError::NotARepository {
        path: dir.to_path_buf(),
    })?;
    let worktree_root = repo
        .workdir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo.git_dir().to_path_buf());
    let default_dir = repo.common_dir().join("hooks");
    let (hooks_path, hooks_path_origin) = match hooks_path_setting(&repo) {
        Some((value, origin)) => (Some(value), Some(origin)),
        None => (None, None),
    };
    let dir = match &hooks_path {
        None => default_dir.clone(),
        Some(p) => resolve_hooks_path(p, &worktree_root),
    };
    let manager = detect_manager(&worktree_root, hooks_path.as_deref());
    Ok(HooksLocation {
        worktree_root,
        common_dir: repo.common_dir().to_path_buf(),
        default_dir,
        hooks_path,
        hooks_path_origin,
        dir,
        manager,
    })
}

impl HooksLocation {
    /// The directory git runs hooks from in the worktree `root`: a relative `core.hooksPath`
    /// is resolved in each worktree on its own.
    pub fn dir_in(&self, root: &Path) -> PathBuf {
        match &self.hooks_path {
            None => self.default_dir.clone(),
            Some(p) => resolve_hooks_path(p, root),
        }
    }

    /// Every worktree of the repository whose directory exists: the main checkout first (when
    /// there is one), then the linked worktrees.
    pub fn worktrees(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if self.common_dir.file_name().is_some_and(|n| n == ".git")
            && let Some(main) = self.common_dir.parent()
        {
            out.push(main.to_path_buf());
        }
        let mut linked: Vec<PathBuf> = std::fs::read_dir(self.common_dir.join("worktrees"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("gitdir")).ok())
            .filter_map(|t| Path::new(t.trim()).parent().map(Path::to_path_buf))
            .filter(|p| p.is_dir())
            .collect();
        linked.sort();
        out.extend(linked);
        if out.is_empty() {
            out.push(self.worktree_root.clone());
        }
        out
    }
}

/// The effective `core.hooksPath` (the last one git reads, as git resolves it) and where it was
/// set.
fn hooks_path_setting(repo: &gix::Repository) -> Option<(String, HooksPathOrigin)> {
    let config = repo.config_snapshot();
    let (value, meta) = config
        .plumbing()
        .sections_by_name("core")?
        .filter(|s| s.header().subsection_name().is_none())
        .filter_map(|s| Some((s.value("hooksPath")?, s.meta().clone())))
        .last()?;
    let value = value.to_str_lossy().trim().to_owned();
    (!value.is_empty()).then(|| {
        let origin = HooksPathOrigin {
            scope: ConfigScope::of(meta.source),
            file: meta.path.clone(),
        };
        (value, origin)
    })
}

fn resolve_hooks_path(value: &str, worktree_root: &Path) -> PathBuf {
    if let Some(rest) = value.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let path = PathBuf::from(value);
    if path.is_absolute() {
        path
    } else {
        worktree_root.join(path)
    }
}

fn detect_manager(root: &Path, hooks_path: Option<&str>) -> Option<Manager> {
    if hooks_path.is_some_and(|p| p.split(['/', '\\']).any(|c| c == ".husky")) {
        return Some(Manager::Husky {
            scripts_dir: root.join(".husky"),
        });
    }
    for name in [
        "lefthook.yml",
        ".lefthook.yml",
        "lefthook.yaml",
        ".lefthook.yaml",
        "lefthook.toml",
        "lefthook.json",
    ] {
        if root.join(name).is_file() {
            return Some(Manager::Lefthook {
                config: root.join(name),
            });
        }
    }
    let pre_commit = root.join(".pre-commit-config.yaml");
    pre_commit
        .is_file()
        .then_some(Manager::PreCommit { config: pre_commit })
}
