//! The task commands (move-task, mark-status, add-history), the board, failures recorded as
//! ErrorLogged, and bad input — against the fixture project in a real git repository.

mod common;

use common::project::*;
use serde_json::Value;

#[test]
fn given_wp01_in_doing_move_task_to_for_review_emits_exactly_that_transition() {
    let p = TestProject::new();
    p.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    let before = p.events().len();

    let out = p.json(&[
        "agent",
        "tasks",
        "move-task",
        "WP01",
        "--to",
        "for_review",
        "--json",
    ]);
    assert_eq!(out["previous_lane"], "doing");
    assert_eq!(out["new_lane"], "for_review");

    let new = p.events_since(before);
    assert_eq!(new.len(), 1, "{new:#?}");
    let e = &new[0];
    assert_eq!(e["event_type"], "WPStatusChanged");
    assert_eq!(e["aggregate_id"], "WP01");
    assert_eq!(transition(e), t("WP01", "doing", "for_review"));
    assert_eq!(e["payload"]["feature_slug"], FEATURE);
    assert_eq!(e["payload"]["changed_by"], "Test User");
    assert_eq!(out["events"][0]["event_id"], e["event_id"]);
    assert_eq!(p.lane("WP01"), "for_review");
}

#[test]
fn lamport_clocks_increase_across_a_sequence_of_commands() {
    let p = TestProject::new();
    p.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    p.ok(&["agent", "tasks", "add-history", "WP01", "--note", "started"]);
    p.ok(&[
        "agent",
        "tasks",
        "mark-status",
        "T001",
        "T002",
        "--status",
        "done",
    ]);
    p.ok(&[
        "agent",
        "tasks",
        "move-task",
        "WP01",
        "--to",
        "for_review",
        "--note",
        "ready",
    ]);
    p.run(&["agent", "tasks", "move-task", "WP01", "--to", "for_review"]);
    let clocks: Vec<u64> = p
        .events()
        .iter()
        .map(|e| e["lamport_clock"].as_u64().unwrap())
        .collect();
    assert_eq!(clocks.len(), 7, "{clocks:?}");
    assert!(clocks.windows(2).all(|w| w[0] < w[1]), "{clocks:?}");
}

#[test]
fn the_previous_lane_comes_from_the_log_and_the_file_lane_only_starts_it() {
    let p = TestProject::new();
    // WP03's file says doing, and it has no events yet: that is where it starts.
    let path = p.wp_file("WP03");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("lane: \"planned\"", "lane: \"doing\"");
    p.commit_file(
        path.strip_prefix(&p.root).unwrap().to_str().unwrap(),
        &text,
        "WP03 in doing",
    );
    let out = p.json(&[
        "agent",
        "tasks",
        "move-task",
        "WP03",
        "--to",
        "for_review",
        "--json",
    ]);
    assert_eq!(out["previous_lane"], "doing");
    // From now on the log decides, whatever the file says; and status changes edit no file.
    let out = p.json(&[
        "agent",
        "tasks",
        "move-task",
        "WP03",
        "--to",
        "planned",
        "--json",
    ]);
    assert_eq!(out["previous_lane"], "for_review");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("lane: \"doing\"")
    );
    assert_eq!(p.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_no_op_move_is_refused_and_recorded_as_error_logged() {
    let p = TestProject::new();
    let err = p.fails(&[
        "agent",
        "tasks",
        "move-task",
        "WP02",
        "--to",
        "planned",
        "--agent",
        "claude",
    ]);
    assert!(err.contains("already in planned"), "{err}");
    let events = p.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e["event_type"], "ErrorLogged");
    assert_eq!(e["aggregate_type"], "WorkPackage");
    assert_eq!(e["payload"]["wp_id"], "WP02");
    assert_eq!(e["payload"]["error_type"], "validation");
    assert_eq!(e["payload"]["agent_id"], "claude");
    assert!(
        e["payload"]["error_message"]
            .as_str()
            .unwrap()
            .contains("already in planned")
    );
}

#[test]
fn json_output_of_a_failure_names_the_error_and_the_error_event() {
    let p = TestProject::new();
    let out = p.run(&[
        "agent",
        "tasks",
        "move-task",
        "WP01",
        "--to",
        "bogus",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("`bogus` is not a lane")
    );
    assert_eq!(v["events"][0]["event_type"], "ErrorLogged");
    let events = p.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["wp_id"], "WP01");
    assert!(of_type(&events, "WPStatusChanged").is_empty());
}

