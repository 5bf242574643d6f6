//! Accounts and tokens against a real server: login, refresh rotation and reuse detection,
//! expiry, logout, disabled users, rate limiting, administration commands.

mod server_common;

use serde_json::{Value, json};
use server_common::*;

async fn post(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let res = client()
        .post(format!("{}{path}", server.url))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn refresh(server: &TestServer, token: &Value) -> (u16, Value) {
    post(server, "/api/v1/token/refresh/", json!({"refresh": token})).await
}

#[tokio::test]
async fn login_answers_both_tokens_and_one_message_for_any_failure() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let tokens = login(&server, "alice").await;
    assert_eq!(tokens["team_slug"], "acme");
    assert_eq!(tokens["access_lifetime"], 900);
    assert_eq!(tokens["refresh_lifetime"], 604800);
    assert!(tokens["access"].as_str().is_some_and(|s| !s.is_empty()));

    let wrong = post(
        &server,
        "/api/v1/token/",
        json!({"username":"alice","password":"nope"}),
    )
    .await;
    let unknown = post(
        &server,
        "/api/v1/token/",
        json!({"username":"bob","password":"nope"}),
    )
    .await;
    assert_eq!(
        wrong,
        (401, json!({"error": "Invalid username or password"}))
    );
    assert_eq!(unknown, wrong);

    let (status, body) = post(&server, "/api/v1/token/", json!({"user": 1})).await;
    assert_eq!(status, 400);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn refresh_rotates_both_tokens_and_reuse_revokes_the_session() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let first = login(&server, "alice").await;
    let (status, second) = refresh(&server, &first["refresh"]).await;
    assert_eq!(status, 200);
    assert_ne!(second["refresh"], first["refresh"]);
    assert_eq!(second["team_slug"], "acme");

    // The rotated token is replayed: 401, and the newer token of the same session dies too.
    let (status, body) = refresh(&server, &first["refresh"]).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = refresh(&server, &second["refresh"]).await;
    assert_eq!(status, 401, "the whole session is revoked");

    // Another login is another session, unaffected.
    let other = login(&server, "alice").await;
    assert_eq!(refresh(&server, &other["refresh"]).await.0, 200);
    assert_eq!(refresh(&server, &json!("garbage")).await.0, 401);

    // The log names requests, never their secrets.
    let log = std::fs::read_to_string(server.dir.join("server.log")).expect("server log");
    assert!(
        log.contains("/api/v1/token/refresh/"),
        "requests are logged"
    );
    for secret in [
        &first["access"],
        &first["refresh"],
        &second["refresh"],
        &other["access"],
    ] {
        assert!(
            !log.contains(secret.as_str().expect("token")),
            "a token leaked into the log"
        );
    }
    assert!(!log.contains(PASSWORD));
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    // A lifetime of 0 issues tokens that are already expired: no sleeping, no clock races.
    let server = TestServer::start(&["--access-lifetime", "0", "--refresh-lifetime", "0"]);
    server.add_user("alice", "acme");
    let tokens = login(&server, "alice").await;
    assert_eq!(tokens["access_lifetime"], 0);
    let access = tokens["access"].as_str().expect("access");
    let c = client();
    let (status, body) = upload(&c, &server, access, &[]).await;
    assert_eq!(status, 401);
    assert!(body["error"].is_string());
    assert_eq!(refresh(&server, &tokens["refresh"]).await.0, 401);
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let tokens = login(&server, "alice").await;
    let (status, _) = post(
        &server,
        "/api/v1/logout/",
        json!({"refresh": tokens["refresh"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(refresh(&server, &tokens["refresh"]).await.0, 401);
    // Logging out twice is fine.
    let (status, _) = post(
        &server,
        "/api/v1/logout/",
        json!({"refresh": tokens["refresh"]}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_disabled_user_can_neither_log_in_nor_refresh() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let tokens = login(&server, "alice").await;
    server
        .admin(&["user", "disable", "alice"])
        .expect("disable");
    let access = tokens["access"].as_str().expect("access");
    assert_eq!(
        upload(&client(), &server, access, &[]).await.0,
        401,
        "at once"
    );
    let (status, _) = post(
        &server,
        "/api/v1/token/",
        json!({"username":"alice","password":PASSWORD}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(refresh(&server, &tokens["refresh"]).await.0, 401);

    let users: Value =
        serde_json::from_str(&server.admin(&["user", "list", "--json"]).expect("list"))
            .expect("json");
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[0]["disabled"], true);
    assert!(server.admin(&["user", "disable", "nobody"]).is_err());
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_with_retry_after() {
    let server = TestServer::start(&["--login-max-failures", "3"]);
    server.add_user("alice", "acme");
    let bad = json!({"username":"alice","password":"wrong password"});
    for _ in 0..3 {
        assert_eq!(post(&server, "/api/v1/token/", bad.clone()).await.0, 401);
    }
    let res = client()
        .post(format!("{}/api/v1/token/", server.url))
        .json(&json!({"username":"alice","password":PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 429, "even the right password waits");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=301).contains(&retry));
    let body: Value = res.json().await.expect("json");
    assert!(body["error"].is_string());

    // Another user behind the same address (an office NAT) is not locked out with alice.
    server.add_user("bob", "acme");
    let (status, _) = post(
        &server,
        "/api/v1/token/",
        json!({"username":"bob","password":PASSWORD}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn token_lifetimes_out_of_range_are_refused_at_the_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    for flag in ["--access-lifetime", "--refresh-lifetime"] {
        let err = server_common::admin(dir.path(), &["serve", flag, "18446744073709551615"], "")
            .expect_err("refused");
        assert!(err.contains(flag), "{err}");
    }
}

#[tokio::test]
async fn admin_commands_validate_and_list_teams() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    server.add_user("bob", "acme");
    server.add_user("carol", "other-team");
    assert!(
        admin(
            &server.dir,
            &[
                "user",
                "add",
                "dave",
                "--team",
                "Bad Slug",
                "--password-stdin"
            ],
            PASSWORD
        )
        .is_err()
    );
    assert!(
        admin(
            &server.dir,
            &["user", "add", "dave", "--team", "acme", "--password-stdin"],
            "short"
        )
        .is_err()
    );
    assert!(
        admin(
            &server.dir,
            &["user", "add", "alice", "--team", "acme", "--password-stdin"],
            PASSWORD
        )
        .is_err()
    );
    // No terminal to prompt on and no --password-stdin: a clear error, not a hang.
    let err = server
        .admin(&["user", "add", "dave", "--team", "acme"])
        .expect_err("refused");
    assert!(err.contains("--password-stdin"), "{err}");
    let teams: Value =
        serde_json::from_str(&server.admin(&["team", "list", "--json"]).expect("list"))
            .expect("json");
    assert_eq!(teams[0]["slug"], "acme");
    assert_eq!(teams[0]["users"], 2);
    assert_eq!(teams[1]["slug"], "other-team");
}

#[tokio::test]
async fn health_needs_no_auth_and_api_errors_are_json() {
    let server = TestServer::start(&[]);
    let c = client();
    let health: Value = c
        .get(format!("{}/api/v1/sync/health/", server.url))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["limits"]["max_events_per_batch"], 1000);
    assert_eq!(
        health["limits"]["max_decompressed_bytes_per_batch"],
        16 << 20
    );

    for token in ["", "not-a-jwt"] {
        let res = c
            .post(format!("{}/api/v1/events/batch/", server.url))
            .header("Authorization", format!("Bearer {token}"))
            .body("{\"events\":[]}")
            .send()
            .await
            .expect("batch");
        assert_eq!(res.status(), 401);
        let body: Value = res.json().await.expect("json");
        assert!(body["error"].is_string());
    }
    let res = c
        .get(format!("{}/nowhere", server.url))
        .send()
        .await
        .expect("404");
    assert_eq!(res.status(), 404);
    assert!(res.headers().contains_key("x-request-id"));
}
