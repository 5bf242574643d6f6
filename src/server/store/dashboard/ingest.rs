//! Keeping the dashboard's projections current as each event is stored, inside the batch's
//! transaction: a few indexed writes per event, never a read of other events.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::super::events::{IncomingEvent, WpEffect};
use super::super::ingest_tx::{IngestTx, TransitionRow, WpKey};
use super::super::{StoreError, unix_now};
use super::flow;

/// What the dashboard needs from an envelope besides what the store already indexes,
/// extracted once at ingest (the envelope is parsed there anyway).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFacts {
    /// Who did it: `changed_by`, `actor`, `agent_id` or `author` of the payload.
    pub actor: Option<String>,
    /// The title of a `WPCreated`.
    pub title: Option<String>,
    /// The event's own timestamp in milliseconds since the epoch, if it parses. Only shown
    /// and used for durations; ordering stays `(lamport_clock, node_id)`.
    pub at_ms: Option<i64>,
    pub project_slug: Option<String>,
}

impl EventFacts {
    /// The event's time in milliseconds, or now when its timestamp did not parse.
    pub fn at_ms_or_now(&self) -> i64 {
        self.at_ms.unwrap_or_else(|| unix_now() * 1000)
    }

    /// The facts of one envelope (a JSON object already validated).
    pub fn of(envelope: &Map<String, Value>) -> EventFacts {
        let payload = envelope.get("payload").and_then(Value::as_object);
        let from_payload = |key: &str| {
            payload
                .and_then(|p| p.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let actor = ["changed_by", "actor", "agent_id", "author"]
            .iter()
            .find_map(|k| from_payload(k));
        let at_ms = envelope
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis());
        EventFacts {
            actor,
            title: from_payload("title"),
            at_ms,
            project_slug: envelope
                .get("project_slug")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// What ingest writes once per batch instead of once per event: the cumulative-flow bucket
/// changes ([`flow::FlowDeltas`]) and the features' latest activity. A batch usually holds
/// many events of one feature; each used to upsert its `dashboard_features` row. Safe to
/// defer: nothing in ingest reads `dashboard_features`, and [`BatchProjection::flush`] runs in
/// the batch's transaction, before it commits.
#[derive(Debug, Default)]
pub struct BatchProjection {
    flow: flow::FlowDeltas,
    /// `(project_uuid, feature_slug)` → the latest event of the batch touching that feature.
    features: HashMap<(String, String), FeatureTouch>,
}

#[derive(Debug)]
struct FeatureTouch {
    /// The latest project slug named by the batch's events of the feature, if any.
    project_slug: Option<String>,
    last_seq: i64,
    last_at_ms: i64,
}

impl BatchProjection {
    /// Writes what was summed (call once, before the transaction commits).
    pub fn flush(self, tx: &mut impl IngestTx, team_slug: &str) -> Result<(), StoreError> {
        self.flow.flush(tx)?;
        for ((project_uuid, feature), t) in self.features {
            tx.feature_touch(
                (team_slug, &project_uuid, &feature),
                t.project_slug.as_deref(),
                t.last_seq,
                t.last_at_ms,
            )?;
        }
        Ok(())
    }

    fn touch(&mut self, project_uuid: &str, feature: &str, e: &IncomingEvent, seq: i64, at: i64) {
        let t = self
            .features
            .entry((project_uuid.to_owned(), feature.to_owned()))
            .or_insert(FeatureTouch {
                project_slug: None,
                last_seq: seq,
                last_at_ms: at,
            });
        // Events are stored in the order of the batch, so the last one is the latest.
        t.last_seq = seq;
        t.last_at_ms = at;
        if e.facts.project_slug.is_some() {
            t.project_slug.clone_from(&e.facts.project_slug);
        }
    }
}

/// Updates the projections for one event just stored with sequence `seq` (after the board's
/// own update, so that `work_packages.updated_seq = seq` tells whether this event set the
/// lane). The board's upsert of a lane change also sets its `last_actor` and `lane_since_ms`
/// (`events::apply_effect`), in the same statement.
pub fn project_event(
    tx: &mut impl IngestTx,
    team_slug: &str,
    e: &IncomingEvent,
    seq: i64,
    batch: &mut BatchProjection,
) -> Result<(), StoreError> {
    let at_ms = e.facts.at_ms_or_now();
    let feature = match (&e.feature_slug, &e.wp_id) {
        (Some(f), _) if !f.is_empty() => Some(f.clone()),
        (_, Some(wp)) => feature_of(tx, team_slug, &e.project_uuid, wp)?,
        _ => None,
    };
    if let Some(feature) = feature.as_deref().filter(|f| !f.is_empty()) {
        batch.touch(&e.project_uuid, feature, e, seq, at_ms);
    }
    let Some(wp_id) = e.wp_id.as_deref() else {
        return Ok(());
    };
    let lane = match &e.effect {
        WpEffect::Created { feature_slug } => {
            let wp = WpKey {
                team_slug,
                project_uuid: &e.project_uuid,
                feature_slug,
                wp_id,
            };
            tx.wp_set_title(wp, e.facts.title.as_deref(), seq, at_ms)?;
            Some("planned")
        }
        WpEffect::Moved { lane, .. } => Some(lane.as_str()),
        WpEffect::None => {
            if e.event_type == "WPAssigned"
                && let (Some(actor), Some(f)) = (&e.facts.actor, &feature)
            {
                let wp = WpKey {
                    team_slug,
                    project_uuid: &e.project_uuid,
                    feature_slug: f,
                    wp_id,
                };
                tx.wp_set_actor(wp, actor)?;
            }
            None
        }
    };
    if let Some(lane) = lane {
        let feature = feature.unwrap_or_default();
        let transition = TransitionRow {
            wp: WpKey {
                team_slug,
                project_uuid: &e.project_uuid,
                feature_slug: &feature,
                wp_id,
            },
            seq,
            at_ms,
            lane,
        };
        if tx.transition_insert(&transition)? {
            flow::record(tx, &transition, &mut batch.flow)?;
        }
    }
    Ok(())
}

/// Adds `stored` to the team's event count.
pub fn count_stored(
    tx: &mut impl IngestTx,
    team_slug: &str,
    stored: i64,
) -> Result<(), StoreError> {
    if stored > 0 {
        tx.team_count_add(team_slug, stored)?;
    }
    Ok(())
}

/// The feature of a work package named without one: the board's only row for it, if any.
fn feature_of(
    tx: &mut impl IngestTx,
    team_slug: &str,
    project_uuid: &str,
    wp_id: &str,
) -> Result<Option<String>, StoreError> {
    tx.wp_latest_feature(team_slug, project_uuid, wp_id)
}
