//! The one path every incoming event takes, from a batch or from a WebSocket: validate, check
//! the team, deduplicate, store, fan out.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::{EventType, LOCAL_TEAM, Strictness, lane, validate};

use super::AppState;
use super::envelope;
use super::fanout::SubscriberId;
use super::store::dashboard::EventFacts;
use super::store::{IncomingEvent, InsertOutcome, StoreError, WpEffect};

/// The status of one event in a batch response or a WebSocket ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Duplicate,
    Rejected,
}

/// The result of one event, in the shape PROTOCOL.md gives for batch results.
#[derive(Debug, Clone, Serialize)]
pub struct EventResult {
    pub event_id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EventResult {
    fn rejected(event_id: String, error: String) -> EventResult {
        EventResult {
            event_id,
            status: Status::Rejected,
            error: Some(error),
        }
    }
}

/// Processes events for `team_slug` in order: every one gets a result, the accepted ones are
/// stored in one transaction, and those newly stored are published to the team's fan-out
/// subscribers except `origin` (the one that sent them, if any).
///
/// Each element is the text of one envelope exactly as the client sent it (that is what gets
/// stored and served back). They are parsed one at a time, with bounds
/// ([`envelope::parse`]), so a batch never holds more than one parsed envelope, and only the
/// accepted ones are copied.
///
/// Blocking: call it from `spawn_blocking`.
pub fn ingest(
    state: &AppState,
    team_slug: &str,
    texts: &[&str],
    origin: Option<SubscriberId>,
) -> Result<Vec<EventResult>, StoreError> {
    let mut results = Vec::with_capacity(texts.len());
    let mut accepted = Vec::with_capacity(texts.len());
    let mut slots = Vec::with_capacity(texts.len());
    for text in texts {
        let value = match envelope::parse(text) {
            Ok(value) => value,
            Err(e) => {
                results.push(EventResult::rejected(
                    String::new(),
                    format!("the event is not valid JSON or too large: {e}"),
                ));
                continue;
            }
        };
        // Only accepted events are copied out of the request body.
        match prepare(&value, text, team_slug) {
            Ok(event) => {
                slots.push(results.len());
                results.push(EventResult {
                    event_id: event.event_id.clone(),
                    status: Status::Success,
                    error: None,
                });
                accepted.push(event);
            }
            Err(error) => results.push(EventResult::rejected(event_id_of(&value), error)),
        }
    }
    let outcomes = state.store.insert_events(team_slug, &accepted)?;
    let mut stored = Vec::new();
    for ((slot, outcome), event) in slots.into_iter().zip(outcomes).zip(accepted) {
        match outcome {
            InsertOutcome::Stored(_) => stored.push(event.envelope),
            InsertOutcome::Duplicate => results[slot].status = Status::Duplicate,
            InsertOutcome::ForeignId => {
                results[slot] = EventResult::rejected(
                    event.event_id,
                    "event_id is already used by another event on this server; \
                     event ids must be unique ULIDs"
                        .into(),
                )
            }
        }
    }
    if !stored.is_empty() {
        state.fanout.publish(team_slug, origin, &stored);
    }
    Ok(results)
}

/// The `event_id` of an element, whatever it is, for the result of a rejected element.
fn event_id_of(value: &Value) -> String {
    match value.get("event_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Validates one envelope and extracts what the store indexes. The error is the complete list
/// of violations, so that a client can fix all of them at once.
fn prepare(value: &Value, envelope: &str, team_slug: &str) -> Result<IncomingEvent, String> {
    validate(value, Strictness::Server).map_err(|report| report.to_string())?;
    let obj = value
        .as_object()
        .ok_or_else(|| "the event must be a JSON object".to_owned())?;
    // Live frames are `{"type":"event", ...envelope}`: a `type` of its own would let the
    // envelope pass for another message type with a last-key-wins parser.
    if obj.contains_key("type") {
        return Err(
            "type: not an envelope field (it is reserved for WebSocket message types)".into(),
        );
    }
    if let Some(Value::String(claimed)) = obj.get("team_slug")
        && claimed != LOCAL_TEAM
        && claimed != team_slug
    {
        return Err(format!(
            "team_slug '{claimed}' does not match the authenticated team '{team_slug}'"
        ));
    }
    let text = |key: &str| obj.get(key).and_then(Value::as_str).unwrap_or_default();
    let lamport = obj
        .get("lamport_clock")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let lamport_clock = i64::try_from(lamport).map_err(|_| {
        format!(
            "lamport_clock: must be at most {} (got {lamport})",
            i64::MAX
        )
    })?;
    let empty = Map::new();
    let payload = obj
        .get("payload")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let payload_text = |key: &str| payload.get(key).and_then(Value::as_str).map(str::to_owned);
    let event_type = text("event_type");
    let known = EventType::parse(event_type);
    let feature_slug = payload_text("feature_slug").or_else(|| {
        matches!(
            known,
            Some(EventType::FeatureCreated | EventType::FeatureCompleted)
        )
        .then(|| text("aggregate_id").to_owned())
    });
    let effect = match known {
        Some(EventType::WPCreated) => WpEffect::Created {
            feature_slug: feature_slug.clone().unwrap_or_default(),
        },
        Some(EventType::WPStatusChanged) => match lane::target_lane(payload) {
            Some(lane) => WpEffect::Moved {
                feature_slug: feature_slug.clone(),
                lane,
            },
            None => WpEffect::None,
        },
        _ => WpEffect::None,
    };
    Ok(IncomingEvent {
        event_id: text("event_id").to_owned(),
        event_type: event_type.to_owned(),
        lamport_clock,
        node_id: text("node_id").to_owned(),
        project_uuid: text("project_uuid").to_owned(),
        feature_slug,
        wp_id: payload_text("wp_id"),
        effect,
        facts: EventFacts::of(obj),
        envelope: envelope.to_owned(),
    })
}
