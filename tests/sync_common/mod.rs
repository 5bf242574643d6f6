//! Shared by the `sync_*` and `auth_*` tests: the real `spec-kitty-server` on loopback (from
//! `server_common`) and client repositories in the one hermetic harness (`common`), logged in
//! through the real `auth login`.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{BIN, TestRepo};
use crate::server_common::{PASSWORD, TestServer};

/// A client repository configured for `server`.
pub fn repo_for(server: &TestServer) -> TestRepo {
    let repo = TestRepo::new();
    point_at(&repo, &server.url);
    repo
}

pub fn point_at(repo: &TestRepo, url: &str) {
    repo.write_config(&format!("[sync]\nserver_url = \"{url}\"\n"));
}

/// Runs `spec-kitty` in `dir` with `input` on stdin.
pub fn sk_stdin(repo: &TestRepo, dir: &Path, args: &[&str], input: &str) -> Output {
    run_with_stdin(
        repo.env(Command::new(BIN).current_dir(dir).args(args)),
        input,
    )
}

/// Runs `cmd` with `input` and a newline on stdin; collects its output.
pub fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spec-kitty");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{input}");
    }
    child.wait_with_output().expect("wait")
}

/// `auth login -u USER --password-stdin`, asserting success.
pub fn login(repo: &TestRepo, user: &str) -> String {
    let out = sk_stdin(
        repo,
        &repo.root,
        &["auth", "login", "-u", user, "--password-stdin", "--force"],
        PASSWORD,
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "login of {user} failed: {text}");
    text
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `sync now --json` in `dir`: (exit code, summary).
pub fn sync_json_in(repo: &TestRepo, dir: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["sync", "now", "--json"];
    args.extend_from_slice(extra);
    let out = repo.sk_in(dir, &args);
    let code = out.status.code().unwrap_or(-1);
    let text = stdout(&out);
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|_| serde_json::json!({"unparsed_stdout": text, "stderr": stderr(&out)}));
    (code, v)
}

pub fn sync_json(repo: &TestRepo, extra: &[&str]) -> (i32, Value) {
    sync_json_in(repo, &repo.root, extra)
}

/// `sync status --json`.
pub fn status_json(repo: &TestRepo) -> Value {
    let out = repo.sk_ok(&["sync", "status", "--json"]);
    serde_json::from_str(&out).expect("status json")
}

pub fn pending(repo: &TestRepo) -> u64 {
    repo.sk_ok(&["events", "pending", "--count"])
        .trim()
        .parse()
        .expect("count")
}

/// Emits `n` status changes through the real CLI (one process each).
pub fn emit_n(repo: &TestRepo, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let wp = format!("WP{:02}", i % 100);
            let (from, to) = if i % 2 == 0 {
                ("planned", "doing")
            } else {
                ("doing", "planned")
            };
            repo.emit_status_ok(&wp, from, to)
        })
        .collect()
}

/// Every event id the server holds for `user`'s team, page by page (blocking HTTP).
pub fn server_ids(server: &TestServer, user: &str) -> Vec<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let tokens: Value = c
        .post(format!("{}/api/v1/token/", server.url))
        .json(&serde_json::json!({"username": user, "password": PASSWORD}))
        .send()
        .expect("login")
        .json()
        .expect("json");
    let access = tokens["access"].as_str().expect("access").to_owned();
    let mut ids = Vec::new();
    let mut after = String::new();
    for _ in 0..10_000 {
        let page: Value = c
            .get(format!(
                "{}/api/v1/events/?limit=1000&after={after}",
                server.url
            ))
            .bearer_auth(&access)
            .send()
            .expect("pull")
            .json()
            .expect("json");
        for e in page["events"].as_array().expect("events") {
            ids.push(e["event_id"].as_str().expect("id").to_owned());
        }
        match page["next"].as_str() {
            Some(n) => after = n.to_owned(),
            None => return ids,
        }
    }
    panic!("pull did not end");
}

/// Appends `n` events in-process (fast: no process per event). Call only from a test body
/// that runs under `common::rerun_hermetic`. `team_of(i)` sets event i's team_slug.
pub fn append_n(root: &Path, n: usize, team_of: impl Fn(usize) -> &'static str) -> Vec<String> {
    use spec_kitty::event::{Event, Lane, Origin, Payload};
    let log = spec_kitty::store::EventLog::discover(root).expect("log");
    let origin = spec_kitty::workflow::emit::origin_for(&log).expect("origin");
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (from, to) = if i % 2 == 0 {
            (Lane::Planned, Lane::Doing)
        } else {
            (Lane::Doing, Lane::Planned)
        };
        let p = Payload::WPStatusChanged {
            wp_id: format!("WP{:02}", i % 100),
            previous_status: from,
            new_status: to,
            changed_by: "bulk".into(),
            feature_slug: None,
        };
        let o = Origin {
            team_slug: team_of(i).into(),
            ..origin.clone()
        };
        let e = Event::new(&p, &o, None, None);
        ids.push(log.append(e, u64::MAX).expect("append").event_id);
    }
    ids
}

/// `sync now --json` with `sync status --json` read before and after, asserting that the
/// status tells the same story as the run (see [`assert_status_agrees`]).
pub fn sync_json_checked(repo: &TestRepo, extra: &[&str]) -> (i32, Value) {
    let before = status_json(repo);
    let (code, now) = sync_json(repo, extra);
    assert_status_agrees(&before, &now, &status_json(repo));
    (code, now)
}

/// `sync status` is computed from the refs `sync now` reads, so after a run it must agree with
/// the run's summary `now` (and with the status `before` it, where nothing was sent):
/// * pending = the run's `pending_after` (rejected ones included), and before it, the run's
///   `pending_before`;
/// * a push that ran to its end answered every pending event, so the rejected count and the
///   oldest rejection's error are the run's;
/// * a run that could send nothing (exit 2: server down, session expired) left every sync-state
///   ref alone: the same chains, rejections, retry counts (the last sync record is unchanged)
///   and pending count as before.
pub fn assert_status_agrees(before: &Value, now: &Value, after: &Value) {
    let story = || format!("before: {before}\nsync now: {now}\nafter: {after}");
    // A run refused before it started (no summary on stdout, e.g. the session expired during
    // the preflight) sent nothing either.
    let refused = now.get("unparsed_stdout").is_some();
    if !refused {
        assert_eq!(after["pending"], now["pending_after"], "{}", story());
        assert_eq!(before["pending"], now["pending_before"], "{}", story());
        let rejected = now["pushed"]["rejected"]
            .as_array()
            .expect("pushed.rejected");
        let pushed_to_the_end = now["pushed"]["stop"].is_null() && now["pushed"]["left"] == 0;
        if pushed_to_the_end && now["pending_before"].as_u64() > Some(0) {
            assert_eq!(after["rejected"], rejected.len(), "{}", story());
            let oldest = rejected.first().map(|r| r["error"].clone());
            assert_eq!(
                after["oldest_rejection_error"],
                oldest.unwrap_or(Value::Null),
                "{}",
                story()
            );
        }
    }
    if refused || now["exit_code"] == 2 {
        for key in [
            "pending",
            "rejected",
            "oldest_rejection_error",
            "chains",
            "last_sync",
        ] {
            assert_eq!(after[key], before[key], "{key} changed: {}", story());
        }
    }
    if after["pending"] == 0 {
        assert_eq!(after["rejected"], 0, "{}", story());
        assert!(after["oldest_pending_timestamp"].is_null(), "{}", story());
    }
}
