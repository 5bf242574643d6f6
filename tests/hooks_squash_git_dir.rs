//! Hooks in two situations plain git allows: a squash merge (`git merge --squash` then
//! `git commit`) is recorded as the merge it is, and a commit made with `--git-dir` /
//! `--work-tree` (GIT_DIR in the hook's environment) finds its repository.

mod common;

use common::project::*;

fn last_transition(p: &TestProject) -> (String, String, String) {
    let events = p.events();
    let changes = of_type(&events, "WPStatusChanged");
    transition(changes.last().expect("a status change"))
}

#[test]
fn a_squash_merge_of_a_wp_branch_moves_it_to_for_review_once_committed() {
    let p = TestProject::new();
    p.ok(&["hooks", "install"]);
    let wt = p.git_worktree_add("WP01");
    p.commit_in(&wt, "factory.py", "event factory");
    assert_eq!(last_transition(&p), t("WP01", "planned", "doing"));

    // The squash itself merges nothing yet.
    p.git(&["merge", "-q", "--squash", &format!("{FEATURE}-WP01")]);
    assert_eq!(last_transition(&p), t("WP01", "planned", "doing"));
    // The commit, with a message of the user's own, is the merge.
    let err = p.commit_in(&p.root, "notes.txt", "Add the event factory");
    assert!(!err.contains("spec-kitty"), "hooks are silent: {err}");
    assert_eq!(last_transition(&p), t("WP01", "doing", "for_review"));
    let before = p.events().len();

    // The note is used once: a later commit on main records nothing.
    p.commit_file("other.txt", "x", "unrelated");
    assert_eq!(p.events().len(), before);
}

#[test]
fn an_abandoned_squash_is_not_recorded_by_a_later_commit() {
    let p = TestProject::new();
    p.ok(&["hooks", "install"]);
    let wt = p.git_worktree_add("WP01");
    p.commit_in(&wt, "factory.py", "event factory");
    p.git(&["merge", "-q", "--squash", &format!("{FEATURE}-WP01")]);
    p.git(&["reset", "-q", "--hard"]);
    p.commit_file("a.txt", "a", "first unrelated commit");
    assert_eq!(last_transition(&p), t("WP01", "planned", "doing"));
}

#[test]
fn a_commit_made_with_git_dir_and_work_tree_is_recorded() {
    let p = TestProject::new();
    p.ok(&["hooks", "install"]);
    p.git(&["checkout", "-q", "-b", &format!("{FEATURE}-WP01")]);
    // A work tree that is not the repository's: git runs the hook there, with GIT_DIR set.
    let elsewhere = p.home.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let git_dir = p.root.join(".git");
    let out = p.git_output(
        &elsewhere,
        &[
            "--git-dir",
            git_dir.to_str().unwrap(),
            "--work-tree",
            elsewhere.to_str().unwrap(),
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "from elsewhere",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("spec-kitty"), "{}", stderr(&out));
    let history = p.history();
    assert_eq!(history.len(), 1, "{history:?}");
    let content = history[0]["payload"]["entry_content"].as_str().unwrap();
    assert!(content.ends_with("from elsewhere"), "{content}");
}
