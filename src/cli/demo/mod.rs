//! `spec-kitty demo`: the tool's main job on a throwaway repository, then synced to a team
//! server and pulled by a teammate.

mod team;

use std::path::Path;
use std::process::{Command, ExitCode};

use clap::Args;
use miette::{IntoDiagnostic, WrapErr};

/// Creates a temporary git repository with a two-WP feature, installs the git hooks, runs WP01
/// through the lanes (finalize-tasks, implement, a commit in its worktree, merge, accept), and
/// shows the result with `spec-kitty status`, `spec-kitty events log` and plain `git log`.
/// Then the team part: it starts the spec-kitty-server binary installed next to spec-kitty on
/// 127.0.0.1 (an ephemeral port, its database in the temp dir), creates two users, logs in, runs `sync now`
/// and `sync status`, checks that the server holds every event, and lets a teammate's clone
/// pull them so that its `spec-kitty status` shows the same board. Nothing outside the temp dir
/// is read or written (its own HOME for git, SPEC_KITTY_HOME, credentials); the server is
/// stopped by pid when the demo ends, also on Ctrl-C.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spec-kitty demo\n  spec-kitty demo --keep   # keep the repositories and the server's database, print their paths"
)]
pub struct DemoArgs {
    /// Keep the temporary repository instead of deleting it at the end.
    #[arg(long)]
    keep: bool,
}

const FEATURE: &str = "001-checkout-flow";

const META: &str = r#"{
  "feature_number": "001",
  "slug": "001-checkout-flow",
  "friendly_name": "Checkout flow",
  "target_branch": "main",
  "vcs": "git"
}
"#;

const TASKS: &str = "# Work Packages: Checkout flow

## Work Package WP01: Cart model

**Dependencies**: none

- [ ] T001 Cart totals
- [ ] T002 Discounts

## Work Package WP02: Payment form

**Dependencies**: WP01

- [ ] T003 Card form
";

fn wp_file(id: &str, title: &str, deps: &str, subtasks: &[&str]) -> String {
    let subtasks: String = subtasks.iter().map(|t| format!("- {t}\n")).collect();
    format!(
        "---\nwork_package_id: {id}\ntitle: {title}\nlane: \"planned\"\ndependencies: [{deps}]\nsubtasks:\n{subtasks}---\n\n# {id} – {title}\n"
    )
}

