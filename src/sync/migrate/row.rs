//! Turning one queue row into an envelope this repository can store, or saying why not.

use serde_json::Value;

use super::source::QueueRow;
use crate::event::{self, Event};

/// What a row turned out to be.
#[derive(Debug)]
pub enum Classified {
    /// An event of this project, ready to store.
    Event(Box<Event>),
    /// A well-formed row of another project (by `project_uuid`): left alone.
    OtherProject(String),
    /// A row that cannot be stored, and why.
    Malformed(String),
}

/// Classifies `row` for the project `project_uuid`.
///
/// The envelope is checked with the server's compatible rules (7-lane status changes and
/// unknown event types pass; payloads of the eight known types are checked strictly), and
/// fields the Python tool left absent (or `null`) get the value PROTOCOL.md defines for absence
/// ([`event::from_compatible`]). Nothing else is changed; the row itself is kept verbatim beside
/// the event.
pub fn classify(row: &QueueRow, project_uuid: &str) -> Classified {
    let Some(data) = row.data.as_deref() else {
        return Classified::Malformed("the `data` column is empty or not text".into());
    };
    let mut value: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => return Classified::Malformed(format!("`data` is not JSON: {e}")),
    };
    let Some(obj) = value.as_object_mut() else {
        return Classified::Malformed("`data` is not a JSON object".into());
    };
    // The row's columns were written from the envelope; a disagreement means a damaged row.
    for (column, col_value) in [("event_id", &row.event_id), ("event_type", &row.event_type)] {
        let in_data = obj.get(column).and_then(Value::as_str);
        if let (Some(c), Some(d)) = (col_value.as_deref(), in_data)
            && c != d
        {
            return Classified::Malformed(format!(
                "the `{column}` column ({c}) disagrees with the envelope ({d})"
            ));
        }
    }
    match obj.get("project_uuid").and_then(Value::as_str) {
        Some(p) if p == project_uuid => {}
        Some(p) if !p.is_empty() => return Classified::OtherProject(p.to_owned()),
        _ => return Classified::Malformed("the envelope has no project_uuid".into()),
    }
    match event::from_compatible(value) {
        Ok(e) => Classified::Event(Box::new(e)),
        Err(e) => Classified::Malformed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "5b1f3c1e-7a2d-4c0e-9f41-2d7a9e6b8c10";

    fn row(data: Value) -> QueueRow {
        QueueRow {
            row_id: 1,
            event_id: data["event_id"].as_str().map(str::to_owned),
            event_type: data["event_type"].as_str().map(str::to_owned),
            data: Some(data.to_string()),
            retry_count: 0,
        }
    }

    fn older_client_status_change() -> Value {
        serde_json::json!({
            "event_id": "01JKQ8Y6T10000000000000003", "event_type": "WPStatusChanged",
            "aggregate_id": "WP01",
            "payload": {"wp_id": "WP01", "previous_status": "planned", "new_status": "doing",
                        "changed_by": "claude"},
            "node_id": "a1b2c3d4e5f6", "lamport_clock": 3, "causation_id": null,
            "correlation_id": null, "timestamp": "2026-02-05T15:08:07.000000+00:00",
            "project_uuid": PROJECT, "data_tier": "standard"
        })
    }

    #[test]
    fn an_older_clients_row_gets_the_protocol_meaning_of_its_absent_fields() {
        let Classified::Event(e) = classify(&row(older_client_status_change()), PROJECT) else {
            panic!("not an event");
        };
        assert_eq!(e.correlation_id, e.event_id);
        assert_eq!(e.team_slug, "local");
        assert_eq!(e.aggregate_type, "WorkPackage");
        assert_eq!(e.lamport_clock, 3);
        assert_eq!(e.node_id, "a1b2c3d4e5f6");
    }

    #[test]
    fn rows_of_other_projects_and_broken_rows_are_told_apart() {
        let mut other = older_client_status_change();
        other["project_uuid"] = "9d3e2f10-4b5c-4d6e-8f70-1a2b3c4d5e6f".into();
        assert!(matches!(
            classify(&row(other), PROJECT),
            Classified::OtherProject(_)
        ));
        let mut r = row(older_client_status_change());
        r.data = Some("{\"event_id\": \"01J".into());
        assert!(
            matches!(classify(&r, PROJECT), Classified::Malformed(m) if m.contains("not JSON"))
        );
        let mut no_wp = older_client_status_change();
        no_wp["payload"].as_object_mut().unwrap().remove("wp_id");
        assert!(
            matches!(classify(&row(no_wp), PROJECT), Classified::Malformed(m) if m.contains("wp_id"))
        );
        let mut unknown = older_client_status_change();
        unknown["event_type"] = "MissionDossierArtifactIndexed".into();
        assert!(
            matches!(classify(&row(unknown), PROJECT), Classified::Malformed(m) if m.contains("aggregate_type"))
        );
    }
}
