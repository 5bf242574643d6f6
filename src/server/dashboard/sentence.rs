//! Events as sentences people read: "claude moved WP03 doing → for_review in
//! 007-invoice-export". Every piece is user input and is escaped when rendered.

use maud::{Markup, html};
use serde::Serialize;
use serde_json::Value;

use super::{base, enc};
use crate::event::Lane;

/// One event of a feed, ready to render or to serialise.
#[derive(Debug, Clone, Serialize)]
pub struct FeedItem {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub wp_id: Option<String>,
    pub feature_slug: Option<String>,
    pub actor: Option<String>,
    pub timestamp: Option<String>,
    #[serde(skip)]
    pub at_ms: Option<i64>,
    pub lamport_clock: i64,
    pub node_id: String,
    /// The sentence as plain text.
    pub sentence: String,
    /// The lane this event puts its work package in (a creation: planned; a status change:
    /// its new lane), read in the same parse as the rest.
    #[serde(skip)]
    pub lane_entered: Option<Lane>,
    #[serde(skip)]
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Actor(String),
    Wp(String),
    Feature(String),
    Lane(String),
    Quote(String),
}

impl FeedItem {
    /// Reads a stored envelope. Never fails: a strange envelope still becomes an item.
    pub fn new(seq: i64, event_type: &str, envelope: &str) -> FeedItem {
        let v: Value = serde_json::from_str(envelope).unwrap_or(Value::Null);
        let s = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        let p = |key: &str| {
            v.get("payload")
                .and_then(|p| p.get(key))
                .and_then(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        };
        let feature = p("feature_slug").or_else(|| {
            matches!(event_type, "FeatureCreated" | "FeatureCompleted")
                .then(|| s("aggregate_id"))
                .flatten()
        });
        let wp = p("wp_id");
        let actor = ["changed_by", "actor", "agent_id", "author"]
            .iter()
            .find_map(|k| p(k));
        let parts = parts(
            event_type,
            &v,
            &p,
            wp.as_deref(),
            feature.as_deref(),
            actor.as_deref(),
        );
        let sentence = parts
            .iter()
            .map(|part| match part {
                Part::Quote(t) => format!("“{t}”"),
                Part::Text(t) | Part::Actor(t) | Part::Wp(t) | Part::Feature(t) | Part::Lane(t) => {
                    t.clone()
                }
            })
            .collect();
        let timestamp = s("timestamp");
        let at_ms = timestamp
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis());
        let lane_entered = match event_type {
            "WPCreated" => Some(Lane::Planned),
            "WPStatusChanged" => p("new_status")
                .or_else(|| p("to_lane"))
                .and_then(|l| Lane::from_any(&l)),
            _ => None,
        };
        FeedItem {
            seq,
            event_id: s("event_id").unwrap_or_default(),
            event_type: event_type.to_owned(),
            wp_id: wp,
            feature_slug: feature,
            actor,
            timestamp,
            at_ms,
            lamport_clock: v.get("lamport_clock").and_then(Value::as_i64).unwrap_or(0),
            node_id: s("node_id").unwrap_or_default(),
            sentence,
            lane_entered,
            parts,
        }
    }

    /// The sentence as HTML, with links to the work package and its feature's flow chart.
    pub fn render(&self, team: &str) -> Markup {
        let base = base(team);
        html! {
            @for part in &self.parts {
                @match part {
                    Part::Text(t) => (t),
                    Part::Actor(a) => strong class="actor" { (a) },
                    Part::Quote(q) => q { (q) },
                    Part::Lane(l) => span class={ "lane-tag lane-" (l) } { (l) },
                    Part::Feature(f) => a href={ (base) "features/" (enc(f)) "/flow" } { (f) },
                    Part::Wp(w) => @match &self.feature_slug {
                        Some(f) => a href={ (base) "features/" (enc(f)) "/" (enc(w)) } { (w) },
                        None => span class="wp" { (w) },
                    },
                }
            }
        }
    }
}

fn lane_of(p: &dyn Fn(&str) -> Option<String>, four: &str, seven: &str) -> String {
    p(four)
        .or_else(|| p(seven))
        .map(|l| {
            Lane::from_any(&l)
                .map(|x| x.as_str().to_owned())
                .unwrap_or(l)
        })
        .unwrap_or_else(|| "?".into())
}

fn parts(
    event_type: &str,
    v: &Value,
    p: &dyn Fn(&str) -> Option<String>,
    wp: Option<&str>,
    feature: Option<&str>,
    actor: Option<&str>,
) -> Vec<Part> {
    use Part::*;
    let t = |s: &str| Text(s.to_owned());
    let who = Actor(actor.unwrap_or("someone").to_owned());
    let wp_part = Wp(wp.unwrap_or("a work package").to_owned());
    let mut out = match event_type {
        "WPStatusChanged" => vec![
            who,
            t(" moved "),
            wp_part,
            t(" "),
            Lane(lane_of(p, "previous_status", "from_lane")),
            t(" → "),
            Lane(lane_of(p, "new_status", "to_lane")),
        ],
        "WPCreated" => vec![
            wp_part,
            t(" "),
            Quote(p("title").unwrap_or_default()),
            t(" was created"),
        ],
        "WPAssigned" => {
            let mut v = vec![
                who,
                t(" was assigned "),
                wp_part,
                t(" for "),
                t(&p("phase").unwrap_or_default()),
            ];
            if let Some(n) = p("retry_count").filter(|n| n != "0") {
                v.push(t(&format!(" (retry {n})")));
            }
            v
        }
        "HistoryAdded" => vec![
            who,
            t(&format!(
                " added a {} to ",
                p("entry_type").unwrap_or_else(|| "note".into())
            )),
            wp_part,
            t(": "),
            Quote(p("entry_content").unwrap_or_default()),
        ],
        "ErrorLogged" => {
            let mut v = vec![
                who,
                t(&format!(
                    " logged a {} error",
                    p("error_type").unwrap_or_default()
                )),
            ];
            if wp.is_some() {
                v.extend([t(" on "), wp_part]);
            }
            v.extend([t(": "), Quote(p("error_message").unwrap_or_default())]);
            v
        }
        "DependencyResolved" => vec![
            t("dependency "),
            Wp(p("dependency_wp_id").unwrap_or_default()),
            t(" of "),
            wp_part,
            t(&format!(
                " was {}",
                p("resolution_type").unwrap_or_default()
            )),
        ],
        "FeatureCreated" => {
            return vec![
                t("feature "),
                Feature(feature.unwrap_or_default().to_owned()),
                t(&format!(
                    " was created with {} work packages, targeting {}",
                    p("wp_count").unwrap_or_else(|| "?".into()),
                    p("target_branch").unwrap_or_else(|| "?".into())
                )),
            ];
        }
        "FeatureCompleted" => {
            let mut v = vec![
                t("feature "),
                Feature(feature.unwrap_or_default().to_owned()),
                t(&format!(
                    " was completed: {} work packages",
                    p("total_wps").unwrap_or_else(|| "?".into())
                )),
            ];
            if let Some(d) = p("total_duration") {
                v.push(t(&format!(" in {d}")));
            }
            return v;
        }
        other => {
            let agg = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
            return vec![
                Text(other.to_owned()),
                t(" on "),
                t(&agg("aggregate_type")),
                t(" "),
                Quote(agg("aggregate_id")),
            ];
        }
    };
    if let Some(f) = feature {
        out.extend([t(" in "), Feature(f.to_owned())]);
    }
    out
}