pub fn run(args: DemoArgs) -> miette::Result<ExitCode> {
    let tmp = tempfile::Builder::new()
        .prefix("spec-kitty-demo-")
        .tempdir()
        .into_diagnostic()?;
    let repo = tmp.path().join("checkout-app");
    let specs = repo.join("kitty-specs").join(FEATURE);
    std::fs::create_dir_all(specs.join("tasks")).into_diagnostic()?;
    step(&format!("a throwaway repository at {}", repo.display()));
    let mut sandbox = Sandbox::new(tmp.path())?;
    let git = |dir: &Path, args: &[&str]| sandbox.git(dir, args);
    git(&repo, &["init", "-q", "-b", "main"])?;
    // Local to the throwaway repository; the user's own git config is never touched.
    git(&repo, &["config", "user.name", "Demo User"])?;
    git(&repo, &["config", "user.email", "demo@example.com"])?;
    let write = |path: &Path, text: &str| std::fs::write(path, text).into_diagnostic();
    write(&repo.join("README.md"), "# checkout-app\n")?;
    write(&specs.join("meta.json"), META)?;
    write(&specs.join("tasks.md"), TASKS)?;
    write(
        &specs.join("tasks/WP01-cart-model.md"),
        &wp_file("WP01", "Cart model", "", &["T001", "T002"]),
    )?;
    write(
        &specs.join("tasks/WP02-payment-form.md"),
        &wp_file("WP02", "Payment form", "WP01", &["T003"]),
    )?;
    git(&repo, &["add", "."])?;
    git(&repo, &["commit", "-q", "-m", "Specify the checkout flow"])?;

    let exe = std::env::current_exe().into_diagnostic()?;
    let sk = |dir: &Path, args: &[&str]| {
        let mut c = sandbox.command(exe.as_os_str(), dir);
        c.args(args);
        c
    };
    show(
        "spec-kitty init --hooks",
        &mut sk(&repo, &["init", "--hooks"]),
    )?;
    git(&repo, &["add", ".kittify"])?;
    git(&repo, &["commit", "-q", "-m", "Add the project identity"])?;
    show(
        "spec-kitty agent feature finalize-tasks",
        &mut sk(&repo, &["agent", "feature", "finalize-tasks"]),
    )?;
    show(
        "spec-kitty implement WP01 --agent demo-agent",
        &mut sk(&repo, &["implement", "WP01", "--agent", "demo-agent"]),
    )?;
    let worktree = repo.join(".worktrees").join(format!("{FEATURE}-WP01"));
    write(&worktree.join("cart.txt"), "total = sum(items)\n")?;
    git(&worktree, &["add", "cart.txt"])?;
    show(
        "git commit -m 'Cart totals'   # in the WP01 worktree; the post-commit hook records it",
        sandbox
            .command("git".as_ref(), &worktree)
            .args(["commit", "-q", "-m", "Cart totals"]),
    )?;
    show(
        "spec-kitty agent tasks mark-status T001 --status done",
        &mut sk(
            &worktree,
            &["agent", "tasks", "mark-status", "T001", "--status", "done"],
        ),
    )?;
    show("spec-kitty merge WP01", &mut sk(&repo, &["merge", "WP01"]))?;
    show(
        "spec-kitty accept WP01",
        &mut sk(&repo, &["accept", "WP01"]),
    )?;
    show("spec-kitty status", &mut sk(&repo, &["status"]))?;
    show("spec-kitty events log", &mut sk(&repo, &["events", "log"]))?;
    show(
        "git log --glob=refs/spec-kitty/events --format='%h %s'",
        sandbox.command("git".as_ref(), &repo).args([
            "log",
            "--glob=refs/spec-kitty/events",
            "--format=%h %s",
        ]),
    )?;
    show(
        "spec-kitty events pending --count   # recorded locally, waiting for a team server",
        &mut sk(&repo, &["events", "pending", "--count"]),
    )?;
    show(
        "spec-kitty events verify",
        &mut sk(&repo, &["events", "verify"]),
    )?;

    let server = team::TeamServer::start(tmp.path(), &exe)?;
    step(&format!(
        "a team server: spec-kitty-server on {} (pid {}; database {})",
        server.url,
        server.pid(),
        server.db.display()
    ));
    server.add_user("alice", "demo-team")?;
    server.add_user("bob", "demo-team")?;
    step("users alice and bob, team demo-team");
    show(
        &format!("spec-kitty sync server {}", server.url),
        &mut sk(&repo, &["sync", "server", &server.url]),
    )?;
    show_with_input(
        "spec-kitty auth login -u alice --password-stdin",
        &mut sk(&repo, &["auth", "login", "-u", "alice", "--password-stdin"]),
        team::PASSWORD,
    )?;
    show("spec-kitty sync now", &mut sk(&repo, &["sync", "now"]))?;
    show(
        "spec-kitty sync status",
        &mut sk(&repo, &["sync", "status"]),
    )?;
    let local = team::local_event_ids(&repo)?;
    let on_server = server.event_ids("demo-team")?;
    let all_there = local.iter().all(|id| on_server.contains(id));
    step(&format!(
        "the server holds {} events of demo-team; this clone recorded {}; all there: {}",
        on_server.len(),
        local.len(),
        if all_there { "yes" } else { "NO" }
    ));
    if !all_there || on_server.len() != local.len() {
        miette::bail!("the server does not hold exactly this clone's events");
    }

    let teammate = tmp.path().join("teammate-checkout-app");
    step(&format!(
        "a teammate (bob) clones the project to {}",
        teammate.display()
    ));
    sandbox.git(
        tmp.path(),
        &[
            "clone",
            "-q",
            repo.to_str().unwrap_or("."),
            "teammate-checkout-app",
        ],
    )?;
    sandbox.home = tmp.path().join("home-bob");
    let sk = |dir: &Path, args: &[&str]| {
        let mut c = sandbox.command(exe.as_os_str(), dir);
        c.args(args);
        c
    };
    show(
        &format!("spec-kitty sync server {}", server.url),
        &mut sk(&teammate, &["sync", "server", &server.url]),
    )?;
    show_with_input(
        "spec-kitty auth login -u bob --password-stdin",
        &mut sk(
            &teammate,
            &["auth", "login", "-u", "bob", "--password-stdin"],
        ),
        team::PASSWORD,
    )?;
    show(
        "spec-kitty sync now   # bob pulls alice's events",
        &mut sk(&teammate, &["sync", "now"]),
    )?;
    show(
        "spec-kitty status     # bob's board shows alice's moves",
        &mut sk(&teammate, &["status"]),
    )?;
    server.stop();

    if args.keep {
        let kept = tmp.keep();
        step(&format!(
            "kept everything: cd {} (teammate: {}; server database: {})",
            kept.join("checkout-app").display(),
            kept.join("teammate-checkout-app").display(),
            kept.join("server.db").display()
        ));
    } else {
        step("done; the server is stopped and everything is deleted (use --keep to keep it)");
    }
    Ok(ExitCode::SUCCESS)
}

