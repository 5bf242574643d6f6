//! A feature's life: finalize-tasks, implement (real worktrees), merge, accept, sync
//! workspace — each checked on the refs, the worktrees and the recorded events.

mod common;

use std::collections::BTreeSet;

use common::project::*;
use serde_json::Value;

/// Commits a file in the WP's worktree.
fn work(p: &TestProject, wp: &str, file: &str, text: &str) {
    let wt = p.worktree(wp);
    std::fs::write(wt.join(file), text).unwrap();
    p.git_in(&wt, &["add", "-A"]);
    p.git_in(&wt, &["commit", "-q", "-m", &format!("{wp}: {file}")]);
}

#[test]
fn finalize_tasks_on_seven_wps_emits_one_plus_seven_events_with_one_causation_id() {
    let p = TestProject::new();
    let out = p.json(&["agent", "feature", "finalize-tasks", "--json"]);
    assert_eq!(out["created"].as_array().unwrap().len(), 7);
    let events = p.events();
    assert_eq!(events.len(), 8);
    assert_eq!(events[0]["event_type"], "FeatureCreated");
    let fc = &events[0]["payload"];
    assert_eq!(fc["feature_slug"], FEATURE);
    assert_eq!(fc["feature_number"], "028");
    assert_eq!(fc["target_branch"], "main");
    assert_eq!(fc["wp_count"], 7);
    assert_eq!(fc["created_at"], "2026-02-03T09:12:44.512301+00:00");
    let causation = events[0]["causation_id"].as_str().unwrap();
    assert_eq!(out["causation_id"], causation);
    let created = of_type(&events, "WPCreated");
    assert_eq!(created.len(), 7);
    assert!(events.iter().all(|e| e["causation_id"] == causation));
    let deps = |wp: &str| {
        created
            .iter()
            .find(|e| e["payload"]["wp_id"] == wp)
            .unwrap()["payload"]["dependencies"]
            .clone()
    };
    assert_eq!(deps("WP01"), serde_json::json!([]));
    assert_eq!(deps("WP06"), serde_json::json!(["WP05"]));
    assert_eq!(
        deps("WP07"),
        serde_json::json!(["WP02", "WP03", "WP04", "WP06"])
    );
    assert_eq!(created[0]["payload"]["title"], "Event Factory Module");

    // Again: nothing new, and it says so.
    let text = p.ok(&["agent", "feature", "finalize-tasks"]);
    assert!(text.contains("already announced"), "{text}");
    assert_eq!(p.events().len(), 8);

    // A WP file added later is announced on its own.
    p.commit_file(
        &format!("kitty-specs/{FEATURE}/tasks/WP08-docs.md"),
        "---\nwork_package_id: WP08\ntitle: Docs\nlane: planned\ndependencies: [WP07]\n---\n",
        "add WP08",
    );
    let out = p.json(&["agent", "feature", "finalize-tasks", "--json"]);
    assert_eq!(out["created"], serde_json::json!(["WP08"]));
    assert_eq!(out["feature_created"], false);
    assert_eq!(p.events().len(), 9);
}

#[test]
fn finalize_tasks_refuses_unknown_dependencies_and_records_nothing_but_the_error() {
    let p = TestProject::new();
    let path = p.wp_file("WP03");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("dependencies: [WP01]", "dependencies: [WP01, WP42]");
    std::fs::write(&path, text).unwrap();
    let err = p.fails(&["agent", "feature", "finalize-tasks"]);
    assert!(
        err.contains("WP42") && err.contains("WP03-task-commands.md"),
        "{err}"
    );
    let events = p.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "ErrorLogged");
    assert_eq!(events[0]["aggregate_id"], FEATURE);
    assert_eq!(events[0]["payload"]["error_type"], "validation");
}

