//! The documentation's commands work exactly as shown: this test runs the command blocks of the
//! tutorial and the how-tos, in order, against the real `spec-kitty-server` on 127.0.0.1, and
//! compares every shown output with the real one.
//!
//! The convention, for page authors:
//!
//! - A ```` ```console ```` block is executed. A line starting with `$ ` is a command (a
//!   trailing `\` continues it on the next line); the lines after it, up to the next command
//!   or the end of the block, are its expected output (stdout and stderr together, as a
//!   terminal shows them). Blocks that must not run are tagged ```` ```sh ```` (commands
//!   only) or ```` ```text ```` (output only).
//! - In expected output, a placeholder `<lowercase-word>` (`<id>`, `<time>`, `<uuid>`,
//!   `<node>`, `<n>`, …) matches any non-empty text within its line, and a line that is just
//!   `...` matches any number of lines. Nothing else may differ; trailing blank lines are
//!   ignored.
//! - Every page runs in one `bash` of its own (so `cd` and variables carry over between its
//!   commands) with a hermetic environment: HOME is a temp dir, shown as `/home/you` in the
//!   pages; `SPEC_KITTY_HOME` is `~/.spec-kitty`; the credential store is the 0600 file.
//! - The machine: git's identity is `Alice <alice@example.com>` (`~/.gitconfig`), and
//!   `~/spec-kitty` stands for the reader's checkout of this repository: the test puts a copy
//!   of its `fixtures/` there (nothing else), so a page can use them without touching the
//!   real ones. The tools the pages call besides `spec-kitty`, `spec-kitty-server` and git
//!   ([`TOOLS`]) must be installed.
//! - The server: the test starts a real `spec-kitty-server` on an ephemeral port before the
//!   first page, on the default database `~/.local/share/spec-kitty/server.db` of the temp
//!   HOME, so `spec-kitty-server` commands in the pages (and a backup of that file) work on
//!   the running server's database. Pages show the default address `127.0.0.1:8750`; the
//!   test replaces it with the real one in commands and in output, so the port is a
//!   placeholder too.
//! - Pages run in [`PAGES`] order and share the temp HOME: the tutorial starts from nothing
//!   and ends with the practice repository `~/checkout-app` synced; each how-to starts in that
//!   repository (its prerequisites are the tutorial's end state). What a page starts in the
//!   background (`… &`) is stopped, by its pid, when the page ends.

mod common;
mod server_common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use server_common::TestServer;

/// The pages whose ```console blocks run, in order.
const PAGES: &[&str] = &[
    "docs/tutorials/server-connection.md",
    "docs/how-to/authenticate.md",
    "docs/how-to/sync-to-server.md",
    "docs/how-to/run-sync-daemon.md",
    "docs/how-to/install-hooks.md",
    "docs/how-to/sync-workspaces.md",
    "docs/how-to/migrate-from-python.md",
    "docs/how-to/use-dashboard.md",
    "docs/how-to/self-host-server.md",
];

/// The programs the pages run besides `spec-kitty`, `spec-kitty-server`, git and bash.
const TOOLS: &[&str] = &["curl", "jq", "sqlite3", "openssl"];

/// The address the pages show for the local server.
const SHOWN_ADDR: &str = "127.0.0.1:8750";

/// The home directory the pages show.
const SHOWN_HOME: &str = "/home/you";

/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One command of a page and the output the page shows for it.
#[derive(Debug)]
struct Step {
    line: usize,
    command: String,
    expected: Vec<String>,
}

/// The commands of every ```console block of `text`, in order.
fn steps(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_console = false;
    let mut in_other_fence = false;
    let mut continuing = false;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        if in_other_fence {
            in_other_fence = !fence;
            continue;
        }
        if !in_console {
            if fence {
                in_console = line.trim() == "```console";
                in_other_fence = !in_console;
            }
            continue;
        }
        if fence {
            in_console = false;
            continuing = false;
            continue;
        }
        if continuing {
            let step = steps.last_mut().expect("a step to continue");
            step.command.push('\n');
            step.command.push_str(line);
            continuing = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: i + 1,
                command: command.to_owned(),
                expected: Vec::new(),
            });
            continuing = command.ends_with('\\');
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.to_owned());
        } else {
            panic!("line {}: output before any `$ ` command: {line:?}", i + 1);
        }
    }
    steps
}

