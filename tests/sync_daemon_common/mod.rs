//! Shared by the `sync_daemon*` tests: a repository logged in to the real server with the
//! daemon's intervals shortened, a guard that kills (by pid) every daemon a test started, a
//! teammate on a second WebSocket, and a TCP proxy that can cut the network or follow a
//! restarted server to its new port.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use spec_kitty::sync::daemon::process;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::TestRepo;
use crate::server_common::PASSWORD;
use crate::sync_common::login;

/// The daemon settings of every test: fast reconnects, 1 s batches, no idle exit in sight.
pub fn fast_config(url: &str, extra: &str) -> String {
    format!(
        "[sync]\nserver_url = \"{url}\"\n\
         daemon_reconnect_base = \"50ms\"\n\
         daemon_reconnect_max = \"200ms\"\n\
         daemon_reconnect_jitter = \"20ms\"\n\
         daemon_reconnect_attempts = 3\n\
         daemon_batch_interval = \"1s\"\n\
         daemon_offline_batch_interval = \"1s\"\n\
         daemon_flush_timeout = \"3s\"\n{extra}"
    )
}

/// A repository logged in as `user` on `url` (through the real `auth login`).
pub fn logged_in_repo(url: &str, user: &str, extra_config: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write_config(&fast_config(url, extra_config));
    // The first event creates the project identity the daemon's preflight needs.
    repo.emit_status_ok("WP00", "planned", "doing");
    login(&repo, user);
    repo
}

/// A repository holding the fixture spec-kitty project (feature
/// `common::project::FEATURE`, WP01–WP07), its tasks finalized (FeatureCreated + 7 WPCreated
/// recorded), logged in as `user` on `url`. Two of them are two clones of one project: same
/// project uuid, different nodes.
pub fn logged_in_project(url: &str, user: &str) -> TestRepo {
    let repo = TestRepo::new();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/workflow-project");
    crate::common::project::copy_dir(&fixture, &repo.root);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "the fixture project"]);
    repo.write_config(&fast_config(url, ""));
    repo.sk_ok(&["init", "--no-hooks"]);
    repo.sk_ok(&["agent", "feature", "finalize-tasks"]);
    login(&repo, user);
    repo
}

/// The lane `spec-kitty status --json` shows for `wp`, run in `dir`.
pub fn lane_in(repo: &TestRepo, dir: &Path, wp: &str) -> Option<String> {
    let out = repo.sk_in(dir, &["status", "--json"]);
    let boards: Value = serde_json::from_slice(&out.stdout).ok()?;
    boards[0]["work_packages"]
        .as_array()?
        .iter()
        .find(|c| c["wp_id"] == wp)?["lane"]
        .as_str()
        .map(str::to_owned)
}

/// Kills, when dropped, every daemon process it has seen (verified by pid to be a daemon),
/// and checks that none is left.
pub struct Daemons {
    common_dirs: Vec<PathBuf>,
    pids: Mutex<Vec<u32>>,
}

impl Daemons {
    pub fn new(repos: &[&TestRepo]) -> Daemons {
        Daemons {
            common_dirs: repos.iter().map(|r| r.root.join(".git")).collect(),
            pids: Mutex::new(Vec::new()),
        }
    }

    /// Remembers `pid` for the final kill and check.
    pub fn track(&self, pid: u32) {
        let mut pids = self.pids.lock().expect("pids");
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }

    /// The running daemon's pid of the repository, tracked.
    pub fn running_pid(&self, repo: &TestRepo) -> Option<u32> {
        let r = spec_kitty::sync::daemon::control::report(&repo.root.join(".git"));
        let pid = r.owner.as_ref().map(|o| o.pid)?;
        self.track(pid);
        (r.status == spec_kitty::sync::daemon::control::Liveness::Running).then_some(pid)
    }

