//! End-to-end `spec-kitty sync now` benchmark against the real release `spec-kitty-server`
//! on 127.0.0.1.
//!
//! Plain harness: `cargo bench --bench sync`. For each size (default 10,000 and 100,000;
//! `BENCH_SYNC_SIZES=10000` for a shorter run) it records that many events in a fresh
//! repository (in-process appends, not timed), logs in with the real `auth login`, times
//! `sync status --json` with everything pending (median of 11), then times one `sync now` (the
//! whole process: preflight, reading the pending events, gzip batches pipelined one ahead,
//! applying each answer to the sync ref, the pull). The client's peak RSS comes from `/usr/bin/time -f %M`. In the same run, the
//! server's own one-client ingest rate is measured as `benches/server_ingest.rs` does (prepared
//! gzip bodies posted one after the other), so the ratio compares like with like.

#[path = "../tests/server_common/mod.rs"]
mod server_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use server_common::*;
use spec_kitty::event::{Event, Lane, Origin, Payload};

const BIN: &str = env!("CARGO_BIN_EXE_spec-kitty");

fn env<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("GIT_") || k.starts_with("SPEC_KITTY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home)
        .env("SPEC_KITTY_HOME", home.join(".spec-kitty"))
        .env("SPEC_KITTY_CREDENTIAL_STORE", "file")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
}

fn git(dir: &Path, home: &Path, args: &[&str]) {
    let ok = env(Command::new("git").current_dir(dir).args(args), home)
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

/// A repository holding `n` pending events.
/// The `k`-th event of the benchmark's mix, the same for the synced repository and the
/// server's own rate: 100 work packages, each moving planned ↔ doing.
fn mix(k: usize) -> (String, Lane, Lane) {
    let (from, to) = if k.is_multiple_of(2) {
        (Lane::Planned, Lane::Doing)
    } else {
        (Lane::Doing, Lane::Planned)
    };
    (format!("WP{:02}", k % 100), from, to)
}

fn repository(dir: &Path, home: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("dir");
    git(dir, home, &["init", "-q", "-b", "main"]);
    git(dir, home, &["config", "user.name", "Bench"]);
    git(dir, home, &["config", "user.email", "bench@example.com"]);
    let log = spec_kitty::store::EventLog::discover(dir).expect("log");
    let origin = spec_kitty::workflow::emit::origin_for(&log).expect("origin");
    let origin = Origin {
        team_slug: "local".into(),
        ..origin
    };
    for i in 0..n {
        let (wp_id, from, to) = mix(i);
        let p = Payload::WPStatusChanged {
            wp_id,
            previous_status: from,
            new_status: to,
            changed_by: "bench".into(),
            feature_slug: Some("001-bench".into()),
        };
        log.append(Event::new(&p, &origin, None, None), u64::MAX)
            .expect("append");
    }
}

/// `BENCH_SYNC_WRAP`: a command prefix for the timed runs, for profiling them (e.g.
/// `strace -f -tt -e trace=connect,write -o /tmp/sync.strace`, or `perf record -g -o F`).
/// Split on whitespace; unset for the figures in docs/benchmarks.md.
fn wrapper() -> Vec<String> {
    std::env::var("BENCH_SYNC_WRAP")
        .map(|w| w.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Runs `spec-kitty ARGS` under `/usr/bin/time`: (wall time, peak RSS KiB, stdout).
fn timed(dir: &Path, home: &Path, args: &[&str]) -> (Duration, Option<u64>, String) {
    let rss_file = home.join("rss");
    let start = Instant::now();
    let out = env(Command::new("/usr/bin/time").current_dir(dir), home)
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .args(wrapper())
        .arg(BIN)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run spec-kitty under /usr/bin/time");
    let elapsed = start.elapsed();
    assert!(out.status.success(), "spec-kitty {args:?} failed");
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    (
        elapsed,
        rss,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The server's own one-client ingest rate with prepared 1000-event gzip bodies of the same
/// mix as the benchmark's repository (100 work packages, each moving planned ↔ doing), so the
/// server does the same projection work per event (the board, the activity indexes, the
/// cumulative-flow buckets) as when `sync now` sends. A stream of one work package making the
/// same move again and again, as `benches/server_ingest.rs` sends, is cheaper to store.
async fn server_rate(server: &TestServer, batches: usize) -> f64 {
    let token = access(server, "bench").await;
    let c = client();
    let bodies: Vec<Vec<u8>> = (0..batches)
        .map(|b| {
            let events: Vec<serde_json::Value> = (0..1000)
                .map(|i| {
                    let k = b * 1000 + i;
                    let (wp, from, to) = mix(k);
                    status_event("acme", &wp, from, to, k as u64 + 1)
                })
                .collect();
            gzip(&serde_json::to_vec(&json!({ "events": events })).expect("json"))
        })
        .collect();
    let start = Instant::now();
    for body in bodies {
        let res = batch_request(&c, &server.url, &token, body, true)
            .send()
            .await
            .expect("batch");
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await;
    }
    (batches * 1000) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SYNC_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "| pending events | `sync status` | `sync now` wall | end-to-end rate | client peak RSS | server 1-client rate | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        let tmp = tempfile::tempdir().expect("tmp");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(home.join(".spec-kitty")).expect("home");
        let repo = tmp.path().join("repo");
        let server = TestServer::start(&[]);
        server.add_user("bench", "acme");
        repository(&repo, &home, n);
        std::fs::write(
            home.join(".spec-kitty/config.toml"),
            format!("[sync]\nserver_url = \"{}\"\n", server.url),
        )
        .expect("config");
        let mut login = env(Command::new(BIN).current_dir(&repo), &home)
            .args(["auth", "login", "-u", "bench", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("login");
        if let Some(mut stdin) = login.stdin.take() {
            use std::io::Write;
            let _ = writeln!(stdin, "{PASSWORD}");
        }
        assert!(login.wait().expect("login").success());

        // `sync status` is what a user or a prompt runs often: the median of 11 runs.
        let mut status_times: Vec<Duration> = (0..11)
            .map(|_| timed(&repo, &home, &["sync", "status", "--json"]).0)
            .collect();
        status_times.sort();
        let status_time = status_times[status_times.len() / 2];
        let (sync_time, rss, out) = timed(&repo, &home, &["sync", "now", "--json"]);
        let summary: serde_json::Value = serde_json::from_str(&out).expect("summary");
        assert_eq!(
            summary["pushed"]["settled"].as_u64(),
            Some(n as u64),
            "{summary}"
        );
        let rate = n as f64 / sync_time.as_secs_f64();
        let own = runtime.block_on(server_rate(&server, (n / 1000).clamp(10, 100)));
        println!(
            "| {n} | {:.1} ms | {:.2} s | {rate:.0} events/s | {} | {own:.0} events/s | {:.0} % |",
            status_time.as_secs_f64() * 1e3,
            sync_time.as_secs_f64(),
            rss.map_or("unavailable".into(), |k| format!(
                "{:.1} MiB",
                k as f64 / 1024.0
            )),
            100.0 * rate / own
        );
    }
}
