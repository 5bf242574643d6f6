//! spec-kitty's hooks next to the real hook managers (husky 9, lefthook 2, pre-commit 4): a
//! commit in a WP worktree records its event, and still does after the manager is installed
//! again; `hooks status` never says "installed" when a commit would record nothing.
//!
//! The managers come from their registries: `.ci/run` installs them (when npm / python3 are
//! there) into `target/hook-managers/` — `node_modules/.bin/{husky,lefthook}` and
//! `py/bin/pre-commit`. A test whose manager is not there says so and passes without running
//! (it never downloads anything itself).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::project::*;
use serde_json::Value;

/// The manager's executable, from `target/hook-managers/` or PATH; `None` (with a note on
/// stderr) when it is not installed.
fn manager(name: &str) -> Option<PathBuf> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/hook-managers");
    let local = match name {
        "pre-commit" => base.join("py/bin/pre-commit"),
        _ => base.join("node_modules/.bin").join(name),
    };
    if local.is_file() {
        return Some(local);
    }
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    });
    if on_path.is_none() {
        eprintln!(
            "skipped: {name} is not installed (`.ci/run` installs it into target/hook-managers)"
        );
    }
    on_path
}

/// Runs the manager in `dir` with the hermetic environment; asserts success.
fn run_manager(p: &TestProject, tool: &Path, dir: &Path, args: &[&str]) {
    let mut cmd = Command::new(tool);
    cmd.current_dir(dir).args(args);
    p.env(&mut cmd);
    let out = cmd.output().expect("run the hook manager");
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}{}",
        tool.display(),
        stdout(&out),
        stderr(&out)
    );
}

