//! The storage interface's event log on both backends: the same batches stored into the
//! SQLite file and into a real PostgreSQL (a throwaway cluster) give the same board, counts,
//! pulls and feed; and on PostgreSQL, two `Store`s on one database (two replicas) store a
//! batch sent to both at once exactly once and never let a pull cursor step over an event.

mod pg_common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use pg_common::PgCluster;
use spec_kitty::event::Lane;
use spec_kitty::server::store::dashboard::{ActivityFilter, BoardFilter, EventFacts};
use spec_kitty::server::store::{IncomingEvent, InsertOutcome, Store, WpEffect};

fn event(id: &str, wp: &str, lamport: i64, node: &str, effect: WpEffect) -> IncomingEvent {
    let (event_type, feature) = match &effect {
        WpEffect::Created { feature_slug } => ("WPCreated", Some(feature_slug.clone())),
        WpEffect::Moved { feature_slug, .. } => ("WPStatusChanged", feature_slug.clone()),
        WpEffect::None => ("WPAssigned", Some("001-demo".to_owned())),
    };
    IncomingEvent {
        event_id: id.into(),
        event_type: event_type.into(),
        lamport_clock: lamport,
        node_id: node.into(),
        project_uuid: "proj".into(),
        feature_slug: feature,
        wp_id: Some(wp.into()),
        effect,
        facts: EventFacts {
            actor: Some(format!("agent-{node}")),
            title: Some(format!("title of {wp}")),
            at_ms: Some(1_780_000_000_000 + lamport * 60_000),
            project_slug: Some("demo".into()),
        },
        envelope: format!("{{\"event_id\":\"{id}\",\"lamport_clock\":{lamport}}}"),
    }
}

fn moved(feature: Option<&str>, lane: Lane) -> WpEffect {
    WpEffect::Moved {
        feature_slug: feature.map(str::to_owned),
        lane,
    }
}

/// A history with the awkward cases: moves before the creation, moves without a feature,
/// concurrent moves ordered by node id, resends, assignments.
fn history() -> Vec<Vec<IncomingEvent>> {
    let lanes = [Lane::Doing, Lane::ForReview, Lane::Done, Lane::Planned];
    let created = |i: usize| WpEffect::Created {
        feature_slug: if i.is_multiple_of(3) {
            "002-other"
        } else {
            "001-demo"
        }
        .into(),
    };
    let mut batches = Vec::new();
    // Moves without a feature that arrive before their work package's creation.
    batches.push(
        (0..4)
            .map(|i| {
                event(
                    &format!("early{i}"),
                    &format!("WP{i:02}"),
                    5,
                    "n1",
                    moved(None, Lane::Doing),
                )
            })
            .collect(),
    );
    batches.push(
        (0..12)
            .map(|i| event(&format!("c{i}"), &format!("WP{i:02}"), 1, "n1", created(i)))
            .collect(),
    );
    let mut moves = Vec::new();
    for round in 0..30i64 {
        for i in 0..12usize {
            let wp = format!("WP{i:02}");
            let node = if round % 2 == 0 { "node-a" } else { "node-B" };
            let feature = match (i + round as usize) % 3 {
                0 => None,
                _ if i % 3 == 0 => Some("002-other"),
                _ => Some("001-demo"),
            };
            let lane = lanes[(i + round as usize) % 4];
            // Two nodes at the same Lamport clock: the byte order of node ids decides.
            let lamport = 10 + round / 2;
            moves.push(event(
                &format!("m{round}-{i}"),
                &wp,
                lamport,
                node,
                moved(feature, lane),
            ));
        }
        if round % 5 == 0 {
            moves.push(event(
                &format!("a{round}"),
                "WP01",
                10 + round,
                "n3",
                WpEffect::None,
            ));
        }
    }
    for chunk in moves.chunks(37) {
        batches.push(chunk.to_vec());
    }
    // A resend of a whole batch and a batch mixing old and new events.
    batches.push(batches[2].clone());
    let mut mixed = batches[3][..5].to_vec();
    mixed.push(event(
        "late",
        "WP05",
        99,
        "n9",
        moved(Some("001-demo"), Lane::Done),
    ));
    batches.push(mixed);
    batches
}

fn kinds(outcomes: &[InsertOutcome]) -> Vec<&'static str> {
    outcomes
        .iter()
        .map(|o| match o {
            InsertOutcome::Stored(_) => "stored",
            InsertOutcome::Duplicate => "duplicate",
            InsertOutcome::ForeignId => "foreign",
        })
        .collect()
}

/// Everything a reader can see of a team, with seq values replaced by their order (the two
/// backends number differently: PostgreSQL's identity skips the values of duplicates).
fn snapshot(store: &Store, team: &str) -> String {
    let mut pulled = Vec::new();
    let mut after = 0;
    loop {
        let (page, more) = store.events_after(team, after, 50, 1 << 20).unwrap();
        for e in &page {
            assert!(e.seq > after, "pull order");
            after = e.seq;
            pulled.push(format!("{} {}", e.event_type, e.envelope));
        }
        if !more {
            break;
        }
    }
    let feed: Vec<String> = store
        .activity(team, None, 25)
        .unwrap()
        .into_iter()
        .map(|e| e.envelope)
        .collect();
    format!(
        "board {:?}\ncounts {:?}\npulled {pulled:#?}\nfeed {feed:#?}",
        store.work_packages(team).unwrap(),
        store.counts(team).unwrap(),
    )
}

