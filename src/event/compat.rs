//! Reading an envelope written by another client of the era into an [`Event`] this tool stores.
//!
//! PROTOCOL.md lets a peer omit `correlation_id`, `schema_version`, `aggregate_type`,
//! `team_slug` and the nullable fields, and says an optional field sent as `null` means the
//! same as absent (older clients send `"correlation_id": null`). The stored envelope always
//! carries every field, so an absent one is given the value the protocol defines for absence;
//! a present, non-null value is kept as sent and must be valid. Both the events pulled from a
//! team server and the rows `sync migrate` imports come through here.

use serde_json::{Map, Value};

use super::{Event, EventType, LOCAL_TEAM, SCHEMA_VERSION, Strictness, ValidationReport, validate};

/// Optional envelope fields for which `null` means absent.
const NULL_MEANS_ABSENT: [&str; 4] = [
    "correlation_id",
    "schema_version",
    "aggregate_type",
    "team_slug",
];

/// Nullable fields the stored envelope always carries (as `null` when absent).
const NULLABLE: [&str; 5] = [
    "causation_id",
    "project_slug",
    "git_branch",
    "head_commit_sha",
    "repo_slug",
];

/// Why an envelope from another client cannot be stored.
#[derive(Debug, thiserror::Error)]
pub enum Incompatible {
    /// It breaks a rule of the server's compatible validation.
    #[error("invalid envelope: {0}")]
    Invalid(ValidationReport),
    /// It is valid for a server but lacks something the event log needs.
    #[error("{0}")]
    Unstorable(String),
}

/// Validates `value` with the server's compatible rules and turns it into a storable [`Event`],
/// giving absent (or `null`) optional fields their protocol meaning: `correlation_id` =
/// `causation_id` else `event_id`, `team_slug` = `"local"`, `schema_version` = `"1.0.0"`,
/// `aggregate_type` = the known type's aggregate. Nothing else is changed.
pub fn from_compatible(mut value: Value) -> Result<Event, Incompatible> {
    if let Some(obj) = value.as_object_mut() {
        for key in NULL_MEANS_ABSENT {
            if obj.get(key).is_some_and(Value::is_null) {
                obj.remove(key);
            }
        }
    }
    validate(&value, Strictness::Server).map_err(Incompatible::Invalid)?;
    let Some(obj) = value.as_object_mut() else {
        return Err(Incompatible::Unstorable(
            "the envelope is not a JSON object".into(),
        ));
    };
    fill_absent(obj)?;
    serde_json::from_value(value).map_err(|e| {
        Incompatible::Unstorable(format!(
            "valid for the server, but not storable in the event log: {e}"
        ))
    })
}

