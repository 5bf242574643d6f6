//! `spec-kitty hooks …`: install, remove and inspect the git hooks; `run` is what the stubs call.

mod install;
mod run;
mod status;
mod uninstall;

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use crate::hooks::install::{HookState, HooksReport, Manager};
use crate::hooks::status::WorktreeHooks;

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    Install(install::InstallArgs),
    Uninstall(uninstall::UninstallArgs),
    Status(status::StatusArgs),
    #[command(hide = true)]
    Run(run::RunArgs),
}

pub fn run(dir: &Path, cmd: HooksCommand) -> miette::Result<ExitCode> {
    match cmd {
        HooksCommand::Install(a) => install::run(dir, a),
        HooksCommand::Uninstall(a) => uninstall::run(dir, a),
        HooksCommand::Status(a) => status::run(dir, a),
        HooksCommand::Run(a) => Ok(run::run(dir, a)),
    }
}

/// The report as people read it.
pub fn render(report: &HooksReport) {
    let loc = &report.location;
    let source = match (&loc.hooks_path, &loc.hooks_path_origin) {
        (Some(p), Some(o)) => {
            let file = o.file.as_ref().map(|f| format!(", {}", f.display()));
            format!(
                "core.hooksPath = {p}, from the {} config{}",
                o.scope.as_str(),
                file.unwrap_or_default()
            )
        }
        (Some(p), None) => format!("core.hooksPath = {p}"),
        (None, _) => "git's default".to_owned(),
    };
    crate::outln!("hooks directory: {} ({source})", loc.dir.display());
    match &loc.manager {
        Some(Manager::Husky { scripts_dir }) => {
            crate::outln!("hook manager: husky (scripts in {})", scripts_dir.display());
        }
        Some(Manager::Lefthook { config }) => {
            crate::outln!("hook manager: lefthook ({})", config.display());
        }
        Some(Manager::PreCommit { config }) => {
            crate::outln!(
                "hook manager: pre-commit ({}); its hooks are chained",
                config.display()
            );
        }
        None => {}
    }
    for h in &report.hooks {
        let state = match h.state {
            HookState::Installed => "installed",
            HookState::Missing => "missing",
            HookState::Bypassed => "bypassed",
        };
        let mut extra = Vec::new();
        if let Some(via) = h.via.filter(|v| *v != "stub") {
            extra.push(format!("via {via}"));
        }
        if let Some(c) = &h.chained {
            let shown = c.strip_prefix(&loc.dir).unwrap_or(c);
            extra.push(format!("runs {} first", shown.display()));
        }
        if let Some(n) = &h.note {
            extra.push(n.clone());
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!("  ({})", extra.join("; "))
        };
        crate::outln!("  {:<14} {state}{extra}", h.name);
    }
    if report.worktrees.len() > 1 || report.worktrees.iter().any(|w| !w.hooks_dir_exists) {
        crate::outln!("worktrees:");
        for w in &report.worktrees {
            crate::outln!("  {}", worktree_line(w));
        }
    }
    for a in &report.advice {
        crate::outln!("{a}");
    }
}

/// `<path>: records post-commit, post-merge` / `<path>: records nothing (<dir> does not exist)`.
fn worktree_line(w: &WorktreeHooks) -> String {
    let records = if w.recording.is_empty() {
        "records nothing".to_owned()
    } else {
        format!("records {}", w.recording.join(", "))
    };
    let missing = if w.hooks_dir_exists {
        String::new()
    } else {
        format!(
            " ({} does not exist: git runs no hook there)",
            w.hooks_dir.display()
        )
    };
    format!("{}: {records}{missing}", w.path.display())
}
