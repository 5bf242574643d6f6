//! A `core.hooksPath` from the global or system git config names a directory every repository
//! of the user shares: `hooks install` refuses it unless told `--shared`, and stubs installed
//! there knowingly do nothing in repositories without a spec-kitty project.

mod common;

use std::path::PathBuf;

use common::project::*;

/// Given a global `core.hooksPath` holding one hook of the user's own; returns the directory.
fn global_hooks_path(p: &TestProject) -> (PathBuf, String) {
    let dir = p.home.join("globalhooks");
    std::fs::create_dir_all(&dir).unwrap();
    let own = "#!/bin/sh\nexit 0\n".to_owned();
    std::fs::write(dir.join("post-commit"), &own).unwrap();
    make_executable(&dir.join("post-commit"));
    std::fs::write(
        p.home.join(".gitconfig"),
        format!("[core]\n\thooksPath = {}\n", dir.display()),
    )
    .unwrap();
    (dir, own)
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn install_refuses_a_global_hooks_path_and_names_both_remedies() {
    let p = TestProject::new();
    let (dir, own) = global_hooks_path(&p);

    let err = p.fails(&["hooks", "install"]);
    assert!(err.contains("global git config"), "{err}");
    assert!(err.contains("git config --local core.hooksPath"), "{err}");
    assert!(err.contains("spec-kitty hooks install --shared"), "{err}");
    assert_eq!(names(&dir), vec!["post-commit"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("post-commit")).unwrap(),
        own
    );

    // status says where core.hooksPath came from.
    let report = p.hooks_status_in(&p.root);
    assert_eq!(report["hooks_path_origin"]["scope"], "global");
    assert_eq!(
        report["hooks_path_origin"]["file"],
        p.home.join(".gitconfig").to_str().unwrap()
    );
    let text = p.ok(&["hooks", "status"]);
    assert!(text.contains("from the global config"), "{text}");

    // The first remedy: a hooks path of the repository's own, then install works.
    let local = p.root.join(".git/hooks");
    p.git(&[
        "config",
        "--local",
        "core.hooksPath",
        local.to_str().unwrap(),
    ]);
    let report = p.json(&["hooks", "install", "--json"]);
    assert_eq!(report["hooks_path_origin"]["scope"], "repository");
    assert_eq!(hook_states(&report), vec!["installed"; 3]);
    assert_eq!(names(&dir), vec!["post-commit"]);
}

#[test]
fn shared_stubs_record_in_a_project_and_do_nothing_elsewhere() {
    let p = TestProject::new();
    let (dir, _) = global_hooks_path(&p);
    let report = p.json(&["hooks", "install", "--shared", "--json"]);
    assert_eq!(hook_states(&report), vec!["installed"; 3]);
    assert!(dir.join(".spec-kitty-chained/post-commit").is_file());

    // In the project: events as usual.
    let wt = p.git_worktree_add("WP01");
    p.commit_in(&wt, "a.txt", "work");
    assert_eq!(transition(&p.events()[0]), t("WP01", "planned", "doing"));
    assert_eq!(p.history().len(), 1);

    // In an unrelated repository, even on a branch that looks like a WP's: nothing at all.
    let other = p.home.join("other-repo");
    std::fs::create_dir_all(&other).unwrap();
    p.git_in(&other, &["init", "-q", "-b", "main"]);
    p.git_in(&other, &["config", "user.name", "U"]);
    p.git_in(&other, &["config", "user.email", "u@example.com"]);
    p.git_in(&other, &["checkout", "-q", "-b", "001-demo-WP01"]);
    std::fs::write(other.join("f"), "x").unwrap();
    p.git_in(&other, &["add", "f"]);
    let out = p.git_output(&other, &["commit", "-q", "-m", "unrelated"]);
    assert!(out.status.success());
    assert!(!stderr(&out).contains("spec-kitty"), "{}", stderr(&out));
    let wt_path = p.home.join("other-wt");
    let out = p.git_output(
        &other,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "001-demo-WP02",
            wt_path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    assert!(!stderr(&out).contains("spec-kitty"), "{}", stderr(&out));
    assert!(!other.join(".kittify").exists(), "no identity created");
    let refs = p.git_in(&other, &["for-each-ref", "refs/spec-kitty"]);
    assert_eq!(refs.trim(), "", "no events recorded");
}