fn fill_absent(obj: &mut Map<String, Value>) -> Result<(), Incompatible> {
    if !obj.contains_key("correlation_id") {
        let id = obj
            .get("causation_id")
            .filter(|v| !v.is_null())
            .or_else(|| obj.get("event_id"))
            .cloned()
            .unwrap_or(Value::Null);
        obj.insert("correlation_id".into(), id);
    }
    if !obj.contains_key("team_slug") {
        obj.insert("team_slug".into(), LOCAL_TEAM.into());
    }
    if !obj.contains_key("schema_version") {
        obj.insert("schema_version".into(), SCHEMA_VERSION.into());
    }
    if !obj.contains_key("aggregate_type") {
        let known = obj
            .get("event_type")
            .and_then(Value::as_str)
            .and_then(EventType::parse);
        let payload = obj.get("payload").and_then(Value::as_object);
        let Some((t, p)) = known.zip(payload) else {
            return Err(Incompatible::Unstorable(
                "an event of a type this tool does not know must carry aggregate_type".into(),
            ));
        };
        let aggregate = t.aggregate_type(p).as_str();
        obj.insert("aggregate_type".into(), aggregate.into());
    }
    for key in NULLABLE {
        obj.entry(key).or_insert(Value::Null);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn older_status_change() -> Value {
        serde_json::json!({
            "event_id": "01JKQ8Y6T10000000000000003", "event_type": "WPStatusChanged",
            "aggregate_id": "WP01",
            "payload": {"wp_id": "WP01", "previous_status": "planned", "new_status": "doing",
                        "changed_by": "claude"},
            "node_id": "a1b2c3d4e5f6", "lamport_clock": 3,
            "timestamp": "2026-02-05T15:08:07.000000+00:00",
            "project_uuid": "5b1f3c1e-7a2d-4c0e-9f41-2d7a9e6b8c10"
        })
    }

    const OPTIONAL: [&str; 9] = [
        "correlation_id",
        "schema_version",
        "aggregate_type",
        "team_slug",
        "causation_id",
        "project_slug",
        "git_branch",
        "head_commit_sha",
        "repo_slug",
    ];

    fn assert_defaults(e: &Event) {
        assert_eq!(e.correlation_id, e.event_id);
        assert_eq!(e.schema_version, SCHEMA_VERSION);
        assert_eq!(e.aggregate_type, "WorkPackage");
        assert_eq!(e.team_slug, LOCAL_TEAM);
        assert_eq!(e.causation_id, None);
        assert_eq!(e.git_branch, None);
    }

    #[test]
    fn every_optional_field_absent_gets_its_protocol_meaning() {
        let e = from_compatible(older_status_change()).expect("stored");
        assert_defaults(&e);
    }

    #[test]
    fn every_optional_field_sent_as_null_means_absent() {
        let mut v = older_status_change();
        for key in OPTIONAL {
            v[key] = Value::Null;
        }
        let e = from_compatible(v).expect("stored");
        assert_defaults(&e);
    }

    #[test]
    fn correlation_defaults_to_the_causation_when_one_is_set() {
        let mut v = older_status_change();
        v["causation_id"] = "01JKQ8Y6T10000000000000001".into();
        v["correlation_id"] = Value::Null;
        let e = from_compatible(v).expect("stored");
        assert_eq!(e.correlation_id, "01JKQ8Y6T10000000000000001");
    }

    #[test]
    fn a_present_non_null_value_is_kept_and_must_be_valid() {
        let mut v = older_status_change();
        v["correlation_id"] = "01JKQ8Y6T10000000000000009".into();
        v["team_slug"] = "acme".into();
        let e = from_compatible(v.clone()).expect("stored");
        assert_eq!(e.correlation_id, "01JKQ8Y6T10000000000000009");
        assert_eq!(e.team_slug, "acme");
        v["correlation_id"] = "not-a-ulid".into();
        let err = from_compatible(v).unwrap_err();
        assert!(matches!(err, Incompatible::Invalid(_)), "{err}");
        assert!(err.to_string().contains("correlation_id"), "{err}");
    }

    #[test]
    fn seven_lane_and_unknown_types_are_stored_and_garbage_is_not() {
        let mut seven = older_status_change();
        seven["payload"] = serde_json::json!({"wp_id": "WP01", "from_lane": "claimed",
            "to_lane": "in_progress", "actor": "claude"});
        seven["correlation_id"] = Value::Null;
        assert!(from_compatible(seven).is_ok());

        let mut unknown = older_status_change();
        unknown["event_type"] = "MissionDossierArtifactIndexed".into();
        unknown["aggregate_type"] = "MissionDossier".into();
        unknown["correlation_id"] = Value::Null;
        let e = from_compatible(unknown.clone()).expect("stored");
        assert_eq!(e.aggregate_type, "MissionDossier");
        // Without aggregate_type nothing says what it belongs to: not storable.
        unknown["aggregate_type"] = Value::Null;
        let err = from_compatible(unknown).unwrap_err();
        assert!(matches!(err, Incompatible::Unstorable(_)), "{err}");

        for garbage in [
            Value::Null,
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!({"event_id": 7}),
        ] {
            assert!(from_compatible(garbage).is_err());
        }
        let mut bad_id = older_status_change();
        bad_id["event_id"] = "nope".into();
        assert!(matches!(
            from_compatible(bad_id),
            Err(Incompatible::Invalid(_))
        ));
    }
}
