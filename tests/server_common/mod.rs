//! Shared by the `server_*` integration tests: a real `spec-kitty-server` process on
//! 127.0.0.1 with a temporary database and home, and small HTTP helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use spec_kitty::event::{Event, Lane, Origin, Payload};

pub const PASSWORD: &str = "correct horse battery";
pub const NODE: &str = "0123456789ab";
pub const PROJECT: &str = "5d6f2c1e-8b9a-4c3d-9e7f-1a2b3c4d5e6f";

#[path = "../pg_common/mod.rs"]
pub mod pg_common;

/// Environment variable choosing the database of every [`TestServer`]: `postgres` runs each
/// on a throwaway PostgreSQL cluster of its own (tests/pg_common), anything else or unset on
/// the SQLite file in its temp dir. One test suite, both backends.
pub const BACKEND_ENV: &str = "SPEC_KITTY_TEST_BACKEND";

/// Whether the servers of this run store into PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(BACKEND_ENV).is_ok_and(|b| b == "postgres")
}

/// A running server; killed when dropped.
pub struct TestServer {
    /// The PostgreSQL cluster of this server's database, when [`on_postgres`].
    pub pg: Option<std::sync::Arc<pg_common::PgCluster>>,
    child: Option<Child>,
    pub url: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    args: Vec<String>,
    options: Options,
}

/// How to start a server besides its `serve` arguments.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra environment variables (e.g. the test-only ingest delay).
    pub envs: Vec<(String, String)>,
    /// An open-files limit (`ulimit -n`) for the server process.
    pub nofile: Option<u64>,
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_spec-kitty-server")
}

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(bin());
    let home = dir.join("home");
    cmd.env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("SPEC_KITTY_SERVER_DB")
        .env_remove("SPEC_KITTY_SERVER_JWT_SECRET")
        .env("SPEC_KITTY_SERVER_LOG", "info")
        .env_remove("DATABASE_URL")
        .arg("--db")
        .arg(dir.join("server.db"));
    // The server and its admin commands use the PostgreSQL database written here, if any.
    if let Ok(url) = std::fs::read_to_string(dir.join("database-url")) {
        cmd.env("DATABASE_URL", url.trim());
    }
    cmd
}

impl TestServer {
    /// Starts a server in a new temporary directory with extra `serve` arguments.
    pub fn start(args: &[&str]) -> TestServer {
        TestServer::start_with(args, Options::default())
    }

