//! Bad input gets a clear error that names the fix, and nothing is overwritten.

mod common;

use common::{TestRepo, stderr, stdout};

fn chain_ref(repo: &TestRepo) -> String {
    repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/spec-kitty/events/",
    ])
    .trim()
    .to_owned()
}

#[test]
fn events_ref_pointing_at_a_blob_is_named_and_left_alone() {
    let repo = TestRepo::new();
    repo.emit_status_ok("WP01", "planned", "doing");
    let name = chain_ref(&repo);
    let blob = repo
        .git(&["hash-object", "-w", "README.md"])
        .trim()
        .to_owned();
    repo.git(&["update-ref", &name, &blob]);

    for args in [vec!["events", "log"], vec!["events", "pending", "--count"]] {
        let out = repo.sk(&args);
        assert!(!out.status.success(), "{args:?} must fail");
        let err = stderr(&out);
        assert!(
            err.contains(&name) && err.contains("blob") && err.contains(&blob),
            "{err}"
        );
        assert!(err.contains("git update-ref"), "names the fix: {err}");
    }
    let out = repo.emit_status("WP02", "planned", "doing");
    assert!(!out.status.success());
    assert_eq!(
        repo.git(&["rev-parse", &name]).trim(),
        blob,
        "the ref was not overwritten"
    );

    let verify = repo.sk(&["events", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(stdout(&verify).contains(&blob), "{}", stdout(&verify));
}

#[test]
fn a_commit_whose_message_is_not_json_is_reported_with_its_id() {
    let repo = TestRepo::new();
    repo.emit_status_ok("WP01", "planned", "doing");
    let name = chain_ref(&repo);
    let tip = repo.git(&["rev-parse", &name]).trim().to_owned();
    let empty_tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    let bad = repo
        .git(&[
            "commit-tree",
            empty_tree,
            "-p",
            &tip,
            "-m",
            "hello\n\nnot json at all\n\nEvent-Id: X\nLamport: 9\nSeq: 2",
        ])
        .trim()
        .to_owned();
    repo.git(&["update-ref", &name, &bad, &tip]);

    let out = repo.sk(&["events", "log"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&bad) && err.contains("events verify"), "{err}");

    let verify = repo.sk(&["events", "verify", "--json"]);
    assert_eq!(verify.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&verify)).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["commit"] == bad.as_str()),
        "{report}"
    );

    // Appending on top of a broken tip is refused; nothing is overwritten.
    let out = repo.emit_status("WP02", "planned", "doing");
    assert!(!out.status.success());
    assert_eq!(repo.git(&["rev-parse", &name]).trim(), bad);
}

#[test]
fn malformed_project_config_names_file_and_line_and_is_kept() {
    let repo = TestRepo::new();
    let dir = repo.root.join(".kittify");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = "agents:\n  claude: run\nproject:\n  uuid: [oops\n  slug: x\n";
    std::fs::write(dir.join("config.yaml"), bad).unwrap();
    let out = repo.emit_status("WP01", "planned", "doing");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(".kittify/config.yaml:"),
        "names the file and line: {err}"
    );
    // The help is the config file's, not a generic git one.
    let err = common::unwrap_lines(&err);
    assert!(
        err.contains("fix the YAML at that line") && err.contains("spec-kitty init"),
        "{err}"
    );
    assert!(!err.contains("git fsck"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("config.yaml")).unwrap(),
        bad
    );
    assert_eq!(chain_ref(&repo), "", "nothing emitted");
}

#[test]
fn existing_config_keys_are_preserved_when_identity_is_added() {
    let repo = TestRepo::new();
    let dir = repo.root.join(".kittify");
    std::fs::create_dir_all(&dir).unwrap();
    let original = "# managed by another tool\nagents:\n  claude:\n    command: run-claude\nvcs:\n  type: git\n";
    std::fs::write(dir.join("config.yaml"), original).unwrap();
    repo.emit_status_ok("WP01", "planned", "doing");
    let now = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(now.starts_with(original), "{now}");
    assert!(now.contains("project:\n  uuid: "), "{now}");
}

