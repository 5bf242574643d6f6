//! `sync now` against the real server on loopback: everything lands exactly once, rejections
//! are kept and counted, faults never raise retry counts, pulls bring teammates' events.

mod common;
mod server_common;
mod sync_common;

use std::collections::HashSet;

use server_common::TestServer;
use sync_common::*;

#[test]
fn given_50_events_recorded_offline_one_sync_now_puts_all_on_the_server() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    let ids = emit_n(&repo, 50);
    login(&repo, "alice");

    let out = repo.sk(&["sync", "now"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!("Syncing with {}...", server.url)),
        "{text}"
    );
    assert!(text.contains("↑ Pushed 50 events (1 batch)"), "{text}");
    assert!(text.contains("↓ Pulled 0 new events"), "{text}");
    assert!(text.contains("✅ Sync complete"), "{text}");

    let on_server: HashSet<String> = server_ids(&server, "alice").into_iter().collect();
    assert_eq!(on_server, ids.iter().cloned().collect::<HashSet<_>>());
    assert_eq!(pending(&repo), 0);

    let (code, again) = sync_json_checked(&repo, &[]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["pending_before"], 0, "{again}");
    assert_eq!(again["pushed"]["batches"], 0, "{again}");
    assert_eq!(server_ids(&server, "alice").len(), 50);

    let status = status_json(&repo);
    assert_eq!(status["pending"], 0, "{status}");
    assert_eq!(status["last_sync"]["acknowledged"], 50, "{status}");
    assert!(repo.sk(&["events", "verify"]).status.success());
}

#[test]
fn events_emitted_while_logged_in_carry_the_session_team() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    repo.emit_status_ok("WP01", "planned", "doing");
    login(&repo, "alice");
    repo.emit_status_ok("WP01", "doing", "for_review");
    let events = repo.events(2);
    assert_eq!(events[0]["event"]["team_slug"], "local", "{}", events[0]);
    assert_eq!(events[1]["event"]["team_slug"], "acme", "{}", events[1]);
}

#[test]
fn dry_run_lists_what_would_be_sent_and_contacts_nothing() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    emit_n(&repo, 3);
    login(&repo, "alice");
    let mut server = server;
    assert!(server.terminate());
    let (code, v) = sync_json(&repo, &["--dry-run"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["would_send"].as_array().map(Vec::len), Some(3), "{v}");
    assert_eq!(pending(&repo), 3);
}

#[test]
fn given_the_server_is_down_nothing_is_lost_and_no_retry_count_rises() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    let ids = emit_n(&repo, 5);
    login(&repo, "alice");
    let mut server = server;
    assert!(server.terminate());

    let out = repo.sk(&["sync", "now"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("Server unreachable"),
        "{}",
        stdout(&out)
    );
    assert_eq!(pending(&repo), 5);
    let status = status_json(&repo);
    assert_eq!(status["rejected"], 0, "{status}");
    // `sync status` agrees with `sync now --json`: pending unchanged, no retry count raised.
    let (code, v) = sync_json_checked(&repo, &[]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["pushed"]["stop"]["category"], "unreachable", "{v}");

    let server = server.restart();
    point_at(&repo, &server.url);
    login(&repo, "alice");
    let (code, v) = sync_json_checked(&repo, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["pushed"]["settled"], 5, "{v}");
    let on_server: HashSet<String> = server_ids(&server, "alice").into_iter().collect();
    assert_eq!(on_server, ids.into_iter().collect::<HashSet<_>>());
}

#[test]
fn preflight_refuses_without_login_and_names_the_fix() {
    let server = TestServer::start(&[]);
    let repo = repo_for(&server);
    emit_n(&repo, 1);
    let out = repo.sk(&["sync", "now"]);
    assert_eq!(out.status.code(), Some(2));
    let err = common::unwrap_lines(&stderr(&out));
    assert!(err.contains("not logged in"), "{err}");
    assert!(err.contains("spec-kitty auth login"), "{err}");
}