/// Whether `actual` matches the shown `expected` lines (placeholders and `...` lines).
fn matches(expected: &[String], actual: &[String]) -> bool {
    let trim = |v: &[String]| -> Vec<String> {
        let mut v = v.to_vec();
        while v.last().is_some_and(|l| l.trim().is_empty()) {
            v.pop();
        }
        v
    };
    let (e, a) = (trim(expected), trim(actual));
    match_lines(&e, &a)
}

fn match_lines(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=actual.len()).any(|skip| match_lines(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            !actual.is_empty() && line_regex(first).is_match(&actual[0]) && {
                match_lines(rest, &actual[1..])
            }
        }
    }
}

/// A shown line as a regex: literal text, each `<placeholder>` any non-empty text.
fn line_regex(shown: &str) -> regex::Regex {
    let placeholder = regex::Regex::new(r"<[a-z][a-z0-9_-]*>").expect("regex");
    let mut pattern = String::from("^");
    let mut last = 0;
    for m in placeholder.find_iter(shown) {
        pattern.push_str(&regex::escape(&shown[last..m.start()]));
        pattern.push_str(".+?");
        last = m.end();
    }
    pattern.push_str(&regex::escape(&shown[last..]));
    pattern.push('$');
    regex::Regex::new(&pattern).expect("a line regex")
}

/// A `bash` that runs one page's commands, one at a time, output merged.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

const DONE: &str = "__SPEC_KITTY_DOCS_DONE__";