fn step(text: &str) {
    crate::outln!("==> {text}");
}

/// Like [`show`], with `input` on the command's stdin (shown as `<input>` in the title only).
fn show_with_input(title: &str, cmd: &mut Command, input: &str) -> miette::Result<()> {
    use std::io::Write;
    crate::outln!();
    crate::outln!("$ {title}");
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .spawn()
        .into_diagnostic()
        .wrap_err_with(|| format!("could not run `{title}`"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{input}");
    }
    let status = child.wait().into_diagnostic()?;
    if !status.success() {
        miette::bail!("`{title}` failed with {status}");
    }
    Ok(())
}

fn show(title: &str, cmd: &mut Command) -> miette::Result<()> {
    crate::outln!();
    crate::outln!("$ {title}");
    let status = cmd
        .status()
        .into_diagnostic()
        .wrap_err_with(|| format!("could not run `{title}`"))?;
    if !status.success() {
        miette::bail!("`{title}` failed with {status}");
    }
    Ok(())
}

/// Where the demo's processes run: git and spec-kitty (and the hooks git runs) see none of the
/// user's global or system git configuration — a global `core.hooksPath` would otherwise get
/// the demo's hook stubs, and from then on every repository of the user would run them — and
/// none of the `GIT_*` variables of a calling git hook.
struct Sandbox {
    gitconfig: std::path::PathBuf,
    /// The SPEC_KITTY_HOME of the user the next commands run as (config, credentials).
    home: std::path::PathBuf,
}

impl Sandbox {
    fn new(dir: &Path) -> miette::Result<Sandbox> {
        let gitconfig = dir.join("gitconfig");
        std::fs::write(&gitconfig, "").into_diagnostic()?;
        Ok(Sandbox {
            gitconfig,
            home: dir.join("home-alice"),
        })
    }

    fn command(&self, program: &std::ffi::OsStr, dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", &self.gitconfig)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("SPEC_KITTY_HOME", &self.home)
            .env("SPEC_KITTY_CREDENTIAL_STORE", "file")
            .env_remove("SPEC_KITTY_SERVER_URL");
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_COMMON_DIR",
            "GIT_CONFIG",
            "GIT_CONFIG_PARAMETERS",
            "GIT_CONFIG_COUNT",
        ] {
            c.env_remove(var);
        }
        c
    }

    fn git(&self, dir: &Path, args: &[&str]) -> miette::Result<()> {
        let status = self
            .command("git".as_ref(), dir)
            .args(args)
            .status()
            .into_diagnostic()
            .wrap_err("could not run git (is it installed?)")?;
        if !status.success() {
            miette::bail!("`git {}` failed with {status}", args.join(" "));
        }
        Ok(())
    }
}
