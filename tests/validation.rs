//! Every rule of PROTOCOL.md's envelope and payload tables, with a passing and a failing case.

use serde_json::{Value, json};
use spec_kitty::event::{
    AssignmentPhase, DependencyResolution, ErrorType, Event, HistoryEntryType, Lane, Origin,
    Payload, Strictness, validate,
};

fn origin() -> Origin {
    Origin {
        node_id: "0123456789ab".into(),
        project_uuid: "6f1c7a4e-2b1d-4c3e-9f5a-1234567890ab".into(),
        project_slug: Some("demo".into()),
        team_slug: "local".into(),
        git_branch: Some("main".into()),
        head_commit_sha: Some("a".repeat(40)),
        repo_slug: Some("acme/demo".into()),
    }
}

fn envelope(p: Payload) -> Value {
    let mut e = Event::new(&p, &origin(), None, None);
    e.lamport_clock = 1;
    serde_json::to_value(e).unwrap()
}

fn all_valid() -> Vec<Value> {
    vec![
        envelope(Payload::WPStatusChanged {
            wp_id: "WP01".into(),
            previous_status: Lane::Planned,
            new_status: Lane::Doing,
            changed_by: "alice".into(),
            feature_slug: Some("001-demo".into()),
        }),
        envelope(Payload::WPCreated {
            wp_id: "WP02".into(),
            title: "Cart".into(),
            feature_slug: "001-demo".into(),
            dependencies: vec!["WP01".into()],
        }),
        envelope(Payload::WPAssigned {
            wp_id: "WP01".into(),
            agent_id: "claude".into(),
            phase: AssignmentPhase::Implementation,
            retry_count: 0,
            feature_slug: None,
        }),
        envelope(Payload::FeatureCreated {
            feature_slug: "001-demo".into(),
            feature_number: "001".into(),
            target_branch: "main".into(),
            wp_count: 7,
            created_at: Some("2026-02-05T15:08:07.123+00:00".into()),
        }),
        envelope(Payload::FeatureCompleted {
            feature_slug: "001-demo".into(),
            total_wps: 7,
            completed_at: None,
            total_duration: Some("8h 30m".into()),
        }),
        envelope(Payload::HistoryAdded {
            wp_id: "WP01".into(),
            entry_type: HistoryEntryType::Review,
            entry_content: "LGTM".into(),
            author: "bob".into(),
            feature_slug: None,
        }),
        envelope(Payload::ErrorLogged {
            error_type: ErrorType::Runtime,
            error_message: "boom".into(),
            wp_id: Some("WP01".into()),
            stack_trace: None,
            agent_id: Some("claude".into()),
        }),
        envelope(Payload::DependencyResolved {
            wp_id: "WP02".into(),
            dependency_wp_id: "WP01".into(),
            resolution_type: DependencyResolution::Completed,
        }),
    ]
}

fn of_type(t: &str) -> Value {
    all_valid()
        .into_iter()
        .find(|e| e["event_type"] == t)
        .unwrap()
}

/// Applies `mutate` to a valid envelope of `event_type` and asserts the report names `field`.
fn fails(event_type: &str, field: &str, mutate: impl FnOnce(&mut Value)) {
    let mut e = of_type(event_type);
    mutate(&mut e);
    let report =
        validate(&e, Strictness::Client).expect_err(&format!("{event_type}: {field} should fail"));
    assert!(
        report.violations.iter().any(|v| v.field == field),
        "{event_type}: expected a violation on {field}, got {report}"
    );
}

fn passes(event_type: &str, mutate: impl FnOnce(&mut Value)) {
    let mut e = of_type(event_type);
    mutate(&mut e);
    if let Err(r) = validate(&e, Strictness::Client) {
        panic!("{event_type} should pass: {r}");
    }
}

#[test]
fn every_type_has_a_valid_envelope() {
    for e in all_valid() {
        validate(&e, Strictness::Client).unwrap_or_else(|r| panic!("{}: {r}", e["event_type"]));
        validate(&e, Strictness::Server).unwrap_or_else(|r| panic!("{}: {r}", e["event_type"]));
    }
}

