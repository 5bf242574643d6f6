//! `spec-kitty demo`: the tool's main job on a throwaway repository.

use std::path::Path;
use std::process::{Command, ExitCode};

use clap::Args;
use miette::{IntoDiagnostic, WrapErr};

use super::report_emit;
use crate::event::{Lane, Payload, new_ulid};
use crate::workflow::Emitter;

/// Creates a temporary git repository, emits a feature's first events into it, and shows
/// them twice: with `spec-kitty events log` and with plain `git log`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spec-kitty demo\n  spec-kitty demo --keep   # keep the repository and print its path"
)]
pub struct DemoArgs {
    /// Keep the temporary repository instead of deleting it at the end.
    #[arg(long)]
    keep: bool,
}

pub fn run(args: DemoArgs) -> miette::Result<ExitCode> {
    let tmp = tempfile::Builder::new()
        .prefix("spec-kitty-demo-")
        .tempdir()
        .into_diagnostic()?;
    let repo = tmp.path().join("checkout-app");
    std::fs::create_dir_all(&repo).into_diagnostic()?;
    step(&format!("a throwaway repository at {}", repo.display()));
    git(&repo, &["init", "-q", "-b", "main"])?;
    // Local to the throwaway repository; the user's own git config is never touched.
    git(&repo, &["config", "user.name", "Demo User"])?;
    git(&repo, &["config", "user.email", "demo@example.com"])?;
    std::fs::write(repo.join("README.md"), "# checkout-app\n").into_diagnostic()?;
    git(&repo, &["add", "README.md"])?;
    git(&repo, &["commit", "-q", "-m", "Initial commit"])?;

    step("emitting the events of a small feature");
    let emitter = Emitter::open(&repo);
    let feature = "001-checkout-flow";
    let action = new_ulid();
    let wp = |id: &str| id.to_owned();
    let mut payloads = vec![Payload::FeatureCreated {
        feature_slug: feature.into(),
        feature_number: "001".into(),
        target_branch: "main".into(),
        wp_count: 2,
        created_at: Some(crate::event::now_rfc3339()),
    }];
    for (id, title, deps) in [
        ("WP01", "Cart model", vec![]),
        ("WP02", "Payment form", vec![wp("WP01")]),
    ] {
        payloads.push(Payload::WPCreated {
            wp_id: id.into(),
            title: title.into(),
            feature_slug: feature.into(),
            dependencies: deps,
        });
    }
    for outcome in payloads.iter().map(|p| emitter.emit(p, Some(&action))) {
        report_emit(&outcome);
    }
    let status = |from, to| Payload::WPStatusChanged {
        wp_id: "WP01".into(),
        previous_status: from,
        new_status: to,
        changed_by: "demo-agent".into(),
        feature_slug: Some(feature.into()),
    };
    report_emit(&emitter.emit(&status(Lane::Planned, Lane::Doing), None));
    report_emit(&emitter.emit(
        &Payload::HistoryAdded {
            wp_id: "WP01".into(),
            entry_type: crate::event::HistoryEntryType::Note,
            entry_content: "Cart totals implemented".into(),
            author: "demo-agent".into(),
            feature_slug: Some(feature.into()),
        },
        None,
    ));
    report_emit(&emitter.emit(&status(Lane::Doing, Lane::ForReview), None));

    let exe = std::env::current_exe().into_diagnostic()?;
    let repo_arg = repo.to_string_lossy().into_owned();
    show(
        "spec-kitty events log",
        Command::new(&exe).args(["-C", &repo_arg, "events", "log"]),
    )?;
    show(
        "git log --glob=refs/spec-kitty/events --format='%h %s'",
        Command::new("git").current_dir(&repo).args([
            "log",
            "--glob=refs/spec-kitty/events",
            "--format=%h %s",
        ]),
    )?;
    show(
        "spec-kitty events pending --count   # not yet acknowledged by a team server",
        Command::new(&exe).args(["-C", &repo_arg, "events", "pending", "--count"]),
    )?;
    show(
        "spec-kitty events verify",
        Command::new(&exe).args(["-C", &repo_arg, "events", "verify"]),
    )?;

    if args.keep {
        let kept = tmp.keep();
        step(&format!(
            "kept the repository: cd {}",
            kept.join("checkout-app").display()
        ));
    } else {
        step("done; the repository is deleted (use --keep to keep it)");
    }
    Ok(ExitCode::SUCCESS)
}

fn step(text: &str) {
    println!("==> {text}");
}

fn show(title: &str, cmd: &mut Command) -> miette::Result<()> {
    println!();
    println!("$ {title}");
    let status = cmd
        .status()
        .into_diagnostic()
        .wrap_err_with(|| format!("could not run `{title}`"))?;
    if !status.success() {
        miette::bail!("`{title}` failed with {status}");
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> miette::Result<()> {
    let status = Command::new("git")
        .current_dir(dir)
        .args(args)
        .status()
        .into_diagnostic()
        .wrap_err("could not run git (is it installed?)")?;
    if !status.success() {
        miette::bail!("`git {}` failed with {status}", args.join(" "));
    }
    Ok(())
}
