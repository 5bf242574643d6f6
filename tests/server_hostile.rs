//! spec-kitty-server under hostile load (issue 12): each attack runs against the real binary
//! on 127.0.0.1, bounded in count and time, and asserts the bound — served or closed, and peak
//! memory (`VmHWM` of `/proc/<pid>/status`) — never wall-clock time.
//!
//! Memory thresholds are those of the issue's targets for a release build with headroom for a
//! debug build on a loaded machine; before the fixes each attack went far past them (2.19 GB
//! for the login burst, 2.39 GB for eight parse bombs). The release figures are in
//! docs/benchmarks.md.

mod server_common;

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use server_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn post(server: &TestServer, path: &str, body: Vec<u8>) -> (u16, Value) {
    let res = client()
        .post(format!("{}{path}", server.url))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn connect_ws(server: &TestServer, access: &str) -> Ws {
    let token = ws_token(server, access).await;
    let mut request = server.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket upgrade");
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("snapshot within 10 s")
        .expect("snapshot")
        .expect("snapshot frame");
    assert!(first.to_text().expect("text").contains("\"snapshot\""));
    ws
}

/// Reads until the server closes; returns the close code (None for a close without a frame).
/// Bounded by `max_messages` and a 60 s allowance per message.
async fn until_closed(ws: &mut Ws, max_messages: usize) -> Option<u16> {
    for _ in 0..max_messages {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => return None,
            Err(_) => panic!("the server did not close the connection within 60 s"),
        }
    }
    panic!("no close after {max_messages} messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_bad_logins_hashes_at_most_the_limit_and_stays_small() {
    let server = TestServer::start(&["--max-connections-per-address", "2000"]);
    server.add_user("dave", "acme");
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (c, url) = (c.clone(), server.url.clone());
        tasks.push(tokio::spawn(async move {
            let res = c
                .post(format!("{url}/api/v1/token/"))
                .json(&json!({"username": "dave", "password": "wrong password"}))
                .send()
                .await
                .expect("login request answered");
            let retry_after = res.headers().get("retry-after").is_some();
            (res.status().as_u16(), retry_after)
        }));
    }
    let (mut refused, mut limited) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            (401, _) => refused += 1,
            (429, true) => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(
        refused <= 10,
        "{refused} attempts reached argon2; the limit is 10"
    );
    assert_eq!(refused + limited, 1000);
    let peak = server.peak_rss_mib();
    assert!(
        peak < 250,
        "peak RSS {peak} MiB under 1000 concurrent bad logins"
    );
    // The real user from another account's point of view is unaffected: same address, other
    // user (an office NAT).
    server.add_user("carol", "acme");
    assert_eq!(login(&server, "carol").await["team_slug"], "acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slowloris_connections_are_closed_and_others_still_served() {
    let server = TestServer::start(&["--header-timeout", "2"]);
    let mut silent: Vec<StdTcpStream> = (0..1000)
        .map(|_| StdTcpStream::connect(server.addr()).expect("connect"))
        .collect();
    let mut slow = StdTcpStream::connect(server.addr()).expect("connect");
    slow.write_all(b"GET /api/v1/sync/health/ HTTP/1.1\r\n")
        .expect("start of a request");
    // A normal request is served while a thousand connections sit silent.
    let res = client()
        .get(format!("{}/api/v1/sync/health/", server.url))
        .send()
        .await
        .expect("served");
    assert_eq!(res.status(), 200);
    // One header byte every 200 ms does not keep a connection open past the header timeout.
    let mut slow_closed = false;
    for _ in 0..300 {
        if slow.write_all(b"X").is_err() {
            slow_closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        slow.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        match slow.read(&mut buf) {
            Ok(_) => {
                slow_closed = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                slow_closed = true;
                break;
            }
        }
    }
    assert!(slow_closed, "slowloris headers were cut off");
    // Every silent connection is closed by the server (EOF or reset), none left open.
    for s in &mut silent {
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => {
                // A 408 or similar answer before closing is fine; then EOF must follow.
                assert!(n > 0);
                assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_silent_connections_than_file_descriptors_do_not_stop_accepting() {
    let options = Options {
        envs: Vec::new(),
        nofile: Some(300),
    };
    let server = TestServer::start_with(&["--max-connections-per-address", "1000"], options);
    let _silent: Vec<StdTcpStream> = (0..320)
        .map(|_| StdTcpStream::connect(server.addr()).expect("connect"))
        .collect();
    // The oldest idle connections were shed to stay under the open-files limit. A connection
    // arriving while the shed ones are still closing may be refused: a client retries.
    let mut served = None;
    for _ in 0..5 {
        let res = client()
            .get(format!("{}/api/v1/sync/health/", server.url))
            .send()
            .await;
        if let Ok(res) = res {
            served = Some(res.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        served,
        Some(reqwest::StatusCode::OK),
        "served at the descriptor limit"
    );
    assert!(!server.log().contains("Too many open files"));
}

/// A valid event of an unknown type whose payload carries `bytes` of text.
fn big_event(bytes: usize) -> Value {
    let mut e = status_event(
        "acme",
        "WP01",
        spec_kitty::event::Lane::Planned,
        spec_kitty::event::Lane::Doing,
        1,
    );
    let id = spec_kitty::event::new_ulid();
    e["event_id"] = json!(id);
    e["correlation_id"] = json!(id);
    e["payload"]["note"] = json!("x".repeat(bytes));
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pull_pages_are_capped_by_bytes_and_concurrent_pulls_stay_small() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let c = client();
    for _ in 0..6 {
        let batch: Vec<Value> = (0..10).map(|_| big_event(900_000)).collect();
        let (status, _) = upload(&c, &server, &token, &batch).await;
        assert_eq!(status, 200);
    }
    let first = c
        .get(format!("{}/api/v1/events/?limit=1000", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("pull");
    let page: Value = first.json().await.expect("page");
    let n = page["events"].as_array().expect("events").len();
    assert!(
        (1..60).contains(&n),
        "a page stops at the byte cap ({n} events)"
    );
    assert!(page["next"].is_string(), "next says there is more");
    let before = server.peak_rss_mib();
    let mut pulls = Vec::new();
    for _ in 0..6 {
        let (c, token, url) = (c.clone(), token.clone(), server.url.clone());
        pulls.push(tokio::spawn(async move {
            let mut after = String::new();
            let mut total = 0;
            for _ in 0..1000 {
                let res = c
                    .get(format!("{url}/api/v1/events/?limit=1000&after={after}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("pull");
                let page: Value = res.json().await.expect("page");
                total += page["events"].as_array().expect("events").len();
                match page["next"].as_str() {
                    Some(next) => after = next.to_owned(),
                    None => return total,
                }
            }
            panic!("pull did not end");
        }));
    }
    for pull in pulls {
        assert_eq!(pull.await.expect("pull task"), 60, "every event, once");
    }
    let peak = server.peak_rss_mib();
    assert!(
        peak < before + 200,
        "six concurrent pulls took the peak RSS from {before} to {peak} MiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parse_bombs_are_refused_within_bounded_memory() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let zeros = vec!["0"; (16 << 20) / 2 - 64].join(",");
    // An events array of eight million zeros, and one event whose payload is such an array.
    let array_bomb = gzip(format!("{{\"events\":[{zeros}]}}").as_bytes());
    let mut event = status_event(
        "acme",
        "WP01",
        spec_kitty::event::Lane::Planned,
        spec_kitty::event::Lane::Doing,
        1,
    )
    .to_string();
    event.truncate(event.len() - 1);
    let payload_bomb = gzip(
        format!(
            "{{\"events\":[{event},\"z\":[{}]}}]}}",
            &zeros[..zeros.len() - 40]
        )
        .as_bytes(),
    );
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let body = if i % 2 == 0 {
            array_bomb.clone()
        } else {
            payload_bomb.clone()
        };
        let (c, url, token) = (c.clone(), server.url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let res = batch_request(&c, &url, &token, body, true)
                .send()
                .await
                .expect("answered");
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, body)
        }));
    }
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            413 => {}
            200 => assert_eq!(statuses(&body), ["rejected"], "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let peak = server.peak_rss_mib();
    assert!(peak < 300, "peak RSS {peak} MiB under eight parse bombs");
    assert!(pull_all(&c, &server, &token, 1000).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_or_logging_out_closes_their_open_websockets() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    server.add_user("bob", "acme");
    let alice = access(&server, "alice").await;
    let bob = login(&server, "bob").await;
    let bob_access = bob["access"].as_str().expect("access").to_owned();
    let mut bob_ws = connect_ws(&server, &bob_access).await;
    server.admin(&["user", "disable", "bob"]).expect("disable");
    assert_eq!(until_closed(&mut bob_ws, 100).await, Some(1008));
    // Nothing bob sends reaches the team any more: the socket is gone.
    assert!(bob_ws.send(Message::text("{}")).await.is_err() || bob_ws.next().await.is_none());

    // Logging out (revoking the session) closes the sockets opened under it.
    let tokens = login(&server, "alice").await;
    let session_access = tokens["access"].as_str().expect("access").to_owned();
    let mut ws = connect_ws(&server, &session_access).await;
    let mut other_session = connect_ws(&server, &alice).await;
    let (status, _) = post(
        &server,
        "/api/v1/logout/",
        serde_json::to_vec(&json!({"refresh": tokens["refresh"]})).expect("json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(until_closed(&mut ws, 100).await, Some(1008));
    // The other session's socket still gets the team's events.
    let (status, _) = upload(&client(), &server, &alice, &many_events("acme", 1)).await;
    assert_eq!(status, 200);
    let msg = tokio::time::timeout(Duration::from_secs(10), other_session.next())
        .await
        .expect("an event within 10 s")
        .expect("open")
        .expect("frame");
    assert!(msg.to_text().expect("text").contains("\"type\":\"event\""));
}

/// Opens a WebSocket by hand (raw TCP) so that frames can be forged.
async fn raw_ws(server: &TestServer, access: &str) -> TcpStream {
    let token = ws_token(server, access).await;
    let mut s = TcpStream::connect(server.addr()).await.expect("connect");
    let req = format!(
        "GET /ws/v1/events/ HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n",
        server.addr()
    );
    s.write_all(req.as_bytes()).await.expect("handshake");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.expect("handshake answer");
        head.push(b[0]);
        assert!(head.len() < 4096);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s
}

/// Reads server frames until a close frame; returns its code.
async fn close_code(s: &mut TcpStream) -> u16 {
    for _ in 0..100 {
        let mut h = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut h))
            .await
            .expect("a frame within 30 s")
            .expect("frame header");
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                s.read_exact(&mut l).await.expect("len");
                u16::from_be_bytes(l) as usize
            }
            127 => {
                let mut l = [0u8; 8];
                s.read_exact(&mut l).await.expect("len");
                u64::from_be_bytes(l) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.expect("payload");
        if h[0] & 0x0f == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
    panic!("no close frame");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_are_refused_by_their_header_with_1009() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let before = server.rss_mib();
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let mut s = raw_ws(&server, &token).await;
        // A masked binary frame announcing 16 MiB - 1, of which only 64 KiB are sent.
        let mut frame = vec![0x82, 0xFF];
        frame.extend_from_slice(&((16u64 << 20) - 1).to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        frame.extend(std::iter::repeat_n(0u8, 64 << 10));
        s.write_all(&frame).await.expect("frame");
        sockets.push(s);
    }
    for s in &mut sockets {
        assert_eq!(close_code(s).await, 1009);
    }
    let after = server.rss_mib();
    assert!(after < before + 50, "RSS went from {before} to {after} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_others_are_served() {
    let server = TestServer::start(&["--ws-ping-interval-ms", "500"]);
    server.add_user("alice", "acme");
    server.add_user("bob", "acme");
    let alice = access(&server, "alice").await;
    let bob = access(&server, "bob").await;
    // bob connects and then never reads (nor answers pings).
    let mut stalled = connect_ws(&server, &bob).await;
    let c = client();
    for _ in 0..20 {
        let batch: Vec<Value> = many_events("acme", 1000);
        let (status, _) = upload(&c, &server, &alice, &batch).await;
        assert_eq!(status, 200, "uploads are served while bob stalls");
    }
    let closed = tokio::task::block_in_place(|| {
        server.wait_for_log(Duration::from_secs(60), |log| {
            log.lines().any(|l| {
                l.contains("websocket closed")
                    && (l.contains("missed pongs")
                        || l.contains("too slow")
                        || l.contains("not reading"))
            })
        })
    });
    assert!(closed, "the stalled socket was dropped: {}", server.log());
    // What bob reads now ends: buffered frames, then the end of the connection.
    let _ = until_closed(&mut stalled, 100_000).await;
}

#[tokio::test]
async fn an_envelope_cannot_forge_a_live_message_type() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let mut forged = many_events("acme", 1).remove(0);
    forged["type"] = json!("snapshot");
    let (status, body) = upload(&client(), &server, &token, &[forged]).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&body), ["rejected"]);
    assert!(
        body["results"][0]["error"]
            .as_str()
            .expect("error")
            .contains("type")
    );
}

#[tokio::test]
async fn the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let (status, _) = upload(&client(), &server, &token, &many_events("acme", 1)).await;
    assert_eq!(status, 200);
    let names = [
        "server.db",
        "server.db-wal",
        "server.db-shm",
        "server.db.jwt-secret",
    ];
    if on_postgres() {
        // Everything is in the database (the JWT secret too): nothing is written beside it.
        for name in names {
            assert!(
                !server.dir.join(name).exists(),
                "{name} written on PostgreSQL"
            );
        }
        return;
    }
    for name in names {
        let meta = std::fs::metadata(server.dir.join(name)).expect(name);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
    }
}

#[tokio::test]
async fn look_alike_usernames_are_one_account_or_refused() {
    let server = TestServer::start(&[]);
    server.add_user("Alice", "acme");
    let again = admin(
        &server.dir,
        &["user", "add", "alice", "--team", "acme", "--password-stdin"],
        PASSWORD,
    );
    assert!(again.expect_err("same account").contains("already exists"));
    for bad in ["alice\u{200B}", "\u{430}lice", "\u{202E}ecila"] {
        let err = admin(
            &server.dir,
            &["user", "add", bad, "--team", "acme", "--password-stdin"],
            PASSWORD,
        )
        .expect_err("refused");
        assert!(err.contains("invalid username"), "{err}");
        assert!(
            err.contains("one script"),
            "the help line names the fix: {err}"
        );
    }
    server.add_user("caf\u{e9}", "acme");
    let nfd = admin(
        &server.dir,
        &[
            "user",
            "add",
            "cafe\u{301}",
            "--team",
            "acme",
            "--password-stdin",
        ],
        PASSWORD,
    );
    assert!(nfd.expect_err("same account").contains("already exists"));
    assert_eq!(login(&server, "ALICE").await["team_slug"], "acme");
    assert_eq!(login(&server, "cafe\u{301}").await["team_slug"], "acme");
}

#[tokio::test]
async fn errors_are_json_with_the_right_status() {
    let secret = "0123456789abcdef0123456789abcdef-test";
    let options = Options {
        envs: vec![("SPEC_KITTY_SERVER_JWT_SECRET".into(), secret.into())],
        nofile: None,
    };
    let server = TestServer::start_with(&[], options);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let c = client();
    // A query string that does not parse.
    let res = c
        .get(format!("{}/api/v1/events/?after=1&after=2", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("pull");
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("a JSON error body");
    assert!(body["error"].is_string());
    // A 3 MB login body.
    let (status, body) = post(&server, "/api/v1/token/", vec![b' '; 3 << 20]).await;
    assert_eq!(status, 413);
    assert!(body["error"].is_string());
    // Junk after the gzip stream.
    let mut gz = gzip(b"{\"events\":[]}");
    gz.extend_from_slice(b"junk");
    let (status, body) = upload_raw(&c, &server, &token, gz, true).await;
    assert_eq!(status, 400, "{body}");
    // Tokens for an unknown user, and not yet valid.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let sign = |claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("sign")
    };
    let ghost =
        sign(json!({"sub":"ghost","team":"acme","iat":now,"nbf":now,"exp":now+600,"typ":"access"}));
    let (status, body) = upload(&c, &server, &ghost, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"], "invalid access token",
        "not 'the account is disabled'"
    );
    let early = sign(
        json!({"sub":"alice","team":"acme","iat":now,"nbf":now+3600,"exp":now+7200,"typ":"access"}),
    );
    assert_eq!(
        upload(&c, &server, &early, &[]).await.0,
        401,
        "nbf is checked"
    );
}

#[test]
fn errors_of_the_binary_carry_their_own_help() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("server.db");
    let err = admin(dir.path(), &["user", "list"], "").expect_err("no database yet");
    assert!(err.contains("no server database at"), "{err}");
    assert!(err.contains("check --db"), "{err}");
    assert!(!db.exists(), "a reading command creates nothing");
    admin(
        dir.path(),
        &["user", "add", "alice", "--team", "acme", "--password-stdin"],
        "correct horse battery",
    )
    .expect("user add creates the database");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.pragma_update(None, "user_version", 99)
        .expect("pragma");
    drop(conn);
    let err = admin(dir.path(), &["user", "list"], "").expect_err("too new");
    assert!(err.contains("newer than this server"), "{err}");
    assert!(
        err.contains("install the spec-kitty-server release"),
        "{err}"
    );
    assert!(!err.contains("check the --db path"), "{err}");
}

// What already held before issue 12, kept holding.

/// base64url without padding, for hand-made tokens.
fn b64url(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[tokio::test]
async fn tampered_and_misused_tokens_are_refused() {
    let secret = "0123456789abcdef0123456789abcdef-holds";
    let options = Options {
        envs: vec![("SPEC_KITTY_SERVER_JWT_SECRET".into(), secret.into())],
        nofile: None,
    };
    let server = TestServer::start_with(&[], options);
    server.add_user("alice", "acme");
    server.add_user("bob", "evil");
    let tokens = login(&server, "alice").await;
    let access = tokens["access"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh"].as_str().expect("refresh").to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let claims =
        json!({"sub":"alice","team":"acme","iat":now,"nbf":now,"exp":now+600,"typ":"access"});
    let sign = |alg: jsonwebtoken::Algorithm, key: &str, claims: &Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(alg),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
        )
        .expect("sign")
    };
    let parts: Vec<&str> = access.split('.').collect();
    let other_team = b64url(
        json!({"sub":"alice","team":"evil","iat":now,"nbf":now,"exp":now+600,"typ":"access"})
            .to_string()
            .as_bytes(),
    );
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().expect("object").remove("exp");
    let mut refresh_typ = claims.clone();
    refresh_typ["typ"] = json!("refresh");
    let ws = ws_token(&server, &access).await;
    let forged = [
        (
            "alg none",
            format!("{}.{}.", b64url(br#"{"alg":"none","typ":"JWT"}"#), parts[1]),
        ),
        (
            "changed payload",
            format!("{}.{other_team}.{}", parts[0], parts[2]),
        ),
        (
            "wrong key",
            sign(
                jsonwebtoken::Algorithm::HS256,
                "another secret of at least 32 bytes!!",
                &claims,
            ),
        ),
        (
            "HS512",
            sign(jsonwebtoken::Algorithm::HS512, secret, &claims),
        ),
        (
            "no exp",
            sign(jsonwebtoken::Algorithm::HS256, secret, &no_exp),
        ),
        (
            "wrong typ",
            sign(jsonwebtoken::Algorithm::HS256, secret, &refresh_typ),
        ),
        ("a refresh token", refresh.clone()),
        ("a ws token", ws),
    ];
    let c = client();
    for (what, token) in &forged {
        assert_eq!(upload(&c, &server, token, &[]).await.0, 401, "{what}");
    }
    // An access token is not a refresh token either.
    let (status, _) = post(
        &server,
        "/api/v1/token/refresh/",
        serde_json::to_vec(&json!({"refresh": access})).expect("json"),
    )
    .await;
    assert_eq!(status, 401);
    // Nothing secret reaches the log or the database.
    let log = server.log();
    let (db, wal) = match &server.pg {
        Some(pg) => (pg.data_files(), Vec::new()),
        None => (
            std::fs::read(server.dir.join("server.db")).expect("db"),
            std::fs::read(server.dir.join("server.db-wal")).unwrap_or_default(),
        ),
    };
    for secret_text in [PASSWORD, access.as_str(), refresh.as_str(), secret] {
        assert!(!log.contains(secret_text), "a secret in the log");
        let bytes = secret_text.as_bytes();
        for file in [&db, &wal] {
            assert!(
                !file.windows(bytes.len()).any(|w| w == bytes),
                "a secret in the database"
            );
        }
    }
}

#[tokio::test]
async fn malformed_requests_get_a_clean_4xx() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let c = client();
    let nested = format!(
        "{{\"events\":[{}{}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut truncated = gzip(
        many_events("acme", 50)
            .iter()
            .map(Value::to_string)
            .collect::<String>()
            .as_bytes(),
    );
    truncated.truncate(truncated.len() / 2);
    let bomb = gzip(&vec![b' '; 64 << 20]);
    let too_many = serde_json::to_vec(&json!({"events": many_events("acme", 1001)})).expect("json");
    // Nesting deeper than serde_json's 128 levels: refused whole, or as its one event.
    let (status, answer) = upload_raw(&c, &server, &token, nested.into_bytes(), false).await;
    assert!(
        status == 400 || (status == 200 && statuses(&answer) == ["rejected"]),
        "deep nesting: {status} {answer}"
    );
    let bodies: [(&str, Vec<u8>, bool, u16); 4] = [
        (
            "invalid UTF-8",
            b"{\"events\":[\"\xff\xfe\"]}".to_vec(),
            false,
            400,
        ),
        ("truncated gzip", truncated, true, 400),
        ("gzip bomb", bomb, true, 413),
        ("1001 events", too_many, false, 413),
    ];
    for (what, body, gz, expected) in bodies {
        let (status, answer) = upload_raw(&c, &server, &token, body, gz).await;
        assert_eq!(status, expected, "{what}: {answer}");
        assert!(answer["error"].is_string(), "{what}: a JSON error");
    }
    let res = batch_request(&c, &server.url, &token, b"{}".to_vec(), false)
        .header("Content-Encoding", "br")
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), 415);
    let huge_header = c
        .get(format!("{}/api/v1/sync/health/", server.url))
        .header("X-Junk", "x".repeat(200_000))
        .send()
        .await;
    assert!(
        huge_header.map_or(true, |r| r.status().is_client_error()),
        "a 200 KB header is refused"
    );
    let huge_uri = c
        .get(format!(
            "{}/api/v1/events/?after={}",
            server.url,
            "9".repeat(200_000)
        ))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(huge_uri.map_or(true, |r| r.status().is_client_error()));
    // Still serving.
    assert_eq!(
        upload(&c, &server, &token, &many_events("acme", 2)).await.0,
        200
    );
}