#[test]
fn mark_status_ticks_subtasks_in_tasks_md_and_records_history_on_the_owning_wp() {
    let p = TestProject::new();
    let tasks_md = p.feature_dir().join("tasks.md");
    let out = p.json(&[
        "agent",
        "tasks",
        "mark-status",
        "T001",
        "T006",
        "--status",
        "done",
        "--json",
    ]);
    assert_eq!(out["subtasks"][0]["wp_id"], "WP01");
    assert_eq!(out["subtasks"][1]["wp_id"], "WP02");
    let text = std::fs::read_to_string(&tasks_md).unwrap();
    assert!(text.contains("- [x] T001 "), "{text}");
    assert!(text.contains("- [x] T006 "), "{text}");
    assert!(text.contains("- [ ] T002 "), "{text}");
    let events = p.events();
    let history = of_type(&events, "HistoryAdded");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["payload"]["wp_id"], "WP01");
    assert_eq!(history[0]["payload"]["entry_content"], "T001 marked done");
    assert_eq!(history[1]["payload"]["wp_id"], "WP02");
    assert_eq!(history[0]["causation_id"], history[1]["causation_id"]);

    // Already done: nothing changes, nothing is recorded. Back to pending: unticked.
    p.ok(&["agent", "tasks", "mark-status", "T001", "--status", "done"]);
    assert_eq!(p.events().len(), 2);
    p.ok(&[
        "agent",
        "tasks",
        "mark-status",
        "T001",
        "--status",
        "pending",
    ]);
    assert!(
        std::fs::read_to_string(&tasks_md)
            .unwrap()
            .contains("- [ ] T001 ")
    );
    assert_eq!(p.events().len(), 3);
}

#[test]
fn mark_status_on_wp_ids_changes_lanes_and_checks_every_id_first() {
    let p = TestProject::new();
    let out = p.json(&[
        "agent",
        "tasks",
        "mark-status",
        "WP01",
        "WP02",
        "--status",
        "doing",
        "--json",
    ]);
    assert_eq!(out["work_packages"].as_array().unwrap().len(), 2);
    let events = p.events();
    assert_eq!(transition(&events[0]), t("WP01", "planned", "doing"));
    assert_eq!(transition(&events[1]), t("WP02", "planned", "doing"));

    // One bad id: nothing changes (T001 stays unticked, WP03 stays planned).
    let err = p.fails(&[
        "agent",
        "tasks",
        "mark-status",
        "T001",
        "WP03",
        "T999",
        "--status",
        "done",
    ]);
    assert!(err.contains("T999"), "{err}");
    assert!(
        std::fs::read_to_string(p.feature_dir().join("tasks.md"))
            .unwrap()
            .contains("- [ ] T001 ")
    );
    assert_eq!(p.lane("WP03"), "planned");
    let events = p.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2]["event_type"], "ErrorLogged");
}

#[test]
fn add_history_records_the_entry_type_and_author() {
    let p = TestProject::new();
    p.ok(&[
        "agent",
        "tasks",
        "add-history",
        "WP04",
        "--note",
        "Two nits, approved",
        "--type",
        "review",
        "--author",
        "codex",
    ]);
    let events = p.events();
    assert_eq!(events.len(), 1);
    let payload = &events[0]["payload"];
    assert_eq!(events[0]["event_type"], "HistoryAdded");
    assert_eq!(payload["wp_id"], "WP04");
    assert_eq!(payload["entry_type"], "review");
    assert_eq!(payload["author"], "codex");
    assert_eq!(payload["entry_content"], "Two nits, approved");
    assert_eq!(payload["feature_slug"], FEATURE);
    let err = p.fails(&[
        "agent",
        "tasks",
        "add-history",
        "WP04",
        "--note",
        "x",
        "--type",
        "rant",
    ]);
    assert!(err.contains("rant"), "{err}");
}

#[test]
fn status_shows_the_board_derived_from_the_log() {
    let p = TestProject::new();
    p.ok(&[
        "agent",
        "tasks",
        "move-task",
        "WP01",
        "--to",
        "doing",
        "--agent",
        "claude",
    ]);
    let text = p.ok(&["status"]);
    assert!(
        text.contains("028-cli-event-emission-sync → main"),
        "{text}"
    );
    assert!(text.contains("doing (1)"), "{text}");
    let boards = p.json(&["status", "--json"]);
    let cards = boards[0]["work_packages"].as_array().unwrap();
    assert_eq!(cards.len(), 7);
    assert_eq!(cards[0]["lane"], "doing");
    assert_eq!(cards[0]["lane_source"], "events");
    assert_eq!(cards[0]["changed_by"], "claude");
    assert_eq!(
        cards[6]["waiting_for"],
        serde_json::json!(["WP02", "WP03", "WP04", "WP06"])
    );
}

