//! A throwaway PostgreSQL cluster for the tests: `initdb` in a temp dir, `postgres` on
//! 127.0.0.1 at a free port, stopped by pid when dropped. Not a mock, and not skipped when
//! PostgreSQL is missing: the test fails and says how to install it.
//!
//! Run as root (CI), initdb and postgres refuse to start, so both run as the `postgres` user
//! through `setpriv`, which execs (the child's pid is the postmaster's, so we stop it by pid).

#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser's name and password in every test cluster.
pub const USER: &str = "kitty";
pub const PASSWORD: &str = "pg-test-secret-7f3a";

pub struct PgCluster {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
}

/// The directory of `initdb` and `postgres`: on PATH, else the newest Debian
/// `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
    }) {
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed, and these tests run a real one: install it with \
             `apt-get install postgresql` (.ci/run does this)"
        ),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `cmd` as the `postgres` user when we are root, else as ourselves.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ]);
        c.arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn chown_to_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .expect("run chown");
        assert!(
            status.success(),
            "chown {} to postgres failed",
            path.display()
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

impl PgCluster {
    /// initdb (password authentication, superuser [`USER`]) and start it.
    pub fn start() -> PgCluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("spec-kitty-pg-")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        chown_to_postgres(dir.path());
        let out = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "--no-sync",
                "--no-instructions",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .env("LC_ALL", "C")
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cluster = PgCluster {
            dir,
            child: None,
            port: free_port(),
        };
        cluster.launch();
        cluster
    }

    fn launch(&mut self) {
        let bin = bin_dir();
        let data = self.dir.path().join("data");
        let log = std::fs::File::create(self.dir.path().join("log")).unwrap();
        chown_to_postgres(&self.dir.path().join("log"));
        let child = as_postgres(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            // The socket directory defaults to /var/run/postgresql, which may not exist.
            .arg("-k")
            .arg(self.dir.path())
            // Tests, not a benchmark: no fsync, and enough connections for N replicas.
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.log().contains("ready to accept connections") {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "postgres exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("postgres was not ready within 60 s:\n{}", self.log());
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// A URL of database `name` with the password in it.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// Creates database `name` and returns its URL.
    /// Works inside async tests too: the blocking client runs on a thread of its own (the
    /// driver starts a runtime, which may not happen inside another).
    pub fn create_database(&self, name: &str) -> String {
        let (admin, sql) = (self.url("postgres"), format!("CREATE DATABASE {name}"));
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls)
                .expect("connect to the test cluster");
            client.batch_execute(&sql).expect("create database");
        })
        .join()
        .expect("create the test database");
        self.url(name)
    }

    /// A client of database `name`, for the tests' own queries.
    pub fn client(&self, name: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(name), postgres::NoTls).expect("connect")
    }

    /// The bytes of every file of the cluster's data directory (tables, indexes, WAL), for
    /// tests that look for what must never be stored. Call after a `CHECKPOINT` or not: the
    /// WAL holds what the tables do not yet.
    pub fn data_files(&self) -> Vec<u8> {
        fn walk(dir: &Path, out: &mut Vec<u8>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    out.extend_from_slice(&bytes);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.path().join("data"), &mut out);
        out
    }

    /// Stops the server (fast shutdown) and waits for it, bounded.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill with a pid we spawned and have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops and starts again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
