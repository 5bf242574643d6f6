//! `spec-kitty events …`: read, emit and check the event log.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use miette::{IntoDiagnostic, WrapErr};
use serde::Serialize;
use serde_json::Value;

use super::print_json;
use crate::event::{Event, EventType};
use crate::store::{ChainPending, EventFilter, EventLog, StoredEvent};
use crate::workflow::Emitter;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Show events, newest first, across every node's chain.
    ///
    /// Order is the protocol's: Lamport clock, then node id. The same events are visible to
    /// plain git: `git log --glob=refs/spec-kitty/events`.
    #[command(after_help = "Examples:\n  \
        spec-kitty events log -n 20\n  \
        spec-kitty events log --wp WP01 --type WPStatusChanged\n  \
        spec-kitty events log --feature 001-checkout --json | jq '.[].event.event_type'")]
    Log(LogArgs),

    /// Show one event in full.
    #[command(after_help = "Examples:\n  \
        spec-kitty events show 01JD8Y3V6R7K2M9Q4T5W1X0ZAB\n  \
        spec-kitty events show 01JD8Y3V --json   # a unique prefix of 8+ characters works")]
    Show(ShowArgs),

    /// Record an event (for scripts and other tools' hooks); prints its id.
    ///
    /// The payload is validated against PROTOCOL.md; an invalid payload, or a refusal because
    /// too many events are pending, exits non-zero with the full report and records nothing.
    #[command(after_help = "Examples:\n  \
        spec-kitty events emit WPStatusChanged --payload \
        '{\"wp_id\":\"WP01\",\"previous_status\":\"planned\",\"new_status\":\"doing\",\"changed_by\":\"alice\"}'\n  \
        spec-kitty events emit ErrorLogged --aggregate-id 001-checkout \
        --payload '{\"error_type\":\"runtime\",\"error_message\":\"build failed\"}'")]
    Emit(EmitArgs),

    /// List the events a team server has not yet acknowledged.
    ///
    /// Computed from `refs/spec-kitty/synced/<node>`: every event after the last acknowledged
    /// one, plus those the server rejected. `git log refs/spec-kitty/synced/<node>..refs/spec-kitty/events/<node>`
    /// shows the same unsent range.
    #[command(after_help = "Examples:\n  \
        spec-kitty events pending\n  \
        spec-kitty events pending --count\n  \
        spec-kitty events pending --count --json")]
    Pending(PendingArgs),

    /// Check every chain and report anything wrong, with commit ids. Exit 0 only when clean.
    ///
    /// Finds refs that point at something other than a commit, messages that do not parse,
    /// invalid envelopes, Lamport clocks that do not increase along a chain, duplicate event
    /// ids, and sync states whose mark is not on their chain.
    #[command(
        after_help = "Examples:\n  spec-kitty events verify\n  spec-kitty events verify --json"
    )]
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only events of this work package (e.g. WP01).
    #[arg(long, value_name = "WP")]
    wp: Option<String>,
    /// Only events of this type (e.g. WPStatusChanged).
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    event_type: Option<String>,
    /// Only events of this feature (e.g. 001-checkout).
    #[arg(long, value_name = "SLUG")]
    feature: Option<String>,
    /// Show at most N events.
    #[arg(
        short = 'n',
        long = "max-count",
        value_name = "N",
        default_value_t = 50
    )]
    max_count: usize,
    /// Print a JSON array of {commit, seq, event} objects.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The event id (a ULID), or a unique prefix of at least 6 characters.
    event_id: String,
    /// Print {commit, seq, event} as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct EmitArgs {
    /// One of: WPStatusChanged, WPCreated, WPAssigned, FeatureCreated, FeatureCompleted,
    /// HistoryAdded, ErrorLogged, DependencyResolved.
    event_type: String,
    /// The payload as a JSON object.
    #[arg(long, value_name = "JSON")]
    payload: String,
    /// The aggregate id; defaults to the payload's wp_id (WorkPackage events) or
    /// feature_slug (Feature events). Needed for ErrorLogged without a wp_id.
    #[arg(long, value_name = "ID")]
    aggregate_id: Option<String>,
    /// The causation id (a ULID) shared by the events of one action.
    #[arg(long, value_name = "ULID")]
    causation_id: Option<String>,
    /// Print {event_id, commit, lamport_clock, seq} as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct PendingArgs {
    /// Print only the number of pending events.
    #[arg(long)]
    count: bool,
    /// Print JSON: {count, chains:[…]} and, without --count, events:[…].
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// An event as `--json` output prints it.
#[derive(Serialize)]
struct JsonEvent<'a> {
    commit: String,
    seq: u64,
    event: &'a Event,
}

