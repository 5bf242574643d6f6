//! orchestrate with small shell-script agents: the events of both phases, a retry with a
//! fallback agent, DependencyResolved as WPs unblock, FeatureCompleted at the end — and what
//! happens when agents keep failing or are not configured.

mod common;

use std::collections::BTreeSet;

use common::project::*;
use serde_json::Value;

/// Writes an agent script into the test's home (outside the repository) and returns its path.
fn agent(p: &TestProject, name: &str, body: &str) -> String {
    let path = p.home.join(format!("{name}.sh"));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    path.display().to_string()
}

fn configure(p: &TestProject, implementer: &str, reviewer: &str, commands: &[(&str, String)]) {
    let mut text = std::fs::read_to_string(p.path(".kittify/config.yaml")).unwrap();
    text.push_str(&format!(
        "agents:\n  implementer: {implementer}\n  reviewer: {reviewer}\n  commands:\n"
    ));
    for (name, cmd) in commands {
        text.push_str(&format!("    {name}: {cmd}\n"));
    }
    p.commit_file(".kittify/config.yaml", &text, "configure agents");
}

/// flaky crashes the very first time it runs, then works (and commits); steady writes its
/// file and leaves committing to orchestrate; the reviewer approves when the work is there.
fn standard_agents(p: &TestProject) {
    let flaky = agent(
        p,
        "flaky",
        "marker=\"$HOME/flaky-failed-once\"\n\
         if [ ! -e \"$marker\" ]; then : > \"$marker\"; echo \"flaky crashed on $SPEC_KITTY_WP_ID\" >&2; exit 1; fi\n\
         echo \"$SPEC_KITTY_WP_ID by flaky\" > \"$SPEC_KITTY_WP_ID.txt\"\n\
         git add -A && git commit -q -m \"$SPEC_KITTY_WP_ID: $SPEC_KITTY_TITLE\"",
    );
    let steady = agent(
        p,
        "steady",
        "echo \"$SPEC_KITTY_WP_ID by steady\" > \"$SPEC_KITTY_WP_ID.txt\"",
    );
    let reviewer = agent(
        p,
        "reviewer",
        "test \"$SPEC_KITTY_PHASE\" = review && test -f \"$SPEC_KITTY_WP_ID.txt\"",
    );
    configure(
        p,
        "[flaky, steady]",
        "reviewer",
        &[
            ("flaky", format!("sh '{flaky}' {{wp_id}}")),
            ("steady", format!("sh '{steady}'")),
            ("reviewer", format!("sh '{reviewer}' \"{{title}}\"")),
        ],
    );
}

