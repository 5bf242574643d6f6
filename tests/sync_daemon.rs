//! The live-sync daemon against the real server on loopback: live sends with acks, teammates'
//! events arriving live, reconnects, Offline-BatchMode, kill -9, identity changes, orphan
//! records, two repositories, stop and idle exit. Every daemon a test starts is killed by pid
//! when the test ends, and the test checks that none is left.

mod common;
mod server_common;
mod sync_common;
mod sync_daemon_common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::project::FEATURE;
use server_common::{NODE, TestServer, status_event};
use spec_kitty::event::Lane;
use sync_common::{login, pending, server_ids, sync_json};
use sync_daemon_common::*;

const WAIT: Duration = Duration::from_secs(30);

fn server_with(users: &[(&str, &str)]) -> TestServer {
    let server = TestServer::start(&[]);
    for (u, t) in users {
        server.add_user(u, t);
    }
    server
}

#[test]
fn given_a_connected_daemon_move_task_in_a_wp_worktree_reaches_a_teammate_live() {
    let server = server_with(&[("alice", "acme"), ("bob", "acme")]);
    let repo = logged_in_project(&server.url, "alice");
    let daemons = Daemons::new(&[&repo]);
    daemons.start(&repo);
    assert!(
        wait_until(WAIT, || daemon_status(&repo)["connection"] == "Connected"),
        "{}",
        daemon_status(&repo)
    );
    // The events recorded before the daemon started (finalize-tasks) were sent on connect.
    assert!(wait_until(WAIT, || pending(&repo) == 0));
    repo.sk_ok(&["implement", "WP01"]);
    let worktree = repo.root.join(".worktrees").join(format!("{FEATURE}-WP01"));
    assert!(worktree.is_dir(), "implement made the WP's worktree");
    assert!(wait_until(WAIT, || pending(&repo) == 0));

    let bob = teammate(&server.url, "bob");
    let start = Instant::now();
    let out = repo.sk_in(
        &worktree,
        &[
            "agent",
            "tasks",
            "move-task",
            "WP01",
            "--to",
            "for_review",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let moved: serde_json::Value = serde_json::from_slice(&out.stdout).expect("move-task json");
    let id = moved["events"][0]["event_id"]
        .as_str()
        .expect("the move's event id")
        .to_owned();
    let at = loop {
        let (seen, at) = bob
            .events
            .recv_timeout(WAIT)
            .expect("the teammate sees the move");
        if seen == id {
            break at;
        }
    };
    let delay = at.duration_since(start);
    eprintln!(
        "move-task in a WP worktree → teammate over WebSocket: {delay:?} (including the move-task process)"
    );
    assert!(delay < Duration::from_secs(5), "{delay:?}");
    // The ack moved the sync state: nothing pending, the server holds it once.
    assert!(wait_until(WAIT, || pending(&repo) == 0));
    let on_server = server_ids(&server, "bob");
    assert_eq!(on_server.iter().filter(|s| **s == id).count(), 1);
    let status = daemon_status(&repo);
    assert!(
        status["state"]["sent_live"].as_u64().unwrap_or(0) >= 2,
        "{status}"
    );
    // Inline connection state for an emitting command (read from the state file).
    let out = repo.emit_status_in(&worktree, "WP02", "planned", "doing");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[Connected]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_teammates_move_arrives_live_and_shows_in_status_json_without_sync_now() {
    let server = server_with(&[("alice", "acme"), ("bob", "acme")]);
    let alice = logged_in_project(&server.url, "alice");
    // Bob: a second clone of the same project, with his own daemon. Nobody runs `sync now`.
    let bob = logged_in_project(&server.url, "bob");
    let daemons = Daemons::new(&[&alice, &bob]);
    daemons.start(&alice);
    assert!(wait_until(WAIT, || daemon_status(&alice)["connection"] == "Connected"));
    daemons.start(&bob);
    assert!(wait_until(WAIT, || pending(&bob) == 0));
    // Bob's finalize-tasks (8 events) reached alice live when his daemon connected.
    let received = || {
        daemon_status(&alice)["state"]["received_live"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(
        wait_until(WAIT, || received() >= 8),
        "{}",
        daemon_status(&alice)
    );
    let before = received();
    assert_eq!(
        lane_in(&alice, &alice.root, "WP02").as_deref(),
        Some("planned")
    );
    // Alice watches her board in a terminal meanwhile.
    let watch = BoardWatch::start(&alice);
    assert!(
        watch.wait_for(WAIT, "doing (0)"),
        "the first board: {}",
        watch.text()
    );

    let out = bob.sk(&[
        "agent",
        "tasks",
        "move-task",
        "WP02",
        "--to",
        "doing",
        "--json",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let moved: serde_json::Value = serde_json::from_slice(&out.stdout).expect("move-task json");
    let id = moved["events"][0]["event_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let start = Instant::now();
    assert!(
        wait_until(WAIT, || lane_in(&alice, &alice.root, "WP02").as_deref()
            == Some("doing")),
        "alice's board shows bob's move: {}",
        daemon_status(&alice)
    );
    eprintln!(
        "bob's move-task → alice's `status --json`: {:?}",
        start.elapsed()
    );
    // It came over the WebSocket (not a pull) and sits on bob's chain in alice's repository,
    // synced by definition: nothing for alice to upload.
    // (The state file is rewritten at most once a second.)
    assert!(
        wait_until(WAIT, || received() > before),
        "{}",
        daemon_status(&alice)
    );
    let bob_node = daemon_status(&bob)["owner"]["node_id"]
        .as_str()
        .expect("bob's node")
        .to_owned();
    let chain = alice.git(&[
        "log",
        "--format=%b",
        &format!("refs/spec-kitty/events/{bob_node}"),
    ]);
    assert!(chain.contains(&id), "{chain}");
    assert_eq!(pending(&alice), 0);
    let boards: serde_json::Value =
        serde_json::from_str(&alice.sk_ok(&["status", "--json"])).expect("status json");
    let card = boards[0]["work_packages"]
        .as_array()
        .expect("cards")
        .iter()
        .find(|c| c["wp_id"] == "WP02")
        .expect("WP02")
        .clone();
    assert_eq!(card["lane_source"], "events", "{card}");
    // `status --watch` redrew the board on its own, and Ctrl-C ends it.
    assert!(
        watch.wait_for(WAIT, "doing (1)"),
        "the redrawn board: {}",
        watch.text()
    );
    watch.interrupt_and_wait();
}

/// `spec-kitty status --watch` in a repository, its output collected as it comes.
struct BoardWatch {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<String>>,
}

impl BoardWatch {
    fn start(repo: &common::TestRepo) -> BoardWatch {
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(common::BIN);
        // As at a terminal: Ctrl-C's default action. A test run started in the background by
        // a non-interactive shell inherits SIGINT ignored, and exec keeps that.
        // SAFETY: only signal(2), which is async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = repo
            .env(cmd.current_dir(&repo.root))
            .args(["status", "--watch"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("status --watch");
        let mut stdout = child.stdout.take().expect("stdout");
        let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("out")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        BoardWatch { child, out }
    }

    fn text(&self) -> String {
        self.out.lock().expect("out").clone()
    }

    fn wait_for(&self, timeout: Duration, needle: &str) -> bool {
        wait_until(timeout, || self.text().contains(needle))
    }

    /// SIGINT (Ctrl-C), then a bounded wait for the exit.
    fn interrupt_and_wait(mut self) {
        // SAFETY: a plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let exited = wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        assert!(exited, "status --watch ended on Ctrl-C");
    }
}

impl Drop for BoardWatch {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn a_teammates_event_arrives_live_and_is_in_the_log_without_sync_now() {
    let server = server_with(&[("alice", "acme"), ("bob", "acme")]);
    let repo = logged_in_repo(&server.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    daemons.start(&repo);
    assert!(wait_until(WAIT, || daemon_status(&repo)["connection"] == "Connected"));
    let event = status_event("acme", "WP07", Lane::Planned, Lane::Doing, 5);
    let id = event["event_id"].as_str().expect("id").to_owned();
    let answer = upload_as(&server.url, "bob", &[event]);
    assert_eq!(answer["results"][0]["status"], "success", "{answer}");
    let in_log = || {
        repo.events(1000)
            .iter()
            .any(|e| e["event"]["event_id"] == id.as_str())
    };
    assert!(
        wait_until(WAIT, in_log),
        "the teammate's event reached the log"
    );
    // It sits on the teammate's chain, synced by definition: nothing to upload.
    let chain = repo.git(&[
        "log",
        "--format=%s",
        &format!("refs/spec-kitty/events/{NODE}"),
    ]);
    assert!(chain.contains("WP07"), "{chain}");
    assert_eq!(pending(&repo), 0);
}

#[test]
fn after_a_server_restart_the_daemon_reconnects_and_nothing_is_lost_or_doubled() {
    let server = server_with(&[("alice", "acme")]);
    let proxy = Proxy::start(&server.url);
    let repo = logged_in_repo(&proxy.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    daemons.start(&repo);
    assert!(wait_until(WAIT, || pending(&repo) == 0));
    let mut ids = vec![repo.emit_status_ok("WP01", "planned", "doing")];
    assert!(wait_until(WAIT, || pending(&repo) == 0));

    proxy.cut();
    let server = server.restart();
    for i in 0..3 {
        ids.push(repo.emit_status_ok(&format!("WP1{i}"), "planned", "doing"));
    }
    proxy.restore(Some(&server.url));
    assert!(
        wait_until(WAIT, || pending(&repo) == 0),
        "{}",
        daemon_status(&repo)
    );
    assert!(wait_until(WAIT, || daemon_status(&repo)["connection"] == "Connected"));
    let on_server = server_ids(&server, "alice");
    let unique: HashSet<&String> = on_server.iter().collect();
    assert_eq!(unique.len(), on_server.len(), "no event is doubled");
    for id in &ids {
        assert!(on_server.contains(id), "{id} reached the server");
    }
}

#[test]
fn with_the_network_down_it_goes_offline_batch_mode_and_drains_when_it_is_back() {
    let server = server_with(&[("alice", "acme")]);
    let proxy = Proxy::start(&server.url);
    let repo = logged_in_repo(&proxy.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    daemons.start(&repo);
    assert!(wait_until(WAIT, || pending(&repo) == 0));

    proxy.cut();
    assert!(
        wait_until(WAIT, || daemon_status(&repo)["connection"]
            == "Offline-BatchMode"),
        "{}",
        daemon_status(&repo)
    );
    let ids: Vec<String> = (0..3)
        .map(|i| repo.emit_status_ok(&format!("WP2{i}"), "planned", "doing"))
        .collect();
    let out = repo.emit_status("WP29", "planned", "doing");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[Offline-BatchMode]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pending(&repo) >= 3);
    proxy.restore(None);
    // Drained within 30 s of the network coming back (here: a batch every second).
    assert!(
        wait_until(WAIT, || pending(&repo) == 0),
        "{}",
        daemon_status(&repo)
    );
    let on_server = server_ids(&server, "alice");
    for id in &ids {
        assert!(on_server.contains(id));
    }
    assert!(wait_until(WAIT, || daemon_status(&repo)["connection"] == "Connected"));
}

#[test]
fn a_daemon_killed_with_sigkill_shows_stale_and_the_next_emit_restarts_it() {
    let server = server_with(&[("alice", "acme")]);
    let repo = logged_in_repo(&server.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    // Auto-start: the test asks for it explicitly (the harness turns it off).
    let auto = |args: &[&str]| {
        repo.env(Command::new(common::BIN).current_dir(&repo.root).args(args))
            .env("SPEC_KITTY_SYNC_BACKGROUND", "auto")
            .output()
            .expect("run")
    };
    let payload =
        r#"{"wp_id":"WP01","previous_status":"planned","new_status":"doing","changed_by":"t"}"#;
    let emit = |wp_payload: &str| {
        let out = auto(&["events", "emit", "WPStatusChanged", "--payload", wp_payload]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let first = emit(payload);
    assert!(wait_until(WAIT, || daemons.running_pid(&repo).is_some()));
    let pid = daemons.running_pid(&repo).expect("auto-started");
    assert!(wait_until(WAIT, || pending(&repo) == 0));

    process_kill9(pid);
    assert!(wait_until(WAIT, || daemon_status(&repo)["status"] == "stale"));
    let status = daemon_status(&repo);
    assert_eq!(
        status["connection"], "Offline",
        "stale is never connected: {status}"
    );
    let text = repo.sk_ok(&["sync", "status"]);
    assert!(text.contains("stale since"), "{text}");

    let second = emit(payload);
    assert!(
        wait_until(WAIT, || daemons
            .running_pid(&repo)
            .is_some_and(|p| p != pid)),
        "a new daemon started"
    );
    assert!(wait_until(WAIT, || pending(&repo) == 0));
    let on_server = server_ids(&server, "alice");
    assert!(on_server.contains(&first) && on_server.contains(&second));
}

fn process_kill9(pid: u32) {
    assert!(spec_kitty::sync::daemon::process::signal(pid, true));
    assert!(wait_until(WAIT, || {
        !spec_kitty::sync::daemon::process::is_daemon(pid, None)
    }));
}

#[test]
fn logging_in_as_another_team_stops_the_daemon_and_it_says_why() {
    let server = server_with(&[("alice", "acme"), ("carol", "beta")]);
    let repo = logged_in_repo(&server.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    let pid = daemons.start(&repo);
    assert!(wait_until(WAIT, || pending(&repo) == 0));

    login(&repo, "carol");
    assert!(
        wait_until(WAIT, || !spec_kitty::sync::daemon::process::is_daemon(
            pid, None
        )),
        "the daemon stops sending once the identity changed"
    );
    let status = daemon_status(&repo);
    assert_eq!(status["status"], "not_running", "{status}");
    let why = status["state"]["stopped"].as_str().unwrap_or_default();
    assert!(why.contains("refused to send"), "{status}");
    // Nothing of carol's was sent by alice's daemon.
    let emitted = repo.emit_status_ok("WP03", "planned", "doing");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!server_ids(&server, "carol").contains(&emitted));
    // The emit path does not respawn a daemon for an identity it was refused for.
    assert!(daemons.running_pid(&repo).is_none());
    // `sync status --check --json` names the chain synced for the other team.
    let check = repo.sk(&["sync", "status", "--check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&check.stdout).expect("json");
    let error = v["preflight"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("team acme") && error.contains("team beta"),
        "{v}"
    );
    // The remediation it names (go back: log in as a member of acme) lets a daemon start.
    login(&repo, "alice");
    daemons.start(&repo);
    assert!(wait_until(WAIT, || daemon_status(&repo)["connection"] == "Connected"));
}

#[test]
fn a_refused_refresh_stops_sending_and_the_same_daemon_resumes_after_auth_login() {
    // Access tokens live one second, so every HTTP call of the daemon refreshes first.
    let server = TestServer::start(&["--access-lifetime", "1"]);
    server.add_user("alice", "acme");
    let proxy = Proxy::start(&server.url);
    let repo = logged_in_repo(&proxy.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    let pid = daemons.start(&repo);
    assert!(wait_until(WAIT, || daemon_status(&repo)["connection"] == "Connected"));
    assert!(wait_until(WAIT, || pending(&repo) == 0));

    // The refresh token is revoked behind the daemon's back; the next reconnect needs it.
    let creds: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo.home.join(".spec-kitty/credentials")).expect("credentials"),
    )
    .expect("json");
    let refresh = creds["servers"][proxy.url.as_str()]["refresh"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token stored for {}", proxy.url))
        .to_owned();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let revoked = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/logout/", server.url))
        .json(&serde_json::json!({ "refresh": refresh }))
        .send()
        .expect("logout");
    assert!(revoked.status().is_success(), "{}", revoked.status());
    proxy.cut();
    proxy.restore(None);
    let waiting = || {
        let s = daemon_status(&repo);
        s["connection"] == "Offline"
            && s["state"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("spec-kitty auth login"))
    };
    assert!(wait_until(WAIT, waiting), "{}", daemon_status(&repo));
    assert_eq!(
        daemons.running_pid(&repo),
        Some(pid),
        "it waits, it does not exit"
    );

    // It sends nothing meanwhile: a new event stays pending.
    let id = repo.emit_status_ok("WP05", "planned", "doing");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(pending(&repo) >= 1);
    assert!(!server_ids(&server, "alice").contains(&id));

    // `auth login` is noticed without a restart: the same daemon drains the queue.
    login(&repo, "alice");
    assert!(
        wait_until(WAIT, || pending(&repo) == 0),
        "{}",
        daemon_status(&repo)
    );
    assert!(server_ids(&server, "alice").contains(&id));
    assert_eq!(daemons.running_pid(&repo), Some(pid));
    assert!(wait_until(WAIT, || daemon_status(&repo)["connection"] == "Connected"));
    // Through all of it, no token reached the daemon's log, state or owner record.
    let creds: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo.home.join(".spec-kitty/credentials")).expect("credentials"),
    )
    .expect("json");
    let session = &creds["servers"][proxy.url.as_str()];
    let tokens = [
        refresh,
        session["refresh"].as_str().expect("refresh").to_owned(),
        session["access"].as_str().expect("access").to_owned(),
    ];
    for file in ["daemon.log", "daemon-state.json", "daemon.json"] {
        let text = std::fs::read_to_string(common_dir(&repo).join("spec-kitty").join(file))
            .unwrap_or_default();
        for t in &tokens {
            assert!(!text.contains(t.as_str()), "a token in {file}");
        }
    }
}

#[test]
fn clean_removes_orphan_records_and_never_kills_a_live_process_that_is_not_ours() {
    let server = server_with(&[("alice", "acme")]);
    let repo = logged_in_repo(&server.url, "alice", "");
    let _daemons = Daemons::new(&[&repo]);
    let dir = common_dir(&repo).join("spec-kitty");
    std::fs::create_dir_all(&dir).expect("dir");
    let mut stranger = Command::new("sleep").arg("60").spawn().expect("sleep");
    let record = |pid: u32, binary: &str| {
        serde_json::json!({
            "pid": pid, "process_start": null, "started_at": "2026-01-01T00:00:00.000+00:00",
            "root": repo.root, "server_url": server.url, "username": "alice", "team": "acme",
            "project_uuid": "x", "node_id": "y", "version": "0.1.0", "binary": binary
        })
    };
    // A live process that is not a daemon: stale, cleaned, never killed.
    std::fs::write(
        dir.join("daemon.json"),
        record(stranger.id(), common::BIN).to_string(),
    )
    .expect("record");
    assert_eq!(daemon_status(&repo)["status"], "stale");
    let out = repo.sk_ok(&["sync", "daemon", "clean", "--json"]);
    assert!(out.contains("daemon.json"), "{out}");
    assert!(!dir.join("daemon.json").exists());
    assert!(
        stranger.try_wait().expect("wait").is_none(),
        "the stranger lives"
    );
    // `stop` with such a record never signals it either.
    std::fs::write(
        dir.join("daemon.json"),
        record(stranger.id(), common::BIN).to_string(),
    )
    .expect("record");
    repo.sk_ok(&["sync", "daemon", "stop"]);
    assert!(
        stranger.try_wait().expect("wait").is_none(),
        "the stranger lives"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
    // A dead pid: an orphan.
    std::fs::write(
        dir.join("daemon.json"),
        record(stranger.id(), "/nonexistent/spec-kitty").to_string(),
    )
    .expect("record");
    assert_eq!(daemon_status(&repo)["status"], "stale");
    repo.sk_ok(&["sync", "daemon", "clean"]);
    assert_eq!(daemon_status(&repo)["status"], "not_running");
}

#[test]
fn two_repositories_each_with_its_own_daemon_never_mix_their_events() {
    let server = server_with(&[("alice", "acme")]);
    let one = logged_in_repo(&server.url, "alice", "");
    let two = logged_in_repo(&server.url, "alice", "");
    let daemons = Daemons::new(&[&one, &two]);
    let p1 = daemons.start(&one);
    let p2 = daemons.start(&two);
    assert_ne!(p1, p2);
    let a = one.emit_status_ok("WP01", "planned", "doing");
    let b = two.emit_status_ok("WP02", "planned", "doing");
    assert!(wait_until(WAIT, || pending(&one) == 0 && pending(&two) == 0));
    let node = |r: &common::TestRepo| {
        daemon_status(r)["owner"]["node_id"]
            .as_str()
            .expect("node")
            .to_owned()
    };
    let (n1, n2) = (node(&one), node(&two));
    assert_ne!(n1, n2);
    // Each repository's own chain holds only its own events.
    let own = |r: &common::TestRepo, n: &str| {
        r.git(&["log", "--format=%b", &format!("refs/spec-kitty/events/{n}")])
    };
    assert!(own(&one, &n1).contains(&a) && !own(&one, &n1).contains(&b));
    assert!(own(&two, &n2).contains(&b) && !own(&two, &n2).contains(&a));
    let on_server = server_ids(&server, "alice");
    assert_eq!(on_server.iter().filter(|s| **s == a).count(), 1);
    assert_eq!(on_server.iter().filter(|s| **s == b).count(), 1);
}

#[test]
fn stop_flushes_and_removes_the_records_and_an_idle_daemon_exits_by_itself() {
    let server = server_with(&[("alice", "acme")]);
    let repo = logged_in_repo(&server.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    let pid = daemons.start(&repo);
    // `start` when one runs says so and exits 0.
    let again = repo.sk_ok(&["sync", "daemon", "start"]);
    assert!(again.contains("already running"), "{again}");
    let id = repo.emit_status_ok("WP01", "planned", "doing");
    let out = repo.sk_ok(&["sync", "daemon", "stop", "--json"]);
    assert!(out.contains("\"stopped\""), "{out}");
    assert!(!spec_kitty::sync::daemon::process::is_daemon(pid, None));
    assert_eq!(pending(&repo), 0, "stop flushed the acks");
    assert!(server_ids(&server, "alice").contains(&id));
    let status = daemon_status(&repo);
    assert_eq!(status["status"], "not_running");
    assert!(!common_dir(&repo).join("spec-kitty/daemon.json").exists());

    repo.write_config(&fast_config(&server.url, "daemon_idle_exit = \"2s\"\n"));
    let pid = daemons.start(&repo);
    assert!(
        wait_until(WAIT, || !spec_kitty::sync::daemon::process::is_daemon(
            pid, None
        )),
        "the idle daemon exits"
    );
    let status = daemon_status(&repo);
    assert!(
        status["state"]["stopped"]
            .as_str()
            .unwrap_or_default()
            .contains("idle"),
        "{status}"
    );
    assert!(daemons.wait_all_gone(WAIT));
}

#[test]
fn sync_now_works_the_same_while_a_daemon_runs_and_nothing_is_sent_twice() {
    let server = server_with(&[("alice", "acme")]);
    let repo = logged_in_repo(&server.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    let pid = daemons.start(&repo);
    assert!(wait_until(WAIT, || daemon_status(&repo)["connection"] == "Connected"));
    // Events recorded and `sync now` run at once, racing the daemon's live sends.
    let ids: Vec<String> = (0..5)
        .map(|i| repo.emit_status_ok(&format!("WP3{i}"), "planned", "doing"))
        .collect();
    let (code, summary) = sync_json(&repo, &[]);
    assert_eq!(code, 0, "{summary}");
    assert!(wait_until(WAIT, || pending(&repo) == 0));
    let on_server = server_ids(&server, "alice");
    for id in &ids {
        assert_eq!(on_server.iter().filter(|s| *s == id).count(), 1, "{id}");
    }
    // And again with nothing pending: still exit 0, and the daemon is untouched.
    let (code, summary) = sync_json(&repo, &[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(daemons.running_pid(&repo), Some(pid));
}

#[test]
fn a_daemon_started_in_a_wp_worktree_runs_in_the_main_checkout_and_outlives_the_worktree() {
    let server = server_with(&[("alice", "acme")]);
    let proxy = Proxy::start(&server.url);
    let repo = logged_in_repo(&proxy.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    let worktree = repo.add_worktree("wp01");
    let out = repo.sk_in(&worktree, &["sync", "daemon", "start", "--json"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let pid = daemons.running_pid(&repo).expect("started");
    let root = daemon_status(&repo)["owner"]["root"]
        .as_str()
        .expect("root")
        .to_owned();
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).expect("canonical");
    assert_eq!(canonical(root.as_ref()), canonical(&repo.root));
    assert!(wait_until(WAIT, || pending(&repo) == 0));

    // The worktree goes (as after a merge); a reconnect needs the repository again.
    repo.git(&[
        "worktree",
        "remove",
        "--force",
        worktree.to_str().expect("utf8"),
    ]);
    proxy.cut();
    proxy.restore(None);
    let id = repo.emit_status_ok("WP01", "planned", "doing");
    assert!(
        wait_until(WAIT, || pending(&repo) == 0),
        "{}",
        daemon_status(&repo)
    );
    assert!(server_ids(&server, "alice").contains(&id));
    assert_eq!(daemons.running_pid(&repo), Some(pid));
}

#[test]
fn the_daemon_answers_the_servers_pings_and_keeps_its_connection() {
    // Pings every 100 ms: two unanswered ones would close the connection within 300 ms.
    let server = TestServer::start(&["--ws-ping-interval-ms", "100"]);
    server.add_user("alice", "acme");
    let repo = logged_in_repo(&server.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    daemons.start(&repo);
    assert!(wait_until(WAIT, || daemon_status(&repo)["connection"] == "Connected"));
    let since = daemon_status(&repo)["state"]["since"].clone();
    std::thread::sleep(Duration::from_millis(1500));
    let status = daemon_status(&repo);
    assert_eq!(status["connection"], "Connected", "{status}");
    assert_eq!(
        status["state"]["since"], since,
        "never reconnected: {status}"
    );
    let id = repo.emit_status_ok("WP01", "planned", "doing");
    assert!(wait_until(WAIT, || pending(&repo) == 0));
    assert!(server_ids(&server, "alice").contains(&id));
}

#[test]
fn the_test_harness_never_starts_a_daemon_by_itself() {
    let server = server_with(&[("alice", "acme")]);
    let repo = logged_in_repo(&server.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    repo.emit_status_ok("WP01", "planned", "doing");
    std::thread::sleep(Duration::from_millis(300));
    assert!(daemons.running_pid(&repo).is_none());
    assert_eq!(daemon_status(&repo)["status"], "not_running");
}

#[test]
fn sync_now_refuses_while_a_daemon_of_another_binary_runs_and_the_named_remediation_works() {
    let server = server_with(&[("alice", "acme")]);
    let repo = logged_in_repo(&server.url, "alice", "");
    let daemons = Daemons::new(&[&repo]);
    // Another binary: a hard link of this one (same file system, another path).
    let bin = std::path::Path::new(common::BIN);
    let other_dir = tempfile::tempdir_in(bin.parent().expect("dir")).expect("tmp");
    let other = other_dir.path().join("spec-kitty");
    std::fs::hard_link(bin, &other).expect("hard link");
    let out = repo
        .env(Command::new(&other).current_dir(&repo.root))
        .args(["sync", "daemon", "start", "--json"])
        .output()
        .expect("start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(daemons.running_pid(&repo).is_some());

    let out = repo.sk(&["sync", "now"]);
    let text = common::unwrap_lines(&String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("binary: you"), "{text}");
    assert!(text.contains("spec-kitty sync daemon stop"), "{text}");
    assert!(text.lines().count() <= 25, "{text}");
    let check = repo.sk(&["sync", "status", "--check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&check.stdout).expect("json");
    assert_eq!(v["preflight"]["clear"], false, "{v}");
    assert_eq!(v["preflight"]["mismatches"][0]["field"], "binary", "{v}");
    assert!(v["preflight"]["daemon"]["pid"].is_u64(), "{v}");

    // The remediation the message names, then the next attempt passes.
    repo.sk_ok(&["sync", "daemon", "stop"]);
    let out = repo.sk(&["sync", "now"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
