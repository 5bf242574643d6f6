//! Load and faults against a real server: many concurrent clients with resends, a client that
//! vanishes mid-upload, and SIGTERM while batches are in flight.

mod server_common;

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use server_common::*;

const CLIENTS: usize = 50;
const BATCHES: usize = 20;
const EVENTS: usize = 500;

fn id_set(events: &[Value]) -> HashSet<String> {
    events
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_with_resends_store_every_event_exactly_once() {
    let server = TestServer::start(&[]);
    for u in 0..5 {
        server.add_user(&format!("user{u}"), "acme");
    }
    let mut tokens = Vec::new();
    for u in 0..5 {
        tokens.push(access(&server, &format!("user{u}")).await);
    }
    let mut tasks = Vec::new();
    let mut expected = HashSet::new();
    for n in 0..CLIENTS {
        let events = many_event_texts("acme", BATCHES * EVENTS);
        expected.extend(events.iter().map(|(id, _)| id.clone()));
        let (url, token) = (server.url.clone(), tokens[n % tokens.len()].clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let bodies: Vec<Vec<u8>> = events.chunks(EVENTS).map(batch_body).collect();
            for (i, body) in bodies.iter().enumerate() {
                let (status, statuses) = upload_body(&c, &url, &token, body.clone()).await;
                assert_eq!(status, 200);
                assert!(statuses.len() == EVENTS && statuses.iter().all(|s| s == "success"));
                // Every fifth batch the client "lost" the previous answer and resends it.
                if i % 5 == 4 {
                    let (status, statuses) =
                        upload_body(&c, &url, &token, bodies[i - 1].clone()).await;
                    assert_eq!(status, 200);
                    assert!(statuses.len() == EVENTS && statuses.iter().all(|s| s == "duplicate"));
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task succeeded");
    }
    let pulled = pull_ids(&client(), &server, &tokens[0]).await;
    assert_eq!(
        pulled.len(),
        CLIENTS * BATCHES * EVENTS,
        "no event stored twice"
    );
    assert_eq!(
        pulled.into_iter().collect::<HashSet<_>>(),
        expected,
        "every event stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_upload_leaves_no_partial_batch() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    // What the server has when the client vanishes is a complete, valid batch: only the
    // declared length says more was coming. A server that stored what it had would fail this.
    let body =
        serde_json::to_vec(&serde_json::json!({"events": many_events("acme", 200)})).expect("json");
    let mut socket = TcpStream::connect(server.addr()).expect("connect");
    write!(
        socket,
        "POST /api/v1/events/batch/ HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.addr(),
        body.len() + 100
    )
    .expect("headers");
    socket.write_all(&body).expect("the whole batch");
    socket.flush().expect("flush");
    drop(socket);
    // The server saw the upload and gave up on it (the body could not be read to its end).
    let gave_up = tokio::task::block_in_place(|| {
        server.wait_for_log(Duration::from_secs(30), |log| {
            log.contains("batch upload ended without storing anything")
        })
    });
    assert!(
        gave_up,
        "the server answered the cut-off upload: {}",
        server.log()
    );

    let c = client();
    assert!(pull_all(&c, &server, &token, 1000).await.is_empty());
    let (status, _) = upload(&c, &server, &token, &many_events("acme", 3)).await;
    assert_eq!(status, 200, "the server is still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_batches_and_writes_none_by_half() {
    // Every batch waits 1 s between being received and being stored (a test-only mode), so
    // SIGTERM is sent while a batch is certainly in flight.
    let options = Options {
        envs: vec![(
            spec_kitty::server::TEST_INGEST_DELAY_ENV.into(),
            "1000".into(),
        )],
        nofile: None,
    };
    let mut server = TestServer::start_with(&[], options);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let mut tasks = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..4 {
        let batches: Vec<Vec<Value>> = (0..10).map(|_| many_events("acme", 500)).collect();
        sent.extend(batches.iter().map(|b| id_set(b)));
        let (url, token) = (server.url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut acked = Vec::new();
            for batch in batches {
                let body =
                    gzip(&serde_json::to_vec(&serde_json::json!({"events": batch})).expect("json"));
                let res = c
                    .post(format!("{url}/api/v1/events/batch/"))
                    .bearer_auth(&token)
                    .header("Content-Encoding", "gzip")
                    .body(body)
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 200 => acked.push(id_set(&batch)),
                    _ => break,
                }
            }
            acked
        }));
    }
    let in_flight = tokio::task::block_in_place(|| {
        server.wait_for_log(Duration::from_secs(60), |log| {
            log.matches("batch received").count() > log.matches("batch stored").count()
        })
    });
    assert!(in_flight, "batches reached the server");
    let exited_cleanly = tokio::task::block_in_place(|| server.terminate());
    assert!(exited_cleanly, "SIGTERM is a clean exit");
    let log = server.log();
    let stopping = log.find("shutting down").expect("the shutdown is logged");
    assert!(
        log[stopping..].contains("batch stored"),
        "a batch in flight at SIGTERM was finished: {log}"
    );
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.expect("task"));
    }
    assert!(!acked.is_empty(), "the finished batches were answered");

    let server = server.restart();
    let token = access(&server, "alice").await;
    let stored = id_set(&pull_all(&client(), &server, &token, 1000).await);
    for batch in &acked {
        assert!(batch.is_subset(&stored), "an acknowledged batch was lost");
    }
    for batch in &sent {
        let n = batch.intersection(&stored).count();
        assert!(n == 0 || n == batch.len(), "a batch was half written ({n})");
    }
}
