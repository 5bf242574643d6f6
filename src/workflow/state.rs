//! Workflow state derived from the event log: the current lane of every work package, which
//! WPs and features have been created or completed, and which commits were already recorded.
//!
//! Applying an event is commutative (lanes keep the event latest in `(lamport_clock, node_id)`
//! order, everything else is a set), so the state can be built from the chains in any order
//! and extended incrementally with only the events added since (see `state_cache`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::{Event, EventType, Lane, lane};

/// How many recorded commit ids are remembered per work package (newest by clock), for the
/// post-commit hook's de-duplication.
const COMMITS_REMEMBERED: usize = 64;

/// Where a work package's lane came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneMark {
    pub lane: Lane,
    pub lamport_clock: u64,
    pub node_id: String,
    pub event_id: String,
    pub changed_by: Option<String>,
}

/// What the log says about one work package.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WpFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<LaneMark>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    /// Whether it ever reached `done` (DependencyResolved is emitted only the first time).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ever_done: bool,
    /// Short ids of commits recorded by the post-commit hook, with their clocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<(u64, String)>,
}

/// What the log says about one feature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureFacts {
    /// `created_at` of its FeatureCreated event (or that event's timestamp).
    pub created_at: Option<String>,
    /// The earliest timestamp of any event about it.
    pub first_seen: Option<String>,
    pub completed: bool,
}

/// The derived state of the whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowState {
    /// feature slug (`""` for events that name none) → WP id → facts.
    pub work_packages: BTreeMap<String, BTreeMap<String, WpFacts>>,
    pub features: BTreeMap<String, FeatureFacts>,
}

/// The parts of an event that the state needs.
pub struct EventView<'a> {
    pub event_type: &'a str,
    pub payload: &'a Map<String, Value>,
    pub lamport_clock: u64,
    pub node_id: &'a str,
    pub event_id: &'a str,
    pub timestamp: &'a str,
}

impl<'a> From<&'a Event> for EventView<'a> {
    fn from(e: &'a Event) -> Self {
        EventView {
            event_type: &e.event_type,
            payload: &e.payload,
            lamport_clock: e.lamport_clock,
            node_id: &e.node_id,
            event_id: &e.event_id,
            timestamp: &e.timestamp,
        }
    }
}

impl WorkflowState {
    /// The lane the log gives work package `wp` of `feature`, if any status event names it.
    /// Events that name no feature count for every feature.
    pub fn lane(&self, feature: &str, wp: &str) -> Option<&LaneMark> {
        let named = self.wp(feature, wp).and_then(|f| f.lane.as_ref());
        let unnamed = self.wp("", wp).and_then(|f| f.lane.as_ref());
        match (named, unnamed) {
            (Some(a), Some(b)) => Some(
                if (b.lamport_clock, &b.node_id) > (a.lamport_clock, &a.node_id) {
                    b
                } else {
                    a
                },
            ),
            (a, b) => a.or(b),
        }
    }

    pub fn wp(&self, feature: &str, wp: &str) -> Option<&WpFacts> {
        self.work_packages.get(feature).and_then(|m| m.get(wp))
    }

    pub fn feature(&self, feature: &str) -> Option<&FeatureFacts> {
        self.features.get(feature)
    }

    /// Whether the post-commit hook already recorded commit `short_id` on this WP.
    pub fn commit_recorded(&self, feature: &str, wp: &str, short_id: &str) -> bool {
        self.wp(feature, wp)
            .is_some_and(|f| f.commits.iter().any(|(_, c)| c == short_id))
    }

