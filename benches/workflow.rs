//! Whole-process workflow benchmarks (plain harness): `cargo bench --bench workflow`.
//!
//! 1. `spec-kitty agent tasks move-task` on the fixture project with 100,000 events in the
//!    log (target: median ≤ 10 ms). The first run after the events were written rebuilds the
//!    derived-state cache and is reported separately.
//! 2. `git commit` on a WP branch (in the same repository, 100,000 events) with spec-kitty's
//!    hooks installed against without, in one run, interleaved (target: ≤ 10 ms added).
//!
//! Each figure is the wall-clock time of a whole process, as a user or a hook sees it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use spec_kitty::event::{AssignmentPhase, Event, HistoryEntryType, Lane, Origin, Payload};
use spec_kitty::store::EventLog;
use spec_kitty::store::SyncReport;

const BIN: &str = env!("CARGO_BIN_EXE_spec-kitty");
const FEATURE: &str = "028-cli-event-emission-sync";
const EVENTS: usize = 100_000;
const RUNS: usize = 100;

fn main() {
    // `cargo test --benches` runs benches without `--bench`: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::write(home.join(".gitconfig"), "").expect("gitconfig");
    let root = tmp.path().join("kitty-demo");
    let env = Env { home };
    setup_project(&env, &root);

    let started = Instant::now();
    let log = EventLog::discover(&root).expect("event log");
    fill_log(&log, EVENTS);
    println!(
        "wrote {EVENTS} events in {:.1} s (node {})",
        started.elapsed().as_secs_f64(),
        log.node_id()
    );

    // As in a repository that has lived with its events: packed by git's own gc (which
    // `git commit` would otherwise keep starting in the background during the runs).
    let took = env.run("git", &root, &["gc", "-q"]);
    println!("git gc: {:.1} s", took.as_secs_f64());

    bench_move_task(&env, &root);
    bench_commit(&env, &root);
    if std::env::var_os("SPEC_KITTY_BENCH_KEEP").is_some() {
        println!("kept the repository at {}", root.display());
        std::mem::forget(tmp);
    }
}

struct Env {
    home: PathBuf,
}