#[test]
fn orchestrate_runs_the_feature_to_completion_with_retries_and_all_lifecycle_events() {
    let p = TestProject::new();
    standard_agents(&p);
    p.ok(&["agent", "feature", "finalize-tasks"]);
    let before = p.events().len();
    let out = p.run(&["orchestrate", "--feature", FEATURE, "--jobs", "2", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["feature_completed"], true);
    assert_eq!(report["done"].as_array().unwrap().len(), 7);
    assert!(
        stderr.contains("[WP01] implementation: steady (retry 1)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[WP07] feature 028-cli-event-emission-sync complete"),
        "{stderr}"
    );

    let events = p.events_since(before);
    let assigned = of_type(&events, "WPAssigned");
    let phase = |ph: &str| {
        assigned
            .iter()
            .filter(|e| e["payload"]["phase"] == ph)
            .count()
    };
    assert_eq!(phase("implementation"), 8, "7 WPs + 1 retry");
    assert_eq!(phase("review"), 7);
    let retry: Vec<_> = assigned
        .iter()
        .filter(|e| e["payload"]["retry_count"] == 1)
        .collect();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0]["payload"]["wp_id"], "WP01");
    assert_eq!(retry[0]["payload"]["agent_id"], "steady");
    assert_eq!(retry[0]["payload"]["feature_slug"], FEATURE);

    let errors = of_type(&events, "ErrorLogged");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["payload"]["wp_id"], "WP01");
    assert_eq!(errors[0]["payload"]["agent_id"], "flaky");
    assert_eq!(errors[0]["payload"]["error_type"], "runtime");
    assert!(
        errors[0]["payload"]["error_message"]
            .as_str()
            .unwrap()
            .contains("exited with status 1")
    );

    // Every lane change of every WP, in order, each recorded once.
    for wp in ["WP01", "WP02", "WP03", "WP04", "WP05", "WP06", "WP07"] {
        let moves: Vec<_> = of_type(&events, "WPStatusChanged")
            .into_iter()
            .filter(|e| e["payload"]["wp_id"] == wp)
            .map(transition)
            .collect();
        assert_eq!(
            moves,
            vec![
                t(wp, "planned", "doing"),
                t(wp, "doing", "for_review"),
                t(wp, "for_review", "done")
            ],
            "{wp}"
        );
    }
    let resolved: BTreeSet<(String, String)> = of_type(&events, "DependencyResolved")
        .iter()
        .map(|e| {
            (
                e["payload"]["wp_id"].as_str().unwrap().into(),
                e["payload"]["dependency_wp_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(resolved.len(), 9, "one per dependency edge: {resolved:?}");
    assert!(resolved.contains(&("WP07".into(), "WP06".into())));
    let completed = of_type(&events, "FeatureCompleted");
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["payload"]["total_wps"], 7);
    // It is the last event; the work of every WP is on main.
    assert_eq!(events.last().unwrap()["event_type"], "FeatureCompleted");
    for wp in ["WP01", "WP04", "WP07"] {
        assert!(p.path(&format!("{wp}.txt")).is_file(), "{wp} merged");
    }
    let boards = p.json(&["status", "--json"]);
    assert_eq!(boards[0]["completed"], true);

    // Running it again has nothing to do.
    let again = p.json(&["orchestrate", "--json"]);
    assert!(again["events"].as_array().unwrap().is_empty());
}

#[test]
fn when_every_reviewer_fails_the_wp_stays_in_review_and_its_dependents_are_blocked() {
    let p = TestProject::new();
    let worker = agent(&p, "worker", "echo done > \"$SPEC_KITTY_WP_ID.txt\"");
    let grumpy = agent(&p, "grumpy", "echo 'changes requested' >&2; exit 2");
    configure(
        &p,
        "worker",
        "[grumpy, grumpier]",
        &[
            ("worker", format!("sh '{worker}'")),
            ("grumpy", format!("sh '{grumpy}'")),
            ("grumpier", format!("sh '{grumpy}'")),
        ],
    );
    let out = p.run(&["orchestrate", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"][0]["wp_id"], "WP01");
    assert_eq!(report["failed"][0]["phase"], "review");
    assert_eq!(report["blocked"].as_array().unwrap().len(), 6);
    let stderr = unwrap_lines(&String::from_utf8_lossy(&out.stderr));
    assert!(
        stderr.contains("orchestrate stopped: failed WP01"),
        "{stderr}"
    );
    let events = p.events();
    let errors = of_type(&events, "ErrorLogged");
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[1]["payload"]["agent_id"], "grumpier");
    let reviews: Vec<_> = of_type(&events, "WPAssigned")
        .into_iter()
        .filter(|e| e["payload"]["phase"] == "review")
        .collect();
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[1]["payload"]["retry_count"], 1);
    assert_eq!(p.lane("WP01"), "for_review");
    assert!(of_type(&events, "FeatureCompleted").is_empty());
    // The agents' output is kept for reading.
    let log = errors[0]["payload"]["error_message"].as_str().unwrap();
    let path = log.split("output: ").nth(1).unwrap().trim_end_matches(')');
    assert!(
        std::fs::read_to_string(path)
            .unwrap()
            .contains("changes requested")
    );
}

#[test]
fn orchestrate_without_agents_is_an_error_naming_the_config_file() {
    let p = TestProject::new();
    let err = p.fails(&["orchestrate"]);
    assert!(
        err.contains(".kittify/config.yaml") && err.contains("no `agents:` section"),
        "{err}"
    );
    let events = p.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "ErrorLogged");
    assert_eq!(events[0]["aggregate_id"], FEATURE);
    // The project identity next to it was not disturbed.
    let text = std::fs::read_to_string(p.path(".kittify/config.yaml")).unwrap();
    assert!(text.contains("uuid: 5b0e8a52-3c2f-4d8e-9a61-2f4c1d7e9b30"));
}
