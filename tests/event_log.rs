//! The event log in git refs, end to end through the real binary and real git.

mod common;

use std::collections::HashSet;
use std::process::Command;

use common::{BIN, TestRepo, stderr, stdout};

#[test]
fn emitted_event_is_a_readable_commit_on_the_node_chain() {
    let repo = TestRepo::new();
    let id = repo.emit_status_ok("WP01", "planned", "doing");
    let id = id.as_str();
    assert_eq!(id.len(), 26);

    let refs = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/spec-kitty/events/",
    ]);
    assert_eq!(refs.lines().count(), 1, "{refs}");
    let log = repo.git(&["log", "--glob=refs/spec-kitty/events", "--format=%s%n%b"]);
    assert!(
        log.starts_with("WPStatusChanged WP01 planned → doing\n"),
        "{log}"
    );
    assert!(log.contains(&format!("Event-Id: {id}")), "{log}");
    assert!(log.contains("Lamport: 1"), "{log}");
    let json_line = log.lines().find(|l| l.starts_with('{')).expect("json body");
    let envelope: serde_json::Value = serde_json::from_str(json_line).expect("json");
    assert_eq!(envelope["event_id"], id);
    assert_eq!(envelope["team_slug"], "local");
    assert_eq!(envelope["git_branch"], "main");
    // The project identity was created on first use.
    let config = std::fs::read_to_string(repo.root.join(".kittify/config.yaml")).unwrap();
    assert!(config.contains(envelope["project_uuid"].as_str().unwrap()));

    let shown = repo.sk_ok(&["events", "show", id, "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["event"], envelope);
    assert_eq!(shown["seq"], 1);
    let fsck = repo
        .env(Command::new("git").current_dir(&repo.root))
        .args(["fsck", "--strict"])
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{}", stderr(&fsck));
}

#[test]
fn main_checkout_and_linked_worktree_share_one_chain() {
    let repo = TestRepo::new();
    let wt = repo.add_worktree("wt-one");
    let sub = wt.join("deep/sub");
    std::fs::create_dir_all(&sub).unwrap();
    let out = repo.emit_status("WP01", "planned", "doing");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = repo.emit_status_in(&sub, "WP02", "planned", "doing");
    assert!(out.status.success(), "{}", stderr(&out));

    let refs = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/spec-kitty/events/",
    ]);
    assert_eq!(
        refs.lines().count(),
        1,
        "one chain for both worktrees: {refs}"
    );
    let subjects = repo.git(&["log", "--glob=refs/spec-kitty/events", "--format=%s"]);
    assert_eq!(
        subjects,
        "WPStatusChanged WP02 planned → doing\nWPStatusChanged WP01 planned → doing\n"
    );
    // The worktree's event records its own branch.
    let events = repo.events(10);
    assert_eq!(events[1]["event"]["git_branch"], "wt-one");
    assert_eq!(events[1]["event"]["lamport_clock"], 2);
    // Visible from the worktree too.
    let from_wt = stdout(&repo.sk_in(&wt, &["events", "log"]));
    assert_eq!(from_wt.lines().count(), 2, "{from_wt}");
}