fn state_of(report: &Value, hook: &str) -> String {
    report["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == hook)
        .map(|h| h["state"].as_str().unwrap().to_owned())
        .unwrap()
}

/// Commits in `wt` and asserts that exactly one HistoryAdded was recorded for it.
fn commit_records(p: &TestProject, wt: &Path, file: &str) {
    let before = p.history().len();
    p.commit_in(wt, file, file);
    let history = p.history();
    assert_eq!(history.len(), before + 1, "one event for the commit");
    let content = history.last().unwrap()["payload"]["entry_content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(content.ends_with(file), "{content}");
}

const HOOK_TYPES: [&str; 6] = [
    "--hook-type",
    "post-commit",
    "--hook-type",
    "post-merge",
    "--hook-type",
    "post-checkout",
];

#[test]
fn pre_commit_reinstalled_over_the_stubs_keeps_recording_and_uninstall_stops_it() {
    let Some(pre_commit) = manager("pre-commit") else {
        return;
    };
    let p = TestProject::new();
    p.commit_file(".pre-commit-config.yaml", "repos: []\n", "pre-commit");
    let mut install = vec!["install"];
    install.extend(HOOK_TYPES);
    run_manager(&p, &pre_commit, &p.root, &install);
    let report = p.json(&["hooks", "install", "--json"]);
    assert_eq!(hook_states(&report), vec!["installed"; 3], "{report}");
    let wt = p.git_worktree_add("WP01");
    assert_eq!(transition(&p.events()[0]), t("WP01", "planned", "doing"));
    commit_records(&p, &wt, "one.txt");

    // pre-commit again: it keeps our stub as <hook>.legacy and runs it.
    run_manager(&p, &pre_commit, &p.root, &install);
    let hooks = p.root.join(".git/hooks");
    assert!(hooks.join("post-commit.legacy").is_file());
    let report = p.hooks_status_in(&wt);
    assert_eq!(hook_states(&report), vec!["installed"; 3], "{report}");
    assert_eq!(report["hooks"][0]["via"], "pre-commit");
    commit_records(&p, &wt, "two.txt");

    // Our install again: no both_exist, and still exactly one event per commit.
    let report = p.json(&["hooks", "install", "--json"]);
    assert_eq!(hook_states(&report), vec!["installed"; 3], "{report}");
    commit_records(&p, &wt, "three.txt");

    // Uninstall removes the .legacy stub too: nothing is recorded any more.
    p.ok(&["hooks", "uninstall"]);
    assert!(!hooks.join("post-commit.legacy").exists());
    assert!(!hooks.join(".spec-kitty-chained").exists());
    assert_eq!(
        state_of(&p.hooks_status_in(&p.root), "post-commit"),
        "missing"
    );
    let before = p.history().len();
    p.commit_in(&wt, "four.txt", "four");
    assert_eq!(p.history().len(), before);
}

#[test]
fn lefthook_with_the_printed_config_records_after_lefthook_install() {
    let Some(lefthook) = manager("lefthook") else {
        return;
    };
    let p = TestProject::new();
    let base = "pre-commit:\n  commands:\n    lint:\n      run: 'true'\n";
    p.commit_file("lefthook.yml", base, "lefthook");
    run_manager(&p, &lefthook, &p.root, &["install"]);
    let report = p.json(&["hooks", "install", "--json"]);
    let advice = report["advice"].as_array().unwrap();
    let snippet = advice
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| {
            a.split_once("add to lefthook.yml:\n")
                .map(|(_, y)| y.to_owned())
        })
        .expect("the config to add");

    // The user pastes it: valid YAML that lefthook accepts.
    p.commit_file(
        "lefthook.yml",
        &format!("{base}{snippet}\n"),
        "lefthook: spec-kitty",
    );
    let wt = p.git_worktree_add("WP01");
    assert_eq!(transition(&p.events()[0]), t("WP01", "planned", "doing"));
    commit_records(&p, &wt, "one.txt");

    // lefthook install now renames our stubs to .old; its config calls spec-kitty instead.
    run_manager(&p, &lefthook, &p.root, &["install"]);
    let report = p.hooks_status_in(&wt);
    assert_eq!(hook_states(&report), vec!["installed"; 3], "{report}");
    assert_eq!(report["hooks"][0]["via"], "lefthook");
    commit_records(&p, &wt, "two.txt");

    // Our install again: leftovers gone, lefthook's hooks left to lefthook.
    let report = p.json(&["hooks", "install", "--json"]);
    assert_eq!(hook_states(&report), vec!["installed"; 3], "{report}");
    assert!(!p.root.join(".git/hooks/post-commit.old").exists());
    commit_records(&p, &wt, "three.txt");
}

#[test]
fn lefthook_install_without_our_config_is_reported_not_installed() {
    let Some(lefthook) = manager("lefthook") else {
        return;
    };
    let p = TestProject::new();
    p.commit_file(
        "lefthook.yml",
        "post-commit:\n  commands:\n    hello:\n      run: 'true'\n",
        "lefthook",
    );
    run_manager(&p, &lefthook, &p.root, &["install"]);
    p.ok(&["hooks", "install"]);
    assert!(
        p.root
            .join(".git/hooks/.spec-kitty-chained/post-commit")
            .is_file()
    );
    run_manager(&p, &lefthook, &p.root, &["install"]);
    assert!(p.root.join(".git/hooks/post-commit.old").is_file());
    let report = p.hooks_status_in(&p.root);
    assert_ne!(state_of(&report, "post-commit"), "installed", "{report}");
    let note = report["hooks"][0]["note"].as_str().unwrap();
    assert!(note.contains("post-commit.old"), "{note}");
    // Nothing runs the hook chained next to the stub lefthook replaced: not reported.
    assert!(report["hooks"][0]["chained"].is_null(), "{report}");
    assert!(report["advice"][0].as_str().unwrap().contains("run: '"));
}

#[test]
fn husky_in_a_wp_worktree_is_reported_until_husky_runs_there_then_records() {
    let Some(husky) = manager("husky") else {
        return;
    };
    let p = TestProject::new();
    run_manager(&p, &husky, &p.root, &[]);
    assert_eq!(p.git(&["config", "core.hooksPath"]).trim(), ".husky/_");
    let report = p.json(&["hooks", "install", "--json"]);
    assert_eq!(report["manager"]["name"], "husky");
    // The user adds the printed lines to husky's scripts and commits them.
    for a in report["advice"].as_array().unwrap() {
        let a = a.as_str().unwrap();
        if let Some((file, line)) = a
            .strip_prefix("husky manages this repository's hooks: add this line to ")
            .and_then(|r| r.split_once(": "))
        {
            std::fs::write(file, format!("{line}\n")).unwrap();
        }
    }
    p.git(&["add", "-A"]);
    p.git(&["commit", "-q", "-m", "husky: spec-kitty"]);
    assert_eq!(
        hook_states(&p.hooks_status_in(&p.root)),
        vec!["installed"; 3]
    );

    // A WP worktree: husky's directory is not committed, so git runs no hook there.
    let wt = p.git_worktree_add("WP01");
    let report = p.hooks_status_in(&wt);
    assert_ne!(state_of(&report, "post-commit"), "installed", "{report}");
    let main = p.hooks_status_in(&p.root);
    assert_ne!(state_of(&main, "post-commit"), "installed", "{main}");
    let advice = main["advice"].as_array().unwrap();
    assert!(
        advice.iter().any(|a| a
            .as_str()
            .unwrap()
            .contains("run `npx husky` in each WP worktree")),
        "{main}"
    );
    let before = p.history().len();
    p.commit_in(&wt, "lost.txt", "lost");
    assert_eq!(p.history().len(), before, "husky: no hook ran");

    // The measured remedy: run husky in the worktree.
    run_manager(&p, &husky, &wt, &[]);
    let report = p.hooks_status_in(&wt);
    assert_eq!(state_of(&report, "post-commit"), "installed", "{report}");
    commit_records(&p, &wt, "one.txt");

    // husky again in the main checkout: still recorded from the worktree.
    run_manager(&p, &husky, &p.root, &[]);
    commit_records(&p, &wt, "two.txt");
}

/// No manager needed: what a dispatcher script (choosing by its own name) and a dangling
/// symlink see when chained.
#[test]
fn a_chained_hook_runs_under_its_own_name_and_a_dangling_symlink_is_kept() {
    let p = TestProject::new();
    let hooks = p.root.join(".git/hooks");
    let log = p.root.join("dispatch.log");
    let dispatcher = p.root.join("dispatch.sh");
    std::fs::write(
        &dispatcher,
        format!(
            "#!/bin/sh\necho \"$(basename \"$0\")\" >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    make_executable(&dispatcher);
    std::os::unix::fs::symlink(&dispatcher, hooks.join("post-commit")).unwrap();
    std::os::unix::fs::symlink(p.root.join("nowhere"), hooks.join("post-merge")).unwrap();

    p.ok(&["hooks", "install"]);
    let chained_merge = hooks.join(".spec-kitty-chained/post-merge");
    assert!(
        std::fs::symlink_metadata(&chained_merge).is_ok(),
        "chained, not overwritten"
    );
    let wt = p.git_worktree_add("WP01");
    commit_records(&p, &wt, "one.txt");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "post-commit\n");

    p.ok(&["hooks", "uninstall"]);
    assert_eq!(
        std::fs::read_link(hooks.join("post-commit")).unwrap(),
        dispatcher
    );
    assert_eq!(
        std::fs::read_link(hooks.join("post-merge")).unwrap(),
        p.root.join("nowhere")
    );
}

#[test]
fn identical_leftovers_do_not_block_a_reinstall_and_uninstall_removes_them() {
    let p = TestProject::new();
    let hooks = p.root.join(".git/hooks");
    let own = "#!/bin/sh\nexit 0\n";
    std::fs::write(hooks.join("post-commit"), own).unwrap();
    make_executable(&hooks.join("post-commit"));
    p.ok(&["hooks", "install"]);
    // A copy of the chained hook put back by hand (or by a tool), next to the chained one.
    let stub = std::fs::read_to_string(hooks.join("post-commit")).unwrap();
    std::fs::write(hooks.join("post-commit"), own).unwrap();
    // Our stub left as <hook>.old by lefthook and as an old-style chained copy.
    std::fs::write(hooks.join("post-merge.old"), &stub).unwrap();
    std::fs::write(hooks.join("post-checkout.spec-kitty-chained"), &stub).unwrap();

    let report = p.json(&["hooks", "install", "--json"]);
    assert_eq!(hook_states(&report), vec!["installed"; 3], "{report}");
    assert!(!hooks.join("post-merge.old").exists());
    assert!(!hooks.join("post-checkout.spec-kitty-chained").exists());
    assert_eq!(
        std::fs::read_to_string(hooks.join(".spec-kitty-chained/post-commit")).unwrap(),
        own
    );

    std::fs::write(hooks.join("post-merge.old"), &stub).unwrap();
    p.ok(&["hooks", "uninstall"]);
    assert_eq!(
        std::fs::read_to_string(hooks.join("post-commit")).unwrap(),
        own
    );
    assert!(!hooks.join("post-merge.old").exists());
    assert!(!hooks.join(".spec-kitty-chained").exists());
}

#[test]
fn a_commented_out_stub_line_is_not_installed() {
    let p = TestProject::new();
    p.ok(&["hooks", "install"]);
    let hook = p.root.join(".git/hooks/post-commit");
    let text = std::fs::read_to_string(&hook).unwrap();
    let commented: String = text
        .lines()
        .map(|l| {
            if l.contains("hooks run post-commit") {
                format!("\t: # {}\n", l.trim_start())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&hook, commented).unwrap();
    let report = p.hooks_status_in(&p.root);
    assert_eq!(state_of(&report, "post-commit"), "bypassed", "{report}");
    assert!(
        report["hooks"][0]["note"]
            .as_str()
            .unwrap()
            .contains("commented out")
    );
}
