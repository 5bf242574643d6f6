//! The two server contract fixes the sync client relies on (PROTOCOL.md): `cursor` on every
//! pull page, and `null` meaning absent for every optional envelope field, in each of the
//! compatibility forms a server must accept.

mod server_common;

use serde_json::{Value, json};
use server_common::*;
use spec_kitty::event::Lane;

/// The envelope fields a server treats as optional.
const OPTIONAL: [&str; 7] = [
    "correlation_id",
    "schema_version",
    "aggregate_type",
    "git_branch",
    "head_commit_sha",
    "repo_slug",
    "team_slug",
];

/// The forms of PROTOCOL.md's compatibility list: our 4-lane status change, the later 7-lane
/// form, and an event type this server does not know.
fn forms(lamport: u64) -> Vec<(&'static str, Value)> {
    let four = status_event("acme", "WP01", Lane::Planned, Lane::Doing, lamport);
    let mut seven = status_event("acme", "WP01", Lane::Planned, Lane::Doing, lamport + 1);
    seven["payload"] = json!({"wp_id": "WP01", "feature_slug": "001-demo",
        "from_lane": "claimed", "to_lane": "in_progress", "actor": "bob", "policy_metadata": {}});
    let mut unknown = created_event("acme", "WP01", lamport + 2);
    unknown["event_type"] = json!("MissionDossierArtifactIndexed");
    unknown["aggregate_type"] = json!("MissionDossier");
    unknown["aggregate_id"] = json!("dossier-1");
    unknown["payload"] = json!({"artifact": "spec.md"});
    vec![
        ("4-lane", four),
        ("7-lane", seven),
        ("unknown type", unknown),
    ]
}

fn fresh_id(e: &mut Value) {
    e["event_id"] = json!(spec_kitty::event::new_ulid());
}

#[tokio::test]
async fn every_compatibility_form_is_accepted_with_optional_fields_absent_or_null() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let c = client();
    let mut batch = Vec::new();
    let mut labels = Vec::new();
    for (i, (form, template)) in forms(1).into_iter().enumerate() {
        for how in ["absent", "null"] {
            let mut e = template.clone();
            fresh_id(&mut e);
            e["lamport_clock"] = json!(10 * i as u64 + if how == "null" { 2 } else { 1 });
            let obj = e.as_object_mut().expect("object");
            for field in OPTIONAL {
                if how == "absent" {
                    obj.remove(field);
                } else {
                    obj.insert(field.into(), Value::Null);
                }
            }
            batch.push(e);
            labels.push(format!("{form}, optional fields {how}"));
        }
    }
    let (status, body) = upload(&c, &server, &token, &batch).await;
    assert_eq!(status, 200, "{body}");
    for (label, result) in labels
        .iter()
        .zip(body["results"].as_array().expect("results"))
    {
        assert_eq!(result["status"], "success", "{label}: {result}");
    }
    // A present, non-null value must still be valid.
    let mut bad = forms(100).remove(0).1;
    fresh_id(&mut bad);
    bad["correlation_id"] = json!("not-a-ulid");
    let (_, body) = upload(&c, &server, &token, &[bad]).await;
    assert_eq!(statuses(&body), ["rejected"], "{body}");
}

#[tokio::test]
async fn every_pull_page_answers_a_cursor_to_resume_from() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let c = client();
    let (status, _) = upload(&c, &server, &token, &many_events("acme", 5)).await;
    assert_eq!(status, 200);

    let page = |after: Option<String>| {
        let c = c.clone();
        let url = server.url.clone();
        let token = token.clone();
        async move {
            let mut u = format!("{url}/api/v1/events/?limit=2");
            if let Some(a) = after {
                u.push_str(&format!("&after={a}"));
            }
            let res = c.get(u).bearer_auth(&token).send().await.expect("pull");
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.expect("json")
        }
    };
    let mut after = None;
    let mut seen = 0;
    for _ in 0..10 {
        let p = page(after.clone()).await;
        let cursor = p["cursor"]
            .as_str()
            .expect("cursor on every page")
            .to_owned();
        seen += p["events"].as_array().expect("events").len();
        after = Some(cursor);
        if p["next"].is_null() {
            break;
        }
    }
    assert_eq!(seen, 5);
    // Resuming from the last page's cursor returns nothing new and keeps the same cursor.
    let p = page(after.clone()).await;
    assert_eq!(p["events"].as_array().expect("events").len(), 0);
    assert_eq!(p["cursor"].as_str(), after.as_deref());
    // New events after that are found from the stored cursor, without re-reading history.
    let (status, _) = upload(&c, &server, &token, &many_events("acme", 2)).await;
    assert_eq!(status, 200);
    let p = page(after).await;
    assert_eq!(p["events"].as_array().expect("events").len(), 2);
}
