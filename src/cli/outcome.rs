//! How workflow commands end: print the result (text or `--json`) with the events recorded,
//! or record the failure as an ErrorLogged event and return the error for miette to render.

use std::process::ExitCode;

use miette::Diagnostic;
use serde::Serialize;
use serde_json::{Value, json};

use super::print_json;
use crate::workflow::{Attempt, Emitted, WorkflowError, Workspace};

/// Ends a workflow command. On success prints `render`'s text (or, with `json`, the result
/// object with an `events` array); on failure records ErrorLogged first, prints a JSON error
/// object when `json`, and returns the error (exit status 1).
pub fn finish<T: Serialize>(
    ws: &Workspace,
    result: Result<T, WorkflowError>,
    attempt: &Attempt<'_>,
    json: bool,
    render: impl FnOnce(&T),
) -> miette::Result<ExitCode> {
    match result {
        Ok(value) => {
            if json {
                print_json(&with_events(&value, ws.emitted()))?;
            } else {
                render(&value);
                print_events(&ws.emitted());
            }
            print_warnings(ws);
            if let Some(state) = ws.live_state() {
                eprintln!("{state}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            ws.log_failure(&err, attempt);
            if json {
                print_json(&error_json(&err, ws.emitted()))?;
            }
            print_warnings(ws);
            Err(err.into())
        }
    }
}

/// The result object with the recorded events added as `events`.
pub fn with_events(value: &impl Serialize, events: Vec<Emitted>) -> Value {
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    let events = serde_json::to_value(events).unwrap_or(Value::Null);
    match &mut v {
        Value::Object(map) => {
            map.insert("events".into(), events);
            v
        }
        _ => json!({ "result": v, "events": events }),
    }
}

/// `{"error": …, "code": …, "help": …, "events": […]}` for scripts that asked for JSON.
pub fn error_json(err: &WorkflowError, events: Vec<Emitted>) -> Value {
    json!({
        "error": err.to_string(),
        "code": err.code().map(|c| c.to_string()),
        "help": err.help().map(|h| h.to_string()),
        "events": events,
    })
}

/// `recorded WPStatusChanged WP01 doing → for_review (L12)` for each event.
pub fn print_events(events: &[Emitted]) {
    for e in events.iter().filter(|e| e.event_id.is_some()) {
        crate::outln!(
            "  recorded {} (L{})",
            e.summary,
            e.lamport_clock.unwrap_or_default()
        );
    }
}

/// Warnings (setup problems, events not recorded) on stderr, one line each.
pub fn print_warnings(ws: &Workspace) {
    for w in ws.take_warnings() {
        eprintln!("warning: {w}");
    }
}