    fn wp_mut(&mut self, feature: &str, wp: &str) -> &mut WpFacts {
        self.work_packages
            .entry(feature.to_owned())
            .or_default()
            .entry(wp.to_owned())
            .or_default()
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, e: EventView<'_>) {
        let s = |k: &str| e.payload.get(k).and_then(Value::as_str);
        let feature = s("feature_slug").unwrap_or("");
        if !feature.is_empty() {
            self.note_feature_time(feature, e.timestamp);
        }
        match EventType::parse(e.event_type) {
            Some(EventType::WPStatusChanged) => {
                let lane = lane::target_lane(e.payload);
                let (Some(lane), Some(wp)) = (lane, s("wp_id")) else {
                    return;
                };
                let mark = LaneMark {
                    lane,
                    lamport_clock: e.lamport_clock,
                    node_id: e.node_id.to_owned(),
                    event_id: e.event_id.to_owned(),
                    changed_by: s("changed_by").or_else(|| s("actor")).map(str::to_owned),
                };
                let facts = self.wp_mut(feature, wp);
                facts.ever_done |= lane == Lane::Done;
                let newer = facts.lane.as_ref().is_none_or(|old| {
                    lane::supersedes(
                        (mark.lamport_clock, &mark.node_id),
                        (old.lamport_clock, &old.node_id),
                    )
                });
                if newer {
                    facts.lane = Some(mark);
                }
            }
            Some(EventType::WPCreated) => {
                if let Some(wp) = s("wp_id") {
                    self.wp_mut(feature, wp).created = true;
                }
            }
            Some(EventType::FeatureCreated) => {
                let created = s("created_at").unwrap_or(e.timestamp).to_owned();
                let facts = self.features.entry(feature.to_owned()).or_default();
                facts.created_at = Some(created);
            }
            Some(EventType::FeatureCompleted) => {
                self.features
                    .entry(feature.to_owned())
                    .or_default()
                    .completed = true;
            }
            Some(EventType::HistoryAdded) => {
                let short = s("entry_content")
                    .and_then(|c| c.strip_prefix("commit "))
                    .and_then(|c| c.split_whitespace().next());
                if let (Some(short), Some(wp)) = (short, s("wp_id")) {
                    let facts = self.wp_mut(feature, wp);
                    if !facts.commits.iter().any(|(_, c)| c == short) {
                        facts.commits.push((e.lamport_clock, short.to_owned()));
                        facts.commits.sort_by_key(|c| std::cmp::Reverse(c.0));
                        facts.commits.truncate(COMMITS_REMEMBERED);
                    }
                }
            }
            _ => {}
        }
    }

    fn note_feature_time(&mut self, feature: &str, timestamp: &str) {
        let facts = self.features.entry(feature.to_owned()).or_default();
        let earlier = facts
            .first_seen
            .as_deref()
            .is_none_or(|old| parse_time(timestamp) < parse_time(old));
        if earlier {
            facts.first_seen = Some(timestamp.to_owned());
        }
    }
}

/// A timestamp as seconds (with millis) since the epoch; unparseable sorts last.
pub fn parse_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(state: &mut WorkflowState, t: &str, payload: Value, clock: u64, node: &str) {
        let Value::Object(p) = payload else { panic!() };
        state.apply(EventView {
            event_type: t,
            payload: &p,
            lamport_clock: clock,
            node_id: node,
            event_id: "E",
            timestamp: "2026-02-05T15:08:07.123+00:00",
        });
    }

    #[test]
    fn latest_status_wins_in_any_application_order() {
        let mut s = WorkflowState::default();
        let f = "001-demo";
        apply(
            &mut s,
            "WPStatusChanged",
            json!({"wp_id":"WP01","previous_status":"doing","new_status":"for_review","feature_slug":f}),
            5,
            "b",
        );
        apply(
            &mut s,
            "WPStatusChanged",
            json!({"wp_id":"WP01","previous_status":"planned","new_status":"doing","feature_slug":f}),
            3,
            "a",
        );
        assert_eq!(s.lane(f, "WP01").unwrap().lane, Lane::ForReview);
        // An event without a feature counts, when it is later.
        apply(
            &mut s,
            "WPStatusChanged",
            json!({"wp_id":"WP01","from_lane":"for_review","to_lane":"done"}),
            9,
            "c",
        );
        assert_eq!(s.lane(f, "WP01").unwrap().lane, Lane::Done);
        assert!(!s.wp(f, "WP01").unwrap().ever_done);
    }

    #[test]
    fn remembers_recorded_commits() {
        let mut s = WorkflowState::default();
        apply(
            &mut s,
            "HistoryAdded",
            json!({"wp_id":"WP02","entry_type":"note","entry_content":"commit abc123def456 Fix","author":"x","feature_slug":"001-demo"}),
            4,
            "a",
        );
        assert!(s.commit_recorded("001-demo", "WP02", "abc123def456"));
        assert!(!s.commit_recorded("001-demo", "WP01", "abc123def456"));
    }
}
