//! `spec-kitty __generate-docs --out FILE` (hidden): writes docs/reference/cli-commands.md from
//! the clap definitions, so the reference can never drift from `--help`.
//!
//! tests/docs_cli_reference.rs runs this and fails when the committed page differs;
//! `SPEC_KITTY_BLESS=1 cargo test --test docs_cli_reference` rewrites it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, Args, Command, CommandFactory};

use crate::cli::Cli;

/// Write the generated CLI reference (Markdown) to FILE.
#[derive(Debug, Args)]
pub struct GenerateDocsArgs {
    /// Where to write the page (normally docs/reference/cli-commands.md).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(a: GenerateDocsArgs) -> miette::Result<ExitCode> {
    let page = render_reference();
    std::fs::write(&a.out, page).map_err(|e| {
        miette::miette!(
            help = "check that the directory exists and is writable",
            "cannot write {}: {e}",
            a.out.display()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The whole reference page: a preamble, a table of contents, then every visible command and
/// subcommand, depth first, in the order clap lists them.
pub fn render_reference() -> String {
    let mut root = Cli::command();
    root.build();
    let mut out = String::new();
    out.push_str(PREAMBLE);
    let globals: Vec<&Arg> = visible_args(&root).collect();
    if !globals.is_empty() {
        out.push_str("## Global options\n\nAccepted by every command.\n\n");
        arg_table(&mut out, &globals);
    }
    out.push_str("## Commands\n\n");
    for (depth, path, _) in walk(&root) {
        if depth == 0 {
            continue;
        }
        let indent = "  ".repeat(depth - 1);
        let title = path.join(" ");
        let _ = writeln!(out, "{indent}- [`{title}`](#{})", slug(&title));
    }
    out.push('\n');
    for (depth, path, cmd) in walk(&root) {
        if depth > 0 {
            command_section(&mut out, &path, cmd);
        }
    }
    out
}

const PREAMBLE: &str = "\
# CLI reference: `spec-kitty`

<!-- Generated from the clap definitions by `spec-kitty __generate-docs`: do not edit.
     Regenerate with `SPEC_KITTY_BLESS=1 cargo test --test docs_cli_reference`. -->

Every command and subcommand of `spec-kitty`, generated from the same definitions as
`spec-kitty <command> --help` (a test fails when this page and the code disagree). For
`spec-kitty-server`, see [Self-host spec-kitty-server](../how-to/self-host-server.md).

## Exit codes

Unless a command says otherwise below:

| code | meaning |
|---|---|
| 0 | the command did what it was asked |
| 1 | it failed; the error names what is wrong and the command that fixes it |
| 2 | the command line could not be parsed (unknown flag, missing argument), or, for `sync` commands, nothing could be sent (see each command) |

Recording an event never changes a workflow command's exit code: a problem becomes one
`warning:` line on stderr.

";

/// Every visible command below `root` (and `root` itself at depth 0), with its path of names.
fn walk(root: &Command) -> Vec<(usize, Vec<String>, &Command)> {
    fn go<'a>(
        cmd: &'a Command,
        path: Vec<String>,
        depth: usize,
        acc: &mut Vec<(usize, Vec<String>, &'a Command)>,
    ) {
        acc.push((depth, path.clone(), cmd));
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            go(sub, p, depth + 1, acc);
        }
    }
    let mut acc = Vec::new();
    go(root, vec![root.get_name().to_string()], 0, &mut acc);
    acc
}

fn command_section(out: &mut String, path: &[String], cmd: &Command) {
    let title = path.join(" ");
    let _ = writeln!(out, "## `{title}`\n");
    let about = cmd
        .get_long_about()
        .or_else(|| cmd.get_about())
        .map(|s| s.to_string())
        .unwrap_or_default();
    for para in about.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let _ = writeln!(out, "{}\n", markdown_text(para.trim()));
    }
    let usage = cmd
        .clone()
        .render_usage()
        .to_string()
        .trim_start_matches("Usage: ")
        .to_string();
    let _ = writeln!(out, "```text\n{usage}\n```\n");
    let subs: Vec<&Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    if !subs.is_empty() {
        out.push_str("| subcommand | what it does |\n|---|---|\n");
        for s in subs {
            let sub_title = format!("{title} {}", s.get_name());
            let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "| [`{}`](#{}) | {} |",
                s.get_name(),
                slug(&sub_title),
                table_cell(&about)
            );
        }
        out.push('\n');
    }
    let args: Vec<&Arg> = visible_args(cmd).filter(|a| !a.is_global_set()).collect();
    if !args.is_empty() {
        arg_table(out, &args);
    }
    if let Some(after) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) {
        let _ = writeln!(out, "```text\n{}\n```\n", after.to_string().trim_end());
    }
}

