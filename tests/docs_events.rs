//! Every example event in docs/reference/events.md (the ```json event blocks) is a valid
//! envelope for the validator that `spec-kitty events emit` and the server use, and there is
//! exactly one example of each of the eight event types.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use spec_kitty::event::{EventType, Strictness, validate};

const PAGE: &str = "docs/reference/events.md";

/// The contents of every fenced block whose info string is `json event`, with its line.
fn examples() -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(PAGE))
        .expect("read the events reference");
    let mut found = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_end() == "```json event" => current = Some((i + 1, String::new())),
            None => {}
            Some(_) if line.trim_end() == "```" => found.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    assert!(current.is_none(), "{PAGE}: an example block is not closed");
    found
}

#[test]
fn every_example_is_a_valid_envelope_for_client_and_server() {
    let examples = examples();
    assert!(!examples.is_empty(), "{PAGE} has no ```json event blocks");
    for (line, body) in &examples {
        let value: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{PAGE}:{line}: the example is not JSON: {e}"));
        for strictness in [Strictness::Client, Strictness::Server] {
            if let Err(report) = validate(&value, strictness) {
                panic!("{PAGE}:{line}: the example is invalid ({strictness:?}): {report}");
            }
        }
        spec_kitty::event::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{PAGE}:{line}: not an Event: {e}"));
    }
}

#[test]
fn there_is_exactly_one_example_of_each_event_type() {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (line, body) in examples() {
        let value: Value = serde_json::from_str(&body).expect("JSON (checked above)");
        let t = value["event_type"].as_str().unwrap_or_default().to_owned();
        assert!(
            EventType::parse(&t).is_some(),
            "{PAGE}:{line}: {t:?} is not one of the eight types"
        );
        *seen.entry(t).or_default() += 1;
    }
    let all = [
        "WPStatusChanged",
        "WPCreated",
        "WPAssigned",
        "FeatureCreated",
        "FeatureCompleted",
        "HistoryAdded",
        "ErrorLogged",
        "DependencyResolved",
    ];
    for t in all {
        assert_eq!(seen.get(t), Some(&1), "{PAGE}: want one example of {t}");
    }
    assert_eq!(seen.len(), all.len(), "{PAGE}: {seen:?}");
}

#[test]
fn the_check_is_not_vacuous_a_broken_example_fails() {
    let (_, body) = examples().into_iter().next().expect("an example");
    let mut value: Value = serde_json::from_str(&body).expect("JSON");
    value["lamport_clock"] = Value::from(0);
    let report = validate(&value, Strictness::Client).expect_err("clock 0 is invalid");
    assert!(report.to_string().contains("lamport_clock"), "{report}");
}
