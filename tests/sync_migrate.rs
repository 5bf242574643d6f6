//! `spec-kitty sync migrate`: the Python tool's offline queue (fixtures/legacy-queue/queue.db,
//! made by make_queue_db.py beside it) carried into the event log of a real repository.

mod common;
mod server_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use common::{TestRepo, stderr, stdout};

/// The fixture's project (`project_uuid` of its rows).
const PROJECT: &str = "5b1f3c1e-7a2d-4c0e-9f41-2d7a9e6b8c10";
const NODE_A: &str = "a1b2c3d4e5f6";
const NODE_B: &str = "0f0e0d0c0b0a";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/legacy-queue/queue.db")
}

fn ulid(n: u32) -> String {
    format!("01JKQ8Y6T1{n:016}")
}

/// A repository whose identity is the fixture's project, with the fixture as its Python-era
/// `~/.spec-kitty/queue.db`.
fn repo_with_legacy_queue() -> TestRepo {
    let repo = TestRepo::new();
    std::fs::create_dir_all(repo.root.join(".kittify")).expect("kittify");
    std::fs::write(
        repo.root.join(".kittify/config.yaml"),
        format!("project:\n  uuid: {PROJECT}\n  slug: checkout\n"),
    )
    .expect("config");
    std::fs::copy(fixture(), legacy_db(&repo)).expect("copy fixture");
    repo
}

fn legacy_db(repo: &TestRepo) -> PathBuf {
    repo.home.join(".spec-kitty/queue.db")
}

/// SHA-256 of every file under `dir`, by name: the source must stay byte-identical and no
/// journal or side file may appear.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                let name = path
                    .strip_prefix(dir)
                    .expect("prefix")
                    .display()
                    .to_string();
                out.insert(name, format!("{:x}", Sha256::digest(&bytes)));
            }
        }
    }
    out
}

fn migrate_json(repo: &TestRepo, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["sync", "migrate", "--json"];
    args.extend_from_slice(extra);
    let out = repo.sk(&args);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("json ({e}): {} {}", stdout(&out), stderr(&out)));
    (out.status.code(), v)
}

/// `(event_id, lamport, node)` of a chain, oldest first, read with plain git.
fn chain(repo: &TestRepo, node: &str) -> Vec<(String, u64, String)> {
    let out = repo.git(&[
        "log",
        "--reverse",
        "--format=%b%x00",
        &format!("refs/spec-kitty/events/{node}"),
    ]);
    out.split('\0')
        .filter(|b| !b.trim().is_empty())
        .map(|body| {
            let json = body.trim().split("\n\n").next().expect("json");
            let e: Value = serde_json::from_str(json).expect("envelope json");
            (
                e["event_id"].as_str().expect("id").to_owned(),
                e["lamport_clock"].as_u64().expect("clock"),
                e["node_id"].as_str().expect("node").to_owned(),
            )
        })
        .collect()
}

fn commit_of(repo: &TestRepo, event_id: &str) -> String {
    repo.git(&[
        "log",
        "--glob=refs/spec-kitty/events",
        "--format=%H",
        &format!("--grep=Event-Id: {event_id}"),
    ])
    .trim()
    .to_owned()
}

