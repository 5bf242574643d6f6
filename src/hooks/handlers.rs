//! What each hook does (`spec-kitty hooks run <hook> <git's arguments>`).
//!
//! * post-commit on a WP branch: HistoryAdded `commit <short id> <subject>` — skipped while a
//!   rebase replays commits, and never twice for the same commit.
//! * post-merge that merged a WP branch into its feature's target branch: doing → for_review.
//! * post-checkout of a new linked worktree (previous HEAD all zeros) on a WP branch:
//!   planned → doing, so a plain `git worktree add` works like `spec-kitty implement`.
//!
//! Handlers only read git state through gix and write events through the one emit path; event
//! refs are written without running hooks, so a handler can never trigger itself.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

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
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    // Cheap checks on git's arguments first: most checkouts are not new worktrees.
    match hook {
        "post-checkout" if !(is_null_id(arg(0)) && arg(2) == "1") => {
            return Ok(HookOutcome::Skipped("not the creation of a worktree"));
        }
        "post-merge" if arg(0) == "1" => {
            return Ok(HookOutcome::Skipped("squash merge: nothing merged yet"));
        }
        // Most commits are not on a WP branch: tell from the HEAD file alone, before opening
        // the repository (which would also set up the project identity).
        "post-commit" if head_branch(dir).is_some_and(|b| parse_wp_branch(&b).is_none()) => {
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
    // A stub in a hooks directory shared by every repository (`hooks install --shared`) runs
    // everywhere: outside a spec-kitty project it does nothing (and creates no identity).
    match EventLog::discover(dir) {
        Ok(log) if Location::of(&log, dir).has_project() => {}
        Ok(_) => return Ok(HookOutcome::Skipped("no spec-kitty project here")),
        Err(_) => return Ok(HookOutcome::Skipped("not inside a repository")),
    }
    let ws = Workspace::open(dir)?;
    let outcome = match hook {
        "post-commit" => post_commit(&ws)?,
        "post-merge" => post_merge(&ws)?,
        _ => post_checkout(&ws)?,
    };
    Ok(match outcome {
        None => HookOutcome::Recorded(ws.emitted()),
        Some(why) => HookOutcome::Skipped(why),
    })
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
    let Some(target) = ws.branch().map(str::to_owned) else {
        return Ok(Some("detached HEAD"));
    };
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
    let Some((feature, wp)) = wp_of_branch(ws, &merged)? else {
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

/// The branch HEAD names, read straight from the files git keeps in `dir` (a worktree root,
/// where git runs hooks): `GIT_DIR` or `.git` (a directory, or a `gitdir:` file for a linked
/// worktree), then its `HEAD`. `Some("")` for a detached HEAD; `None` when unsure.
fn head_branch(dir: &Path) -> Option<String> {
    let git_dir = match std::env::var_os("GIT_DIR") {
        Some(d) => dir.join(d),
        None => {
            let dot_git = dir.join(".git");
            if dot_git.is_dir() {
                dot_git
            } else {
                let text = std::fs::read_to_string(&dot_git).ok()?;
                dir.join(text.strip_prefix("gitdir:")?.trim())
            }
        }
    };
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    Some(match head.strip_prefix("ref: refs/heads/") {
        Some(branch) => branch.to_owned(),
        None if head.bytes().all(|b| b.is_ascii_hexdigit()) => String::new(),
        None => return None,
    })
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
    fn reads_the_head_branch_of_a_worktree_root() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir(&git).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/001-demo-WP02\n").unwrap();
        if std::env::var_os("GIT_DIR").is_none() {
            assert_eq!(head_branch(dir.path()).as_deref(), Some("001-demo-WP02"));
            std::fs::write(git.join("HEAD"), "0123abcd\n").unwrap();
            assert_eq!(head_branch(dir.path()).as_deref(), Some(""));
        }
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
