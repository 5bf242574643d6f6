//! What each hook does (`spec-kitty hooks run <hook> <git's arguments>`).
//!
//! * post-commit on a WP branch: HistoryAdded `commit <short id> <subject>` — skipped while a
//!   rebase replays commits, and never twice for the same commit.
//! * post-merge that merged a WP branch into its feature's target branch: doing → for_review.
//!   A squash merge (`git merge --squash`, then `git commit`) is the same merge: post-merge
//!   notes which WP branch was squashed (from `SQUASH_MSG`), and the post-commit of the
//!   squash commit records the transition.
//! * post-checkout of a new linked worktree (previous HEAD all zeros) on a WP branch:
//!   planned → doing, so a plain `git worktree add` works like `spec-kitty implement`.
//!
//! Handlers only read git state through gix and write events through the one emit path; event
//! refs are written without running hooks, so a handler can never trigger itself. The
//! repository is the one git runs the hook for: `GIT_DIR` when git set it (a linked worktree,
//! `git --git-dir=… --work-tree=…`), else the hook's working directory.

use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;

use super::HooksError;
use crate::event::{HistoryEntryType, Lane, Payload};
use crate::project::{Feature, ProjectError, parse_wp_branch};
use crate::store::EventLog;
use crate::workflow::{Emitted, Location, WorkflowError, Workspace, transition};

/// What a hook did.
#[derive(Debug)]
pub enum HookOutcome {
    Recorded(Vec<Emitted>),
    /// Nothing to do, and why (for debugging; hooks stay silent about it).
    Skipped(&'static str),
}

/// Runs the handler of `hook` in the repository containing `dir`.
pub fn run(hook: &str, args: &[String], dir: &Path) -> Result<HookOutcome, WorkflowError> {
    if super::disabled_by_env() {
        return Ok(HookOutcome::Skipped("SPEC_KITTY_HOOKS=0"));
    }
    let git_dir_env = std::env::var_os("GIT_DIR").filter(|v| !v.is_empty());
    let git_dir = git_dir_of(dir, git_dir_env.as_deref());
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    // Cheap checks on git's arguments first: most checkouts are not new worktrees.
    match hook {
        "post-checkout" if !(is_null_id(arg(0)) && arg(2) == "1") => {
            return Ok(HookOutcome::Skipped("not the creation of a worktree"));
        }
        // Most commits are not on a WP branch (nor the commit of a squash merge): tell from
        // the files in the git dir alone, before opening the repository (which would also set
        // up the project identity).
        "post-commit"
            if git_dir.as_deref().is_some_and(|g| {
                !g.join(SQUASH_NOTE).exists()
                    && head_branch(g).is_some_and(|b| parse_wp_branch(&b).is_none())
            }) =>
        {
            return Ok(HookOutcome::Skipped("not a WP branch"));
        }
        "post-commit" | "post-merge" | "post-checkout" => {}
        other => {
            return Err(WorkflowError::bad_argument(
                HooksError::UnknownHook(other.to_owned()).to_string(),
                "reinstall the stubs with `spec-kitty hooks install`",
            ));
        }
    }
    let repo_dir = repo_dir(dir, git_dir_env.as_deref());
    // A stub in a hooks directory shared by every repository (`hooks install --shared`) runs
    // everywhere: outside a spec-kitty project it does nothing (and creates no identity).
    // Told by the files alone when possible (a hook stays cheap), else by opening the repo.
    let has_project = match git_dir.as_deref().and_then(project_from_files) {
        Some(known) => known,
        None => match EventLog::discover(&repo_dir) {
            Ok(log) => Location::of(&log, &repo_dir).has_project(),
            Err(_) => return Ok(HookOutcome::Skipped("not inside a repository")),
        },
    };
    if !has_project {
        return Ok(HookOutcome::Skipped("no spec-kitty project here"));
    }
    let ws = Workspace::open(&repo_dir)?;
    let outcome = match hook {
        "post-commit" => post_commit(&ws)?,
        "post-merge" if arg(0) == "1" => note_squash(&ws)?,
        "post-merge" => post_merge(&ws)?,
        _ => post_checkout(&ws)?,
    };
    Ok(match outcome {
        None => HookOutcome::Recorded(ws.emitted()),
        Some(why) => HookOutcome::Skipped(why),
    })
}

/// The file (in the worktree's git dir) where post-merge notes a squash merge for the
/// post-commit of the squash commit: `<squashed branch tip> <HEAD at the merge>`.
const SQUASH_NOTE: &str = "spec-kitty-squash";

/// The directory to open the repository from: `GIT_DIR` as git set it for the hook (relative
/// to the hook's working directory), else that directory.
fn repo_dir(dir: &Path, git_dir_env: Option<&OsStr>) -> PathBuf {
    git_dir_env.map_or_else(|| dir.to_path_buf(), |g| dir.join(g))
}

/// `Ok(None)` = events recorded; `Ok(Some(why))` = skipped.
type Handled = Result<Option<&'static str>, WorkflowError>;

fn is_null_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == b'0')
}