#[test]
fn four_processes_append_concurrently_without_losing_anything() {
    let repo = TestRepo::new();
    // Create the identity first so that every process reads the same one.
    repo.sk_ok(&[
        "events",
        "emit",
        "HistoryAdded",
        "--payload",
        r#"{"wp_id":"WP01","entry_type":"note","entry_content":"start","author":"t"}"#,
    ]);
    let wt = repo.add_worktree("wt-conc");
    let dirs = [
        repo.root.clone(),
        repo.root.clone(),
        wt.clone(),
        wt.join("."),
    ];
    let payload =
        r#"{"wp_id":"WP01","entry_type":"note","entry_content":"concurrent","author":"t"}"#;
    let children: Vec<_> = dirs
        .iter()
        .map(|dir| {
            let script = format!(
                "i=0; while [ $i -lt 250 ]; do \"$BIN\" events emit HistoryAdded --payload '{payload}' >/dev/null || exit 1; i=$((i+1)); done"
            );
            repo.env(Command::new("sh").current_dir(dir).arg("-c").arg(script).env("BIN", BIN))
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut c in children {
        assert!(
            c.wait().expect("wait").success(),
            "an emitting process failed"
        );
    }

    let events = repo.events(2000);
    assert_eq!(events.len(), 1001);
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e["event"]["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1001, "event ids are unique");
    // Along the chain (by Seq), clocks strictly increase.
    let mut by_seq: Vec<(u64, u64)> = events
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["event"]["lamport_clock"].as_u64().unwrap(),
            )
        })
        .collect();
    by_seq.sort();
    for (i, pair) in by_seq.windows(2).enumerate() {
        assert_eq!(pair[1].0, pair[0].0 + 1, "seq gap at {i}");
        assert!(
            pair[1].1 > pair[0].1,
            "clock not increasing at seq {}",
            pair[1].0
        );
    }
    let count = repo.git(&["rev-list", "--count", "--glob=refs/spec-kitty/events"]);
    assert_eq!(count.trim(), "1001");
    let fsck = repo
        .env(
            Command::new("git")
                .current_dir(&repo.root)
                .args(["fsck", "--strict"]),
        )
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{}", stderr(&fsck));
    let verify = repo.sk(&["events", "verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
}

#[test]
fn filters_and_limits_of_events_log() {
    let repo = TestRepo::new();
    repo.emit_status_ok("WP01", "planned", "doing");
    repo.emit_status_ok("WP02", "planned", "doing");
    repo.sk_ok(&["events", "emit", "HistoryAdded", "--payload", r#"{"wp_id":"WP01","entry_type":"note","entry_content":"hi","author":"t","feature_slug":"001-demo"}"#]);
    let wp1 = repo.sk_ok(&["events", "log", "--wp", "WP01"]);
    assert_eq!(wp1.lines().count(), 2, "{wp1}");
    let status = repo.sk_ok(&["events", "log", "--type", "WPStatusChanged", "-n", "1"]);
    assert!(
        status.contains("WP02") && status.lines().count() == 1,
        "{status}"
    );
    let feature = repo.sk_ok(&["events", "log", "--feature", "001-demo", "--json"]);
    let feature: Vec<serde_json::Value> = serde_json::from_str(&feature).unwrap();
    assert_eq!(feature.len(), 1);
    assert_eq!(feature[0]["event"]["event_type"], "HistoryAdded");
}

#[test]
fn pending_cap_refuses_new_events_and_touches_nothing() {
    if common::rerun_hermetic("pending_cap_refuses_new_events_and_touches_nothing") {
        return;
    }
    let repo = TestRepo::new();
    repo.write_config("[sync]\nqueue_limit = 3\n");
    for wp in ["WP01", "WP02", "WP03"] {
        repo.emit_status_ok(wp, "planned", "doing");
    }
    let tip = repo.git(&["rev-parse", "--glob=refs/spec-kitty/events"]);
    let out = repo.emit_status("WP04", "planned", "doing");
    assert!(!out.status.success(), "events emit must fail at the cap");
    let err = stderr(&out);
    assert!(
        err.contains("3 events are waiting") && err.contains("spec-kitty sync now"),
        "{err}"
    );
    assert_eq!(
        repo.git(&["rev-parse", "--glob=refs/spec-kitty/events"]),
        tip,
        "nothing written"
    );
    assert_eq!(repo.sk_ok(&["events", "pending", "--count"]).trim(), "3");

    // Through the emit function the caller carries on: an outcome with a warning, no error.
    let config = spec_kitty::sync::ClientConfig {
        path: repo.home.join(".spec-kitty/config.toml"),
        queue_limit: 3,
        ..spec_kitty::sync::ClientConfig::defaults()
    };
    let emitter = spec_kitty::workflow::Emitter::with_config(&repo.root, &config);
    let outcome = emitter.emit(
        &spec_kitty::event::Payload::WPStatusChanged {
            wp_id: "WP05".into(),
            previous_status: spec_kitty::event::Lane::Planned,
            new_status: spec_kitty::event::Lane::Doing,
            changed_by: "t".into(),
            feature_slug: None,
        },
        None,
    );
    let warning = outcome.warning().expect("refused with a warning");
    assert!(warning.contains("spec-kitty sync now"), "{warning}");
    assert!(!warning.contains('\n'), "one line: {warning}");
    assert_eq!(
        repo.git(&["rev-parse", "--glob=refs/spec-kitty/events"]),
        tip
    );
}

#[test]
fn pending_range_follows_the_sync_state_ref() {
    if common::rerun_hermetic("pending_range_follows_the_sync_state_ref") {
        return;
    }
    let repo = TestRepo::new();
    let mut ids = Vec::new();
    for wp in ["WP01", "WP02", "WP03", "WP04", "WP05"] {
        ids.push(repo.emit_status_ok(wp, "planned", "doing"));
    }
    assert_eq!(repo.sk_ok(&["events", "pending", "--count"]).trim(), "5");

    // A server acknowledged events 1..=3 but rejected #2.
    let log = spec_kitty::store::EventLog::discover(&repo.root).unwrap();
    let chain = log.chain_events(log.node_id()).unwrap();
    let answers: Vec<spec_kitty::store::Answered> = chain[..3]
        .iter()
        .map(|s| spec_kitty::store::Answered {
            event_id: s.event.event_id.clone(),
            commit: s.commit,
            seq: s.seq,
            answer: if s.event.event_id == ids[1] {
                spec_kitty::store::Answer::Rejected("missing field".into())
            } else {
                spec_kitty::store::Answer::Settled
            },
        })
        .collect();
    log.record_sync(
        log.node_id(),
        &spec_kitty::store::SyncReport {
            server_url: "http://127.0.0.1:1",
            team: "team-a",
            answers: &answers,
            ..Default::default()
        },
    )
    .unwrap();

    let pending = repo.sk_ok(&["events", "pending", "--json"]);
    let pending: serde_json::Value = serde_json::from_str(&pending).unwrap();
    assert_eq!(pending["count"], 3);
    let pending_ids: Vec<&str> = pending["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        pending_ids,
        vec![ids[1].as_str(), ids[3].as_str(), ids[4].as_str()]
    );
    // Plain git shows the unsent range the same way.
    let node = log.node_id();
    let range = repo.git(&[
        "log",
        "--format=%s",
        &format!("refs/spec-kitty/synced/{node}..refs/spec-kitty/events/{node}"),
    ]);
    assert_eq!(range.lines().count(), 2, "{range}");
    assert!(repo.sk(&["events", "verify"]).status.success());
}

#[test]
fn lanes_are_derived_from_the_log_in_lamport_order() {
    if common::rerun_hermetic("lanes_are_derived_from_the_log_in_lamport_order") {
        return;
    }
    let repo = TestRepo::new();
    repo.emit_status_ok("WP01", "planned", "doing");
    repo.emit_status_ok("WP01", "doing", "for_review");
    repo.emit_status_ok("WP02", "planned", "doing");
    let log = spec_kitty::store::EventLog::discover(&repo.root).unwrap();
    let state = spec_kitty::workflow::state_cache::derive(&log).unwrap();
    let lane = |wp: &str| state.lane("", wp).map(|m| m.lane);
    assert_eq!(lane("WP01"), Some(spec_kitty::event::Lane::ForReview));
    assert_eq!(lane("WP02"), Some(spec_kitty::event::Lane::Doing));
}

#[test]
fn output_into_a_reader_that_closed_early_ends_quietly_without_a_panic() {
    let repo = TestRepo::new();
    let id = repo.emit_status_ok("WP01", "planned", "doing");
    repo.emit_status_ok("WP01", "doing", "planned");
    for args in [
        &["events", "log", "--json"][..],
        &["events", "log"],
        &["events", "show", id.trim()],
        &["events", "pending", "--json"],
        &["sync", "status", "--json"],
        &["--help"],
    ] {
        // `… | head -0`: the reading end is closed before the command writes anything, so
        // every write fails with a broken pipe (deterministically, unlike a racing `head -1`).
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = repo
            .env(Command::new(BIN).current_dir(&repo.root).args(args))
            .stdout(writer)
            .output()
            .expect("run spec-kitty");
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    // A reader that takes the first line and goes, as `head -1` does.
    let mut child = repo
        .env(Command::new(BIN).current_dir(&repo.root))
        .args(["events", "log", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        lines.read_line(&mut first).expect("first line");
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(first.trim(), "[");
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Event commits are read from their loose files by a fast path (store/loose.rs) and through
/// gix otherwise: after `git gc` packs them (and prunes the loose files) every read still works
/// and says the same.
#[test]
fn events_packed_by_git_gc_read_the_same_as_loose_ones() {
    let repo = TestRepo::new();
    for i in 0..5 {
        repo.emit_status_ok(&format!("WP0{i}"), "planned", "doing");
    }
    let before = repo.sk_ok(&["events", "log", "--json"]);
    let pending_before = repo.sk_ok(&["events", "pending", "--count"]);
    repo.git(&["gc", "-q", "--prune=now"]);
    let loose = repo.git(&["count-objects", "-v"]);
    assert!(
        loose.contains("\ncount: 0\n") || loose.starts_with("count: 0\n"),
        "{loose}"
    );
    assert_eq!(repo.sk_ok(&["events", "log", "--json"]), before);
    assert_eq!(
        repo.sk_ok(&["events", "pending", "--count"]),
        pending_before
    );
    repo.sk_ok(&["events", "verify"]);
    // And appending on top of a packed chain works, read back through both paths.
    repo.emit_status_ok("WP09", "planned", "doing");
    let after = repo.sk_ok(&["events", "log", "--json"]);
    assert!(after.contains("WP09") && after.len() > before.len());
}