    /// Starts a server with extra `serve` arguments and [`Options`].
    pub fn start_with(args: &[&str], options: Options) -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_owned();
        let pg = on_postgres().then(|| {
            let cluster = pg_common::PgCluster::start();
            let url = cluster.create_database("spec_kitty");
            std::fs::write(dir.join("database-url"), url).expect("write database-url");
            std::sync::Arc::new(cluster)
        });
        let args = args.iter().map(|s| s.to_string()).collect();
        let mut server = TestServer::spawn(dir, args, options);
        server._tmp = Some(tmp);
        server.pg = pg;
        server
    }

    fn spawn(dir: PathBuf, args: Vec<String>, options: Options) -> TestServer {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("log file");
        let mut cmd = command(&dir);
        cmd.arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .args(&args);
        cmd.envs(options.envs.iter().map(|(k, v)| (k, v)));
        if let Some(n) = options.nofile {
            // The same command under `ulimit -n`, through sh (exec keeps the pid).
            let mut limited = Command::new("sh");
            limited
                .arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(cmd.get_program())
                .args(cmd.get_args());
            for (key, value) in cmd.get_envs() {
                match value {
                    Some(v) => limited.env(key, v),
                    None => limited.env_remove(key),
                };
            }
            cmd = limited;
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start spec-kitty-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut url = None;
        while url.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("server printed its URL within 30 s");
            url = line.strip_prefix("listening on ").map(str::to_owned);
        }
        TestServer {
            pg: None,
            child: Some(child),
            url: url.expect("url"),
            dir,
            _tmp: None,
            args,
            options,
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Waits (at most `within`) until the log satisfies `done`; returns whether it did.
    pub fn wait_for_log(&self, within: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = std::time::Instant::now() + within;
        loop {
            if done(&self.log()) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM` = peak RSS).
    pub fn status_kib(&self, field: &str) -> u64 {
        let pid = self.pid().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("field in /proc status")
    }

    /// Peak resident memory so far, in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        self.status_kib("VmHWM") / 1024
    }

    /// Resident memory now, in MiB.
    pub fn rss_mib(&self) -> u64 {
        self.status_kib("VmRSS") / 1024
    }

    /// Adds a user with [`PASSWORD`] through `user add --password-stdin`.
    pub fn add_user(&self, username: &str, team: &str) {
        admin(
            &self.dir,
            &["user", "add", username, "--team", team, "--password-stdin"],
            PASSWORD,
        )
        .expect("user add succeeds");
    }

    /// Runs an administration command against this server's database.
    pub fn admin(&self, args: &[&str]) -> Result<String, String> {
        admin(&self.dir, args, "")
    }

    /// Stops with SIGTERM and waits (bounded); returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Stops this server and starts another on the same database (new port).
    pub fn restart(mut self) -> TestServer {
        if self.child.is_some() {
            assert!(self.terminate(), "server exits cleanly on SIGTERM");
        }
        let mut next = TestServer::spawn(self.dir.clone(), self.args.clone(), self.options.clone());
        next._tmp = self._tmp.take();
        next.pg = self.pg.take();
        next
    }

    pub fn ws_url(&self) -> String {
        format!("{}/ws/v1/events/", self.url.replacen("http", "ws", 1))
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, written into a directory, and the
/// `serve` arguments that use it.
pub struct SelfSigned {
    pub cert_pem: String,
    pub args: Vec<String>,
}

impl SelfSigned {
    pub fn new(dir: &Path) -> SelfSigned {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("self-signed certificate");
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
        std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
        let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
        SelfSigned {
            cert_pem: cert.cert.pem(),
            args: vec![
                "--tls-cert".into(),
                path(&cert_path),
                "--tls-key".into(),
                path(&key_path),
            ],
        }
    }

    /// A real server serving this certificate.
    pub fn serve(&self) -> TestServer {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        TestServer::start(&args)
    }
}

/// Runs `spec-kitty-server --db <dir>/server.db <args>` with `stdin` as input.
pub fn admin(dir: &Path, args: &[&str], stdin: &str) -> Result<String, String> {
    let mut child = command(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spec-kitty-server");
    if let Some(mut input) = child.stdin.take() {
        let _ = writeln!(input, "{stdin}");
    }
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub fn client() -> reqwest::Client {
    // reqwest is built without a default crypto provider (no aws-lc): use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// Logs in and returns the token response.
pub async fn login(server: &TestServer, username: &str) -> Value {
    let res = client()
        .post(format!("{}/api/v1/token/", server.url))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("login request");
    assert_eq!(res.status(), 200, "login of {username}");
    res.json().await.expect("token json")
}

pub async fn access(server: &TestServer, username: &str) -> String {
    login(server, username).await["access"]
        .as_str()
        .expect("access")
        .to_owned()
}

fn origin(team_slug: &str) -> Origin {
    Origin {
        node_id: NODE.into(),
        project_uuid: PROJECT.into(),
        project_slug: Some("demo".into()),
        team_slug: team_slug.into(),
        ..Origin::default()
    }
}

/// A single-use WebSocket token for the holder of `access` (`POST /api/v1/ws-token/`).
pub async fn ws_token(server: &TestServer, access: &str) -> String {
    let res = client()
        .post(format!("{}/api/v1/ws-token/", server.url))
        .bearer_auth(access)
        .send()
        .await
        .expect("ws-token");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["ws_token"].as_str().expect("ws_token").to_owned()
}

/// A valid WPStatusChanged envelope of feature 001-demo.
pub fn status_event(team_slug: &str, wp: &str, from: Lane, to: Lane, lamport: u64) -> Value {
    let payload = Payload::WPStatusChanged {
        wp_id: wp.into(),
        previous_status: from,
        new_status: to,
        changed_by: "claude".into(),
        feature_slug: Some("001-demo".into()),
    };
    let mut event = Event::new(&payload, &origin(team_slug), None, None);
    event.lamport_clock = lamport;
    serde_json::to_value(event).expect("event json")
}

/// A valid WPCreated envelope of feature 001-demo.
pub fn created_event(team_slug: &str, wp: &str, lamport: u64) -> Value {
    let payload = Payload::WPCreated {
        wp_id: wp.into(),
        title: format!("Work package {wp}"),
        feature_slug: "001-demo".into(),
        dependencies: vec![],
    };
    let mut event = Event::new(&payload, &origin(team_slug), None, None);
    event.lamport_clock = lamport;
    serde_json::to_value(event).expect("event json")
}

/// `n` distinct valid events (cheap: one template, new ids).
pub fn many_events(team_slug: &str, n: usize) -> Vec<Value> {
    let template = status_event(team_slug, "WP01", Lane::Planned, Lane::Doing, 1);
    (0..n)
        .map(|i| {
            let mut e = template.clone();
            let id = spec_kitty::event::new_ulid();
            e["event_id"] = json!(id);
            e["correlation_id"] = json!(id);
            e["lamport_clock"] = json!(i as u64 + 1);
            e
        })
        .collect()
}

/// `n` distinct valid events as (event_id, JSON text), made by text substitution in one
/// template: cheap enough to make hundreds of thousands in a debug build.
pub fn many_event_texts(team_slug: &str, n: usize) -> Vec<(String, String)> {
    let template = status_event(team_slug, "WP01", Lane::Planned, Lane::Doing, 1);
    let template_id = template["event_id"].as_str().expect("id").to_owned();
    let text = template.to_string();
    (0..n)
        .map(|i| {
            let id = spec_kitty::event::new_ulid();
            let event = text.replace(&template_id, &id).replace(
                "\"lamport_clock\":1,",
                &format!("\"lamport_clock\":{},", i + 1),
            );
            (id, event)
        })
        .collect()
}

/// A gzip batch body of event texts.
pub fn batch_body(events: &[(String, String)]) -> Vec<u8> {
    let texts: Vec<&str> = events.iter().map(|(_, t)| t.as_str()).collect();
    gzip(format!("{{\"events\":[{}]}}", texts.join(",")).as_bytes())
}

/// The batch upload request: bearer auth, JSON, and `Content-Encoding: gzip` when `gzip`.
pub fn batch_request(
    client: &reqwest::Client,
    url: &str,
    access: &str,
    body: Vec<u8>,
    gzip: bool,
) -> reqwest::RequestBuilder {
    let req = client
        .post(format!("{url}/api/v1/events/batch/"))
        .bearer_auth(access)
        .header("Content-Type", "application/json")
        .body(body);
    if gzip {
        req.header("Content-Encoding", "gzip")
    } else {
        req
    }
}

/// Posts a prepared gzip body; returns the status and the statuses of the results.
pub async fn upload_body(
    client: &reqwest::Client,
    url: &str,
    access: &str,
    body: Vec<u8>,
) -> (u16, Vec<String>) {
    #[derive(serde::Deserialize)]
    struct Answer {
        results: Vec<Outcome>,
    }
    #[derive(serde::Deserialize)]
    struct Outcome {
        status: String,
    }
    let res = batch_request(client, url, access, body, true)
        .send()
        .await
        .expect("batch request");
    let status = res.status().as_u16();
    let answer: Option<Answer> = res.json().await.ok();
    let statuses = answer
        .map(|a| a.results.into_iter().map(|o| o.status).collect())
        .unwrap_or_default();
    (status, statuses)
}

/// The ids of every event of the token's team, page by page, parsing only the ids.
pub async fn pull_ids(client: &reqwest::Client, server: &TestServer, access: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Page {
        events: Vec<Id>,
        next: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Id {
        event_id: String,
    }
    let mut all = Vec::new();
    let mut after = String::new();
    for _ in 0..100_000 {
        let url = format!("{}/api/v1/events/?limit=1000&after={after}", server.url);
        let res = client
            .get(url)
            .bearer_auth(access)
            .send()
            .await
            .expect("pull");
        assert_eq!(res.status(), 200);
        let page: Page = res.json().await.expect("pull json");
        all.extend(page.events.into_iter().map(|e| e.event_id));
        match page.next {
            Some(next) => after = next,
            None => return all,
        }
    }
    panic!("pull did not end");
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("in-memory");
    enc.finish().expect("in-memory")
}

/// Uploads a gzip batch; returns the status and the JSON body.
pub async fn upload(
    client: &reqwest::Client,
    server: &TestServer,
    access: &str,
    events: &[Value],
) -> (u16, Value) {
    upload_to(client, &server.url, access, events).await
}

/// Uploads a gzip batch to the server at `url`.
pub async fn upload_to(
    client: &reqwest::Client,
    url: &str,
    access: &str,
    events: &[Value],
) -> (u16, Value) {
    let body = gzip(&serde_json::to_vec(&json!({ "events": events })).expect("json"));
    let res = batch_request(client, url, access, body, true)
        .send()
        .await
        .expect("batch request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn upload_raw(
    client: &reqwest::Client,
    server: &TestServer,
    access: &str,
    body: Vec<u8>,
    gzip: bool,
) -> (u16, Value) {
    let res = batch_request(client, &server.url, access, body, gzip)
        .send()
        .await
        .expect("batch request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The statuses of a batch response, in order.
pub fn statuses(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .expect("results array")
        .iter()
        .map(|r| r["status"].as_str().expect("status").to_owned())
        .collect()
}

/// Pulls every event of the token's team, page by page.
pub async fn pull_all(
    client: &reqwest::Client,
    server: &TestServer,
    access: &str,
    limit: usize,
) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100_000 {
        let mut url = format!("{}/api/v1/events/?limit={limit}", server.url);
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let res = client
            .get(url)
            .bearer_auth(access)
            .send()
            .await
            .expect("pull");
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.expect("pull json");
        all.extend(page["events"].as_array().expect("events").iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return all,
        }
    }
    panic!("pull did not end");
}