/// Everything the dashboard reads of a team, seq values left out as in [`snapshot`].
fn dashboard_snapshot(store: &Store, team: &str) -> String {
    let mut out = vec![format!("{:?}", store.dashboard_counts(team).unwrap())];
    let some = |s: &str| Some(s.to_owned());
    for filter in [
        BoardFilter::default(),
        BoardFilter {
            feature_slug: some("001-demo"),
            ..Default::default()
        },
        BoardFilter {
            lane: some("done"),
            project_uuid: some("proj"),
            ..Default::default()
        },
    ] {
        out.push(format!(
            "board {filter:?}: {:#?}",
            store.board(team, &filter).unwrap()
        ));
    }
    out.push(format!("features {:#?}", store.features(team).unwrap()));
    for filter in [
        ActivityFilter::default(),
        ActivityFilter {
            event_type: some("WPStatusChanged"),
            ..Default::default()
        },
        ActivityFilter {
            wp_id: some("WP01"),
            ..Default::default()
        },
        ActivityFilter {
            feature_slug: some("002-other"),
            actor: some("agent-node-a"),
            ..Default::default()
        },
        ActivityFilter {
            feature_slug: some("001-demo"),
            wp_id: some("WP01"),
            actor: some("agent-n3"),
            event_type: None,
        },
        ActivityFilter {
            actor: some("nobody"),
            ..Default::default()
        },
    ] {
        // Two pages through each backend's own cursor.
        let first = store.dashboard_activity(team, &filter, None, 7).unwrap();
        let before = first.last().map(|e| e.seq);
        let second = store.dashboard_activity(team, &filter, before, 7).unwrap();
        let envelopes: Vec<&String> = first.iter().chain(&second).map(|e| &e.envelope).collect();
        out.push(format!("activity {filter:?}: {envelopes:#?}"));
    }
    for (feature, wp) in [
        ("001-demo", "WP01"),
        ("002-other", "WP03"),
        ("001-demo", "WP99"),
    ] {
        let events: Vec<String> = store
            .work_package_events(team, "proj", feature, wp, 40)
            .unwrap()
            .into_iter()
            .map(|e| e.envelope)
            .collect();
        out.push(format!("wp events {feature} {wp}: {events:#?}"));
        out.push(format!(
            "card: {:?}",
            store.board_card(team, "proj", feature, wp).unwrap()
        ));
    }
    for feature in ["001-demo", "002-other", ""] {
        let transitions: Vec<(String, i64, String)> = store
            .feature_transitions(team, "proj", feature, 500)
            .unwrap()
            .into_iter()
            .map(|t| (t.wp_id, t.at_ms, t.lane))
            .collect();
        out.push(format!("transitions {feature}: {transitions:?}"));
        out.push(format!(
            "projects: {:?}",
            store.feature_projects(team, feature).unwrap()
        ));
        let now = 1_780_000_000_000 + 200 * 60_000;
        out.push(format!(
            "flow: {:?}",
            store.feature_flow(team, "proj", feature, 60, now).unwrap()
        ));
        out.push(format!(
            "hourly: {:?}",
            store
                .feature_flow_buckets(team, "proj", feature, 3_600_000)
                .unwrap()
        ));
    }
    out.join("\n")
}

#[test]
fn the_same_batches_give_the_same_board_pulls_and_feed_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("s.db")).unwrap();
    let pg = PgCluster::start();
    let postgres = Store::connect_postgres(&pg.create_database("events")).unwrap();
    for (i, batch) in history().iter().enumerate() {
        let a = sqlite.insert_events("acme", batch).unwrap();
        let b = postgres.insert_events("acme", batch).unwrap();
        assert_eq!(kinds(&a), kinds(&b), "batch {i}");
    }
    // An id another team holds is refused without telling who holds it.
    let foreign = vec![event("c3", "WP03", 1, "x", moved(None, Lane::Done))];
    assert_eq!(
        kinds(&sqlite.insert_events("zeta", &foreign).unwrap()),
        ["foreign"]
    );
    assert_eq!(
        kinds(&postgres.insert_events("zeta", &foreign).unwrap()),
        ["foreign"]
    );

    let (a, b) = (snapshot(&sqlite, "acme"), snapshot(&postgres, "acme"));
    assert_eq!(a, b);
    let (a, b) = (
        dashboard_snapshot(&sqlite, "acme"),
        dashboard_snapshot(&postgres, "acme"),
    );
    assert_eq!(a, b);
    assert!(a.contains("hourly: [FlowBucket"), "{a}");
    assert!(
        a.matches("event_id").count() > 60,
        "the reads found events: {a}"
    );
    assert!(
        a.contains("title: Some(\"title of WP01\"), last_actor: Some(\"agent-node-a\")"),
        "{a}"
    );
    assert!(a.contains("002-other"), "{a}");
    assert_eq!(snapshot(&sqlite, "zeta"), snapshot(&postgres, "zeta"));
    let teams = |s: &Store| -> Vec<(String, i64)> {
        s.list_teams()
            .unwrap()
            .into_iter()
            .map(|t| (t.slug, t.events))
            .collect()
    };
    // Teams exist through their users; none here, so both list none.
    assert_eq!(teams(&sqlite), teams(&postgres));
    // Pages are bounded by bytes as well as by count, and always hold one event.
    let (one, more) = postgres.events_after("acme", 0, 50, 1).unwrap();
    assert_eq!((one.len(), more), (1, true));
}