#[test]
fn envelope_rules() {
    let t = "WPStatusChanged";
    fails(t, "event_id", |e| e["event_id"] = json!("not-a-ulid"));
    fails(t, "event_id", |e| {
        e["event_id"] = json!("01jmby7k8n3qrvx2dpfg5hwt4e")
    });
    fails(t, "event_type", |e| e["event_type"] = json!("WPMoved"));
    fails(t, "aggregate_id", |e| e["aggregate_id"] = json!("WP02"));
    fails(t, "aggregate_type", |e| {
        e["aggregate_type"] = json!("Feature")
    });
    fails(t, "payload", |e| e["payload"] = json!([1]));
    fails(t, "node_id", |e| e["node_id"] = json!("0123456789AB"));
    fails(t, "node_id", |e| e["node_id"] = json!("0123"));
    fails(t, "lamport_clock", |e| e["lamport_clock"] = json!(0));
    fails(t, "lamport_clock", |e| e["lamport_clock"] = json!("5"));
    fails(t, "causation_id", |e| e["causation_id"] = json!("x"));
    fails(t, "causation_id", |e| {
        e.as_object_mut().unwrap().remove("causation_id");
    });
    fails(t, "correlation_id", |e| {
        e["correlation_id"] = json!("01JMBYA1B2C3D4E5F6G7H8J9KB")
    });
    fails(t, "timestamp", |e| e["timestamp"] = json!("yesterday"));
    fails(t, "timestamp", |e| {
        e["timestamp"] = json!("2026-02-05T15:08:07+02:00")
    });
    fails(t, "project_uuid", |e| {
        e["project_uuid"] = json!("not-a-uuid")
    });
    fails(t, "project_slug", |e| e["project_slug"] = json!(5));
    fails(t, "team_slug", |e| e["team_slug"] = json!(""));
    fails(t, "schema_version", |e| {
        e["schema_version"] = json!("2.0.0")
    });
    fails(t, "git_branch", |e| e["git_branch"] = json!(3));
    fails(t, "head_commit_sha", |e| {
        e["head_commit_sha"] = json!("abc")
    });
    fails(t, "repo_slug", |e| e["repo_slug"] = json!("noslash"));

    // Passing cases of the same rules.
    passes(t, |e| e["project_slug"] = Value::Null);
    passes(t, |e| {
        e["git_branch"] = Value::Null;
        e["head_commit_sha"] = Value::Null;
        e["repo_slug"] = Value::Null;
    });
    passes(t, |e| e["lamport_clock"] = json!(123456));
    passes(t, |e| e["timestamp"] = json!("2026-02-05T15:08:07Z"));
    passes(t, |e| {
        let c = "01JMBYA1B2C3D4E5F6G7H8J9KB";
        e["causation_id"] = json!(c);
        e["correlation_id"] = json!(c);
    });
}