#[test]
fn implement_creates_the_worktree_on_its_branch_and_emits_planned_to_doing() {
    let p = TestProject::new();
    let out = p.json(&["implement", "WP01", "--agent", "claude", "--json"]);
    let wt = p.worktree("WP01");
    assert!(wt.join("kitty-specs").is_dir());
    assert_eq!(out["worktree"], wt.to_str().unwrap());
    let branch = format!("{FEATURE}-WP01");
    assert_eq!(
        p.git_in(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        branch
    );
    assert_eq!(
        p.git(&["rev-parse", &branch]),
        p.git(&["rev-parse", "main"])
    );
    let events = p.events();
    assert_eq!(events.len(), 1);
    assert_eq!(transition(&events[0]), t("WP01", "planned", "doing"));
    assert_eq!(events[0]["payload"]["changed_by"], "claude");
    // The main checkout stays clean: .worktrees/ is excluded locally.
    assert_eq!(p.git(&["status", "--porcelain"]), "");

    // Not planned any more: refused, with the reason, and recorded as an error.
    let err = p.fails(&["implement", "WP01"]);
    assert!(err.contains("WP01 is in doing"), "{err}");
    assert_eq!(of_type(&p.events(), "WPStatusChanged").len(), 1);
}

#[test]
fn implement_refuses_a_wp_whose_dependency_is_not_done_unless_base_names_it() {
    let p = TestProject::new();
    let err = p.fails(&["implement", "WP05"]);
    assert!(err.contains("WP01 (planned)"), "{err}");
    assert!(err.contains("--base"), "{err}");
    assert!(!p.worktree("WP05").exists());

    p.ok(&["implement", "WP01"]);
    work(&p, "WP01", "factory.py", "def build(): ...\n");
    let out = p.json(&["implement", "WP05", "--base", "WP01", "--json"]);
    assert_eq!(out["start_point"], format!("{FEATURE}-WP01"));
    assert!(p.worktree("WP05").join("factory.py").is_file());
    // WP06 depends on WP05 only; WP07 still waits for several.
    let err = p.fails(&["implement", "WP07", "--base", "WP06"]);
    assert!(
        err.contains("WP02 (planned)") && !err.contains("WP06 ("),
        "{err}"
    );
}

#[test]
fn merge_merges_into_the_target_branch_and_emits_doing_to_for_review() {
    let p = TestProject::new();
    p.ok(&["implement", "WP01"]);
    work(&p, "WP01", "factory.py", "def build(): ...\n");
    let before = p.events().len();
    let out = p.json(&["merge", "WP01", "--json"]);
    assert_eq!(out["merged"][0]["merge"], "fast_forward");
    assert!(p.path("factory.py").is_file(), "main checkout updated");
    let new = p.events_since(before);
    assert_eq!(new.len(), 1);
    assert_eq!(transition(&new[0]), t("WP01", "doing", "for_review"));

    // From inside a worktree, with main having moved on: a merge commit.
    p.ok(&["accept", "WP01"]);
    p.ok(&["implement", "WP02"]);
    p.ok(&["implement", "WP03"]);
    work(&p, "WP02", "implement.py", "x\n");
    work(&p, "WP03", "tasks.py", "y\n");
    p.ok(&["merge", "WP02"]);
    let out: Value =
        serde_json::from_str(&p.ok_in(&p.worktree("WP03"), &["merge", "--json"])).unwrap();
    assert_eq!(out["merged"][0]["wp_id"], "WP03");
    assert_eq!(out["merged"][0]["merge"], "merge_commit");
    assert_eq!(
        p.git(&["rev-list", "--parents", "-n", "1", "main"])
            .split_whitespace()
            .count(),
        3
    );
}

#[test]
fn a_merge_conflict_stops_with_the_files_and_leaves_the_repository_as_git_left_it() {
    let p = TestProject::new();
    p.ok(&["implement", "WP01"]);
    work(&p, "WP01", "README.md", "WP01's readme\n");
    p.commit_file("README.md", "main's readme\n", "main edits the readme");
    let before = p.events().len();
    let err = p.fails(&["merge", "WP01"]);
    assert!(err.contains("conflicts in: README.md"), "{err}");
    assert!(err.contains("git merge --abort"), "{err}");
    assert!(
        p.root.join(".git/MERGE_HEAD").exists(),
        "merge left in progress"
    );
    let new = p.events_since(before);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["event_type"], "ErrorLogged");
    assert_eq!(new[0]["payload"]["error_type"], "runtime");
    assert_eq!(new[0]["payload"]["wp_id"], "WP01");
    assert_eq!(p.lane("WP01"), "doing");
}

