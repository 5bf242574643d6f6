//! Tokens in a real OS keyring: the test starts its own D-Bus session bus and Debian's
//! `gnome-keyring-daemon` (the Secret Service of GNOME; `.ci/run` installs it) under the temp
//! HOME, so the user's keyring is never reached, and `spec-kitty` talks to them as it would on
//! a desktop. Without a bus, a forced keyring is refused and the default falls back to the
//! 0600 file. The tests that need the daemon skip, saying so, when it is not installed.

mod common;
mod server_common;
mod sync_common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use common::{BIN, Keyring, TestRepo};
use server_common::{PASSWORD, TestServer};
use sync_common::*;

/// A private session bus with an unlocked Secret Service on it; both stopped on drop.
struct SecretService {
    bus: Child,
    daemon: Child,
    address: String,
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl SecretService {
    /// `None` (after saying why) when dbus-daemon or gnome-keyring-daemon is missing.
    fn start(home: &Path) -> Option<SecretService> {
        for program in ["dbus-daemon", "dbus-send", "gnome-keyring-daemon"] {
            if !installed(program) {
                eprintln!("skipped: {program} is not installed (Debian: dbus, gnome-keyring)");
                return None;
            }
        }
        let runtime = home.join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let env = |cmd: &mut Command| {
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", home)
                .env("XDG_RUNTIME_DIR", &runtime)
                .env("XDG_DATA_HOME", home.join(".local/share"))
                .env("XDG_CONFIG_HOME", home.join(".config"));
        };
        let mut bus = Command::new("dbus-daemon");
        env(&mut bus);
        let mut bus = bus
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let stdout = bus.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let address = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if !line.trim().is_empty() => line.trim().to_owned(),
            _ => {
                let _ = bus.kill();
                let _ = bus.wait();
                panic!("dbus-daemon printed no address");
            }
        };
        let mut daemon = Command::new("gnome-keyring-daemon");
        env(&mut daemon);
        let mut daemon = daemon
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gnome-keyring-daemon");
        // The password of the new login keyring, on stdin, then EOF.
        if let Some(mut stdin) = daemon.stdin.take() {
            let _ = stdin.write_all(b"test-keyring-password");
        }
        let service = SecretService {
            bus,
            daemon,
            address,
        };
        for _ in 0..100 {
            if service.has_secrets_name() {
                return Some(service);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("gnome-keyring-daemon did not take org.freedesktop.secrets within 10 s");
    }

    fn has_secrets_name(&self) -> bool {
        let out = Command::new("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .output();
        out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        for child in [&mut self.daemon, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `spec-kitty ARGS` in the repository, on the test's session bus, `input` on stdin.
fn sk_bus(repo: &TestRepo, bus: &SecretService, args: &[&str], input: &str) -> Output {
    run_with_stdin(
        repo.env(Command::new(BIN).current_dir(&repo.root).args(args))
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address),
        input,
    )
}

fn text(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

fn credentials_file(repo: &TestRepo) -> PathBuf {
    repo.home.join(".spec-kitty/credentials")
}

/// The contents of every object of the test repository, for grepping.
fn every_object(repo: &TestRepo) -> String {
    let list = repo.git(&[
        "cat-file",
        "--batch-all-objects",
        "--batch-check=%(objectname)",
    ]);
    list.lines()
        .map(|id| repo.git(&["cat-file", "-p", id]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// alice of team acme on a real server, a repository that may use the OS keyring, and the
/// test's own Secret Service; `None` when it is not installed.
fn with_secret_service() -> Option<(TestServer, TestRepo, SecretService)> {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let mut repo = repo_for(&server);
    repo.keyring = Keyring::Allowed;
    let bus = SecretService::start(&repo.home)?;
    Some((server, repo, bus))
}

#[test]
fn login_keeps_the_tokens_in_the_os_keyring_and_the_file_holds_none() {
    let Some((server, repo, bus)) = with_secret_service() else {
        return;
    };

    let login = &["auth", "login", "-u", "alice", "--password-stdin"];
    let out = sk_bus(&repo, &bus, login, PASSWORD);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("✅ Login successful!"), "{shown}");
    assert!(
        shown.contains("Credentials:  OS keyring (Secret Service)"),
        "{shown}"
    );

    // The file is the index: who, which team, the lifetimes, where — and no token.
    let path = credentials_file(&repo);
    let file = std::fs::read_to_string(&path).unwrap();
    let record: serde_json::Value = serde_json::from_str(&file).unwrap();
    let record = &record["servers"][&server.url];
    assert_eq!(record["store"], "keyring", "{file}");
    assert_eq!(record["team_slug"], "acme", "{file}");
    assert!(record.get("access").is_none() && record.get("refresh").is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let out = sk_bus(&repo, &bus, &["auth", "status"], "");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("✅ Authenticated"), "{shown}");
    assert!(
        shown.contains("Credentials: OS keyring (Secret Service)"),
        "{shown}"
    );

    // Emission reads only the file: events recorded with no bus at all carry the team.
    emit_n(&repo, 3);
    let out = sk_bus(&repo, &bus, &["sync", "now", "--json"], "");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["pushed"]["settled"], 3, "{shown}");
    assert_eq!(server_ids(&server, "alice").len(), 3);
    assert_eq!(pending(&repo), 0);

    // The real tokens, read from the keyring with its own client: in no file, object or output.
    if let Some(tokens) = secret_tool_lookup(&bus, &server.url) {
        let v: serde_json::Value = serde_json::from_str(&tokens).unwrap();
        let objects = every_object(&repo);
        for key in ["access", "refresh"] {
            let token = v[key].as_str().unwrap();
            assert!(token.len() > 20);
            assert!(!file.contains(token), "{key} token in the credentials file");
            assert!(!objects.contains(token), "{key} token in a git object");
            assert!(!shown.contains(token), "{key} token in the output");
        }
    }

    // Logout deletes the record and the keyring's entry.
    let out = sk_bus(&repo, &bus, &["auth", "logout"], "");
    assert!(out.status.success(), "{}", text(&out));
    if installed("secret-tool") {
        assert_eq!(secret_tool_lookup(&bus, &server.url), None);
    }
    let out = sk_bus(&repo, &bus, &["auth", "status"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// What the Secret Service holds for `server_url` (`secret-tool`, Debian's libsecret-tools).
fn secret_tool_lookup(bus: &SecretService, server_url: &str) -> Option<String> {
    if !installed("secret-tool") {
        eprintln!("note: secret-tool is not installed; the token greps are skipped");
        return None;
    }
    let out = Command::new("secret-tool")
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .args(["lookup", "service", "spec-kitty", "username", server_url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

#[test]
fn tokens_the_keyring_lost_are_named_and_a_new_login_replaces_them() {
    let Some((server, repo, bus)) = with_secret_service() else {
        return;
    };
    if !installed("secret-tool") {
        eprintln!("skipped: secret-tool is not installed (Debian: libsecret-tools)");
        return;
    }
    let login = &["auth", "login", "-u", "alice", "--password-stdin"];
    assert!(sk_bus(&repo, &bus, login, PASSWORD).status.success());
    let cleared = Command::new("secret-tool")
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .args(["clear", "service", "spec-kitty", "username", &server.url])
        .status()
        .unwrap();
    assert!(cleared.success());

    emit_n(&repo, 2);
    let out = sk_bus(&repo, &bus, &["sync", "now"], "");
    let shown = common::unwrap_lines(&text(&out));
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("no longer holds the tokens"), "{shown}");
    assert!(shown.contains("spec-kitty auth login --force"), "{shown}");
    assert_eq!(pending(&repo), 2, "nothing lost");

    // Without --force the login is refused only by the record; with it, it replaces them.
    let force = &[
        "auth",
        "login",
        "-u",
        "alice",
        "--password-stdin",
        "--force",
    ];
    let out = sk_bus(&repo, &bus, force, PASSWORD);
    assert!(out.status.success(), "{}", text(&out));
    let out = sk_bus(&repo, &bus, &["sync", "now"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(pending(&repo), 0);
}

#[test]
fn a_forced_keyring_that_does_not_work_is_refused_and_the_default_uses_the_file() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let mut repo = repo_for(&server);
    repo.keyring = Keyring::Allowed;
    // No session bus at all (the hermetic environment removes DBUS_SESSION_BUS_ADDRESS).
    let login = ["auth", "login", "-u", "alice", "--password-stdin"];
    let mut cmd = Command::new(BIN);
    repo.env(cmd.current_dir(&repo.root).args(login))
        .env("SPEC_KITTY_CREDENTIAL_STORE", "keyring")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let out = run_with_stdin(&mut cmd, PASSWORD);
    let shown = common::unwrap_lines(&text(&out));
    assert!(!out.status.success(), "{shown}");
    assert!(
        shown.contains("SPEC_KITTY_CREDENTIAL_STORE=keyring, but the OS keyring"),
        "{shown}"
    );
    assert!(shown.contains("does not work here"), "{shown}");
    assert!(!credentials_file(&repo).exists(), "nothing stored");

    let out = sk_stdin(&repo, &repo.root, &login, PASSWORD);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("credentials (mode 0600)"), "{shown}");
    let file = std::fs::read_to_string(credentials_file(&repo)).unwrap();
    assert!(!file.contains("\"store\""), "a file record: {file}");
}
