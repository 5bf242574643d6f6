//! `auth login/logout/status` and `sync server` against the real server: the seeds' output
//! shapes, no prompts without a terminal, sessions keyed by server URL, honest logout.

mod common;
mod server_common;
mod sync_common;

use server_common::{PASSWORD, TestServer};
use sync_common::*;

#[test]
fn login_prints_who_which_team_and_where_and_status_shows_lifetimes() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    let text = login(&repo, "alice");
    assert!(text.contains("✅ Login successful!"), "{text}");
    assert!(text.contains("Logged in as: alice"), "{text}");
    assert!(text.contains("acme"), "{text}");
    assert!(text.contains(&server.url), "{text}");
    assert!(text.contains("credentials (mode 0600)"), "{text}");

    let out = repo.sk(&["auth", "status"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("✅ Authenticated"), "{text}");
    assert!(text.contains("Username: alice"), "{text}");
    assert!(
        text.contains("Access token: valid (15m remaining)"),
        "{text}"
    );
    assert!(
        text.contains("Refresh token: valid (7d remaining)"),
        "{text}"
    );

    // Already logged in: refused without --force, naming it.
    let out = sk_stdin(
        &repo,
        &repo.root,
        &["auth", "login", "-u", "alice", "--password-stdin"],
        PASSWORD,
    );
    assert!(!out.status.success());
    let err = common::unwrap_lines(&stderr(&out));
    assert!(
        err.contains("already logged in") && err.contains("--force"),
        "{err}"
    );
}

#[test]
fn without_a_terminal_login_refuses_to_prompt_and_names_the_flags() {
    let server = TestServer::start(&[]);
    let repo = repo_for(&server);
    let out = sk_stdin(&repo, &repo.root, &["auth", "login"], "");
    assert!(!out.status.success());
    let err = common::unwrap_lines(&stderr(&out));
    assert!(err.contains("--password-stdin"), "{err}");
    assert!(err.contains("--username"), "{err}");
}

#[test]
fn a_password_on_the_command_line_works_but_warns() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    let out = repo.sk(&["auth", "login", "-u", "alice", "-p", PASSWORD]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("shell history"), "{}", stderr(&out));
}

#[test]
fn a_wrong_password_is_refused_and_stores_nothing() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    let out = sk_stdin(
        &repo,
        &repo.root,
        &["auth", "login", "-u", "alice", "--password-stdin"],
        "wrong password here",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid username or password"),
        "{}",
        stderr(&out)
    );
    assert!(!repo.home.join(".spec-kitty/credentials").exists());
    assert_eq!(repo.sk(&["auth", "status"]).status.code(), Some(1));
}

#[test]
fn sessions_are_kept_per_server_and_logout_says_whether_the_server_revoked() {
    let one = TestServer::start(&[]);
    let two = TestServer::start(&[]);
    one.add_user("alice", "acme");
    two.add_user("alice", "other");
    let repo = repo_for(&one);
    login(&repo, "alice");
    point_at(&repo, &two.url);
    login(&repo, "alice");
    point_at(&repo, &one.url);
    assert_eq!(
        repo.sk(&["auth", "status"]).status.code(),
        Some(0),
        "still logged in to one"
    );

    let out = repo.sk(&["auth", "logout"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("revoked on the server"),
        "{}",
        stdout(&out)
    );
    assert_eq!(repo.sk(&["auth", "status"]).status.code(), Some(1));

    // The server is down: local credentials still go, and the output says so.
    point_at(&repo, &two.url);
    let mut two = two;
    assert!(two.terminate());
    let out = repo.sk(&["auth", "logout"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("could not confirm"),
        "{}",
        stdout(&out)
    );
    assert_eq!(repo.sk(&["auth", "status"]).status.code(), Some(1));
}

#[test]
fn sync_server_validates_and_keeps_the_rest_of_the_file() {
    let repo = common::TestRepo::new();
    repo.write_config("# mine\n[sync]\nqueue_limit = 7 # keep\n");
    let out = repo.sk(&["sync", "server", "http://kitty.example.com"]);
    assert!(
        !out.status.success(),
        "plain http to a remote host is refused"
    );
    repo.sk_ok(&["sync", "server", "https://kitty.example.com/"]);
    let text = std::fs::read_to_string(repo.home.join(".spec-kitty/config.toml")).unwrap();
    assert!(
        text.contains("# mine") && text.contains("queue_limit = 7 # keep"),
        "{text}"
    );
    assert!(
        text.contains("server_url = \"https://kitty.example.com\""),
        "{text}"
    );
    let shown = repo.sk_ok(&["sync", "server"]);
    assert!(shown.contains("https://kitty.example.com"), "{shown}");
}

#[test]
fn the_server_url_alias_is_used_and_sync_status_notes_which_wins() {
    let repo = common::TestRepo::new();
    repo.write_config("[server]\nurl = \"https://alias.example.com\"\n");
    let status = status_json(&repo);
    assert_eq!(
        status["server_url"], "https://alias.example.com",
        "{status}"
    );
    assert_eq!(status["server_url_source"], "server_url", "{status}");
    repo.write_config(
        "[server]\nurl = \"https://alias.example.com\"\n[sync]\nserver_url = \"https://main.example.com\"\n",
    );
    let text = repo.sk_ok(&["sync", "status"]);
    assert!(text.contains("Spec Kitty Sync Status"), "{text}");
    assert!(
        text.contains("Server URL     https://main.example.com"),
        "{text}"
    );
    assert!(text.contains("[sync] server_url wins"), "{text}");
    assert!(
        text.contains("Connection     Not checked (use --check to test)"),
        "{text}"
    );
}

#[test]
fn status_check_names_each_connection_state() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    let out = repo.sk(&["sync", "status", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("Reachable (auth required)"),
        "{}",
        stdout(&out)
    );
    login(&repo, "alice");
    let out = repo.sk(&["sync", "status", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("Connected"), "{}", stdout(&out));
    let mut server = server;
    assert!(server.terminate());
    let out = repo.sk(&["sync", "status", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("Unreachable ("), "{}", stdout(&out));
}

/// A server that answers with a certificate the client does not trust is reachable: the
/// report names the TLS failure, not "connection refused".
#[test]
fn an_untrusted_certificate_is_named_as_a_tls_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server_common::SelfSigned::new(dir.path()).serve();
    let repo = repo_for(&server);
    let out = repo.sk(&["sync", "status", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("Unreachable (TLS handshake failed: "),
        "{text}"
    );
    assert!(text.contains("certificate"), "{text}");
}