#[test]
fn a_chain_synced_to_another_team_is_refused_with_both_names() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    server.add_user("bob", "beta");
    let repo = repo_for(&server);
    emit_n(&repo, 2);
    login(&repo, "alice");
    let (code, _) = sync_json(&repo, &[]);
    assert_eq!(code, 0);
    emit_n(&repo, 1);
    login(&repo, "bob");
    let out = repo.sk(&["sync", "now"]);
    assert_eq!(out.status.code(), Some(2));
    let err = common::unwrap_lines(&stderr(&out));
    assert!(err.contains("acme") && err.contains("beta"), "{err}");
    assert!(err.contains("git update-ref -d"), "{err}");
}

#[test]
fn a_teammates_events_are_pulled_and_shown_and_other_teams_see_nothing() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    server.add_user("bob", "acme");
    server.add_user("eve", "beta");
    let first = repo_for(&server);
    let ids = emit_n(&first, 6);
    first.git(&["add", ".kittify"]);
    first.git(&["commit", "-q", "-m", "project identity"]);
    login(&first, "alice");
    assert_eq!(sync_json(&first, &[]).0, 0);

    // A teammate's clone: another node, same project and team.
    let second = common::TestRepo::new();
    point_at(&second, &server.url);
    std::fs::remove_dir_all(&second.root).unwrap();
    second.git_in(
        second.tmp.path(),
        &["clone", "-q", first.root.to_str().unwrap(), "repo"],
    );
    login(&second, "bob");
    let (code, v) = sync_json_checked(&second, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["pulled"]["written"], 6, "{v}");
    let log = second.sk_ok(&["events", "log", "--json", "-n", "100"]);
    for id in &ids {
        assert!(
            log.contains(id.as_str()),
            "{id} missing from the teammate's log"
        );
    }
    // The next local event's clock is above everything witnessed.
    let highest = first.events(1)[0]["event"]["lamport_clock"]
        .as_u64()
        .unwrap();
    second.emit_status_ok("WP50", "planned", "doing");
    let mine = second.events(1)[0]["event"]["lamport_clock"]
        .as_u64()
        .unwrap();
    assert!(mine > highest, "{mine} <= {highest}");
    assert!(second.sk(&["events", "verify"]).status.success());
    // A second pull brings nothing new (the cursor was stored).
    let (_, v) = sync_json(&second, &[]);
    assert_eq!(v["pulled"]["written"], 0, "{v}");
    assert_eq!(
        v["pulled"]["received"], 1,
        "only its own new event comes back: {v}"
    );

    // Team beta receives none of acme's events.
    let third = repo_for(&server);
    emit_n(&third, 1);
    login(&third, "eve");
    let (code, v) = sync_json(&third, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["pulled"]["written"], 0, "{v}");
}

#[test]
fn sync_now_works_from_a_subdirectory_of_a_linked_worktree() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    emit_n(&repo, 3);
    login(&repo, "alice");
    let wt = repo.add_worktree("wp01");
    let sub = wt.join("deep/er");
    std::fs::create_dir_all(&sub).unwrap();
    let (code, v) = sync_json_in(&repo, &sub, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["pushed"]["settled"], 3, "{v}");
    assert_eq!(pending(&repo), 0);
}

#[test]
fn two_sync_now_at_once_never_both_send_and_each_event_lands_once() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    emit_n(&repo, 20);
    login(&repo, "alice");
    let spawn = || {
        repo.env(std::process::Command::new(common::BIN).current_dir(&repo.root))
            .args(["sync", "now", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let a = spawn();
    let b = spawn();
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    let settled = |o: &std::process::Output| -> u64 {
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .ok()
            .and_then(|v| v["pushed"]["settled"].as_u64())
            .unwrap_or(0)
    };
    assert_eq!(
        settled(&a) + settled(&b),
        20,
        "exactly one of them sent everything"
    );
    let ids = server_ids(&server, "alice");
    assert_eq!(ids.len(), 20);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 20);
    assert_eq!(pending(&repo), 0);
}