fn json_event(s: &StoredEvent) -> JsonEvent<'_> {
    JsonEvent {
        commit: s.commit.to_string(),
        seq: s.seq,
        event: &s.event,
    }
}

pub fn run(dir: &Path, cmd: EventsCommand) -> miette::Result<ExitCode> {
    match cmd {
        EventsCommand::Log(a) => log(dir, a),
        EventsCommand::Show(a) => show(dir, a),
        EventsCommand::Emit(a) => emit(dir, a),
        EventsCommand::Pending(a) => pending(dir, a),
        EventsCommand::Verify(a) => verify(dir, a),
    }
}

fn log(dir: &Path, a: LogArgs) -> miette::Result<ExitCode> {
    let log = EventLog::discover(dir)?;
    let filter = EventFilter {
        wp_id: a.wp,
        event_type: a.event_type,
        feature_slug: a.feature,
    };
    let events = log.recent(&filter, a.max_count)?;
    if a.json {
        print_json(&events.iter().map(json_event).collect::<Vec<_>>())?;
    } else if events.is_empty() {
        eprintln!(
            "no events yet (emit one with `spec-kitty events emit`, or try `spec-kitty demo`)"
        );
    } else {
        for s in &events {
            if super::stdout::closed() {
                break;
            }
            crate::outln!("{}", log_line(&s.event));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `L<clock>  <event id>  <time>  <node>  <summary>`
fn log_line(e: &Event) -> String {
    let time = prefix(&e.timestamp, 19).replace('T', " ");
    format!(
        "L{:<6} {}  {}  {}  {}",
        e.lamport_clock,
        safe(&e.event_id),
        safe(&time),
        safe(&e.node_id),
        safe(&e.summary())
    )
}

/// At most the first `n` characters of `s` (never splits one: events read from the log or
/// pulled from a server are untrusted, and any field may hold any text).
fn prefix(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// `s` fit for a terminal: control characters (escape sequences, newlines, carriage returns)
/// from an untrusted field are shown escaped instead of being interpreted.
fn safe(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

fn show(dir: &Path, a: ShowArgs) -> miette::Result<ExitCode> {
    let log = EventLog::discover(dir)?;
    let s = log.find(&a.event_id)?;
    if a.json {
        print_json(&json_event(&s))?;
        return Ok(ExitCode::SUCCESS);
    }
    let e = &s.event;
    let or_dash = |v: &Option<String>| safe(v.as_deref().unwrap_or("-")).into_owned();
    crate::outln!("{}", safe(&e.summary()));
    crate::outln!();
    crate::outln!("event_id        {}", safe(&e.event_id));
    crate::outln!(
        "commit          {} (#{} on refs/spec-kitty/events/{})",
        s.commit,
        s.seq,
        safe(&e.node_id)
    );
    crate::outln!("lamport_clock   {}", e.lamport_clock);
    crate::outln!("timestamp       {}", safe(&e.timestamp));
    crate::outln!(
        "aggregate       {} {}",
        safe(&e.aggregate_type),
        safe(&e.aggregate_id)
    );
    crate::outln!("causation_id    {}", or_dash(&e.causation_id));
    crate::outln!("correlation_id  {}", safe(&e.correlation_id));
    crate::outln!(
        "project         {} ({})",
        safe(&e.project_uuid),
        or_dash(&e.project_slug)
    );
    crate::outln!("team            {}", safe(&e.team_slug));
    let head = e
        .head_commit_sha
        .as_deref()
        .map(|s| prefix(s, 12).to_owned());
    crate::outln!(
        "git             {} @ {} ({})",
        or_dash(&e.git_branch),
        or_dash(&head),
        or_dash(&e.repo_slug)
    );
    crate::outln!("payload");
    let pretty = serde_json::to_string_pretty(&e.payload).into_diagnostic()?;
    for line in pretty.lines() {
        crate::outln!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn emit(dir: &Path, a: EmitArgs) -> miette::Result<ExitCode> {
    let Some(event_type) = EventType::parse(&a.event_type) else {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        miette::bail!(
            help = "use one of the eight types, spelled exactly",
            "unknown event type `{}`; expected one of: {}",
            a.event_type,
            known.join(", ")
        );
    };
    let payload: Value = serde_json::from_str(&a.payload)
        .into_diagnostic()
        .wrap_err("--payload is not valid JSON")?;
    let Value::Object(payload) = payload else {
        miette::bail!(
            help = "wrap the fields in braces: --payload '{\"wp_id\":\"WP01\", …}'",
            "--payload must be a JSON object"
        );
    };
    let emitter = Emitter::open(dir);
    for w in emitter.take_setup_warnings() {
        eprintln!("warning: {w}");
    }
    let appended = emitter.try_emit(
        event_type,
        payload,
        a.causation_id.as_deref(),
        a.aggregate_id,
    )?;
    if a.json {
        print_json(&serde_json::json!({
            "event_id": appended.event_id,
            "commit": appended.commit.to_string(),
            "lamport_clock": appended.lamport_clock,
            "seq": appended.seq,
        }))?;
    } else {
        crate::outln!("{}", appended.event_id);
    }
    if let Some(state) = emitter.live_state() {
        eprintln!("{state}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct PendingJson<'a> {
    count: u64,
    chains: &'a [ChainPending],
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<JsonEvent<'a>>>,
}

fn pending(dir: &Path, a: PendingArgs) -> miette::Result<ExitCode> {
    let log = EventLog::discover(dir)?;
    let chains = log.pending_by_chain()?;
    let count: u64 = chains.iter().map(ChainPending::pending).sum();
    if a.count {
        if a.json {
            print_json(&PendingJson {
                count,
                chains: &chains,
                events: None,
            })?;
        } else {
            crate::outln!("{count}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let events = log.pending_events()?;
    if a.json {
        print_json(&PendingJson {
            count,
            chains: &chains,
            events: Some(events.iter().map(json_event).collect()),
        })?;
    } else if events.is_empty() {
        crate::outln!("nothing pending: every event has been acknowledged by the server");
    } else {
        for s in &events {
            if super::stdout::closed() {
                break;
            }
            crate::outln!("{}", log_line(&s.event));
        }
        crate::outln!("{count} pending (upload them with `spec-kitty sync now`)");
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(dir: &Path, a: VerifyArgs) -> miette::Result<ExitCode> {
    let log = EventLog::discover(dir)?;
    let report = log.verify()?;
    if a.json {
        print_json(&report)?;
    } else {
        for p in &report.problems {
            crate::outln!(
                "{} {}: {}",
                p.reference,
                p.commit.as_deref().unwrap_or("-"),
                p.problem
            );
        }
        let verdict = if report.is_clean() {
            "clean"
        } else {
            "PROBLEMS FOUND"
        };
        crate::outln!(
            "{} chains, {} events, {} problems: {verdict}",
            report.chains,
            report.events,
            report.problems.len()
        );
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
