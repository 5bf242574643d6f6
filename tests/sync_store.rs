//! The store's sync-state plumbing as the sync client uses it: one compare-and-swap home,
//! rejections merged (never replaced), the mark stored once, broken sync states named as such.

mod common;

use common::TestRepo;
use spec_kitty::store::{Answer, Answered, EventLog, StoreError, StoredEvent, SyncReport};

fn answers(events: &[StoredEvent], reject: &[&str], error: &str) -> Vec<Answered> {
    events
        .iter()
        .map(|s| Answered {
            event_id: s.event.event_id.clone(),
            commit: s.commit,
            seq: s.seq,
            answer: if reject.contains(&s.event.event_id.as_str()) {
                Answer::Rejected(error.into())
            } else {
                Answer::Settled
            },
        })
        .collect()
}

fn report<'a>(answers: &'a [Answered]) -> SyncReport<'a> {
    SyncReport {
        server_url: "http://127.0.0.1:1",
        team: "team-a",
        answers,
        ..SyncReport::default()
    }
}

#[test]
fn given_a_rejection_a_later_sync_keeps_it_and_a_resend_bumps_its_retry_count() {
    if common::rerun_hermetic(
        "given_a_rejection_a_later_sync_keeps_it_and_a_resend_bumps_its_retry_count",
    ) {
        return;
    }
    let repo = TestRepo::new();
    let ids: Vec<String> = ["WP01", "WP02", "WP03", "WP04"]
        .iter()
        .map(|wp| repo.emit_status_ok(wp, "planned", "doing"))
        .collect();
    let log = EventLog::discover(&repo.root).unwrap();
    let node = log.node_id().to_owned();
    let chain = log.chain_events(&node).unwrap();

    // First sync: events 1-2 answered, #2 rejected.
    let a = answers(&chain[..2], &[&ids[1]], "missing field 'x'");
    log.record_sync(&node, &report(&a)).unwrap();
    // Second sync sends only #3 and #4: the earlier rejection must survive.
    let a = answers(&chain[2..], &[], "");
    let state = log.record_sync(&node, &report(&a)).unwrap().unwrap();
    assert_eq!(state.mark_seq, 4);
    assert_eq!(
        state.record.rejected.len(),
        1,
        "{:?}",
        state.record.rejected
    );
    assert_eq!(state.record.rejected[0].event_id, ids[1]);
    assert_eq!(state.record.rejected[0].retry_count, 1);
    assert_eq!(log.pending_count().unwrap(), 1);

    // Third sync resends #2, rejected again: count 2, the new error kept, the mark unmoved.
    let a = answers(&chain[1..2], &[&ids[1]], "still missing");
    let state = log.record_sync(&node, &report(&a)).unwrap().unwrap();
    assert_eq!(state.mark_seq, 4, "a resend never moves the mark back");
    assert_eq!(state.record.rejected[0].retry_count, 2);
    assert_eq!(state.record.rejected[0].error, "still missing");

    // Fourth: accepted at last.
    let a = answers(&chain[1..2], &[], "");
    let state = log.record_sync(&node, &report(&a)).unwrap().unwrap();
    assert!(state.record.rejected.is_empty());
    assert_eq!(log.pending_count().unwrap(), 0);
    assert!(repo.sk(&["events", "verify"]).status.success());
}

#[test]
fn the_mark_is_stored_once_as_the_first_parent() {
    if common::rerun_hermetic("the_mark_is_stored_once_as_the_first_parent") {
        return;
    }
    let repo = TestRepo::new();
    repo.emit_status_ok("WP01", "planned", "doing");
    repo.emit_status_ok("WP02", "planned", "doing");
    let log = EventLog::discover(&repo.root).unwrap();
    let node = log.node_id().to_owned();
    let chain = log.chain_events(&node).unwrap();
    let a = answers(&chain[..1], &[], "");
    log.record_sync(&node, &report(&a)).unwrap();
    let synced = format!("refs/spec-kitty/synced/{node}");
    let body = repo.git(&["log", "-1", "--format=%B", &synced]);
    assert!(!body.contains("Mark-Seq"), "{body}");
    assert!(!body.contains("mark_seq"), "{body}");
    let parent = repo.git(&["rev-parse", &format!("{synced}^1")]);
    assert_eq!(parent.trim(), chain[0].commit.to_string());
    assert_eq!(repo.sk_ok(&["events", "pending", "--count"]).trim(), "1");
}

