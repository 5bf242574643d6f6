//! The git hooks, fired by real `git commit`, `git merge` and `git worktree add`: what they
//! record, that they keep pre-existing hooks working, core.hooksPath, hook managers, and
//! SPEC_KITTY_HOOKS=0.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::project::*;
use serde_json::Value;

fn branch(wp: &str) -> String {
    format!("{FEATURE}-{wp}")
}

/// `git worktree add -b <WP branch> .worktrees/<…>` — the plain-git way to start a WP.
fn add_worktree(p: &TestProject, wp: &str) -> PathBuf {
    let wt = p.worktree(wp);
    let out = p.git_output(
        &p.root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            &branch(wp),
            wt.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("spec-kitty"),
        "hooks are silent"
    );
    wt
}

fn commit_in(p: &TestProject, dir: &Path, file: &str, subject: &str) -> String {
    std::fs::write(dir.join(file), subject).unwrap();
    p.git_in(dir, &["add", "-A"]);
    let out = p.git_output(dir, &["commit", "-q", "-m", subject]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("spec-kitty"),
        "hooks are silent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.git_in(dir, &["rev-parse", "HEAD"]).trim().to_owned()
}

fn history(p: &TestProject) -> Vec<Value> {
    of_type(&p.events(), "HistoryAdded")
        .into_iter()
        .cloned()
        .collect()
}

fn status_json(p: &TestProject) -> Value {
    p.json(&["hooks", "status", "--json"])
}

fn states(report: &Value) -> Vec<String> {
    report["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn git_worktree_add_on_a_wp_branch_moves_it_to_doing_and_commits_are_recorded_once() {
    let p = TestProject::new();
    p.ok(&["hooks", "install"]);
    let wt = add_worktree(&p, "WP01");
    let events = p.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(transition(&events[0]), t("WP01", "planned", "doing"));
    assert_eq!(events[0]["payload"]["changed_by"], "Test User");

    let sha = commit_in(&p, &wt, "factory.py", "Add the event factory");
    let h = history(&p);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["payload"]["wp_id"], "WP01");
    assert_eq!(h[0]["payload"]["entry_type"], "note");
    assert_eq!(
        h[0]["payload"]["entry_content"],
        format!("commit {} Add the event factory", &sha[..12])
    );
    assert_eq!(h[0]["payload"]["author"], "Test User");
    assert_eq!(h[0]["payload"]["feature_slug"], FEATURE);
    assert_eq!(h[0]["git_branch"], branch("WP01"));

    // A commit on main is not a WP's: nothing. Running the hook again for the same commit: nothing.
    commit_in(&p, &p.root, "notes.txt", "main work");
    p.ok_in(&wt, &["hooks", "run", "post-commit"]);
    assert_eq!(history(&p).len(), 1);
}

#[test]
fn a_rebase_replaying_commits_does_not_flood_the_log() {
    let p = TestProject::new();
    p.ok(&["hooks", "install"]);
    let wt = add_worktree(&p, "WP02");
    for i in 0..3 {
        commit_in(&p, &wt, &format!("f{i}.txt"), &format!("WP02 step {i}"));
    }
    assert_eq!(history(&p).len(), 3);
    commit_in(&p, &p.root, "main.txt", "main moves on");
    let out = p.git_output(&wt, &["rebase", "-q", "main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        history(&p).len(),
        3,
        "the replayed commits are not recorded again"
    );
    // The next real commit is.
    commit_in(&p, &wt, "after.txt", "after the rebase");
    assert_eq!(history(&p).len(), 4);
}

#[test]
fn git_merge_of_a_wp_branch_into_its_target_moves_it_to_for_review() {
    let p = TestProject::new();
    p.ok(&["hooks", "install"]);
    let wt = add_worktree(&p, "WP01");
    commit_in(&p, &wt, "factory.py", "factory");
    // A merge commit (main moved on), not only a fast-forward.
    commit_in(&p, &p.root, "main.txt", "main moves on");
    let before = p.events().len();
    let out = p.git_output(&p.root, &["merge", "-q", "--no-edit", &branch("WP01")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = p.events_since(before);
    assert_eq!(new.len(), 1, "{new:#?}");
    assert_eq!(transition(&new[0]), t("WP01", "doing", "for_review"));

    // Merging a branch that is no WP's records nothing.
    p.git(&["switch", "-q", "-c", "topic"]);
    commit_in(&p, &p.root, "topic.txt", "topic");
    p.git(&["switch", "-q", "main"]);
    let before = p.events().len();
    p.git(&["merge", "-q", "--no-edit", "topic"]);
    assert_eq!(p.events().len(), before);
}

#[test]
fn with_hooks_installed_implement_and_merge_still_record_each_transition_once() {
    let p = TestProject::new();
    p.ok(&["hooks", "install"]);
    p.ok(&["implement", "WP01"]);
    commit_in(&p, &p.worktree("WP01"), "factory.py", "factory");
    p.ok(&["merge", "WP01"]);
    let moves: Vec<_> = of_type(&p.events(), "WPStatusChanged")
        .into_iter()
        .map(transition)
        .collect();
    assert_eq!(
        moves,
        vec![
            t("WP01", "planned", "doing"),
            t("WP01", "doing", "for_review")
        ]
    );
    assert_eq!(history(&p).len(), 1);
}

#[test]
fn a_pre_existing_hook_still_runs_with_its_arguments_and_status_and_uninstall_restores_it() {
    let p = TestProject::new();
    let log = p.root.join("old-hook.log");
    let hooks = p.root.join(".git/hooks");
    // post-checkout's status becomes `git checkout`'s (and `git worktree add`'s): it must pass
    // through the stub unchanged.
    let original = format!(
        "#!/bin/sh\necho \"post-checkout $*\" >> '{}'\nexit ${{EXIT_WITH:-0}}\n",
        log.display()
    );
    std::fs::write(hooks.join("post-checkout"), &original).unwrap();
    make_executable(&hooks.join("post-checkout"));
    let report = p.json(&["hooks", "install", "--json"]);
    assert!(
        report["hooks"][2]["chained"]
            .as_str()
            .unwrap()
            .ends_with(".spec-kitty-chained/post-checkout")
    );

    add_worktree(&p, "WP03");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.starts_with("post-checkout 0000000"), "{logged}");
    assert!(logged.trim_end().ends_with(" 1"), "{logged}");
    assert_eq!(transition(&p.events()[0]), t("WP03", "planned", "doing"));

    // The stub passes the old hook's exit status on.
    let mut cmd = Command::new(hooks.join("post-checkout"));
    cmd.current_dir(&p.root).args(["a", "b", "0"]);
    p.env(&mut cmd);
    cmd.env("EXIT_WITH", "3");
    assert_eq!(cmd.status().unwrap().code(), Some(3));

    p.ok(&["hooks", "uninstall"]);
    assert_eq!(
        std::fs::read_to_string(hooks.join("post-checkout")).unwrap(),
        original
    );
    assert!(!hooks.join(".spec-kitty-chained/post-checkout").exists());
    assert!(!hooks.join(".spec-kitty-chained").exists());
    assert!(!hooks.join("post-commit").exists());
    assert_eq!(states(&status_json(&p)), vec!["missing"; 3]);
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn core_hooks_path_is_respected_from_every_worktree_and_a_stray_stub_shows_as_bypassed() {
    let p = TestProject::new();
    p.ok(&["hooks", "install"]);
    let shared = p.home.join("team-hooks");
    p.git(&["config", "core.hooksPath", shared.to_str().unwrap()]);
    let report = status_json(&p);
    assert_eq!(states(&report), vec!["bypassed"; 3]);
    assert!(
        report["hooks"][0]["note"]
            .as_str()
            .unwrap()
            .contains("core.hooksPath")
    );

    let report = p.json(&["hooks", "install", "--json"]);
    assert_eq!(report["dir"], shared.to_str().unwrap());
    assert_eq!(states(&report), vec!["installed"; 3]);
    assert!(shared.join("post-commit").is_file());
    let wt = add_worktree(&p, "WP04");
    commit_in(&p, &wt, "finalize.py", "finalize");
    let events = p.events();
    assert_eq!(transition(&events[0]), t("WP04", "planned", "doing"));
    assert_eq!(history(&p).len(), 1);
    p.ok(&["hooks", "uninstall"]);
    assert!(
        !shared.join("post-commit").exists() && !p.root.join(".git/hooks/post-commit").exists()
    );
}

#[test]
fn a_relative_core_hooks_path_is_resolved_from_the_worktree_root() {
    let p = TestProject::new();
    p.git(&["config", "core.hooksPath", ".githooks"]);
    let report = p.json(&["hooks", "install", "--json"]);
    assert_eq!(report["dir"], p.root.join(".githooks").to_str().unwrap());
    assert!(
        report["advice"][0].as_str().unwrap().contains("relative"),
        "{report}"
    );
    // A WP branch checked out in the main checkout: its commits are recorded.
    p.git(&["switch", "-q", "-c", &branch("WP05")]);
    commit_in(&p, &p.root, "orchestrate.py", "orchestrate");
    assert_eq!(history(&p).len(), 1);
}

#[test]
fn spec_kitty_hooks_0_turns_our_part_off_but_not_the_chained_hook() {
    let p = TestProject::new();
    let log = p.root.join("old-hook.log");
    let hooks = p.root.join(".git/hooks");
    std::fs::write(
        hooks.join("post-commit"),
        format!("#!/bin/sh\necho ran >> '{}'\n", log.display()),
    )
    .unwrap();
    make_executable(&hooks.join("post-commit"));
    p.ok(&["hooks", "install"]);
    let wt = add_worktree(&p, "WP06");
    let before = p.events().len();
    std::fs::write(wt.join("x.txt"), "x").unwrap();
    p.git_in(&wt, &["add", "-A"]);
    let mut cmd = Command::new("git");
    cmd.current_dir(&wt).args(["commit", "-q", "-m", "quiet"]);
    p.env(&mut cmd);
    cmd.env("SPEC_KITTY_HOOKS", "0");
    assert!(cmd.status().unwrap().success());
    assert_eq!(p.events().len(), before);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\n");

    let mut cmd = Command::new(BIN);
    cmd.current_dir(&p.root).args(["hooks", "status", "--json"]);
    p.env(&mut cmd);
    cmd.env("SPEC_KITTY_HOOKS", "0");
    let report: Value = serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap();
    assert_eq!(report["disabled_by_env"], true);
    assert_eq!(states(&report), vec!["bypassed"; 3]);
}

#[test]
fn husky_is_recognised_and_told_exactly_what_to_add() {
    let p = TestProject::new();
    p.git(&["config", "core.hooksPath", ".husky/_"]);
    // What `husky` writes: one dispatcher per hook in .husky/_ (not committed).
    std::fs::create_dir_all(p.root.join(".husky/_")).unwrap();
    for h in ["post-commit", "post-merge", "post-checkout"] {
        let f = p.root.join(".husky/_").join(h);
        std::fs::write(&f, "#!/usr/bin/env sh\n. \"$(dirname \"$0\")/h\"").unwrap();
        make_executable(&f);
    }
    let report = p.json(&["hooks", "install", "--json"]);
    assert_eq!(report["manager"]["name"], "husky");
    assert!(
        !std::fs::read_to_string(p.root.join(".husky/_/post-commit"))
            .unwrap()
            .contains("spec-kitty"),
        "husky's directory is left alone"
    );
    let advice = report["advice"][0].as_str().unwrap();
    assert!(
        advice.contains(".husky/post-commit") && advice.contains("hooks run post-commit \"$@\""),
        "{advice}"
    );
    assert_eq!(states(&report), vec!["missing"; 3]);
    // Once the line is in husky's script, status says installed.
    let line = advice.split(": ").last().unwrap();
    std::fs::create_dir_all(p.root.join(".husky")).unwrap();
    std::fs::write(p.root.join(".husky/post-commit"), format!("{line}\n")).unwrap();
    assert_eq!(status_json(&p)["hooks"][0]["state"], "installed");
}

#[test]
fn lefthook_hooks_are_chained_and_the_config_to_add_is_printed() {
    let p = TestProject::new();
    p.commit_file(
        "lefthook.yml",
        "pre-commit:\n  commands:\n    lint:\n      run: echo lint\n",
        "lefthook",
    );
    let hooks = p.root.join(".git/hooks");
    std::fs::write(
        hooks.join("post-commit"),
        "#!/bin/sh\n# lefthook\ncall_lefthook run \"post-commit\" \"$@\"\n",
    )
    .unwrap();
    make_executable(&hooks.join("post-commit"));
    let report = p.json(&["hooks", "install", "--json"]);
    assert_eq!(report["manager"]["name"], "lefthook");
    assert!(hooks.join(".spec-kitty-chained/post-commit").is_file());
    let advice = report["advice"][0].as_str().unwrap();
    assert!(
        advice.contains("post-checkout:\n  commands:\n    spec-kitty:\n      run: "),
        "{advice}"
    );
}

#[test]
fn init_creates_the_identity_and_installs_hooks_only_when_told_or_asked() {
    let p = TestProject::new();
    // No identity yet in this copy.
    p.commit_file(".kittify/config.yaml", "vcs: git\n", "no identity");
    let out = p.json(&["init", "--json"]);
    assert_eq!(out["identity_created"], true);
    assert_eq!(out["hooks"], "not_asked");
    let text = std::fs::read_to_string(p.root.join(".kittify/config.yaml")).unwrap();
    assert!(text.starts_with("vcs: git\nproject:\n  uuid: "), "{text}");
    assert!(text.contains(out["project_uuid"].as_str().unwrap()));
    let said = p.ok(&["init"]);
    assert!(said.contains("spec-kitty hooks install"), "{said}");
    assert!(!p.root.join(".git/hooks/post-commit").exists());

    let out = p.json(&["init", "--hooks", "--json"]);
    assert_eq!(out["identity_created"], false);
    assert_eq!(out["hooks"], "installed");
    assert_eq!(states(&status_json(&p)), vec!["installed"; 3]);
    assert_eq!(
        p.json(&["init", "--no-hooks", "--json"])["hooks"],
        "skipped"
    );
}