#[test]
fn merge_refuses_uncommitted_work_and_a_main_checkout_on_another_branch() {
    let p = TestProject::new();
    p.ok(&["implement", "WP01"]);
    std::fs::write(p.worktree("WP01").join("wip.py"), "x").unwrap();
    let err = p.fails(&["merge", "WP01"]);
    assert!(
        err.contains("uncommitted changes") && err.contains("wip.py"),
        "{err}"
    );
    std::fs::remove_file(p.worktree("WP01").join("wip.py")).unwrap();
    p.git(&["switch", "-q", "-c", "elsewhere"]);
    let err = p.fails(&["merge", "WP01"]);
    assert!(err.contains("is on elsewhere, not on main"), "{err}");
    assert!(err.contains("switch main"), "{err}");
    assert_eq!(p.lane("WP01"), "doing");
}

#[test]
fn accept_emits_done_dependency_resolved_and_finally_feature_completed() {
    let p = TestProject::new();
    p.ok(&["agent", "feature", "finalize-tasks"]);
    let order = ["WP01", "WP02", "WP03", "WP04", "WP05", "WP06", "WP07"];
    for (i, wp) in order.iter().enumerate() {
        p.ok(&["implement", wp]);
        work(&p, wp, &format!("{wp}.txt"), wp);
        p.ok(&["merge", wp]);
        let before = p.events().len();
        let out = p.json(&["accept", wp, "--json"]);
        let new = p.events_since(before);
        assert_eq!(transition(&new[0]), t(wp, "for_review", "done"));
        let resolved: BTreeSet<(String, String)> = of_type(&new, "DependencyResolved")
            .iter()
            .map(|e| {
                assert_eq!(e["payload"]["resolution_type"], "completed");
                (
                    e["payload"]["wp_id"].as_str().unwrap().to_owned(),
                    e["payload"]["dependency_wp_id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        let expected: BTreeSet<(String, String)> = match *wp {
            "WP01" => ["WP02", "WP03", "WP04", "WP05"]
                .iter()
                .map(|d| (d.to_string(), "WP01".into()))
                .collect(),
            "WP02" | "WP03" | "WP04" | "WP06" => [("WP07".to_string(), wp.to_string())].into(),
            "WP05" => [("WP06".to_string(), "WP05".to_string())].into(),
            _ => BTreeSet::new(),
        };
        assert_eq!(resolved, expected, "{wp}");
        assert!(
            new.iter()
                .all(|e| e["causation_id"] == new[0]["causation_id"])
        );
        let completed = of_type(&new, "FeatureCompleted");
        if i == order.len() - 1 {
            assert_eq!(out["feature_completed"], true);
            assert_eq!(completed.len(), 1);
            let payload = &completed[0]["payload"];
            assert_eq!(payload["feature_slug"], FEATURE);
            assert_eq!(payload["total_wps"], 7);
            assert!(
                payload["completed_at"]
                    .as_str()
                    .unwrap()
                    .ends_with("+00:00")
            );
            assert!(
                payload["total_duration"].as_str().unwrap().contains('h'),
                "{payload}"
            );
        } else {
            assert!(completed.is_empty(), "{wp}");
        }
    }
    // A WP not yet reviewed cannot be accepted; it says what to run.
    let p = TestProject::new();
    p.ok(&["implement", "WP01"]);
    let err = p.fails(&["accept", "WP01"]);
    assert!(err.contains("spec-kitty merge WP01"), "{err}");
}

#[test]
fn sync_workspace_rebases_onto_the_base_wp_branch_then_onto_the_target() {
    let p = TestProject::new();
    p.ok(&["implement", "WP01"]);
    p.ok(&["implement", "WP05", "--base", "WP01"]);
    work(&p, "WP05", "orchestrate.py", "o\n");
    work(&p, "WP01", "factory.py", "f\n");
    let wt5 = p.worktree("WP05");
    let out: Value =
        serde_json::from_str(&p.ok_in(&wt5, &["sync", "workspace", "--json"])).unwrap();
    assert_eq!(out["upstream"], format!("{FEATURE}-WP01"));
    assert_eq!(out["method"], "rebase");
    assert_eq!(out["result"], "updated");
    assert!(wt5.join("factory.py").is_file() && wt5.join("orchestrate.py").is_file());

    // Once WP01 is merged and accepted, WP05 follows main; --merge merges instead.
    p.ok(&["merge", "WP01"]);
    p.ok(&["accept", "WP01"]);
    p.commit_file("CHANGELOG.md", "main moved\n", "main moves on");
    let out = p.json(&["sync", "workspace", "WP05", "--merge", "--json"]);
    assert_eq!(out["upstream"], "main");
    assert_eq!(out["method"], "merge");
    assert!(wt5.join("CHANGELOG.md").is_file());
    // Local only: no event recorded by sync workspace.
    assert!(
        p.events().iter().all(
            |e| e["event_type"] == "WPStatusChanged" || e["event_type"] == "DependencyResolved"
        )
    );

    let help = p.ok(&["sync", "workspace", "--help"]);
    assert!(
        help.contains("never talks to a server") && help.contains("sync now"),
        "{help}"
    );
    let err = p.fails(&["sync", "workspace"]);
    assert!(err.contains("not a work package worktree"), "{err}");
}

#[test]
fn sync_workspace_stops_on_conflicts_and_says_how_to_continue() {
    let p = TestProject::new();
    p.ok(&["implement", "WP01"]);
    work(&p, "WP01", "README.md", "WP01's readme\n");
    p.ok(&["merge", "WP01"]);
    p.ok(&["accept", "WP01"]);
    p.ok(&["implement", "WP02"]);
    // main moves on under WP02, touching the same file.
    work(&p, "WP02", "README.md", "WP02's readme\n");
    p.commit_file("README.md", "main's readme\n", "main edits the readme");
    let before = p.events().len();
    let err = p.fails_in(&p.worktree("WP02"), &["sync", "workspace"]);
    assert!(
        err.contains(&format!(
            "rebase of {FEATURE}-WP02 onto main stopped on conflicts in: README.md"
        )),
        "{err}"
    );
    assert!(
        err.contains("git rebase --continue") && err.contains("git rebase --abort"),
        "{err}"
    );
    let new = p.events_since(before);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["event_type"], "ErrorLogged");
    assert_eq!(new[0]["payload"]["wp_id"], "WP02");
    p.git_in(&p.worktree("WP02"), &["rebase", "--abort"]);
}

#[test]
fn every_workflow_command_teaches_with_an_example() {
    let p = TestProject::new();
    for cmd in [
        vec!["implement"],
        vec!["merge"],
        vec!["accept"],
        vec!["status"],
        vec!["sync", "workspace"],
        vec!["agent", "feature", "finalize-tasks"],
        vec!["agent", "tasks", "move-task"],
        vec!["agent", "tasks", "mark-status"],
        vec!["agent", "tasks", "add-history"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let help = p.ok(&args);
        assert!(
            help.contains("Examples:\n  spec-kitty") || help.contains("Examples:\n  cd "),
            "{cmd:?}: {help}"
        );
        assert!(help.contains("--json"), "{cmd:?}");
    }
}