#[test]
fn concurrent_sync_records_merge_instead_of_overwriting() {
    if common::rerun_hermetic("concurrent_sync_records_merge_instead_of_overwriting") {
        return;
    }
    let repo = TestRepo::new();
    let ids: Vec<String> = (1..=8)
        .map(|i| repo.emit_status_ok(&format!("WP0{i}"), "planned", "doing"))
        .collect();
    let root = repo.root.clone();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let root = root.clone();
            let ids = ids.clone();
            std::thread::spawn(move || {
                let log = EventLog::discover(&root).unwrap();
                let node = log.node_id().to_owned();
                let chain = log.chain_events(&node).unwrap();
                // Thread t answers events 2t and 2t+1, rejecting the first of them.
                let mine = &chain[2 * t..2 * t + 2];
                let a = answers(mine, &[ids[2 * t].as_str()], "nope");
                log.record_sync(&node, &report(&a)).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let log = EventLog::discover(&repo.root).unwrap();
    let state = log.sync_state(log.node_id()).unwrap().unwrap();
    assert_eq!(state.mark_seq, 8);
    let mut rejected: Vec<&str> = state
        .record
        .rejected
        .iter()
        .map(|r| r.event_id.as_str())
        .collect();
    rejected.sort();
    let mut want: Vec<&str> = (0..4).map(|t| ids[2 * t].as_str()).collect();
    want.sort();
    assert_eq!(rejected, want);
}

#[test]
fn a_broken_sync_state_commit_gets_its_own_error() {
    if common::rerun_hermetic("a_broken_sync_state_commit_gets_its_own_error") {
        return;
    }
    let repo = TestRepo::new();
    repo.emit_status_ok("WP01", "planned", "doing");
    let log = EventLog::discover(&repo.root).unwrap();
    let node = log.node_id().to_owned();
    let tip = repo.git(&["rev-parse", &format!("refs/spec-kitty/events/{node}")]);
    let bad = repo.git(&[
        "commit-tree",
        "-p",
        tip.trim(),
        "-m",
        "not a sync state",
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    ]);
    repo.git(&[
        "update-ref",
        &format!("refs/spec-kitty/synced/{node}"),
        bad.trim(),
    ]);
    let err = log.sync_state(&node).unwrap_err();
    assert!(matches!(err, StoreError::BrokenSyncState { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("sync state"), "{text}");
    assert!(!text.contains("Event-Id"), "{text}");
    let out = repo.sk(&["events", "pending", "--count"]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("git update-ref -d"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn only_a_missing_repository_means_git_init() {
    if common::rerun_hermetic("only_a_missing_repository_means_git_init") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let err = EventLog::discover(tmp.path()).err().unwrap();
    assert!(matches!(err, StoreError::NotARepository { .. }), "{err:?}");

    // A repository whose git config cannot be parsed is broken, not missing.
    let repo = TestRepo::new();
    std::fs::write(
        repo.root.join(".git/config"),
        "[core\nthis is = = not config\n",
    )
    .unwrap();
    let err = EventLog::discover(&repo.root).err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}

#[test]
fn a_pulled_chain_in_arrival_order_verifies_and_the_next_clock_is_above_all_witnessed() {
    if common::rerun_hermetic(
        "a_pulled_chain_in_arrival_order_verifies_and_the_next_clock_is_above_all_witnessed",
    ) {
        return;
    }
    let repo = TestRepo::new();
    repo.emit_status_ok("WP01", "planned", "doing");
    let log = EventLog::discover(&repo.root).unwrap();
    let mine = log.chain_events(log.node_id()).unwrap().remove(0).event;
    // A teammate's events as the server delivers them: clock 4 was rejected at first and
    // accepted on a later retry, so it arrives after 5, 6 and 7.
    let teammate: Vec<spec_kitty::event::Event> = [5u64, 6, 7, 4]
        .iter()
        .map(|clock| {
            let mut e = mine.clone();
            e.event_id = spec_kitty::event::new_ulid();
            e.correlation_id = e.event_id.clone();
            e.node_id = "abcdefabcdef".into();
            e.lamport_clock = *clock;
            e
        })
        .collect();
    let w = log
        .write_pulled("abcdefabcdef", &teammate, "http://127.0.0.1:1", "acme")
        .unwrap();
    assert_eq!(w.written, 4);
    // Written again (a pull resumed without its cursor): nothing is duplicated.
    let again = log
        .write_pulled("abcdefabcdef", &teammate, "http://127.0.0.1:1", "acme")
        .unwrap();
    assert_eq!(again.written, 0);
    let tip = repo.git(&[
        "log",
        "-1",
        "--format=%B",
        "refs/spec-kitty/events/abcdefabcdef",
    ]);
    assert!(tip.contains("Witnessed: 7"), "{tip}");
    // Pulled chains are settled: nothing of theirs is pending.
    assert_eq!(log.pending_count().unwrap(), 1);

    let verify = repo.sk(&["events", "verify"]);
    assert!(verify.status.success(), "{}", common::stdout(&verify));
    let next = repo.emit_status_ok("WP01", "doing", "for_review");
    let stored = log.find(&next).unwrap();
    assert_eq!(
        stored.event.lamport_clock, 8,
        "above the 7 witnessed, not the tip's 4"
    );
}

#[test]
fn the_oldest_unsent_event_comes_from_its_hint_and_a_bad_hint_falls_back_to_the_walk() {
    if common::rerun_hermetic(
        "the_oldest_unsent_event_comes_from_its_hint_and_a_bad_hint_falls_back_to_the_walk",
    ) {
        return;
    }
    let repo = TestRepo::new();
    for wp in ["WP01", "WP02", "WP03", "WP04", "WP05"] {
        repo.emit_status_ok(wp, "planned", "doing");
    }
    let log = EventLog::discover(&repo.root).unwrap();
    let node = log.node_id().to_owned();
    let oldest = |max_steps: usize| {
        let range = log
            .pending_ranges()
            .unwrap()
            .into_iter()
            .find(|r| r.node_id == node)
            .unwrap();
        let (s, exact) = range.oldest_unsent(&log, max_steps).unwrap().unwrap();
        (s.seq, exact)
    };
    // A partial sync leaves the mark at 2: the hint (seq 1) no longer applies; the walk finds 3.
    let chain = log.chain_events(&node).unwrap();
    log.record_sync(&node, &report(&answers(&chain[..2], &[], "")))
        .unwrap();
    assert_eq!(oldest(100), (3, true));
    assert_eq!(
        oldest(1),
        (4, false),
        "a bounded walk says it stopped short"
    );

    // After a full sync, the next append is the oldest unsent and leaves a hint that is used.
    log.record_sync(&node, &report(&answers(&chain[2..], &[], "")))
        .unwrap();
    for wp in ["WP06", "WP07", "WP08"] {
        repo.emit_status_ok(wp, "planned", "doing");
    }
    let hint = log
        .common_dir()
        .join("spec-kitty/oldest-unsent")
        .join(&node);
    assert!(std::fs::read_to_string(&hint).unwrap().starts_with("6 "));
    assert_eq!(oldest(1), (6, true), "the hint answers without a walk");

    // A garbage hint, or one naming another position, is ignored.
    for bad in [
        "garbage",
        "6 0000000000000000000000000000000000000000",
        "7 abc",
    ] {
        std::fs::write(&hint, bad).unwrap();
        assert_eq!(oldest(1), (7, false), "{bad}");
        assert_eq!(oldest(100), (6, true), "{bad}");
    }
}
