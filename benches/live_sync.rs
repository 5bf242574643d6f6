//! Live sync benchmark against the real release `spec-kitty-server` on 127.0.0.1.
//!
//! Plain harness: `cargo bench --bench live_sync` (`BENCH_LIVE_EVENTS=1000`,
//! `BENCH_LIVE_EMITS=200`, `BENCH_LIVE_IDLE_SECS=60` by default). It measures
//! 1. emit → visible to a second client of the team over WebSocket, with the daemon connected:
//!    each event recorded by a whole `spec-kitty events emit` process, timed from just before
//!    the process starts to the teammate's `event` frame (p50 / p99 / max);
//! 2. the cost the daemon adds to `events emit` and to a hooked `git commit`: the same
//!    commands with no daemon, with a running one, and with none again, in one run (medians);
//! 3. the idle daemon: CPU time (utime + stime from /proc/<pid>/stat) consumed over an idle
//!    period, and VmRSS before / after and VmHWM (peak) from /proc/<pid>/status.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/server_common/mod.rs"]
mod server_common;
#[path = "../tests/sync_common/mod.rs"]
mod sync_common;
#[path = "../tests/sync_daemon_common/mod.rs"]
mod sync_daemon_common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, TestRepo};
use server_common::TestServer;
use sync_daemon_common::*;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

const PAYLOAD: &str =
    r#"{"wp_id":"WP01","previous_status":"planned","new_status":"doing","changed_by":"bench"}"#;

fn emit_cmd(repo: &TestRepo) -> Command {
    let mut cmd = Command::new(BIN);
    repo.env(&mut cmd).current_dir(&repo.root).args([
        "events",
        "emit",
        "WPStatusChanged",
        "--payload",
        PAYLOAD,
    ]);
    cmd
}

/// Median wall time of `n` runs of `make()`.
fn median_of(n: usize, mut make: impl FnMut() -> Command) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let mut cmd = make();
            let start = Instant::now();
            let out = cmd.output().expect("run");
            let t = start.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            t
        })
        .collect();
    times.sort();
    percentile(&times, 0.5)
}

fn commit_cmd(repo: &TestRepo) -> Command {
    let mut cmd = Command::new("git");
    repo.env(&mut cmd).current_dir(&repo.root).args([
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "bench",
    ]);
    cmd
}

/// (utime + stime in clock ticks, VmRSS in KiB, VmHWM in KiB) of `pid`.
fn cpu_and_rss(pid: u32) -> (u64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (ticks, kib("VmRSS:"), kib("VmHWM:"))
}

fn main() {
    let events = env_usize("BENCH_LIVE_EVENTS", 1000);
    let emits = env_usize("BENCH_LIVE_EMITS", 200);
    let idle_secs = env_usize("BENCH_LIVE_IDLE_SECS", 60) as u64;
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    server.add_user("bob", "acme");
    let repo = logged_in_repo(&server.url, "alice", "");
    let hooked = repo.sk(&["hooks", "install"]).status.success();
    let daemons = Daemons::new(&[&repo]);

    // 2. The emit path's cost, without / with / without a daemon, in one run.
    let without = median_of(emits, || emit_cmd(&repo));
    let commit_without = hooked.then(|| median_of(emits / 2, || commit_cmd(&repo)));
    let pid = daemons.start(&repo);
    assert!(wait_until(Duration::from_secs(30), || daemon_status(&repo)
        ["connection"]
        == "Connected"));
    let with = median_of(emits, || emit_cmd(&repo));
    let commit_with = hooked.then(|| median_of(emits / 2, || commit_cmd(&repo)));

    // The work the emit path adds, in-process: one wake-up datagram per event.
    let common = repo.root.join(".git");
    let wakes = 2000;
    let wake_cost = |n: usize| {
        let start = Instant::now();
        for _ in 0..n {
            let _ = spec_kitty::sync::daemon::wake::after_emit(&common, &repo.root, false);
        }
        start.elapsed() / n as u32
    };
    let wake_with = wake_cost(wakes);

    // 1. emit → teammate over WebSocket.
    let bob = teammate(&server.url, "bob");
    let mut latencies = Vec::with_capacity(events);
    for _ in 0..events {
        let start = Instant::now();
        let out = emit_cmd(&repo).output().expect("emit");
        assert!(out.status.success());
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        loop {
            let (seen, at) = bob
                .events
                .recv_timeout(Duration::from_secs(30))
                .expect("the teammate sees every event");
            if seen == id {
                latencies.push(at.duration_since(start));
                break;
            }
        }
    }
    latencies.sort();

    // 3. Idle.
    assert!(wait_until(
        Duration::from_secs(30),
        || sync_common::pending(&repo) == 0
    ));
    std::thread::sleep(Duration::from_secs(2));
    let (cpu0, rss0, _) = cpu_and_rss(pid);
    std::thread::sleep(Duration::from_secs(idle_secs));
    let (cpu1, rss, hwm) = cpu_and_rss(pid);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;

    repo.sk_ok(&["sync", "daemon", "stop"]);
    let without_again = median_of(emits, || emit_cmd(&repo));
    let wake_without = wake_cost(wakes);

    println!("emit → teammate over WebSocket ({events} events, daemon connected):");
    println!(
        "  p50 {}  p99 {}  max {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO))
    );
    println!("`events emit` median ({emits} runs each):");
    println!(
        "  no daemon {}  daemon running {}  no daemon again {}",
        ms(without),
        ms(with),
        ms(without_again)
    );
    println!(
        "wake-up in the emit path, in-process ({wakes} calls each): daemon running {:.1} µs, none {:.1} µs",
        wake_with.as_secs_f64() * 1e6,
        wake_without.as_secs_f64() * 1e6
    );
    if let (Some(a), Some(b)) = (commit_without, commit_with) {
        println!("hooked `git commit` median ({} runs each):", emits / 2);
        println!("  no daemon {}  daemon running {}", ms(a), ms(b));
    } else {
        println!("hooked `git commit`: hooks install failed, not measured");
    }
    println!(
        "idle daemon over {idle_secs} s: CPU {:.3} s ({} ticks of 1/{hz} s); VmRSS {:.1} MB at the start, {:.1} MB at the end; VmHWM (peak, 1000 events sent included) {:.1} MB",
        (cpu1.saturating_sub(cpu0)) as f64 / hz,
        cpu1.saturating_sub(cpu0),
        rss0 as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(bob);
    drop(daemons);
}