#[test]
fn the_fixture_queue_is_carried_row_by_row_onto_each_nodes_chain_and_the_source_is_unchanged() {
    let repo = repo_with_legacy_queue();
    let home = repo.home.join(".spec-kitty");
    let before = snapshot(&home);

    let (code, r) = migrate_json(&repo, &[]);
    // Two malformed rows are skipped, so the run says it is incomplete.
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["imported"], 7, "{r}");
    assert_eq!(r["already_present"], 0);
    assert_eq!(r["other_project_rows"], 1);
    assert_eq!(r["body_uploads_not_carried"], 1);
    assert_eq!(r["body_uploads_other_projects"], 1);
    assert_eq!(r["with_retry_count"], 2);
    assert_eq!(r["sources"][0]["queue_rows"], 10);
    let skipped: Vec<(i64, String)> = r["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| {
            (
                s["row_id"].as_i64().expect("row id"),
                s["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0].0, 8);
    assert!(skipped[0].1.contains("not JSON"), "{skipped:?}");
    assert_eq!(skipped[1].0, 9);
    assert!(skipped[1].1.contains("payload.wp_id"), "{skipped:?}");

    // Each node's events on its own chain, ids/clocks/node kept, in clock order (row 5 has
    // clock 4 and row 4 clock 5: the chain follows the clocks, not the rows).
    let a = chain(&repo, NODE_A);
    let expected: Vec<(String, u64, String)> = [(1, 1), (2, 2), (3, 3), (5, 4), (4, 5), (6, 6)]
        .into_iter()
        .map(|(row, clock)| (ulid(row), clock, NODE_A.to_owned()))
        .collect();
    assert_eq!(a, expected);
    assert_eq!(chain(&repo, NODE_B), vec![(ulid(10), 3, NODE_B.to_owned())]);
    // The other project's row was left alone.
    assert!(commit_of(&repo, &ulid(7)).is_empty());

    // The source: byte-identical, and no journal or side file appeared.
    assert_eq!(snapshot(&home), before);

    // The log is clean, and the imported events are pending.
    repo.sk_ok(&["events", "verify"]);
    repo.git(&["fsck", "--strict", "--no-dangling"]);
    assert_eq!(repo.sk_ok(&["events", "pending", "--count"]).trim(), "7");

    // A second run imports 0 and says so.
    let out = repo.sk(&["sync", "migrate"]);
    let text = stdout(&out);
    assert!(
        text.contains("Imported 0 events: 7 already in the event log"),
        "{text}"
    );
    let (_, again) = migrate_json(&repo, &[]);
    assert_eq!(again["imported"], 0);
    assert_eq!(again["already_present"], 7);
    assert_eq!(chain(&repo, NODE_A).len(), 6);
    assert_eq!(snapshot(&home), before);
}

#[test]
fn seven_lane_unknown_type_and_older_client_rows_are_stored_as_recorded() {
    let repo = repo_with_legacy_queue();
    migrate_json(&repo, &[]);

    // The 7-lane status change keeps its payload and reads as a journal line.
    let seven = commit_of(&repo, &ulid(5));
    let subject = repo.git(&["log", "-1", "--format=%s", &seven]);
    assert_eq!(
        subject.trim(),
        "WPStatusChanged WP01 in_progress → for_review"
    );
    let shown = repo.sk_ok(&["events", "show", &ulid(5), "--json"]);
    let v: Value = serde_json::from_str(&shown).expect("json");
    let event = if v.get("event").is_some() {
        &v["event"]
    } else {
        &v
    };
    assert_eq!(event["payload"]["to_lane"], "for_review");
    assert_eq!(event["payload"]["policy_metadata"]["policy"], "default");

    // The unknown type is stored with its own aggregate; the row itself is kept verbatim in
    // the commit's tree (with `data_tier`, which the protocol envelope does not carry).
    let dossier = commit_of(&repo, &ulid(4));
    let row = repo.git(&["show", &format!("{dossier}:legacy-queue-row.json")]);
    let conn = rusqlite::Connection::open_with_flags(
        fixture(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open fixture");
    let original: String = conn
        .query_row("SELECT data FROM queue WHERE id = 4", [], |r| r.get(0))
        .expect("row 4");
    assert_eq!(row, original);
    assert!(row.contains("\"data_tier\": \"standard\""));

    // The older client's `"correlation_id": null` means absent: the stored envelope has the
    // protocol's value for it (the event id), and its retry count is kept as a trailer.
    let older = commit_of(&repo, &ulid(3));
    let body = repo.git(&["log", "-1", "--format=%B", &older]);
    let json = body.split("\n\n").nth(1).expect("json");
    let e: Value = serde_json::from_str(json).expect("envelope");
    assert_eq!(e["correlation_id"], ulid(3).as_str());
    assert!(body.contains("\nLegacy-Retry-Count: 2\n"), "{body}");
    assert!(body.contains("queue.db row 3\n"), "{body}");

    // A new local event is witnessed above every imported clock.
    repo.emit_status_ok("WP01", "planned", "doing");
    let newest = repo.events(1);
    assert_eq!(newest[0]["event"]["lamport_clock"], 7, "{newest:?}");
    repo.sk_ok(&["events", "verify"]);

    // The sync engine reads the kept retry count back; a locally emitted event has none.
    let log = spec_kitty::store::EventLog::discover(&repo.root).expect("log");
    let chain_a = format!("refs/spec-kitty/events/{NODE_A}");
    let id = |hex: &str| gix::ObjectId::from_hex(hex.as_bytes()).expect("hex");
    assert_eq!(
        log.legacy_retry_count(&chain_a, id(&older)).expect("read"),
        Some(2)
    );
    assert_eq!(
        log.legacy_retry_count(&chain_a, id(&commit_of(&repo, &ulid(1))))
            .expect("read"),
        Some(0)
    );
    let own = format!("refs/spec-kitty/events/{}", log.node_id());
    let local = repo.git(&["rev-parse", &own]);
    assert_eq!(
        log.legacy_retry_count(&own, id(local.trim()))
            .expect("read"),
        None
    );
}

#[test]
fn an_interrupted_migration_is_completed_by_the_next_run() {
    let repo = repo_with_legacy_queue();
    // What a run killed after its third row leaves: rows 1-3 imported.
    let partial = repo.tmp.path().join("partial.db");
    std::fs::copy(fixture(), &partial).expect("copy");
    let conn = rusqlite::Connection::open(&partial).expect("db");
    conn.execute("DELETE FROM queue WHERE id > 3", [])
        .expect("trim");
    drop(conn);
    let (_, first) = migrate_json(&repo, &["--from", partial.to_str().expect("utf8")]);
    assert_eq!(first["imported"], 3, "{first}");

    let (_, rest) = migrate_json(&repo, &[]);
    assert_eq!(rest["imported"], 4, "{rest}");
    assert_eq!(rest["already_present"], 3);
    let clocks: Vec<u64> = chain(&repo, NODE_A).into_iter().map(|e| e.1).collect();
    assert_eq!(clocks, vec![1, 2, 3, 4, 5, 6]);
    repo.sk_ok(&["events", "verify"]);
}

#[test]
fn two_migrations_at_once_carry_each_row_exactly_once() {
    let repo = repo_with_legacy_queue();
    let spawn = || {
        repo.env(
            std::process::Command::new(common::BIN)
                .current_dir(&repo.root)
                .args(["sync", "migrate", "--json"]),
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let mut imported = 0;
    for child in [a, b] {
        let out = child.wait_with_output().expect("wait");
        let r: Value = serde_json::from_slice(&out.stdout).expect("json");
        imported += r["imported"].as_u64().expect("imported");
        // Whatever one run did not write, it found already there.
        assert_eq!(
            r["imported"].as_u64().expect("n") + r["already_present"].as_u64().expect("n"),
            7,
            "{r}"
        );
    }
    assert_eq!(imported, 7);
    assert_eq!(chain(&repo, NODE_A).len(), 6);
    assert_eq!(chain(&repo, NODE_B).len(), 1);
    repo.sk_ok(&["events", "verify"]);
    assert!(!repo.root.join(".git/spec-kitty-migrate.lock").exists());
}

#[test]
fn a_lock_left_by_a_killed_migration_is_taken_over() {
    let repo = repo_with_legacy_queue();
    // The pid of a process that has exited.
    let mut gone = std::process::Command::new("true").spawn().expect("true");
    let pid = gone.id();
    gone.wait().expect("wait");
    std::fs::write(
        repo.root.join(".git/spec-kitty-migrate.lock"),
        format!("{pid}\n"),
    )
    .expect("lock");
    let (_, r) = migrate_json(&repo, &[]);
    assert_eq!(r["imported"], 7, "{r}");
    assert!(!repo.root.join(".git/spec-kitty-migrate.lock").exists());
}

#[test]
fn migrating_from_a_subdirectory_of_a_linked_worktree_writes_the_shared_refs() {
    let repo = repo_with_legacy_queue();
    repo.git(&["add", ".kittify"]);
    repo.git(&["commit", "-q", "-m", "identity"]);
    let wt = repo.add_worktree("wp01");
    let sub = wt.join("src/deep");
    std::fs::create_dir_all(&sub).expect("subdir");
    let out = repo.sk_in(&sub, &["sync", "migrate", "--json"]);
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["imported"], 7, "{r} {}", stderr(&out));
    // Visible from the main checkout: refs are shared by every worktree.
    assert_eq!(chain(&repo, NODE_A).len(), 6);
    assert_eq!(repo.sk_ok(&["events", "pending", "--count"]).trim(), "7");
}

#[test]
fn dry_run_counts_and_writes_nothing() {
    let repo = repo_with_legacy_queue();
    let (code, r) = migrate_json(&repo, &["--dry-run"]);
    assert_eq!(code, Some(1));
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["to_import"], 7);
    assert_eq!(r["imported"], 0);
    let refs = repo.git(&["for-each-ref", "refs/spec-kitty/"]);
    assert!(refs.trim().is_empty(), "{refs}");
}

#[test]
fn scoped_queues_are_read_too_and_a_row_in_two_files_is_carried_once() {
    let repo = repo_with_legacy_queue();
    let scoped = repo.home.join(".spec-kitty/queues");
    std::fs::create_dir_all(&scoped).expect("queues");
    // The Python tool copied queue.db into the scoped queue on first login.
    std::fs::copy(fixture(), scoped.join("queue-3f2a9c1d0b8e7a6f.db")).expect("copy");
    // And a later row of node A, only in the scoped queue.
    let conn = rusqlite::Connection::open(scoped.join("queue-3f2a9c1d0b8e7a6f.db")).expect("db");
    let data: String = conn
        .query_row("SELECT data FROM queue WHERE id = 1", [], |r| r.get(0))
        .expect("row 1");
    let mut later: Value = serde_json::from_str(&data).expect("json");
    later["event_id"] = ulid(11).into();
    later["lamport_clock"] = 9.into();
    later["event_type"] = "FeatureCompleted".into();
    later["payload"] = serde_json::json!({"feature_slug": "001-checkout-flow", "total_wps": 2});
    conn.execute(
        "INSERT INTO queue (id, event_id, event_type, data, timestamp, retry_count) \
         VALUES (11, ?1, 'FeatureCompleted', ?2, 1770305000, 0)",
        rusqlite::params![ulid(11), later.to_string()],
    )
    .expect("insert");
    drop(conn);

    let (_, r) = migrate_json(&repo, &[]);
    assert_eq!(r["sources"].as_array().expect("sources").len(), 2);
    assert_eq!(r["imported"], 8, "{r}");
    assert_eq!(r["duplicate_rows"], 7);
    let a = chain(&repo, NODE_A);
    assert_eq!(a.last().expect("tip"), &(ulid(11), 9, NODE_A.to_owned()));
    repo.sk_ok(&["events", "verify"]);
}

#[test]
fn a_row_that_would_break_a_chains_clock_order_or_lands_on_this_clones_node_is_reported() {
    let repo = repo_with_legacy_queue();
    migrate_json(&repo, &[]);
    // Written after the first migration: a new event of node A with a clock below the tip,
    // and one claiming this clone's own node.
    let own = spec_kitty::store::EventLog::discover(&repo.root)
        .expect("log")
        .node_id()
        .to_owned();
    let extra = repo.tmp.path().join("extra.db");
    std::fs::copy(fixture(), &extra).expect("copy");
    let conn = rusqlite::Connection::open(&extra).expect("db");
    conn.execute("DELETE FROM queue", []).expect("clear");
    let data: String = rusqlite::Connection::open(fixture())
        .expect("fixture")
        .query_row("SELECT data FROM queue WHERE id = 2", [], |r| r.get(0))
        .expect("row 2");
    for (id, node, clock) in [(12, NODE_A, 2), (13, own.as_str(), 50)] {
        let mut e: Value = serde_json::from_str(&data).expect("json");
        e["event_id"] = ulid(id).into();
        e["node_id"] = node.into();
        e["lamport_clock"] = clock.into();
        conn.execute(
            "INSERT INTO queue (id, event_id, event_type, data, timestamp, retry_count) \
             VALUES (?1, ?2, 'WPCreated', ?3, 1770305000, 0)",
            rusqlite::params![id, ulid(id), e.to_string()],
        )
        .expect("insert");
    }
    drop(conn);
    let (code, r) = migrate_json(&repo, &["--from", extra.to_str().expect("utf8")]);
    assert_eq!(code, Some(1));
    assert_eq!(r["imported"], 0, "{r}");
    let reasons: Vec<&str> = r["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| s["reason"].as_str().expect("reason"))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|m| m.contains("not above the tip")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|m| m.contains("own node")),
        "{reasons:?}"
    );
    repo.sk_ok(&["events", "verify"]);
}

#[test]
fn no_queue_is_nothing_to_do_and_a_bad_source_is_an_error_that_changes_nothing() {
    let repo = repo_with_legacy_queue();
    std::fs::remove_file(legacy_db(&repo)).expect("rm");
    let out = repo.sk(&["sync", "migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("No Python-era queue found"),
        "{}",
        stdout(&out)
    );

    let missing = repo.sk(&["sync", "migrate", "--from", "/nonexistent/queue.db"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("does not exist"),
        "{}",
        stderr(&missing)
    );

    let junk = repo.tmp.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database, it is a note").expect("write");
    let out = repo.sk(&["sync", "migrate", "--from", junk.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&junk).expect("read"),
        b"this is not a database, it is a note"
    );
}

#[test]
fn a_broken_scoped_queue_is_reported_and_the_good_one_still_carried() {
    let repo = repo_with_legacy_queue();
    let scoped = repo.home.join(".spec-kitty/queues");
    std::fs::create_dir_all(&scoped).expect("queues");
    let broken = scoped.join("queue-0000000000000000.db");
    std::fs::write(&broken, b"truncated by a crash").expect("write");
    let (code, r) = migrate_json(&repo, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(r["imported"], 7, "{r}");
    let unreadable = r["unreadable_sources"].as_array().expect("array");
    assert_eq!(unreadable.len(), 1, "{r}");
    assert!(
        unreadable[0]["path"]
            .as_str()
            .expect("path")
            .ends_with("queue-0000000000000000.db")
    );
    assert_eq!(
        std::fs::read(&broken).expect("read"),
        b"truncated by a crash"
    );
}

#[test]
fn without_a_project_identity_nothing_is_imported_and_the_fix_is_named() {
    let repo = repo_with_legacy_queue();
    std::fs::remove_file(repo.root.join(".kittify/config.yaml")).expect("rm");
    let out = repo.sk(&["sync", "migrate"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no project identity"), "{err}");
    assert!(err.contains("spec-kitty sync migrate"), "{err}");
    assert!(
        repo.git(&["for-each-ref", "refs/spec-kitty/"])
            .trim()
            .is_empty()
    );
}

#[test]
fn the_preflight_helper_counts_this_projects_rows_still_to_migrate() {
    use spec_kitty::sync::migrate::{legacy_rows_for_project, unmigrated_rows_for_project};
    let repo = repo_with_legacy_queue();
    let home = repo.home.join(".spec-kitty");
    let log = spec_kitty::store::EventLog::discover(&repo.root).expect("log");
    assert_eq!(legacy_rows_for_project(&home, PROJECT).expect("count"), 7);
    assert_eq!(
        unmigrated_rows_for_project(&log, &home, PROJECT).expect("count"),
        7
    );
    migrate_json(&repo, &[]);
    // The source still holds them (never changed) but nothing is left to migrate.
    assert_eq!(legacy_rows_for_project(&home, PROJECT).expect("count"), 7);
    assert_eq!(
        unmigrated_rows_for_project(&log, &home, PROJECT).expect("count"),
        0
    );
    let other = "9d3e2f10-4b5c-4d6e-8f70-1a2b3c4d5e6f";
    assert_eq!(legacy_rows_for_project(&home, other).expect("count"), 1);
    let empty = repo.tmp.path().join("no-home");
    assert_eq!(legacy_rows_for_project(&empty, PROJECT).expect("count"), 0);
}

#[tokio::test]
async fn the_real_server_accepts_every_imported_event_as_stored() {
    let repo = repo_with_legacy_queue();
    migrate_json(&repo, &[]);
    let events: Vec<Value> = repo
        .events(100)
        .into_iter()
        .map(|s| s["event"].clone())
        .collect();
    assert_eq!(events.len(), 7);

    let server = server_common::TestServer::start(&[]);
    server.add_user("alice", "acme");
    let access = server_common::access(&server, "alice").await;
    let client = server_common::client();
    let (status, body) = server_common::upload(&client, &server, &access, &events).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server_common::statuses(&body), vec!["success"; 7], "{body}");
}