#[test]
fn payload_rules() {
    fails("WPStatusChanged", "payload.wp_id", |e| {
        e["payload"]["wp_id"] = json!("WP1")
    });
    fails("WPStatusChanged", "payload.previous_status", |e| {
        e["payload"]["previous_status"] = json!("started")
    });
    fails("WPStatusChanged", "payload.new_status", |e| {
        e["payload"]["new_status"] = json!("planned")
    });
    fails("WPStatusChanged", "payload.new_status", |e| {
        e["payload"]["new_status"] = json!("in_progress")
    });
    fails("WPStatusChanged", "payload.changed_by", |e| {
        e["payload"].as_object_mut().unwrap().remove("changed_by");
    });
    fails("WPStatusChanged", "payload.feature_slug", |e| {
        e["payload"]["feature_slug"] = json!("demo")
    });
    passes("WPStatusChanged", |e| {
        e["payload"].as_object_mut().unwrap().remove("feature_slug");
    });

    fails("WPCreated", "payload.title", |e| {
        e["payload"]["title"] = json!("")
    });
    fails("WPCreated", "payload.feature_slug", |e| {
        e["payload"]["feature_slug"] = json!("1-demo")
    });
    fails("WPCreated", "payload.dependencies", |e| {
        e["payload"].as_object_mut().unwrap().remove("dependencies");
    });
    fails("WPCreated", "payload.dependencies[0]", |e| {
        e["payload"]["dependencies"] = json!(["wp01"])
    });
    passes("WPCreated", |e| e["payload"]["dependencies"] = json!([]));

    fails("WPAssigned", "payload.agent_id", |e| {
        e["payload"]["agent_id"] = json!("")
    });
    fails("WPAssigned", "payload.phase", |e| {
        e["payload"]["phase"] = json!("testing")
    });
    fails("WPAssigned", "payload.retry_count", |e| {
        e["payload"]["retry_count"] = json!(-1)
    });
    passes("WPAssigned", |e| {
        e["payload"]["phase"] = json!("review");
        e["payload"]["retry_count"] = json!(3);
    });

    fails("FeatureCreated", "payload.feature_number", |e| {
        e["payload"]["feature_number"] = json!("1")
    });
    fails("FeatureCreated", "payload.feature_number", |e| {
        e["payload"]["feature_number"] = json!(1)
    });
    fails("FeatureCreated", "payload.target_branch", |e| {
        e["payload"]["target_branch"] = json!("")
    });
    fails("FeatureCreated", "payload.wp_count", |e| {
        e["payload"]["wp_count"] = json!("7")
    });
    fails("FeatureCreated", "payload.created_at", |e| {
        e["payload"]["created_at"] = json!("today")
    });
    fails("FeatureCreated", "aggregate_id", |e| {
        e["aggregate_id"] = json!("002-other")
    });
    passes("FeatureCreated", |e| {
        e["payload"].as_object_mut().unwrap().remove("created_at");
    });

    fails("FeatureCompleted", "payload.total_wps", |e| {
        e["payload"].as_object_mut().unwrap().remove("total_wps");
    });
    fails("FeatureCompleted", "payload.completed_at", |e| {
        e["payload"]["completed_at"] = json!(12)
    });
    passes("FeatureCompleted", |e| {
        e["payload"]["completed_at"] = json!("2026-02-05T15:08:07Z")
    });

    fails("HistoryAdded", "payload.entry_type", |e| {
        e["payload"]["entry_type"] = json!("rant")
    });
    fails("HistoryAdded", "payload.entry_content", |e| {
        e["payload"]["entry_content"] = json!("  ")
    });
    fails("HistoryAdded", "payload.author", |e| {
        e["payload"].as_object_mut().unwrap().remove("author");
    });
    for t in ["note", "review", "error", "comment"] {
        passes("HistoryAdded", |e| e["payload"]["entry_type"] = json!(t));
    }

    fails("ErrorLogged", "payload.error_type", |e| {
        e["payload"]["error_type"] = json!("oops")
    });
    fails("ErrorLogged", "payload.error_message", |e| {
        e["payload"]["error_message"] = json!("")
    });
    fails("ErrorLogged", "payload.wp_id", |e| {
        e["payload"]["wp_id"] = json!("W01")
    });
    for t in ["validation", "runtime", "network", "auth", "unknown"] {
        passes("ErrorLogged", |e| e["payload"]["error_type"] = json!(t));
    }
    // Without a wp_id, ErrorLogged is a Feature event whose aggregate is a feature slug.
    passes("ErrorLogged", |e| {
        e["payload"].as_object_mut().unwrap().remove("wp_id");
        e["aggregate_type"] = json!("Feature");
        e["aggregate_id"] = json!("001-demo");
    });
    fails("ErrorLogged", "aggregate_type", |e| {
        e["payload"].as_object_mut().unwrap().remove("wp_id");
    });

    fails("DependencyResolved", "payload.dependency_wp_id", |e| {
        e["payload"]["dependency_wp_id"] = json!("WP02")
    });
    fails("DependencyResolved", "payload.resolution_type", |e| {
        e["payload"]["resolution_type"] = json!("ignored")
    });
    for t in ["completed", "skipped", "merged"] {
        passes("DependencyResolved", |e| {
            e["payload"]["resolution_type"] = json!(t)
        });
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut e = of_type("WPAssigned");
    e["event_id"] = json!("bad");
    e["lamport_clock"] = json!(0);
    e["payload"]["phase"] = json!("x");
    e["payload"]["retry_count"] = json!("y");
    let report = validate(&e, Strictness::Client).unwrap_err();
    let fields: Vec<&str> = report.violations.iter().map(|v| v.field.as_str()).collect();
    for f in [
        "event_id",
        "lamport_clock",
        "payload.phase",
        "payload.retry_count",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    let v = report
        .violations
        .iter()
        .find(|v| v.field == "payload.phase")
        .unwrap();
    assert_eq!(v.value, "\"x\"");
}

#[test]
fn server_leniency_for_older_and_newer_clients() {
    // Older clients omit these fields.
    let mut e = of_type("WPStatusChanged");
    for k in [
        "correlation_id",
        "schema_version",
        "aggregate_type",
        "git_branch",
        "head_commit_sha",
        "repo_slug",
        "team_slug",
    ] {
        e.as_object_mut().unwrap().remove(k);
    }
    assert!(validate(&e, Strictness::Server).is_ok());
    assert!(validate(&e, Strictness::Client).is_err());

    // The later 7-lane form.
    let mut e = of_type("WPStatusChanged");
    e["payload"] = json!({"wp_id":"WP01","from_lane":"claimed","to_lane":"in_progress","actor":"claude","policy_metadata":{}});
    assert!(validate(&e, Strictness::Server).is_ok());
    e["payload"]["to_lane"] = json!("sideways");
    assert!(validate(&e, Strictness::Server).is_err());

    // Unknown types with a valid envelope are accepted by a server, never by the client.
    let mut e = of_type("WPStatusChanged");
    e["event_type"] = json!("MissionDossierArtifactIndexed");
    e["aggregate_type"] = json!("MissionDossier");
    e["aggregate_id"] = json!("dossier-1");
    e["payload"] = json!({"anything": true});
    assert!(validate(&e, Strictness::Server).is_ok());
    assert!(validate(&e, Strictness::Client).is_err());
}
