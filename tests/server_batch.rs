//! Batch upload and pull against a real server: statuses per event, validation errors, size
//! limits, team isolation, cursors, persistence across restarts, TLS.

mod server_common;

use std::collections::HashSet;

use serde_json::{Value, json};
use server_common::*;
use spec_kitty::event::Lane;

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

#[tokio::test]
async fn given_new_events_a_batch_stores_them_and_a_resend_answers_duplicate() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let c = client();
    let events = vec![
        created_event("local", "WP01", 1),
        status_event("acme", "WP01", Lane::Planned, Lane::Doing, 2),
    ];
    let (status, body) = upload(&c, &server, &token, &events).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(statuses(&body), ["success", "success"]);
    assert_eq!(body["results"][0]["event_id"], events[0]["event_id"]);
    assert!(body["results"][0].get("error").is_none());

    let (_, body) = upload(&c, &server, &token, &events).await;
    assert_eq!(statuses(&body), ["duplicate", "duplicate"]);
    let twice = vec![
        events[0].clone(),
        created_event("acme", "WP02", 3),
        created_event("acme", "WP02", 3),
    ];
    let mut twice = twice;
    twice[2] = twice[1].clone();
    let (_, body) = upload(&c, &server, &token, &twice).await;
    assert_eq!(statuses(&body), ["duplicate", "success", "duplicate"]);

    let stored = pull_all(&c, &server, &token, 500).await;
    assert_eq!(stored.len(), 3, "nothing stored twice");
    assert_eq!(stored[0], events[0], "served back exactly as sent");

    let (status, body) = upload_raw(&c, &server, &token, b"{\"events\":[]}".to_vec(), false).await;
    assert_eq!((status, body), (200, json!({"results": []})));
}

#[tokio::test]
async fn bad_events_are_rejected_with_precise_errors_while_the_rest_succeed() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let c = client();

    let good = created_event("acme", "WP01", 1);
    let mut no_error_type = status_event("acme", "WP01", Lane::Planned, Lane::Doing, 2);
    no_error_type["event_type"] = json!("ErrorLogged");
    no_error_type["aggregate_type"] = json!("WorkPackage");
    no_error_type["payload"] = json!({"wp_id": "WP01", "error_message": "boom"});
    let mut two_problems = created_event("acme", "WP02", 3);
    two_problems["lamport_clock"] = json!(0);
    two_problems["payload"]["title"] = json!("");
    let mut seven_lane = status_event("acme", "WP01", Lane::Planned, Lane::Doing, 4);
    seven_lane["payload"] = json!({"wp_id": "WP01", "feature_slug": "001-demo",
        "from_lane": "claimed", "to_lane": "in_progress", "actor": "bob", "policy_metadata": {}});
    let mut unknown = created_event("acme", "WP01", 5);
    unknown["event_type"] = json!("MissionDossierArtifactIndexed");
    unknown["aggregate_type"] = json!("MissionDossier");
    unknown["aggregate_id"] = json!("dossier-1");
    unknown["payload"] = json!({"artifact": "spec.md"});
    let mut no_id = created_event("acme", "WP03", 6);
    no_id.as_object_mut().expect("object").remove("event_id");

    let batch = vec![
        good,
        no_error_type,
        two_problems,
        seven_lane,
        unknown,
        json!(42),
        no_id,
    ];
    let (status, body) = upload(&c, &server, &token, &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        statuses(&body),
        [
            "success", "rejected", "rejected", "success", "success", "rejected", "rejected"
        ]
    );
    let results = body["results"].as_array().expect("results");
    let error = |i: usize| results[i]["error"].as_str().expect("error").to_owned();
    assert!(error(1).contains("error_type"), "{}", error(1));
    assert!(
        error(2).contains("lamport_clock") && error(2).contains("title"),
        "{}",
        error(2)
    );
    assert_eq!(results[2]["event_id"], batch[2]["event_id"]);
    assert_eq!(results[5]["event_id"], "");
    assert_eq!(results[6]["event_id"], "");
    assert_eq!(pull_all(&c, &server, &token, 500).await.len(), 3);
}

