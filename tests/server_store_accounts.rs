//! The storage interface's accounts, on both backends: the same scenario runs against the
//! SQLite file and a real PostgreSQL (a throwaway cluster), and on PostgreSQL two `Store`s on
//! one database stand for two replicas.

mod pg_common;

use std::sync::{Arc, Barrier};

use pg_common::PgCluster;
use spec_kitty::server::store::{RefreshOutcome, Store, WsTokenOwner, unix_now};

/// Each backend with what keeps it alive (the temp dir, the cluster).
fn backends() -> Vec<(&'static str, Store, Box<dyn std::any::Any>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("s.db")).expect("open sqlite");
    let pg = PgCluster::start();
    let url = pg.create_database("accounts");
    let postgres = Store::connect_postgres(&url).expect("connect postgres");
    vec![
        ("sqlite", sqlite, Box::new(dir)),
        ("postgres", postgres, Box::new(pg)),
    ]
}

fn owner(session: &str) -> WsTokenOwner {
    WsTokenOwner {
        username: "alice".into(),
        team_slug: "acme".into(),
        session: Some(session.into()),
    }
}

#[test]
fn users_teams_sessions_and_tokens_behave_the_same_on_both_backends() {
    for (name, store, _keep) in backends() {
        assert!(store.add_user("alice", "acme", "hash-a").unwrap(), "{name}");
        assert!(
            !store.add_user("alice", "other", "hash-b").unwrap(),
            "{name}: taken"
        );
        assert!(store.add_user("Bob", "acme", "hash-b").unwrap(), "{name}");
        assert!(store.add_user("carol", "zeta", "hash-c").unwrap(), "{name}");
        let users: Vec<String> = store
            .list_users()
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(
            users,
            ["Bob", "alice", "carol"],
            "{name}: byte order, like SQLite"
        );
        let alice = store.find_user("alice").unwrap().expect("alice");
        assert_eq!(
            (alice.team_slug.as_str(), alice.password_hash.as_str()),
            ("acme", "hash-a")
        );
        assert!(store.find_user("nobody").unwrap().is_none(), "{name}");
        let teams: Vec<(String, i64, i64)> = store
            .list_teams()
            .unwrap()
            .into_iter()
            .map(|t| (t.slug, t.users, t.events))
            .collect();
        assert_eq!(
            teams,
            [("acme".into(), 2, 0), ("zeta".into(), 1, 0)],
            "{name}"
        );

        let now = unix_now();
        store
            .create_session("fam", "alice", "r1", now + 600)
            .unwrap();
        let rotated = store.rotate_refresh("r1", "r2", now + 600).unwrap();
        assert_eq!(
            rotated,
            RefreshOutcome::Rotated {
                username: "alice".into(),
                team_slug: "acme".into(),
                family_id: "fam".into()
            },
            "{name}"
        );
        assert_eq!(
            store.rotate_refresh("r1", "r3", now + 600).unwrap(),
            RefreshOutcome::ReuseDetected,
            "{name}"
        );
        assert_eq!(
            store.rotate_refresh("r2", "r4", now + 600).unwrap(),
            RefreshOutcome::Invalid,
            "{name}: family revoked"
        );
        assert_eq!(
            store.rotate_refresh("unknown", "r5", now + 600).unwrap(),
            RefreshOutcome::Invalid,
            "{name}"
        );

        store
            .create_session("fam2", "alice", "s1", now + 600)
            .unwrap();
        assert_eq!(
            store.revoke_session("s1").unwrap().as_deref(),
            Some("fam2"),
            "{name}"
        );
        assert_eq!(store.revoke_session("never").unwrap(), None, "{name}");

        store
            .create_session("live", "alice", "t1", now + 600)
            .unwrap();
        store.add_ws_token("ws1", &owner("live"), now + 60).unwrap();
        store
            .add_ws_token("ws-old", &owner("live"), now - 1)
            .unwrap();
        let got = store.consume_ws_token("ws1").unwrap().expect("valid once");
        assert_eq!(
            (got.username.as_str(), got.session.as_deref()),
            ("alice", Some("live"))
        );
        assert!(
            store.consume_ws_token("ws1").unwrap().is_none(),
            "{name}: used twice"
        );
        assert!(
            store.consume_ws_token("ws-old").unwrap().is_none(),
            "{name}: expired"
        );

        let (users, sessions) = store
            .revoked(
                &["alice".into(), "ghost".into()],
                &["live".into(), "fam".into(), "nope".into()],
            )
            .unwrap();
        assert_eq!(users, ["ghost"], "{name}");
        assert_eq!(sessions, ["fam", "nope"], "{name}");

        assert_eq!(store.user_disabled("alice").unwrap(), Some(false), "{name}");
        store.add_ws_token("ws2", &owner("live"), now + 60).unwrap();
        assert!(store.disable_user("alice").unwrap(), "{name}");
        assert!(!store.disable_user("ghost").unwrap(), "{name}");
        assert_eq!(store.user_disabled("alice").unwrap(), Some(true), "{name}");
        assert_eq!(store.user_disabled("ghost").unwrap(), None, "{name}");
        assert!(
            store.consume_ws_token("ws2").unwrap().is_none(),
            "{name}: tokens dropped"
        );
        assert_eq!(
            store.rotate_refresh("t1", "t2", now + 600).unwrap(),
            RefreshOutcome::Invalid,
            "{name}"
        );
        let (_, sessions) = store.revoked(&[], &["live".into()]).unwrap();
        assert_eq!(sessions, ["live"], "{name}: disabling revokes sessions");
    }
}

