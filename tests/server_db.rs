//! `spec-kitty-server db check|migrate` against a real PostgreSQL (a throwaway cluster started
//! by the test) and against the SQLite file: versions, migrating exactly once under concurrent
//! starts, and errors that name the fix without ever showing the password.

mod pg_common;

use std::path::Path;
use std::process::Output;

use pg_common::{PASSWORD, PgCluster};
use serde_json::Value;

/// Runs `spec-kitty-server` with a private HOME and `DATABASE_URL` (when given) in the
/// environment, as an operator would, so the password is not in argv.
fn server_cmd(home: &Path, database_url: Option<&str>, args: &[&str]) -> Output {
    server_cmd_with_stdin(home, database_url, args, "")
}

fn server_cmd_with_stdin(
    home: &Path,
    database_url: Option<&str>,
    args: &[&str],
    stdin: &str,
) -> Output {
    use std::io::Write;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_spec-kitty-server"));
    cmd.args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("SPEC_KITTY_SERVER_DB")
        .env_remove("DATABASE_URL");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run spec-kitty-server");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin.as_bytes()).expect("write stdin");
    drop(pipe);
    child
        .wait_with_output()
        .expect("wait for spec-kitty-server")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

#[test]
fn a_new_postgres_database_is_behind_until_migrated_then_current() {
    let pg = PgCluster::start();
    let url = pg.create_database("fresh");
    let home = tempfile::tempdir().unwrap();

    let out = server_cmd(home.path(), Some(&url), &["db", "check"]);
    assert!(!out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("schema version 0"), "{shown}");
    assert!(shown.contains("db migrate"), "names the fix: {shown}");
    assert!(!shown.contains(PASSWORD), "password shown: {shown}");

    let out = server_cmd(home.path(), Some(&url), &["db", "migrate", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let migrated = json(&out);
    let supported = migrated["status"]["supported_version"].as_i64().unwrap();
    assert!(supported >= 1);
    let applied: Vec<i64> = migrated["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(applied, (1..=supported).collect::<Vec<_>>());
    assert_eq!(migrated["status"]["backend"], "postgres");
    assert!(!text(&out).contains(PASSWORD), "{}", text(&out));

    let out = server_cmd(home.path(), Some(&url), &["db", "migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already current"), "{}", text(&out));

    let out = server_cmd(home.path(), Some(&url), &["db", "check", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let status = json(&out);
    assert_eq!(status["schema_version"], supported);
    assert!(
        status["server_version"]
            .as_str()
            .unwrap()
            .starts_with(|c: char| c.is_ascii_digit())
    );
    assert_eq!(
        status["migrations"].as_array().unwrap().len() as i64,
        supported
    );
    let database = status["database"].as_str().unwrap();
    assert_eq!(
        database,
        format!("postgres://kitty@127.0.0.1:{}/fresh", pg.port)
    );
}

#[test]
fn replicas_migrating_at_once_apply_each_migration_exactly_once() {
    let pg = PgCluster::start();
    let url = pg.create_database("race");
    let home = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            let home = home.path().to_owned();
            std::thread::spawn(move || server_cmd(&home, Some(&url), &["db", "migrate", "--json"]))
        })
        .collect();
    let mut applied_total = Vec::new();
    for run in runs {
        let out = run.join().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        for v in json(&out)["applied"].as_array().unwrap() {
            applied_total.push(v.as_i64().unwrap());
        }
    }
    applied_total.sort();
    let mut client = pg.client("race");
    let rows = client
        .query(
            "SELECT version FROM spec_kitty_migrations ORDER BY version",
            &[],
        )
        .unwrap();
    let recorded: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert!(!recorded.is_empty());
    assert_eq!(
        applied_total, recorded,
        "each migration applied by exactly one run"
    );
    assert_eq!(recorded, (1..=recorded.len() as i64).collect::<Vec<_>>());
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'events'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1);
}

#[test]
fn a_database_newer_than_the_server_is_refused_not_touched() {
    let pg = PgCluster::start();
    let url = pg.create_database("future");
    let home = tempfile::tempdir().unwrap();
    let out = server_cmd(home.path(), Some(&url), &["db", "migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    pg.client("future")
        .batch_execute("UPDATE spec_kitty_schema SET version = 999")
        .unwrap();

    let out = server_cmd(home.path(), Some(&url), &["db", "check"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("newer than this server"),
        "{}",
        text(&out)
    );
    let out = server_cmd(home.path(), Some(&url), &["db", "migrate"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("upgrade spec-kitty-server"),
        "{}",
        text(&out)
    );
    let version: i64 = pg
        .client("future")
        .query_one("SELECT version FROM spec_kitty_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 999);
}

#[test]
fn a_wrong_password_a_missing_database_and_no_server_each_name_their_fix() {
    let pg = PgCluster::start();
    let home = tempfile::tempdir().unwrap();

    let wrong = format!(
        "postgres://kitty:not-the-password@127.0.0.1:{}/postgres",
        pg.port
    );
    let out = server_cmd(home.path(), Some(&wrong), &["db", "check"]);
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(shown.contains("refused the login"), "{shown}");
    assert!(
        !shown.contains("not-the-password"),
        "password shown: {shown}"
    );

    let missing = pg.url("no_such_db");
    let out = server_cmd(home.path(), Some(&missing), &["db", "check"]);
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(
        shown.contains("does not exist") && shown.contains("createdb"),
        "{shown}"
    );
    assert!(!shown.contains(PASSWORD), "password shown: {shown}");

    // A port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nothing = format!("postgres://kitty:{PASSWORD}@127.0.0.1:{port}/postgres");
    let out = server_cmd(home.path(), Some(&nothing), &["db", "check"]);
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(shown.contains("pg_isready"), "{shown}");
    assert!(!shown.contains(PASSWORD), "password shown: {shown}");

    let out = server_cmd(home.path(), Some("mysql://x@y/z"), &["db", "check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("postgres://"), "{}", text(&out));
}

#[test]
fn the_help_never_shows_the_database_url_from_the_environment() {
    let home = tempfile::tempdir().unwrap();
    let url = format!("postgres://kitty:{PASSWORD}@127.0.0.1:1/x");
    let out = server_cmd(home.path(), Some(&url), &["db", "check", "--help"]);
    assert!(out.status.success());
    assert!(text(&out).contains("DATABASE_URL"), "{}", text(&out));
    assert!(!text(&out).contains(PASSWORD), "{}", text(&out));
}

#[test]
fn sqlite_db_check_and_migrate_work_on_the_file_of_db() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("server.db");
    let file_arg = file.to_str().unwrap();

    let out = server_cmd(home.path(), None, &["--db", file_arg, "db", "check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no server database"), "{}", text(&out));
    assert!(!file.exists(), "check created the file");

    let out = server_cmd(
        home.path(),
        None,
        &["--db", file_arg, "db", "migrate", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let migrated = json(&out);
    assert_eq!(migrated["status"]["backend"], "sqlite");
    let supported = migrated["status"]["supported_version"].as_i64().unwrap();
    assert_eq!(
        migrated["applied"].as_array().unwrap().len() as i64,
        supported
    );

    let out = server_cmd(home.path(), None, &["--db", file_arg, "db", "check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("schema   version {supported}")),
        "{}",
        text(&out)
    );
}

#[test]
fn the_account_commands_work_on_postgres_as_on_sqlite() {
    let pg = PgCluster::start();
    let url = pg.create_database("accounts");
    let home = tempfile::tempdir().unwrap();
    let add = |name: &str, team: &str| {
        server_cmd_with_stdin(
            home.path(),
            Some(&url),
            &["user", "add", name, "--team", team, "--password-stdin"],
            "a long enough password\n",
        )
    };
    // The first command on a new database migrates it.
    let out = add("Alice", "acme");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).trim(), "added user alice to team acme");
    assert!(add("bob", "acme").status.success());
    let out = add("alice", "other");
    assert!(!out.status.success());
    assert!(text(&out).contains("already exists"), "{}", text(&out));

    let out = server_cmd(home.path(), Some(&url), &["user", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let users = json(&out);
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert_eq!(users[0]["username"], "alice");
    assert!(
        users[0].get("password_hash").is_none(),
        "hashes are never listed"
    );

    let out = server_cmd(home.path(), Some(&url), &["user", "disable", "ALICE"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = server_cmd(home.path(), Some(&url), &["user", "list"]);
    assert_eq!(text(&out), "alice\tacme\tdisabled\nbob\tacme\tactive\n");
    let out = server_cmd(home.path(), Some(&url), &["team", "list"]);
    assert_eq!(
        text(&out),
        "acme\t2 users\t0 events\n",
        "no team 'other' was left behind"
    );
    let out = server_cmd(home.path(), Some(&url), &["user", "disable", "nobody"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no user named"), "{}", text(&out));

    // Nothing of it went to a SQLite file.
    assert!(!home.path().join("data/spec-kitty/server.db").exists());
}