#[test]
fn commands_work_from_inside_a_wp_worktree_and_infer_the_feature_from_its_branch() {
    let p = TestProject::new();
    // A second feature makes the project ambiguous from the main checkout.
    let second = "kitty-specs/029-dashboard/";
    p.commit_file(
        &format!("{second}meta.json"),
        r#"{"feature_number":"029","slug":"029-dashboard","target_branch":"main"}"#,
        "add 029",
    );
    p.commit_file(
        &format!("{second}tasks/WP01-board.md"),
        "---\nwork_package_id: WP01\ntitle: Board\nlane: planned\n---\n",
        "add 029 WP01",
    );
    let err = p.fails(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert!(err.contains("which feature"), "{err}");

    let wt = p.worktree("WP02");
    let branch = format!("{FEATURE}-WP02");
    p.git(&["worktree", "add", "-q", "-b", &branch, wt.to_str().unwrap()]);
    let sub = wt.join("src");
    let out: Value = serde_json::from_str(&p.ok_in(
        &sub,
        &[
            "agent",
            "tasks",
            "move-task",
            "WP02",
            "--to",
            "doing",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(out["feature"], FEATURE);
    // The explicit --feature works from anywhere, and both worktrees see the same log.
    p.ok(&[
        "agent",
        "tasks",
        "move-task",
        "WP01",
        "--to",
        "doing",
        "--feature",
        "029-dashboard",
    ]);
    let events: Value = serde_json::from_str(&p.ok_in(&wt, &["events", "log", "--json"])).unwrap();
    assert_eq!(events.as_array().unwrap().len(), 3); // ErrorLogged, WP02, WP01 of 029
}

#[test]
fn malformed_frontmatter_is_an_error_naming_the_file_and_nothing_moves() {
    let p = TestProject::new();
    let path = p.wp_file("WP05");
    std::fs::write(
        &path,
        "---\nwork_package_id: WP05\ntitle: [unclosed\n---\nbody\n",
    )
    .unwrap();
    let err = p.fails(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert!(err.contains("WP05-orchestrate.md"), "{err}");
    assert!(err.contains("malformed YAML"), "{err}");
    let events = p.events();
    assert!(of_type(&events, "WPStatusChanged").is_empty());
    // The failure is recorded on the feature (the WP could not be confirmed).
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "ErrorLogged");
    assert_eq!(events[0]["aggregate_type"], "Feature");
    assert_eq!(events[0]["aggregate_id"], FEATURE);
}

#[test]
fn an_unknown_wp_is_an_error_listing_the_known_ones() {
    let p = TestProject::new();
    let err = p.fails(&["agent", "tasks", "move-task", "WP09", "--to", "doing"]);
    assert!(err.contains("no work package WP09"), "{err}");
    assert!(err.contains("WP01, WP02"), "{err}");
    let events = p.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "ErrorLogged");
    assert!(
        events[0]["payload"].get("wp_id").is_none(),
        "WP09 does not exist"
    );
}

#[test]
fn an_illegal_lane_in_a_file_or_on_the_command_line_is_an_error() {
    let p = TestProject::new();
    let err = p.fails(&["agent", "tasks", "move-task", "WP01", "--to", "reviewing"]);
    assert!(err.contains("`reviewing` is not a lane"), "{err}");
    let path = p.wp_file("WP02");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("lane: \"planned\"", "lane: \"blocked-ish\"");
    std::fs::write(&path, &text).unwrap();
    let err = p.fails(&["status"]);
    assert!(
        err.contains("WP02-implement-merge-accept.md") && err.contains("blocked-ish"),
        "{err}"
    );
    assert!(of_type(&p.events(), "WPStatusChanged").is_empty());
}

#[test]
fn a_dependency_cycle_is_an_error_naming_the_files() {
    let p = TestProject::new();
    let path = p.wp_file("WP01");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("dependencies: []", "dependencies: [WP07]");
    std::fs::write(&path, &text).unwrap();
    let err = p.fails(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert!(err.contains("dependency cycle"), "{err}");
    assert!(err.contains("WP01-event-factory.md"), "{err}");
    assert!(of_type(&p.events(), "WPStatusChanged").is_empty());
}

#[test]
fn a_missing_meta_json_is_an_error_naming_it() {
    let p = TestProject::new();
    std::fs::remove_file(p.feature_dir().join("meta.json")).unwrap();
    let err = p.fails(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert!(err.contains("meta.json is missing"), "{err}");
    assert!(err.contains(FEATURE), "{err}");
    assert!(of_type(&p.events(), "WPStatusChanged").is_empty());
}
