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

/// One planned → doing move of each work package; their event ids.
fn moves(repo: &TestRepo, wps: &[&str]) -> Vec<String> {
    wps.iter()
        .map(|wp| repo.emit_status_ok(wp, "planned", "doing"))
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
    let ids = moves(&repo, &["WP01", "WP02", "WP03", "WP04"]);
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

/// The seqs `pending_commits` lists for this node's chain.
fn pending_seqs(log: &EventLog) -> Vec<u64> {
    log.pending_commits()
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect()
}

/// Moves a loose object away so that a walk through it fails; returns how to put it back.
fn hide_object(log: &EventLog, id: &gix::ObjectId) -> impl FnOnce() {
    let hex = id.to_string();
    let path = log
        .common_dir()
        .join("objects")
        .join(&hex[..2])
        .join(&hex[2..]);
    let hidden = path.with_extension("hidden");
    std::fs::rename(&path, &hidden).unwrap();
    move || std::fs::rename(&hidden, &path).unwrap()
}

#[test]
fn the_unsent_events_come_from_the_outgoing_index_and_a_bad_index_falls_back_to_the_walk() {
    if common::rerun_hermetic(
        "the_unsent_events_come_from_the_outgoing_index_and_a_bad_index_falls_back_to_the_walk",
    ) {
        return;
    }
    let repo = TestRepo::new();
    let ids = moves(&repo, &["WP01", "WP02", "WP03", "WP04", "WP05", "WP06"]);
    let log = EventLog::discover(&repo.root).unwrap();
    let node = log.node_id().to_owned();
    let chain = log.chain_events(&node).unwrap();
    let index = log.common_dir().join("spec-kitty/outgoing").join(&node);
    let written = std::fs::read_to_string(&index).unwrap();
    assert_eq!(
        written.lines().count(),
        6,
        "one line per append:\n{written}"
    );
    assert_eq!(pending_seqs(&log), [1, 2, 3, 4, 5, 6]);

    // With an interior commit unreadable, only the index can list the unsent events: it is
    // what answers. (Reading them for sending would still fail, as it must.)
    let restore = hide_object(&log, &chain[2].commit);
    assert_eq!(pending_seqs(&log), [1, 2, 3, 4, 5, 6], "from the index");
    std::fs::remove_file(&index).unwrap();
    assert!(
        log.pending_commits().is_err(),
        "without it, the walk meets the hole"
    );
    restore();

    // Without the file, the walk answers and writes it again, whole.
    assert_eq!(pending_seqs(&log), [1, 2, 3, 4, 5, 6]);
    assert_eq!(std::fs::read_to_string(&index).unwrap(), written);

    // An index that does not prove the chain is not used, and the walk repairs it.
    let lines: Vec<&str> = written.lines().collect();
    let without = |skip: usize| -> String {
        lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    };
    let cases = [
        ("a line lost", without(3)),
        ("the tip's line lost", without(5)),
        ("garbage", format!("garbage\n{}", without(1))),
        ("a wrong parent", {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            let fields: Vec<&str> = lines[3].split(' ').collect();
            l[3] = format!("{} {} {}", fields[0], fields[1], chain[0].commit);
            l.iter().map(|s| format!("{s}\n")).collect()
        }),
        ("empty", String::new()),
    ];
    for (what, text) in cases {
        std::fs::write(&index, &text).unwrap();
        let restore = hide_object(&log, &chain[4].commit);
        assert!(log.pending_commits().is_err(), "{what}: the index was used");
        restore();
        assert_eq!(pending_seqs(&log), [1, 2, 3, 4, 5, 6], "{what}");
        assert_eq!(std::fs::read_to_string(&index).unwrap(), written, "{what}");
    }
    // A torn last line is skipped: the rest still proves the chain.
    std::fs::write(&index, format!("{written}7 abc")).unwrap();
    let restore = hide_object(&log, &chain[4].commit);
    assert_eq!(pending_seqs(&log), [1, 2, 3, 4, 5, 6], "torn line skipped");
    restore();

    // An index that proves a wrong chain (a forged one: positions 4 and 5 swapped, parents
    // made to match) is caught when the events are read: an error, and the index removed.
    let forged = {
        let c: Vec<String> = chain.iter().map(|s| s.commit.to_string()).collect();
        format!(
            "1 {} -\n2 {} {}\n3 {} {}\n4 {} {}\n5 {} {}\n6 {} {}\n",
            c[0], c[1], c[0], c[2], c[1], c[4], c[2], c[3], c[4], c[5], c[3]
        )
    };
    std::fs::write(&index, forged).unwrap();
    let commits = log.pending_commits().unwrap();
    let err = log.read_outgoing(&commits).unwrap_err().to_string();
    assert!(err.contains("Seq 5 where Seq 4 was expected"), "{err}");
    assert!(!index.exists(), "a lying index is removed");
    assert_eq!(pending_seqs(&log), [1, 2, 3, 4, 5, 6]);

    // After a sync of 1..4 that rejected #2: the index gives 5..6, a walk from the mark the
    // rejected one.
    log.record_sync(&node, &report(&answers(&chain[..4], &[&ids[1]], "bad")))
        .unwrap();
    assert_eq!(pending_seqs(&log), [2, 5, 6]);
    let restore = hide_object(&log, &chain[4].commit);
    assert_eq!(pending_seqs(&log), [2, 5, 6], "5 and 6 from the index");
    restore();

    // A chain deleted and started again: the newer lines win.
    repo.git(&[
        "update-ref",
        "-d",
        &format!("refs/spec-kitty/events/{node}"),
    ]);
    repo.git(&[
        "update-ref",
        "-d",
        &format!("refs/spec-kitty/synced/{node}"),
    ]);
    repo.emit_status_ok("WP07", "planned", "doing");
    repo.emit_status_ok("WP08", "planned", "doing");
    let log = EventLog::discover(&repo.root).unwrap();
    let fresh = log.chain_events(&node).unwrap();
    let restore = hide_object(&log, &fresh[0].commit);
    let commits = log.pending_commits().unwrap();
    restore();
    assert_eq!(
        commits.iter().map(|c| c.commit).collect::<Vec<_>>(),
        fresh.iter().map(|s| s.commit).collect::<Vec<_>>()
    );
}