/// The feature and WP a branch names, when both exist in this project.
fn wp_of_branch(ws: &Workspace, branch: &str) -> Result<Option<(Feature, String)>, WorkflowError> {
    let Some((slug, wp)) = parse_wp_branch(branch) else {
        return Ok(None);
    };
    let feature = match ws.project().load_feature(slug) {
        Ok(f) => f,
        Err(ProjectError::UnknownFeature { .. } | ProjectError::NoSpecs { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if feature.work_packages.iter().all(|w| w.id != wp) {
        return Ok(None);
    }
    Ok(Some((feature, wp.to_owned())))
}

fn post_commit(ws: &Workspace) -> Handled {
    if let Some(handled) = squash_commit(ws) {
        return handled;
    }
    let Some(branch) = ws.branch().map(str::to_owned) else {
        return Ok(Some("detached HEAD"));
    };
    let git_dir = ws.git_dir();
    if git_dir.join("rebase-merge").is_dir() || git_dir.join("rebase-apply").is_dir() {
        return Ok(Some("a rebase is replaying commits"));
    }
    let Some((slug, wp)) = parse_wp_branch(&branch) else {
        return Ok(Some("not a WP branch"));
    };
    if !ws.project().has_work_package(slug, wp) {
        return Ok(Some("not a WP of this project"));
    }
    let repo = ws.log().repo();
    let git_err = |what: &str, e: &dyn std::fmt::Display| {
        WorkflowError::from(crate::store::StoreError::Git {
            action: what.to_owned(),
            message: e.to_string(),
        })
    };
    let head = repo
        .head_commit()
        .map_err(|e| git_err("reading the new commit", &e))?;
    let short = head.id().to_hex_with_len(12).to_string();
    if ws.state()?.commit_recorded(slug, wp, &short) {
        return Ok(Some("commit already recorded"));
    }
    let message = head
        .message()
        .map_err(|e| git_err("reading the commit message", &e))?;
    let subject = message.summary().to_str_lossy().trim().to_owned();
    let author = head
        .author()
        .map(|a| a.name.to_str_lossy().trim().to_owned())
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| ws.actor(None));
    ws.emit(
        &Payload::HistoryAdded {
            wp_id: wp.to_owned(),
            entry_type: HistoryEntryType::Note,
            entry_content: format!("commit {short} {subject}").trim_end().to_owned(),
            author,
            feature_slug: Some(slug.to_owned()),
        },
        None,
    );
    Ok(None)
}

fn post_merge(ws: &Workspace) -> Handled {
    let Some(entry) = last_reflog_message(&ws.git_dir().join("logs").join("HEAD")) else {
        return Ok(Some("no reflog entry"));
    };
    // `merge <what>: Fast-forward` / `merge <what>: Merge made by the 'ort' strategy.`
    let Some(merged) = entry
        .strip_prefix("merge ")
        .and_then(|rest| rest.split_once(':'))
        .map(|(what, _)| what.trim().to_owned())
    else {
        return Ok(Some("the last HEAD move was not a merge of a branch"));
    };
    merged_into_head(ws, &merged)
}

/// `merged` (a branch) was merged into the branch HEAD is on: doing → for_review when it is a
/// WP branch and HEAD is its feature's target branch.
fn merged_into_head(ws: &Workspace, merged: &str) -> Handled {
    let Some(target) = ws.branch().map(str::to_owned) else {
        return Ok(Some("detached HEAD"));
    };
    let Some((feature, wp)) = wp_of_branch(ws, merged)? else {
        return Ok(Some("the merged branch is not a WP branch"));
    };
    if feature.target_branch != target {
        return Ok(Some("merged somewhere other than the target branch"));
    }
    let wp = feature.work_package(&wp)?;
    if ws.lane(&feature, wp)? != Lane::Doing {
        return Ok(Some("the WP is not in doing"));
    }
    let actor = ws.actor(None);
    transition::change_lane(ws, &feature, wp, Lane::ForReview, &actor, None)?;
    Ok(None)
}

/// post-merge of `git merge --squash`: nothing is merged yet. Notes the squashed branch's tip
/// (the first `commit <id>` of `SQUASH_MSG`) and HEAD, for the squash commit's post-commit.
fn note_squash(ws: &Workspace) -> Handled {
    let git_dir = ws.git_dir();
    let Ok(msg) = std::fs::read_to_string(git_dir.join("SQUASH_MSG")) else {
        return Ok(Some("squash merge without SQUASH_MSG"));
    };
    let Some(tip) = msg
        .lines()
        .find_map(|l| l.strip_prefix("commit "))
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return Ok(Some("squash merge of nothing"));
    };
    let Ok(head) = ws.log().repo().head_id() else {
        return Ok(Some("squash merge onto an unborn branch"));
    };
    // HEAD's reflog length: anything that moves HEAD in between (a `git reset` that abandons
    // the squash, a checkout) adds entries, and the note no longer applies.
    let reflog_len = std::fs::metadata(git_dir.join("logs/HEAD")).map_or(0, |m| m.len());
    let note = format!("{tip} {head} {reflog_len}\n");
    let path = git_dir.join(SQUASH_NOTE);
    std::fs::write(&path, note).map_err(|e| {
        WorkflowError::from(crate::store::StoreError::Git {
            action: format!("noting the squash merge in {}", path.display()),
            message: e.to_string(),
        })
    })?;
    Ok(Some("squash merge noted; recorded when it is committed"))
}

/// post-commit after `git merge --squash`: when the new commit sits on the HEAD the squash was
/// made on, it is that merge — of the WP branch whose tip was squashed. The note is used once.
fn squash_commit(ws: &Workspace) -> Option<Handled> {
    let path = ws.git_dir().join(SQUASH_NOTE);
    let note = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    let mut parts = note.split_whitespace();
    let hex = |s: &str| gix::ObjectId::from_hex(s.as_bytes()).ok();
    let (tip, base) = (hex(parts.next()?)?, hex(parts.next()?)?);
    let reflog_len: u64 = parts.next()?.parse().ok()?;
    let head = ws.log().repo().head_commit().ok()?;
    let parent = head.parent_ids().next()?;
    let not_it = Some(Ok(Some(
        "a squash was noted, but this commit is not its commit",
    )));
    if parent != base {
        return not_it;
    }
    if let Some(moves) = reflog_lines_after(&ws.git_dir().join("logs/HEAD"), reflog_len)
        && moves != 1
    {
        return not_it;
    }
    let branches = ws.log().refs_under("refs/heads/").ok()?;
    let merged = branches.into_iter().find_map(|(name, id)| {
        let short = name.strip_prefix("refs/heads/")?;
        (id == tip && parse_wp_branch(short).is_some()).then(|| short.to_owned())
    })?;
    Some(merged_into_head(ws, &merged))
}

fn post_checkout(ws: &Workspace) -> Handled {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canon(ws.git_dir()) == canon(ws.log().common_dir()) {
        return Ok(Some("not a linked worktree"));
    }
    let Some(branch) = ws.branch().map(str::to_owned) else {
        return Ok(Some("detached HEAD"));
    };
    let Some((feature, wp)) = wp_of_branch(ws, &branch)? else {
        return Ok(Some("not a WP branch"));
    };
    let wp = feature.work_package(&wp)?;
    if ws.lane(&feature, wp)? != Lane::Planned {
        return Ok(Some("the WP is not planned"));
    }
    let actor = ws.actor(None);
    transition::change_lane(ws, &feature, wp, Lane::Doing, &actor, None)?;
    Ok(None)
}

/// The git dir of the worktree `dir` (where git runs hooks), from the files alone: `GIT_DIR`
/// when git set it (relative to `dir`), else `.git` (a directory, or a `gitdir:` file for a
/// linked worktree). `None` when unsure.
fn git_dir_of(dir: &Path, git_dir_env: Option<&OsStr>) -> Option<PathBuf> {
    if let Some(d) = git_dir_env {
        return Some(dir.join(d));
    }
    let dot_git = dir.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let text = std::fs::read_to_string(&dot_git).ok()?;
    Some(dir.join(text.strip_prefix("gitdir:")?.trim()))
}

/// Whether the repository of the worktree git dir `git_dir` holds a spec-kitty project, from
/// the files alone: its common dir (`commondir` of a linked worktree, else itself) is
/// `<main checkout>/.git`, and the main checkout has `kitty-specs/` or `.kittify/`. `None`
/// when the layout is another (a bare repository, a separate git dir).
fn project_from_files(git_dir: &Path) -> Option<bool> {
    let common = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(rel) => git_dir.join(rel.trim()),
        Err(_) => git_dir.to_path_buf(),
    };
    let common = std::fs::canonicalize(&common).ok()?;
    if common.file_name()? != ".git" || !common.join("HEAD").is_file() {
        return None;
    }
    let main = common.parent()?;
    Some(main.join("kitty-specs").is_dir() || main.join(".kittify").is_dir())
}