    /// `sync daemon start --json` in `repo`, asserting success; returns the pid.
    pub fn start(&self, repo: &TestRepo) -> u32 {
        let out = repo.sk(&["sync", "daemon", "start", "--json"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "daemon start failed: {text}");
        let v: Value = serde_json::from_slice(&out.stdout).expect("start json");
        let pid = v["pid"].as_u64().expect("pid") as u32;
        self.track(pid);
        pid
    }

    /// Whether none of the daemons seen is still running.
    pub fn none_left(&self) -> bool {
        self.pids
            .lock()
            .expect("pids")
            .iter()
            .all(|p| !process::is_daemon(*p, None))
    }

    /// Waits (bounded) until every daemon seen has exited.
    pub fn wait_all_gone(&self, timeout: Duration) -> bool {
        wait_until(timeout, || self.none_left())
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for dir in &self.common_dirs {
            let r = spec_kitty::sync::daemon::control::report(dir);
            if let Some(o) = r.owner {
                self.track(o.pid);
            }
        }
        let pids = self.pids.lock().map(|p| p.clone()).unwrap_or_default();
        for pid in &pids {
            if process::is_daemon(*pid, None) {
                process::signal(*pid, true);
            }
        }
        let gone = wait_until(Duration::from_secs(10), || {
            pids.iter().all(|p| !process::is_daemon(*p, None))
        });
        if !std::thread::panicking() {
            assert!(gone, "a daemon outlived its test: {pids:?}");
        }
    }
}

/// Polls `f` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The daemon's state file of `repo`, as JSON.
pub fn daemon_status(repo: &TestRepo) -> Value {
    let out = repo.sk_ok(&["sync", "daemon", "status", "--json"]);
    serde_json::from_str(&out).expect("daemon status json")
}

/// A teammate's WebSocket: every `event` frame's id, with the instant it arrived.
pub struct Teammate {
    pub events: mpsc::Receiver<(String, Instant)>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Teammate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An access token for `user` (blocking).
pub fn access_token(url: &str, user: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::blocking::Client::new();
    let v: Value = c
        .post(format!("{url}/api/v1/token/"))
        .json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .expect("login")
        .json()
        .expect("json");
    v["access"].as_str().expect("access").to_owned()
}

/// Connects `user` to the server's WebSocket; returns once the snapshot arrived.
pub fn teammate(url: &str, user: &str) -> Teammate {
    let access = access_token(url, user);
    let c = reqwest::blocking::Client::new();
    let v: Value = c
        .post(format!("{url}/api/v1/ws-token/"))
        .bearer_auth(&access)
        .send()
        .expect("ws-token")
        .json()
        .expect("json");
    let token = v["ws_token"].as_str().expect("ws_token").to_owned();
    let ws_url = format!("{}/ws/v1/events/", url.replacen("http", "ws", 1));
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut req = ws_url.into_client_request().expect("request");
            req.headers_mut().insert(
                "Authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
            let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
            while !stop2.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
                let msg = tokio::time::timeout(Duration::from_millis(100), ws.next()).await;
                let Ok(msg) = msg else { continue };
                let Some(Ok(Message::Text(text))) = msg else {
                    if msg.is_none() {
                        return;
                    }
                    continue;
                };
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("snapshot") => {
                        let _ = ready_tx.send(());
                    }
                    Some("ping") => {
                        let pong = json!({"type":"pong","timestamp": v["timestamp"]});
                        let _ = ws.send(Message::Text(pong.to_string().into())).await;
                    }
                    Some("event") => {
                        if let Some(id) = v["event_id"].as_str() {
                            let _ = tx.send((id.to_owned(), Instant::now()));
                        }
                    }
                    _ => {}
                }
            }
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("teammate snapshot");
    Teammate {
        events: rx,
        stop,
        thread: Some(thread),
    }
}

/// Uploads `events` as `user` through the batch endpoint (blocking, gzip).
pub fn upload_as(url: &str, user: &str, events: &[Value]) -> Value {
    let access = access_token(url, user);
    let body = json!({ "events": events }).to_string();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body.as_bytes()).expect("gzip");
    let gz = enc.finish().expect("gzip");
    reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/events/batch/"))
        .bearer_auth(access)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gz)
        .send()
        .expect("upload")
        .json()
        .expect("json")
}

/// A TCP proxy on a fixed loopback port in front of the server: it can be cut (existing
/// connections closed, new ones refused at once) and pointed at a restarted server.
pub struct Proxy {
    pub url: String,
    upstream: Arc<Mutex<String>>,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let p = Proxy {
            url,
            upstream: Arc::new(Mutex::new(
                upstream.trim_start_matches("http://").to_owned(),
            )),
            down: Arc::new(AtomicBool::new(false)),
            open: Arc::new(Mutex::new(Vec::new())),
        };
        let (upstream, down, open) = (p.upstream.clone(), p.down.clone(), p.open.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { break };
                if down.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let addr = upstream.lock().expect("upstream").clone();
                let Ok(server) = TcpStream::connect(&addr) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    open.lock().expect("open").extend([c, s]);
                }
                pipe(client, server);
            }
        });
        p
    }

    /// Cuts the network: closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.open.lock().expect("open").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Restores the network, optionally to a new upstream (a restarted server).
    pub fn restore(&self, upstream: Option<&str>) {
        if let Some(u) = upstream {
            *self.upstream.lock().expect("upstream") = u.trim_start_matches("http://").to_owned();
        }
        self.down.store(false, Ordering::SeqCst);
    }
}

fn pipe(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    std::thread::spawn(move || copy(a, b2));
    std::thread::spawn(move || copy(b, a2));
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// The common git dir of a repository made by the harness.
pub fn common_dir(repo: &TestRepo) -> PathBuf {
    repo.root.join(".git")
}

/// Whether `path` exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}