impl Shell {
    fn start(home: &Path, cwd: &Path) -> Shell {
        let bin_dir = Path::new(common::BIN)
            .parent()
            .expect("the binaries' directory");
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc"]);
        common::hermetic(&mut cmd, home, common::Keyring::FileStore)
            .env("PATH", path)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("COLUMNS", "100")
            .env("NO_COLOR", "1")
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start bash");
        let mut stdin = child.stdin.take().expect("bash stdin");
        let stdout = child.stdout.take().expect("bash stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        writeln!(stdin, "exec 2>&1").expect("configure bash");
        Shell {
            child,
            stdin,
            lines,
        }
    }

    /// Runs `command` (stdin from /dev/null); returns its output lines and exit status.
    fn run(&mut self, command: &str) -> (Vec<String>, String) {
        writeln!(
            self.stdin,
            "{{ {command}\n}} </dev/null 2>&1; printf '\\n{DONE} %s\\n' \"$?\""
        )
        .expect("send a command to bash");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(status) = line.strip_prefix(DONE) {
                        // The printf's leading newline ends a last line without one.
                        if out.last().is_some_and(|l: &String| l.is_empty()) {
                            out.pop();
                        }
                        return (out, status.trim().to_owned());
                    }
                    out.push(line);
                }
                Err(_) => panic!(
                    "`{command}` did not finish within {COMMAND_TIMEOUT:?}; output so far:\n{}",
                    out.join("\n")
                ),
            }
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // What the page started in the background (`… &`) ends with it: its jobs, by pid.
        let _ = writeln!(self.stdin, "kill $(jobs -p) 2>/dev/null; wait; exit");
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the directory `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory");
    for entry in std::fs::read_dir(from).expect("read a directory") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// The temp HOME of a reader's machine: git's identity, a copy of the fixtures under
/// `~/spec-kitty`, and the server's data directory.
fn reader_home(home: &Path) {
    std::fs::create_dir_all(home.join(".local/share/spec-kitty")).expect("data dir");
    std::fs::write(
        home.join(".gitconfig"),
        "[user]\n\tname = Alice\n\temail = alice@example.com\n",
    )
    .expect("write ~/.gitconfig");
    copy_dir(&root().join("fixtures"), &home.join("spec-kitty/fixtures"));
}

#[test]
fn the_tutorial_and_how_tos_run_exactly_as_shown() {
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the pages run {missing:?}, which is not installed (Debian: apt-get install {})",
        missing.join(" ")
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let home = tmp.path().join("home");
    reader_home(&home);
    let db = home.join(".local/share/spec-kitty/server.db");
    // `--db` after `serve` overrides the one TestServer gives: the reader's default database.
    let server = TestServer::start(&["--db", &db.display().to_string()]);
    let real_addr = server.addr();
    let home_text = home.display().to_string();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (n, page) in PAGES.iter().enumerate() {
        let text = std::fs::read_to_string(root().join(page))
            .unwrap_or_else(|e| panic!("read {page}: {e}"));
        let steps = steps(&text);
        if steps.is_empty() {
            failures.push(format!("{page}: has no ```console commands"));
            continue;
        }
        let cwd = if n == 0 {
            home.clone()
        } else {
            home.join("checkout-app")
        };
        if !cwd.is_dir() {
            failures.push(format!(
                "{page}: not run: {} does not exist (an earlier page stopped before making it)",
                cwd.display()
            ));
            continue;
        }
        let mut shell = Shell::start(&home, &cwd);
        for step in steps {
            let command = step.command.replace(SHOWN_ADDR, &real_addr);
            let (actual, status) = shell.run(&command);
            ran += 1;
            let actual: Vec<String> = actual
                .iter()
                .map(|l| {
                    l.replace(&real_addr, SHOWN_ADDR)
                        .replace(&home_text, SHOWN_HOME)
                })
                .collect();
            if !matches(&step.expected, &actual) {
                failures.push(format!(
                    "{page}:{}: `{}` (exit {status})\n--- shown\n{}\n--- actual\n{}\n",
                    step.line,
                    step.command,
                    step.expected.join("\n"),
                    actual.join("\n")
                ));
                // Later steps build on this one: stop the page here.
                break;
            }
        }
    }
    // A page that stopped half-way may have left a sync daemon running: stop it by its pid
    // record (the command signals only the pid the record names).
    let repo = home.join("checkout-app");
    if repo.is_dir() {
        let mut shell = Shell::start(&home, &repo);
        let _ = shell.run("spec-kitty sync daemon stop");
    }
    assert!(ran > 0, "no command ran");
    assert!(
        failures.is_empty(),
        "{} page(s) differ from what the commands print:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_convention_parses_commands_outputs_and_placeholders() {
    let page = "text\n```sh\n$ not run\n```\n```console\n$ echo a \\\n  b\na b\n$ true\n```\n";
    let s = steps(page);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].command, "echo a \\\n  b");
    assert_eq!(s[0].expected, vec!["a b".to_owned()]);
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(matches(
        &lines(&["id <id> at <time>"]),
        &lines(&["id 01J at 3m ago"])
    ));
    assert!(!matches(&lines(&["id <id>"]), &lines(&["id "])));
    assert!(matches(
        &lines(&["a", "...", "z"]),
        &lines(&["a", "b", "c", "z"])
    ));
    assert!(matches(&lines(&["a", "...", "z"]), &lines(&["a", "z"])));
    assert!(!matches(&lines(&["a", "z"]), &lines(&["a", "b", "z"])));
    assert!(matches(&lines(&["a", ""]), &lines(&["a"])));
    assert!(!matches(&lines(&["(x)"]), &lines(&["(y)"])));
}

#[test]
fn only_executed_pages_have_console_blocks() {
    // A ```console block promises "this runs as shown": outside PAGES nothing would check it.
    let mut stack = vec![root().join("docs")];
    let mut offenders = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read docs") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(root())
                .expect("under the root")
                .display()
                .to_string();
            if !rel.ends_with(".md") || PAGES.contains(&rel.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read a page");
            if text.lines().any(|l| l.trim() == "```console") {
                offenders.push(rel);
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "these pages have ```console blocks but are not run by this test: {offenders:?}; \
         add them to PAGES (and make them pass) or tag the blocks ```sh / ```text"
    );
}