#[tokio::test]
async fn an_event_of_another_team_is_rejected_and_never_stored() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    server.add_user("eve", "evil");
    let (alice, eve) = (access(&server, "alice").await, access(&server, "eve").await);
    let c = client();

    let foreign = created_event("evil", "WP01", 1);
    let (_, body) = upload(&c, &server, &alice, &[foreign]).await;
    assert_eq!(statuses(&body), ["rejected"]);
    assert_eq!(
        body["results"][0]["error"],
        "team_slug 'evil' does not match the authenticated team 'acme'"
    );

    // An event id already stored by acme, replayed by evil, neither leaks nor overwrites.
    let mine = created_event("local", "WP01", 1);
    assert_eq!(
        statuses(
            &upload(&c, &server, &alice, std::slice::from_ref(&mine))
                .await
                .1
        ),
        ["success"]
    );
    let mut replay = mine.clone();
    replay["payload"]["title"] = json!("overwritten");
    let (_, body) = upload(&c, &server, &eve, &[replay]).await;
    assert_eq!(statuses(&body), ["rejected"]);
    assert!(
        !body.to_string().contains("acme"),
        "does not name the other team: {body}"
    );

    assert!(pull_all(&c, &server, &eve, 500).await.is_empty());
    assert_eq!(pull_all(&c, &server, &alice, 500).await, vec![mine]);
}

#[tokio::test]
async fn invalid_and_oversized_batches_are_refused_whole() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let c = client();
    for body in [&b"not json"[..], b"{\"evnts\":[]}", b"[1,2]"] {
        let (status, answer) = upload_raw(&c, &server, &token, body.to_vec(), false).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].is_string() && answer["details"].is_array(),
            "{answer}"
        );
    }
    let (status, answer) = upload(&c, &server, &token, &many_events("acme", 1001)).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"].as_str().expect("error").contains("1000"));

    // 17 MiB of spaces inside a valid JSON batch, 17 KiB on the wire.
    let mut bomb = b"{\"events\":[".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 17 << 20));
    bomb.extend(b"]}");
    let (status, answer) = upload_raw(&c, &server, &token, gzip(&bomb), true).await;
    assert_eq!(status, 413, "{answer}");
    let (status, _) = upload_raw(&c, &server, &token, b"\x1f\x8bnot gzip".to_vec(), true).await;
    assert_eq!(status, 400);
    assert!(pull_all(&c, &server, &token, 500).await.is_empty());
}

#[tokio::test]
async fn pull_pages_return_every_event_exactly_once_in_upload_order() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    server.add_user("bob", "other");
    let token = access(&server, "alice").await;
    let c = client();
    let events = many_events("acme", 1234);
    for chunk in events.chunks(500) {
        let (status, _) = upload(&c, &server, &token, chunk).await;
        assert_eq!(status, 200);
    }
    let bob = access(&server, "bob").await;
    upload(&c, &server, &bob, &many_events("other", 10)).await;

    for limit in [100, 1000, 5000] {
        let pulled = pull_all(&c, &server, &token, limit).await;
        assert_eq!(ids(&pulled), ids(&events), "limit {limit}");
    }
    let unique: HashSet<String> = ids(&pull_all(&c, &server, &bob, 3).await)
        .into_iter()
        .collect();
    assert_eq!(unique.len(), 10);

    let res = c
        .get(format!("{}/api/v1/events/?after=abc", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("pull");
    assert_eq!(res.status(), 400);
    let first: Value = c
        .get(format!("{}/api/v1/events/", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("pull")
        .json()
        .await
        .expect("json");
    assert_eq!(
        first["events"].as_array().expect("events").len(),
        500,
        "default limit"
    );
    assert!(first["next"].is_string());
}

#[tokio::test]
async fn a_restart_loses_nothing_that_was_acknowledged() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let tokens = login(&server, "alice").await;
    let token = tokens["access"].as_str().expect("access").to_owned();
    let c = client();
    let events = many_events("acme", 700);
    assert_eq!(upload(&c, &server, &token, &events).await.0, 200);

    let server = server.restart();
    // Sessions and the signing secret survive too: the old access token still works.
    let res = c
        .post(format!("{}/api/v1/token/refresh/", server.url))
        .json(&json!({"refresh": tokens["refresh"]}))
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), 200);
    assert_eq!(
        ids(&pull_all(&c, &server, &token, 1000).await),
        ids(&events)
    );
    let (_, body) = upload(&c, &server, &token, &events[..3]).await;
    assert_eq!(statuses(&body), ["duplicate"; 3]);
}

#[tokio::test]
async fn tls_with_a_self_signed_certificate_serves_the_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = server_common::SelfSigned::new(dir.path());
    let server = tls.serve();
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    server.add_user("alice", "acme");

    let _ = client();
    let tls = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(tls.cert_pem.as_bytes()).expect("pem"))
        .build()
        .expect("client");
    let res = tls
        .post(format!("{}/api/v1/token/", server.url))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .expect("https login");
    assert_eq!(res.status(), 200);
    let token: Value = res.json().await.expect("json");
    let access = token["access"].as_str().expect("access");
    let (status, body) = upload(&tls, &server, access, &many_events("acme", 5)).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&body), ["success"; 5]);

    // A client that does not trust the certificate is refused.
    assert!(
        client()
            .get(format!("{}/api/v1/sync/health/", server.url))
            .send()
            .await
            .is_err()
    );
}
