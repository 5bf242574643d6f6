//! Typed payloads of the eight event types (PROTOCOL.md, "Payloads").

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::EventType;

/// The four lanes a work package moves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Planned,
    Doing,
    ForReview,
    Done,
}

impl Lane {
    pub const ALL: [Lane; 4] = [Lane::Planned, Lane::Doing, Lane::ForReview, Lane::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Planned => "planned",
            Lane::Doing => "doing",
            Lane::ForReview => "for_review",
            Lane::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Lane> {
        Lane::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Maps a lane of either the 4-lane or the later 7-lane form onto the 4 lanes
    /// (PROTOCOL.md: claimed→planned, in_progress→doing, blocked→doing, canceled→planned).
    pub fn from_any(s: &str) -> Option<Lane> {
        Lane::parse(s).or_else(|| SevenLane::parse(s).map(SevenLane::four_lane))
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The later 7-lane form that other clients of the era send (`from_lane`/`to_lane`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SevenLane {
    Planned,
    Claimed,
    InProgress,
    ForReview,
    Done,
    Blocked,
    Canceled,
}

impl SevenLane {
    pub fn parse(s: &str) -> Option<SevenLane> {
        Some(match s {
            "planned" => SevenLane::Planned,
            "claimed" => SevenLane::Claimed,
            "in_progress" | "doing" => SevenLane::InProgress,
            "for_review" => SevenLane::ForReview,
            "done" => SevenLane::Done,
            "blocked" => SevenLane::Blocked,
            "canceled" => SevenLane::Canceled,
            _ => return None,
        })
    }

    pub fn four_lane(self) -> Lane {
        match self {
            SevenLane::Planned | SevenLane::Claimed | SevenLane::Canceled => Lane::Planned,
            SevenLane::InProgress | SevenLane::Blocked => Lane::Doing,
            SevenLane::ForReview => Lane::ForReview,
            SevenLane::Done => Lane::Done,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentPhase {
    Implementation,
    Review,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryEntryType {
    Note,
    Review,
    Error,
    Comment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    Validation,
    Runtime,
    Network,
    Auth,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyResolution {
    Completed,
    Skipped,
    Merged,
}

/// The typed payload of each of the eight event types. Serialises to exactly the field names
/// PROTOCOL.md gives; optional fields are omitted when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Payload {
    WPStatusChanged {
        wp_id: String,
        previous_status: Lane,
        new_status: Lane,
        changed_by: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        feature_slug: Option<String>,
    },
    WPCreated {
        wp_id: String,
        title: String,
        feature_slug: String,
        dependencies: Vec<String>,
    },
    WPAssigned {
        wp_id: String,
        agent_id: String,
        phase: AssignmentPhase,
        retry_count: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        feature_slug: Option<String>,
    },
    FeatureCreated {
        feature_slug: String,
        feature_number: String,
        target_branch: String,
        wp_count: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        created_at: Option<String>,
    },
    FeatureCompleted {
        feature_slug: String,
        total_wps: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        completed_at: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        total_duration: Option<String>,
    },
    HistoryAdded {
        wp_id: String,
        entry_type: HistoryEntryType,
        entry_content: String,
        author: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        feature_slug: Option<String>,
    },
    ErrorLogged {
        error_type: ErrorType,
        error_message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        wp_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stack_trace: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
    },
    DependencyResolved {
        wp_id: String,
        dependency_wp_id: String,
        resolution_type: DependencyResolution,
    },
}

impl Payload {
    pub fn event_type(&self) -> EventType {
        match self {
            Payload::WPStatusChanged { .. } => EventType::WPStatusChanged,
            Payload::WPCreated { .. } => EventType::WPCreated,
            Payload::WPAssigned { .. } => EventType::WPAssigned,
            Payload::FeatureCreated { .. } => EventType::FeatureCreated,
            Payload::FeatureCompleted { .. } => EventType::FeatureCompleted,
            Payload::HistoryAdded { .. } => EventType::HistoryAdded,
            Payload::ErrorLogged { .. } => EventType::ErrorLogged,
            Payload::DependencyResolved { .. } => EventType::DependencyResolved,
        }
    }

    /// The payload as the JSON object that goes into the envelope.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // Every variant is a struct of plain fields; serialisation cannot fail or produce
            // anything but an object.
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_lane_maps_onto_four() {
        assert_eq!(Lane::from_any("claimed"), Some(Lane::Planned));
        assert_eq!(Lane::from_any("in_progress"), Some(Lane::Doing));
        assert_eq!(Lane::from_any("blocked"), Some(Lane::Doing));
        assert_eq!(Lane::from_any("canceled"), Some(Lane::Planned));
        assert_eq!(Lane::from_any("for_review"), Some(Lane::ForReview));
        assert_eq!(Lane::from_any("nope"), None);
    }

    #[test]
    fn payload_serialises_protocol_field_names() {
        let p = Payload::WPAssigned {
            wp_id: "WP02".into(),
            agent_id: "claude".into(),
            phase: AssignmentPhase::Review,
            retry_count: 1,
            feature_slug: None,
        };
        let m = p.to_map();
        assert_eq!(m["phase"], "review");
        assert_eq!(m["retry_count"], 1);
        assert!(!m.contains_key("feature_slug"));
    }
}