#[test]
fn outside_a_repository_is_a_clear_error() {
    let repo = TestRepo::new();
    let outside = repo.tmp.path().join("not-a-repo");
    std::fs::create_dir_all(&outside).unwrap();
    let out = repo.sk_in(&outside, &["events", "log"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("not inside a git repository") && err.contains("git init"),
        "{err}"
    );
}

#[test]
fn invalid_payload_reports_every_problem_and_records_nothing() {
    let repo = TestRepo::new();
    let out = repo.sk(&[
        "events",
        "emit",
        "WPStatusChanged",
        "--payload",
        r#"{"wp_id":"wp1","previous_status":"doing","new_status":"doing"}"#,
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    for needle in [
        "payload.wp_id",
        "payload.new_status",
        "payload.changed_by",
        "\"wp1\"",
    ] {
        assert!(err.contains(needle), "missing {needle}: {err}");
    }
    let out = repo.sk(&[
        "events",
        "emit",
        "WPStatusChanged",
        "--payload",
        "{not json",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--payload is not valid JSON"),
        "{}",
        stderr(&out)
    );
    let out = repo.sk(&["events", "emit", "WPMoved", "--payload", "{}"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown event type `WPMoved`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(chain_ref(&repo), "", "nothing emitted");
}

#[test]
fn invalid_client_config_is_named() {
    let repo = TestRepo::new();
    repo.write_config("[sync]\nqueue_limit = -4\n");
    let out = repo.emit_status("WP01", "planned", "doing");
    // The event still records (defaults), with a warning naming the file.
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("config.toml") && err.contains("queue_limit"),
        "{err}"
    );
}

#[test]
fn a_ref_lock_left_by_a_killed_writer_is_removed_and_one_that_cannot_be_is_named() {
    let repo = TestRepo::new();
    repo.emit_status_ok("WP01", "planned", "doing");
    let name = chain_ref(&repo);
    let lock = repo.root.join(".git").join(format!("{name}.lock"));
    // Left behind a minute ago (a live writer holds it for milliseconds): removed, and the
    // event is recorded.
    std::fs::write(&lock, "").unwrap();
    let touched = std::process::Command::new("touch")
        .args(["-d", "-60 seconds"])
        .arg(&lock)
        .status()
        .unwrap();
    assert!(touched.success());
    repo.emit_status_ok("WP02", "planned", "doing");
    assert!(!lock.exists());

    // A lock that cannot be removed (here a directory with something in it): named, with
    // the command that fixes it, after waiting for it to age; nothing written.
    let tip = repo.git(&["rev-parse", &name]);
    std::fs::create_dir_all(lock.join("x")).unwrap();
    let out = repo.emit_status("WP03", "planned", "doing");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(".lock") && err.contains("rm "), "{err}");
    assert_eq!(repo.git(&["rev-parse", &name]), tip);
    std::fs::remove_dir_all(&lock).unwrap();
    repo.emit_status_ok("WP01", "planned", "doing");
}

#[test]
fn a_stored_event_with_non_ascii_and_control_text_is_shown_without_panicking() {
    // Given an event whose stored JSON says head_commit_sha is not hex (any stored or pulled
    // field is untrusted): a multi-byte character straddles byte 12, plus an escape sequence.
    let repo = TestRepo::new();
    let id = repo.emit_status_ok("WP01", "planned", "doing");
    let chain = chain_ref(&repo);
    let sha = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let message = repo.git(&["log", "-1", "--format=%B", &chain]);
    assert!(message.contains(&sha), "{message}");
    let weird = format!("a{}\u{1b}[31m", "é".repeat(10));
    let forged = message.replace(&sha, &weird.replace('\u{1b}', "\\u001b"));
    let tree = repo.git(&["rev-parse", &format!("{chain}^{{tree}}")]);
    let msg_file = repo.tmp.path().join("msg");
    std::fs::write(&msg_file, forged).unwrap();
    let commit = repo.git(&["commit-tree", tree.trim(), "-F", msg_file.to_str().unwrap()]);
    repo.git(&["update-ref", &chain, commit.trim()]);

    let out = repo.sk(&["events", "show", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("a{}", "é".repeat(10))), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "control characters are escaped: {text:?}"
    );
    let out = repo.sk(&["events", "log"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