#[test]
fn pruning_is_bounded_per_run_on_both_backends() {
    for (name, store, _keep) in backends() {
        store.add_user("alice", "acme", "hash").unwrap();
        let now = unix_now();
        for i in 0..5 {
            store
                .create_session(&format!("old{i}"), "alice", &format!("r{i}"), now - 10)
                .unwrap();
        }
        store
            .create_session("live", "alice", "live-token", now + 600)
            .unwrap();
        store
            .add_ws_token("ws-old", &owner("live"), now - 1)
            .unwrap();
        store
            .add_ws_token("ws-live", &owner("live"), now + 60)
            .unwrap();
        assert_eq!(store.prune_expired(now, 2).unwrap(), 1 + 2 + 2, "{name}");
        let mut runs = 0;
        while store.prune_expired(now, 2).unwrap() > 0 {
            runs += 1;
            assert!(runs < 10, "{name}: pruning does not finish");
        }
        assert!(
            store.consume_ws_token("ws-live").unwrap().is_some(),
            "{name}"
        );
        let (_, sessions) = store.revoked(&[], &["live".into(), "old0".into()]).unwrap();
        assert_eq!(sessions, ["old0"], "{name}");
    }
}

/// Two replicas (two stores on one database) given the same refresh token at the same moment:
/// exactly one rotates it, the other detects the reuse, and the session ends up revoked.
#[test]
fn a_refresh_token_presented_to_two_replicas_at_once_rotates_once() {
    let pg = PgCluster::start();
    let url = pg.create_database("replicas");
    let a = Arc::new(Store::connect_postgres(&url).unwrap());
    let b = Arc::new(Store::connect_postgres(&url).unwrap());
    a.add_user("alice", "acme", "hash").unwrap();
    let now = unix_now();
    for round in 0..20 {
        let token = format!("tok{round}");
        a.create_session(&format!("fam{round}"), "alice", &token, now + 600)
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let runs: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, store)| {
                let (barrier, token) = (barrier.clone(), token.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store
                        .rotate_refresh(&token, &format!("{token}-next{i}"), now + 600)
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<RefreshOutcome> = runs.into_iter().map(|r| r.join().unwrap()).collect();
        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Rotated { .. }))
            .count();
        let reuse = outcomes
            .iter()
            .filter(|o| **o == RefreshOutcome::ReuseDetected)
            .count();
        assert_eq!((rotated, reuse), (1, 1), "round {round}: {outcomes:?}");
        let (_, revoked) = b.revoked(&[], &[format!("fam{round}")]).unwrap();
        assert_eq!(revoked.len(), 1, "round {round}: the session is revoked");
    }
    // A ws token issued through A is accepted once, by B.
    a.add_ws_token("ws", &owner("fam0"), now + 60).unwrap();
    assert!(b.consume_ws_token("ws").unwrap().is_some());
    assert!(a.consume_ws_token("ws").unwrap().is_none());
}
