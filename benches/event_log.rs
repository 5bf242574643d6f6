//! Event-log benchmark: whole-process `spec-kitty events emit` against chain length, the same
//! append done with git plumbing, `events log -n 20`, and the pending count.
//!
//! Run: `cargo bench --bench event_log` (release build); `BENCH_BIN=<path>` measures another
//! `spec-kitty` binary instead. Prints a Markdown table; the figures
//! in docs/benchmarks.md come from it. Each figure is the median of `RUNS` whole-process runs.
//!
//! Chains are pre-filled with `git fast-import` from envelopes built by the library itself, so
//! a 100,000-event chain takes seconds to set up and is byte-for-byte what `emit` writes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spec_kitty::event::{Event, HistoryEntryType, Payload};
use spec_kitty::store::{EventLog, message};
use spec_kitty::workflow::emit::origin_for;

const BUILT_BIN: &str = env!("CARGO_BIN_EXE_spec-kitty");

/// The binary under test: this build's, or `BENCH_BIN` (to compare another build of
/// `spec-kitty` in the same run conditions, e.g. one without the sync client).
fn bin() -> String {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| BUILT_BIN.to_owned())
}
const RUNS: usize = 21;
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

struct Bench {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    home: PathBuf,
}

impl Bench {
    fn new(events: u64) -> Bench {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().join("home");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(home.join(".spec-kitty")).expect("home");
        std::fs::create_dir_all(&repo).expect("repo");
        // All of these benchmarks run with the cap out of the way: every event stays pending.
        std::fs::write(
            home.join(".spec-kitty/config.toml"),
            "[sync]\nqueue_limit = 10000000\n",
        )
        .expect("config");
        let b = Bench {
            _tmp: tmp,
            repo,
            home,
        };
        b.git(&["init", "-q", "-b", "main"]);
        b.git(&["config", "user.name", "Bench"]);
        b.git(&["config", "user.email", "bench@example.com"]);
        std::fs::write(b.repo.join("README.md"), "bench\n").expect("write");
        b.git(&["add", "."]);
        b.git(&["commit", "-q", "-m", "init"]);
        b.fill(events);
        b
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.repo)
            .env("HOME", &self.home)
            .env("SPEC_KITTY_HOME", self.home.join(".spec-kitty"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        c
    }

    fn git(&self, args: &[&str]) -> String {
        let out = self
            .cmd("git")
            .args(args)
            .stdout(Stdio::piped())
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Writes `n` events onto this node's chain with `git fast-import`.
    fn fill(&self, n: u64) {
        // Set up the project identity the way the first emit would.
        let log = EventLog::discover(&self.repo).expect("open");
        let origin = origin_for(&log).expect("origin");
        if n == 0 {
            return;
        }
        let node = log.node_id().to_owned();
        let mut child = self
            .cmd("git")
            .args(["fast-import", "--quiet"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("fast-import");
        let mut stdin = std::io::BufWriter::new(child.stdin.take().expect("stdin"));
        let payload = Payload::HistoryAdded {
            wp_id: "WP01".into(),
            entry_type: HistoryEntryType::Note,
            entry_content: "prefilled".into(),
            author: "bench".into(),
            feature_slug: Some("001-bench".into()),
        };
        let ts = chrono::Utc::now().timestamp();
        for i in 1..=n {
            let mut e = Event::new(&payload, &origin, None, None);
            e.lamport_clock = i;
            let msg = message::format_event(&e, i);
            writeln!(stdin, "commit refs/spec-kitty/events/{node}").expect("w");
            writeln!(stdin, "mark :{i}").expect("w");
            writeln!(stdin, "committer Bench <bench@example.com> {ts} +0000").expect("w");
            writeln!(stdin, "data {}", msg.len()).expect("w");
            stdin.write_all(msg.as_bytes()).expect("w");
            if i > 1 {
                writeln!(stdin, "from :{}", i - 1).expect("w");
            }
            writeln!(stdin).expect("w");
        }
        drop(stdin);
        assert!(child.wait().expect("wait").success(), "fast-import failed");
        assert_eq!(
            self.git(&[
                "rev-list",
                "--count",
                &format!("refs/spec-kitty/events/{node}")
            ]),
            n.to_string()
        );
    }

    /// Median wall time of `RUNS` runs of `make()`.
    fn median(&self, mut make: impl FnMut() -> Command) -> Duration {
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let mut c = make();
                let start = Instant::now();
                let status = c.status().expect("run");
                let t = start.elapsed();
                assert!(status.success(), "{c:?} failed");
                t
            })
            .collect();
        times.sort();
        times[RUNS / 2]
    }

    fn emit(&self) -> Duration {
        let payload = r#"{"wp_id":"WP01","previous_status":"planned","new_status":"doing","changed_by":"bench"}"#;
        self.median(|| {
            let mut c = self.cmd(&bin());
            c.args(["events", "emit", "WPStatusChanged", "--payload", payload]);
            c
        })
    }

    /// The same append with git plumbing: hash the event, build the commit, CAS the ref.
    fn plumbing(&self) -> Duration {
        let script = format!(
            r#"ref=refs/bench/plumbing
tip=$(git rev-parse -q --verify $ref)
json='{{"event_id":"01JD0000000000000000000000","event_type":"WPStatusChanged"}}'
blob=$(printf '%s' "$json" | git hash-object -w --stdin)
if [ -n "$tip" ]; then parent="-p $tip"; else parent=""; fi
new=$(printf 'WPStatusChanged WP01 planned → doing\n\n%s\n\nEvent-Id: 01JD\nLamport: 1\n' "$json" | git commit-tree {EMPTY_TREE} $parent)
git update-ref $ref $new $tip
"#
        );
        self.median(|| {
            let mut c = self.cmd("sh");
            c.args(["-c", &script]);
            c
        })
    }

    fn run(&self, args: &[&'static str]) -> Duration {
        self.median(|| {
            let mut c = self.cmd(&bin());
            c.args(args);
            c
        })
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported by this harness.
    let mut rows = Vec::new();
    let mut emit_100k = Duration::ZERO;
    let mut plumbing_100k = Duration::ZERO;
    for n in [0u64, 10_000, 100_000] {
        let setup = Instant::now();
        let b = Bench::new(n);
        eprintln!("chain of {n} events ready in {:.1?}", setup.elapsed());
        let emit = b.emit();
        rows.push(format!(
            "| `events emit` (whole process), chain of {n} | {} |",
            ms(emit)
        ));
        if n == 100_000 {
            emit_100k = emit;
            plumbing_100k = b.plumbing();
            rows.push(format!("| same append via git plumbing (hash-object, commit-tree, update-ref), chain of {n} | {} |", ms(plumbing_100k)));
            rows.push(format!(
                "| `events log -n 20`, chain of {n} | {} |",
                ms(b.run(&["events", "log", "-n", "20"]))
            ));
            rows.push(format!(
                "| `events pending --count`, {n} pending | {} |",
                ms(b.run(&["events", "pending", "--count"]))
            ));
        }
    }
    println!("| measurement (median of {RUNS} runs) | time |");
    println!("|---|---|");
    for r in rows {
        println!("{r}");
    }
    println!();
    println!(
        "plumbing / emit at 100,000 events: {:.1}×",
        plumbing_100k.as_secs_f64() / emit_100k.as_secs_f64()
    );
}