impl Env {
    fn command(&self, program: &str, dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(dir)
            .env("HOME", &self.home)
            .env("SPEC_KITTY_HOME", self.home.join(".spec-kitty"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env_remove("SPEC_KITTY_HOOKS");
        cmd
    }

    fn run(&self, program: &str, dir: &Path, args: &[&str]) -> Duration {
        let start = Instant::now();
        let out = self
            .command(program, dir)
            .args(args)
            .output()
            .expect("spawn");
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn setup_project(env: &Env, root: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/workflow-project");
    copy_dir(&fixture, root);
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["config", "user.name", "Bench User"],
        &["config", "user.email", "bench@example.com"],
        &["add", "-A"],
        &["commit", "-q", "-m", "Initial project"],
    ] {
        env.run("git", root, args);
    }
}

/// Appends `n` events of a realistic mix (status changes, history, assignments) about the
/// fixture's WPs, ending with WP01 in doing, and marks them all synced.
fn fill_log(log: &EventLog, n: usize) {
    let origin = Origin {
        node_id: log.node_id().to_owned(),
        project_uuid: "5b0e8a52-3c2f-4d8e-9a61-2f4c1d7e9b30".into(),
        project_slug: Some("kitty-demo".into()),
        team_slug: "local".into(),
        ..Origin::default()
    };
    let lanes = [Lane::Planned, Lane::Doing, Lane::ForReview, Lane::Done];
    let mut lane_of = [0usize; 7];
    let mut last = None;
    for i in 0..n {
        let w = (i / 3) % 7;
        let wp = format!("WP0{}", w + 1);
        let payload = match i % 3 {
            0 => {
                let from = lanes[lane_of[w]];
                lane_of[w] = (lane_of[w] + 1) % 4;
                Payload::WPStatusChanged {
                    wp_id: wp,
                    previous_status: from,
                    new_status: lanes[lane_of[w]],
                    changed_by: "bench".into(),
                    feature_slug: Some(FEATURE.into()),
                }
            }
            1 => Payload::HistoryAdded {
                wp_id: wp,
                entry_type: HistoryEntryType::Note,
                entry_content: format!("commit {i:012x} step {i}"),
                author: "bench".into(),
                feature_slug: Some(FEATURE.into()),
            },
            _ => Payload::WPAssigned {
                wp_id: wp,
                agent_id: "claude".into(),
                phase: AssignmentPhase::Implementation,
                retry_count: 0,
                feature_slug: Some(FEATURE.into()),
            },
        };
        last = Some(
            log.append(Event::new(&payload, &origin, None, None), u64::MAX)
                .expect("append"),
        );
    }
    // WP01 must end in doing for the move-task runs; WP02 planned, as a fresh WP would be.
    for (w, want) in [(0, Lane::Doing), (1, Lane::Planned)] {
        let current = lanes[lane_of[w]];
        if current != want {
            let p = Payload::WPStatusChanged {
                wp_id: format!("WP0{}", w + 1),
                previous_status: current,
                new_status: want,
                changed_by: "bench".into(),
                feature_slug: Some(FEATURE.into()),
            };
            let event = Event::new(&p, &origin, None, None);
            last = Some(log.append(event, u64::MAX).expect("append"));
        }
    }
    // Everything written so far counts as uploaded, as in a repository that syncs.
    let tip = last.expect("at least one event");
    let (mark, _) = log
        .read_event(&EventLog::chain_ref(log.node_id()), tip.commit)
        .expect("read tip");
    let report = SyncReport {
        server_url: "https://kitty.example.com",
        team: "bench",
        mark_at_least: Some((mark.commit, mark.seq)),
        ..SyncReport::default()
    };
    log.record_sync(log.node_id(), &report).expect("sync state");
}

fn stats(name: &str, mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(samples[samples.len() / 2]);
    println!(
        "{name}: median {median:.2} ms, p90 {:.2} ms, min {:.2} ms, max {:.2} ms ({} runs)",
        ms(samples[samples.len() * 9 / 10]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
    median
}

fn bench_move_task(env: &Env, root: &Path) {
    let cold = env.run(
        BIN,
        root,
        &["agent", "tasks", "move-task", "WP01", "--to", "for_review"],
    );
    println!(
        "move-task, first run after {EVENTS} new events (derived-state cache rebuilt): {:.1} ms",
        cold.as_secs_f64() * 1000.0
    );
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..RUNS {
        let to = if i % 2 == 0 { "doing" } else { "for_review" };
        samples.push(env.run(
            BIN,
            root,
            &["agent", "tasks", "move-task", "WP01", "--to", to],
        ));
    }
    let median = stats(
        &format!("move-task with {EVENTS} events in the log"),
        samples,
    );
    println!(
        "  target median <= 10 ms: {}",
        if median <= 10.0 { "met" } else { "NOT met" }
    );
}

fn bench_commit(env: &Env, root: &Path) {
    // WP01's worktree (WP01 is in doing after the move-task runs).
    let wt = root.join(".worktrees").join(format!("{FEATURE}-WP01"));
    let branch = format!("{FEATURE}-WP01");
    let wt_arg = wt.display().to_string();
    env.run(
        "git",
        root,
        &["worktree", "add", "-q", "-b", &branch, &wt_arg],
    );
    env.run(BIN, root, &["hooks", "install"]);
    let no_hooks = env.home.join("no-hooks");
    std::fs::create_dir_all(&no_hooks).expect("empty hooks dir");
    let without_hooks = format!("core.hooksPath={}", no_hooks.display());
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let msg = format!("bench commit {i}");
        without.push(env.run(
            "git",
            &wt,
            &[
                "-c",
                &without_hooks,
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &msg,
            ],
        ));
        with.push(env.run("git", &wt, &["commit", "-q", "--allow-empty", "-m", &msg]));
    }
    let out = env
        .command(BIN, root)
        .args([
            "events",
            "log",
            "--type",
            "HistoryAdded",
            "-n",
            "1",
            "--json",
        ])
        .output()
        .expect("events log");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bench commit"),
        "the hook recorded the commits"
    );
    // Each pair ran back to back, so the median of the pairwise differences is the figure
    // least disturbed by whatever else the machine is doing.
    let mut added: Vec<f64> = with
        .iter()
        .zip(&without)
        .map(|(w, wo)| (w.as_secs_f64() - wo.as_secs_f64()) * 1000.0)
        .collect();
    added.sort_by(f64::total_cmp);
    let a = stats("git commit on a WP branch, without hooks", without);
    let b = stats("git commit on a WP branch, with spec-kitty hooks", with);
    let paired = added[added.len() / 2];
    println!(
        "  added per commit: median of pairwise differences {paired:.2} ms (difference of \
         medians {:.2} ms); target <= 10 ms: {}",
        b - a,
        if paired <= 10.0 { "met" } else { "NOT met" }
    );
}