fn visible_args(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
}

fn arg_table(out: &mut String, args: &[&Arg]) {
    out.push_str("| argument | meaning | default |\n|---|---|---|\n");
    for a in args {
        let mut help = a
            .get_long_help()
            .or_else(|| a.get_help())
            .map(|h| h.to_string().trim_end().to_string())
            .unwrap_or_default();
        // clap drops the final period of a one-line help; the notes below are sentences.
        if !help.is_empty() && !help.ends_with('.') {
            help.push('.');
        }
        let values: Vec<String> = a
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        if !values.is_empty() && a.get_action().takes_values() {
            let _ = write!(help, " One of: {}.", values.join(", "));
        }
        if let Some(env) = a.get_env() {
            let _ = write!(help, " Environment: `{}`.", env.to_string_lossy());
        }
        if a.is_required_set() {
            help.push_str(" Required.");
        }
        let default: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let flag = matches!(
            a.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse | clap::ArgAction::Count
        );
        let default = if default.is_empty() || flag {
            String::new()
        } else {
            format!("`{}`", default.join(" "))
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            arg_name(a),
            table_cell(help.trim()),
            default
        );
    }
    out.push('\n');
}

/// `-n, --dry-run`, `--report <FILE>`, `<WP>`, `[WP]…` as `--help` shows them.
fn arg_name(a: &Arg) -> String {
    let value = || {
        let names: Vec<String> = a
            .get_value_names()
            .map(|n| n.iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(|| vec![a.get_id().as_str().to_uppercase()]);
        names
            .iter()
            .map(|n| format!("<{n}>"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if a.is_positional() {
        let v = value();
        let many = a.get_num_args().is_some_and(|n| n.max_values() > 1);
        return if many { format!("{v}...") } else { v };
    }
    let mut flags = Vec::new();
    if let Some(s) = a.get_short() {
        flags.push(format!("-{s}"));
    }
    if let Some(l) = a.get_long() {
        flags.push(format!("--{l}"));
    }
    let mut name = flags.join(", ");
    if a.get_action().takes_values() {
        name.push(' ');
        name.push_str(&value());
    }
    name
}

/// A table cell: one line, `|` escaped.
fn table_cell(text: &str) -> String {
    markdown_text(text).replace('\n', " ").replace('|', "\\|")
}

/// Help text as Markdown: code spans (`…`) are kept as they are; outside them, `<`, `>` and `*`
/// are escaped so that `<node>` shows instead of vanishing as an HTML tag.
fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(part);
        } else {
            for c in part.chars() {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '*' => out.push_str("\\*"),
                    _ => out.push(c),
                }
            }
        }
    }
    out
}

/// GitHub's heading anchor for a heading made of `text` (lowercase; keep letters, digits, `-`
/// and `_`; spaces become `-`).
fn slug(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_visible_command_and_its_anchor() {
        let page = render_reference();
        assert!(page.contains("## `spec-kitty sync now`"), "{page}");
        assert!(page.contains("(#spec-kitty-sync-now)"));
        assert!(page.contains("## `spec-kitty auth login`"));
        assert!(
            !page.contains("## `spec-kitty __generate-docs"),
            "hidden commands stay hidden"
        );
    }

    #[test]
    fn angle_brackets_outside_code_spans_are_escaped() {
        assert_eq!(
            markdown_text("refs/<node> and `refs/<node>`"),
            "refs/&lt;node&gt; and `refs/<node>`"
        );
    }

    #[test]
    fn slugs_follow_github_rules() {
        assert_eq!(slug("spec-kitty sync now"), "spec-kitty-sync-now");
        assert_eq!(slug("Step 0: start a server"), "step-0-start-a-server");
    }
}