#[test]
fn a_batch_sent_to_two_replicas_at_once_is_stored_once() {
    let pg = PgCluster::start();
    let url = pg.create_database("dedup");
    let a = Arc::new(Store::connect_postgres(&url).unwrap());
    let b = Arc::new(Store::connect_postgres(&url).unwrap());
    let mut total = 0;
    for round in 0..20 {
        let batch: Vec<IncomingEvent> = (0..25)
            .map(|i| {
                event(
                    &format!("r{round}-{i}"),
                    &format!("WP{i:02}"),
                    round,
                    "n",
                    moved(Some("001-demo"), Lane::Doing),
                )
            })
            .collect();
        total += batch.len();
        let barrier = Arc::new(Barrier::new(2));
        let runs: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|store| {
                let (barrier, batch) = (barrier.clone(), batch.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.insert_events("acme", &batch).unwrap()
                })
            })
            .collect();
        let outcomes: Vec<Vec<InsertOutcome>> =
            runs.into_iter().map(|r| r.join().unwrap()).collect();
        for i in 0..batch.len() {
            let mut pair = [kinds(&outcomes[0])[i], kinds(&outcomes[1])[i]];
            pair.sort();
            assert_eq!(pair, ["duplicate", "stored"], "round {round}, event {i}");
        }
    }
    let mut client = pg.client("dedup");
    let stored: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored as usize, total);
    assert_eq!(a.counts("acme").unwrap().events as usize, total);
}

/// Writers on two replicas, a reader pulling by cursor all the while: the reader ends up with
/// every event exactly once. Without the per-team ingest lock a batch drawing a lower seq could
/// commit after one with a higher seq that the reader had already passed.
#[test]
fn a_pull_cursor_never_steps_over_an_event_committed_late() {
    let pg = PgCluster::start();
    let url = pg.create_database("cursor");
    let stores: Vec<Arc<Store>> = (0..2)
        .map(|_| Arc::new(Store::connect_postgres(&url).unwrap()))
        .collect();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = stores[w % 2].clone();
            std::thread::spawn(move || {
                for round in 0..25 {
                    let batch: Vec<IncomingEvent> = (0..8)
                        .map(|i| {
                            event(
                                &format!("w{w}-{round}-{i}"),
                                &format!("WP{w}{i}"),
                                round,
                                "n",
                                moved(Some("001-demo"), Lane::Doing),
                            )
                        })
                        .collect();
                    store.insert_events("acme", &batch).unwrap();
                }
            })
        })
        .collect();
    let reader = stores[1].clone();
    let mut seen = Vec::new();
    let mut after = 0;
    let pull = |seen: &mut Vec<String>, after: &mut i64| loop {
        let (page, more) = reader.events_after("acme", *after, 100, 1 << 20).unwrap();
        for e in page {
            *after = e.seq;
            seen.push(e.envelope);
        }
        if !more {
            break;
        }
    };
    while writers.iter().any(|w| !w.is_finished()) {
        pull(&mut seen, &mut after);
    }
    for w in writers {
        w.join().unwrap();
    }
    pull(&mut seen, &mut after);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an event was pulled twice");
    assert_eq!(seen.len(), 4 * 25 * 8, "the cursor stepped over events");
}

#[test]
fn browser_sessions_behave_the_same_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgCluster::start();
    let stores = [
        Store::open(&dir.path().join("s.db")).unwrap(),
        Store::connect_postgres(&pg.create_database("sessions")).unwrap(),
    ];
    let now = spec_kitty::server::store::unix_now();
    for store in &stores {
        store.add_user("alice", "acme", "hash").unwrap();
        store
            .create_browser_session("old", "alice", "c0", now - 1)
            .unwrap();
        store
            .create_browser_session("live", "alice", "c1", now + 600)
            .unwrap();
        assert!(store.browser_session("old").unwrap().is_none());
        let live = store.browser_session("live").unwrap().expect("live");
        assert_eq!(
            (
                live.username.as_str(),
                live.team_slug.as_str(),
                live.csrf.as_str()
            ),
            ("alice", "acme", "c1")
        );
        store.end_browser_session("live").unwrap();
        store.end_browser_session("never").unwrap();
        assert!(store.browser_session("live").unwrap().is_none());
        store
            .create_browser_session("again", "alice", "c2", now + 600)
            .unwrap();
        store.disable_user("alice").unwrap();
        assert!(
            store.browser_session("again").unwrap().is_none(),
            "a disabled user's session ends"
        );
    }
}