/// The branch the HEAD file of `git_dir` names: `Some("")` for a detached HEAD; `None` when
/// unsure.
fn head_branch(git_dir: &Path) -> Option<String> {
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    Some(match head.strip_prefix("ref: refs/heads/") {
        Some(branch) => branch.to_owned(),
        None if head.bytes().all(|b| b.is_ascii_hexdigit()) => String::new(),
        None => return None,
    })
}

/// How many entries a reflog file gained after its first `offset` bytes (`None` without one).
fn reflog_lines_after(path: &Path, offset: u64) -> Option<usize> {
    let mut file = std::fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    Some(
        tail.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
    )
}

/// The message of the last entry of a reflog file (reads only its tail).
fn last_reflog_message(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(8192);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.split_once('\t')?.1.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_head_branch_of_a_worktree_root_or_of_git_dir() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir(&git).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/001-demo-WP02\n").unwrap();
        let found = git_dir_of(dir.path(), None).unwrap();
        assert_eq!(found, git);
        assert_eq!(head_branch(&found).as_deref(), Some("001-demo-WP02"));
        std::fs::write(git.join("HEAD"), "0123abcd\n").unwrap();
        assert_eq!(head_branch(&found).as_deref(), Some(""));

        // A linked worktree: `.git` is a file naming its git dir.
        let wt = dir.path().join("wt");
        let wt_git = dir.path().join("common/worktrees/wt");
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::create_dir_all(&wt_git).unwrap();
        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", wt_git.display())).unwrap();
        std::fs::write(wt_git.join("HEAD"), "ref: refs/heads/001-demo-WP03\n").unwrap();
        let found = git_dir_of(&wt, None).unwrap();
        assert_eq!(head_branch(&found).as_deref(), Some("001-demo-WP03"));

        // GIT_DIR, as git sets it for a hook, wins over `.git`, relative to the hook's dir.
        let found = git_dir_of(dir.path(), Some(OsStr::new("common/worktrees/wt"))).unwrap();
        assert_eq!(found, wt_git);
        assert_eq!(head_branch(&found).as_deref(), Some("001-demo-WP03"));
        let abs = git_dir_of(&wt, Some(git.as_os_str())).unwrap();
        assert_eq!(abs, git);
        assert_eq!(repo_dir(&wt, Some(git.as_os_str())), git);
        assert_eq!(repo_dir(&wt, None), wt);
    }

    #[test]
    fn tells_a_project_from_the_files_of_main_and_linked_worktrees() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        let linked = git.join("worktrees/wt");
        std::fs::create_dir_all(&linked).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(linked.join("commondir"), "../..\n").unwrap();
        assert_eq!(project_from_files(&git), Some(false));
        assert_eq!(project_from_files(&linked), Some(false));
        std::fs::create_dir(dir.path().join("kitty-specs")).unwrap();
        assert_eq!(project_from_files(&git), Some(true));
        assert_eq!(project_from_files(&linked), Some(true));
        let bare = dir.path().join("bare.git");
        std::fs::create_dir(&bare).unwrap();
        assert_eq!(project_from_files(&bare), None);
    }

    #[test]
    fn reads_the_last_reflog_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("HEAD");
        std::fs::write(
            &path,
            "0000 1111 A <a@x> 1 +0000\tcommit (initial): init\n\
             1111 2222 A <a@x> 2 +0000\tmerge 001-demo-WP01: Fast-forward\n",
        )
        .unwrap();
        assert_eq!(
            last_reflog_message(&path).as_deref(),
            Some("merge 001-demo-WP01: Fast-forward")
        );
        assert!(is_null_id("0000000000000000000000000000000000000000"));
        assert!(!is_null_id("") && !is_null_id("00a0"));
    }
}
