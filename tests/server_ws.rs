//! The WebSocket endpoint against a real server: authentication, snapshot, ping/pong, acks,
//! fan-out within a team and isolation between teams.

mod server_common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use server_common::*;
use spec_kitty::event::Lane;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn try_connect(server: &TestServer, token: &str) -> Result<Ws, u16> {
    let mut request = server.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("unexpected websocket error: {e}"),
    }
}

/// Connects with a fresh ws token and returns the socket and its snapshot message.
async fn connect(server: &TestServer, access: &str) -> (Ws, Value) {
    let token = ws_token(server, access).await;
    let mut ws = try_connect(server, &token)
        .await
        .expect("websocket upgrade");
    let snapshot = next_json(&mut ws).await.expect("snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    (ws, snapshot)
}

/// The next JSON text message that is not a ping; `None` when the connection closed.
async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s");
        match msg {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(&text).expect("server sends JSON");
                if v["type"] != "ping" {
                    return Some(v);
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn send(ws: &mut Ws, value: &Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .expect("send");
}

#[tokio::test]
async fn the_first_message_is_the_snapshot_of_the_teams_board() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    server.add_user("eve", "evil");
    let (alice, eve) = (access(&server, "alice").await, access(&server, "eve").await);
    let c = client();
    let mut seven_lane = status_event("acme", "WP01", Lane::Planned, Lane::Doing, 5);
    seven_lane["payload"] = json!({"wp_id": "WP01", "feature_slug": "001-demo",
        "from_lane": "in_progress", "to_lane": "for_review", "actor": "bob"});
    let events = vec![
        created_event("acme", "WP01", 1),
        created_event("acme", "WP02", 2),
        seven_lane,
        // Older than the 7-lane move: does not win.
        status_event("acme", "WP01", Lane::Planned, Lane::Doing, 3),
    ];
    assert_eq!(
        statuses(&upload(&c, &server, &alice, &events).await.1),
        ["success"; 4]
    );
    upload(&c, &server, &eve, &[created_event("evil", "WP09", 1)]).await;

    let (_, snapshot) = connect(&server, &alice).await;
    assert_eq!(
        snapshot["work_packages"],
        json!([
            {"feature_slug": "001-demo", "wp_id": "WP01", "lane": "for_review"},
            {"feature_slug": "001-demo", "wp_id": "WP02", "lane": "planned"},
        ])
    );
    let (_, snapshot) = connect(&server, &eve).await;
    assert_eq!(snapshot["work_packages"].as_array().expect("wps").len(), 1);
}

#[tokio::test]
async fn the_upgrade_needs_an_unused_ws_token() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let alice = access(&server, "alice").await;
    assert_eq!(try_connect(&server, "bogus").await.err(), Some(401));
    assert_eq!(
        try_connect(&server, &alice).await.err(),
        Some(401),
        "an access token is not a ws token"
    );
    let token = ws_token(&server, &alice).await;
    assert!(try_connect(&server, &token).await.is_ok());
    assert_eq!(
        try_connect(&server, &token).await.err(),
        Some(401),
        "single use"
    );

    // A plain GET is not an upgrade: a JSON error, not a crash or a text page.
    let res = client()
        .get(format!("{}/ws/v1/events/", server.url))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 400);
    assert!(res.json::<Value>().await.expect("json")["error"].is_string());

    // Browsers pass the token in the query string.
    let token = ws_token(&server, &alice).await;
    let url = format!("{}?token={token}", server.ws_url());
    assert!(tokio_tungstenite::connect_async(url).await.is_ok());
}

#[tokio::test]
async fn events_are_acked_and_fanned_out_to_the_teams_other_connections_only() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    server.add_user("eve", "evil");
    let (alice, eve) = (access(&server, "alice").await, access(&server, "eve").await);
    let (mut a1, _) = connect(&server, &alice).await;
    let (mut a2, _) = connect(&server, &alice).await;
    let (mut e1, _) = connect(&server, &eve).await;

    // Unknown message types are ignored: the next message a1 gets is the ack of the event.
    send(&mut a1, &json!({"type": "hello"})).await;
    let event = created_event("local", "WP01", 1);
    send(&mut a1, &event).await;
    let ack = next_json(&mut a1).await.expect("ack");
    assert_eq!(
        ack,
        json!({"type": "ack", "event_id": event["event_id"], "status": "success"})
    );
    let fanned = next_json(&mut a2).await.expect("fan-out");
    assert_eq!(fanned["type"], "event");
    assert_eq!(fanned["event_id"], event["event_id"]);
    assert_eq!(fanned["payload"], event["payload"]);

    send(&mut a1, &event).await;
    assert_eq!(
        next_json(&mut a1).await.expect("ack")["status"],
        "duplicate"
    );
    let mut bad = created_event("acme", "WP02", 2);
    bad["payload"]["title"] = json!("");
    send(&mut a1, &bad).await;
    let ack = next_json(&mut a1).await.expect("ack");
    assert_eq!(ack["status"], "rejected");
    assert!(ack["error"].as_str().expect("error").contains("title"));

    // A batch upload reaches every connection of the team, and eve sees only her own team.
    let c = client();
    let batch = created_event("acme", "WP03", 3);
    upload(&c, &server, &alice, std::slice::from_ref(&batch)).await;
    let eves = created_event("evil", "WP07", 1);
    upload(&c, &server, &eve, std::slice::from_ref(&eves)).await;
    assert_eq!(
        next_json(&mut a1).await.expect("event")["event_id"],
        batch["event_id"]
    );
    assert_eq!(
        next_json(&mut a2).await.expect("event")["event_id"],
        batch["event_id"],
        "the duplicate and the rejected event were not fanned out"
    );
    assert_eq!(
        next_json(&mut e1).await.expect("event")["event_id"],
        eves["event_id"],
        "nothing of acme reached evil"
    );
}

#[tokio::test]
async fn pings_are_answered_or_the_connection_is_closed() {
    let server = TestServer::start(&["--ws-ping-interval-ms", "150"]);
    server.add_user("alice", "acme");
    let alice = access(&server, "alice").await;
    let (mut ws, _) = connect(&server, &alice).await;

    let mut pongs = 0;
    while pongs < 5 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a ping within 10 s")
            .expect("still open")
            .expect("no error");
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(v["type"], "ping");
            assert!(v["timestamp"].is_number());
            send(
                &mut ws,
                &json!({"type": "pong", "timestamp": v["timestamp"]}),
            )
            .await;
            pongs += 1;
        }
    }

    // Stop answering: the server closes after two unanswered pings.
    let mut closed = false;
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                closed = true;
                break;
            }
            Ok(Some(Ok(_))) => {}
            Err(_) => break,
        }
    }
    assert!(closed, "the server closed the silent connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_open_websockets_and_the_server_exits() {
    let mut server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let alice = access(&server, "alice").await;
    let (mut ws, _) = connect(&server, &alice).await;
    let exited = tokio::task::block_in_place(|| server.terminate());
    assert!(exited, "an open WebSocket does not hold up the shutdown");
    assert!(
        next_json(&mut ws).await.is_none(),
        "the connection was closed"
    );
}
