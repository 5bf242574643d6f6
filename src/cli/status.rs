//! `spec-kitty status`: the kanban board, derived from the event log.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::outcome::print_warnings;
use super::print_json;
use crate::event::Lane;
use crate::store::watch::RefWatch;
use crate::workflow::Workspace;
use crate::workflow::board::{self, Board};

/// Show the board: every work package in its lane (planned, doing, for_review, done).
///
/// Lanes come from the event log (the last status change of each WP, in Lamport order); a WP
/// with no status event yet sits in the lane its file's frontmatter names. Without --feature
/// the feature is inferred (the only one, or the one the current WP branch names); when it
/// cannot be, every feature is shown.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    spec-kitty status\n  \
    spec-kitty status --feature 001-checkout-flow\n  \
    spec-kitty status --json | jq '.[0].work_packages[] | {wp_id, lane}'\n  \
    spec-kitty status --watch      # redraw whenever an event is recorded or arrives; Ctrl-C exits")]
pub struct StatusArgs {
    /// The feature to show (e.g. 001-checkout-flow).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// Print a JSON array of boards: {feature, target_branch, completed, work_packages:[…]}.
    #[arg(long)]
    json: bool,
    /// Redraw the board whenever the event refs change (a teammate's move arriving through
    /// the sync daemon included). Waits on a change notification, never polls; Ctrl-C exits.
    #[arg(long, conflicts_with = "json")]
    watch: bool,
}

pub fn run(dir: &Path, args: StatusArgs) -> miette::Result<ExitCode> {
    if args.watch {
        return watch(dir, &args);
    }
    let ws = Workspace::open(dir)?;
    let boards = board::boards(&ws, args.feature.as_deref())?;
    if args.json {
        print_json(&boards)?;
    } else {
        for (i, b) in boards.iter().enumerate() {
            if i > 0 {
                crate::outln!();
            }
            render(b);
        }
    }
    print_warnings(&ws);
    Ok(ExitCode::SUCCESS)
}

/// `--watch`: clear, draw, wait for the refs to change, again. A redraw at least every minute
/// picks up edits of the WP files themselves.
fn watch(dir: &Path, args: &StatusArgs) -> miette::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let watcher = RefWatch::new(ws.log().common_dir())
        .map_err(|e| miette::miette!("cannot watch the event refs: {e}"))?;
    drop(ws);
    loop {
        let ws = Workspace::open(dir)?;
        let boards = board::boards(&ws, args.feature.as_deref())?;
        crate::out!("\x1b[2J\x1b[H");
        for (i, b) in boards.iter().enumerate() {
            if i > 0 {
                crate::outln!();
            }
            render(b);
        }
        crate::outln!();
        crate::outln!("watching for changes (Ctrl-C to exit)");
        print_warnings(&ws);
        drop(ws);
        if super::stdout::closed() {
            return Ok(ExitCode::SUCCESS);
        }
        watcher
            .wait(Duration::from_secs(60), Duration::from_millis(30))
            .map_err(|e| miette::miette!("cannot watch the event refs: {e}"))?;
    }
}

const WIDTH: usize = 18;

fn render(board: &Board) {
    let done = board.lane(Lane::Done).count();
    let total = board.work_packages.len();
    let complete = if board.completed { ", complete" } else { "" };
    crate::outln!(
        "{} → {}  ({done}/{total} done{complete})",
        board.feature,
        board.target_branch
    );
    let columns: Vec<Vec<String>> = Lane::ALL
        .iter()
        .map(|lane| {
            board
                .lane(*lane)
                .map(|c| {
                    let mut cell = c.wp_id.clone();
                    if !c.waiting_for.is_empty() && c.lane == Lane::Planned {
                        cell.push_str(&format!(" ⧗{}", c.waiting_for.join(",")));
                    }
                    cell
                })
                .collect()
        })
        .collect();
    let header: Vec<String> = Lane::ALL
        .iter()
        .zip(&columns)
        .map(|(l, c)| format!("{:<WIDTH$}", format!("{} ({})", l.as_str(), c.len())))
        .collect();
    crate::outln!("{}", header.join(" ").trim_end());
    crate::outln!("{}", vec!["-".repeat(WIDTH - 1); 4].join("  "));
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0);
    for row in 0..rows {
        let line: Vec<String> = columns
            .iter()
            .map(|c| format!("{:<WIDTH$}", c.get(row).map_or("", String::as_str)))
            .collect();
        crate::outln!("{}", line.join(" ").trim_end());
    }
    crate::outln!();
    for c in &board.work_packages {
        let by = c
            .changed_by
            .as_deref()
            .map(|b| format!(" (by {b})"))
            .unwrap_or_default();
        crate::outln!("  {}  {:<10} {}{by}", c.wp_id, c.lane.as_str(), c.title);
    }
}
