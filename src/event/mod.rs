//! The event envelope shared by the client and the server (PROTOCOL.md, "Event envelope").
//!
//! An [`Event`] is the unit of everything: it is what a commit under
//! `refs/spec-kitty/events/<node>` carries, what the batch endpoint receives, and what the
//! server stores. This module knows nothing about git or the network; it builds, identifies and
//! validates envelopes.

mod compat;
pub mod lane;
mod payload;
mod validate;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use compat::{Incompatible, from_compatible};
pub use payload::{
    AssignmentPhase, DependencyResolution, ErrorType, HistoryEntryType, Lane, Payload, SevenLane,
};
pub use validate::{
    Strictness, ValidationReport, Violation, is_feature_slug, is_ulid, is_wp_id, validate,
};

/// The schema version every envelope this client writes carries.
pub const SCHEMA_VERSION: &str = "1.0.0";

/// The team slug of an event emitted while not logged in; the server files it under the
/// uploading token's team.
pub const LOCAL_TEAM: &str = "local";

/// The eight event types of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    WPStatusChanged,
    WPCreated,
    WPAssigned,
    FeatureCreated,
    FeatureCompleted,
    HistoryAdded,
    ErrorLogged,
    DependencyResolved,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::WPStatusChanged,
        EventType::WPCreated,
        EventType::WPAssigned,
        EventType::FeatureCreated,
        EventType::FeatureCompleted,
        EventType::HistoryAdded,
        EventType::ErrorLogged,
        EventType::DependencyResolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::WPStatusChanged => "WPStatusChanged",
            EventType::WPCreated => "WPCreated",
            EventType::WPAssigned => "WPAssigned",
            EventType::FeatureCreated => "FeatureCreated",
            EventType::FeatureCompleted => "FeatureCompleted",
            EventType::HistoryAdded => "HistoryAdded",
            EventType::ErrorLogged => "ErrorLogged",
            EventType::DependencyResolved => "DependencyResolved",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The aggregate an event of this type belongs to. `ErrorLogged` is a `WorkPackage` event
    /// only when its payload names a WP, so it needs the payload to decide.
    pub fn aggregate_type(self, payload: &Map<String, Value>) -> AggregateType {
        match self {
            EventType::FeatureCreated | EventType::FeatureCompleted => AggregateType::Feature,
            EventType::ErrorLogged if !payload.contains_key("wp_id") => AggregateType::Feature,
            _ => AggregateType::WorkPackage,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateType {
    WorkPackage,
    Feature,
}

impl AggregateType {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateType::WorkPackage => "WorkPackage",
            AggregateType::Feature => "Feature",
        }
    }
}

/// One event envelope, exactly as PROTOCOL.md lists its fields, in that order.
///
/// `payload` stays a JSON object so that an envelope read back from git or received from an
/// older or newer peer round-trips byte-for-byte in meaning; [`Payload`] is the typed view used
/// when building events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    pub event_type: String,
    pub aggregate_id: String,
    pub aggregate_type: String,
    pub payload: Map<String, Value>,
    pub node_id: String,
    pub lamport_clock: u64,
    pub causation_id: Option<String>,
    pub correlation_id: String,
    pub timestamp: String,
    pub project_uuid: String,
    pub project_slug: Option<String>,
    pub team_slug: String,
    pub schema_version: String,
    pub git_branch: Option<String>,
    pub head_commit_sha: Option<String>,
    pub repo_slug: Option<String>,
}

/// Where an event is emitted from: the parts of the envelope that do not depend on the action.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub node_id: String,
    pub project_uuid: String,
    pub project_slug: Option<String>,
    pub team_slug: String,
    pub git_branch: Option<String>,
    pub head_commit_sha: Option<String>,
    pub repo_slug: Option<String>,
}

impl Event {
    /// Builds a new envelope for `payload` with a fresh ULID and the current time.
    ///
    /// The Lamport clock is left at 0: it is only known inside the append's compare-and-swap
    /// loop, which sets it. `aggregate_id` defaults to what the payload implies (the WP id, or
    /// the feature slug) and can be overridden for `ErrorLogged` without a WP.
    pub fn new(
        payload: &Payload,
        origin: &Origin,
        causation_id: Option<String>,
        aggregate_id: Option<String>,
    ) -> Event {
        let event_type = payload.event_type();
        let map = payload.to_map();
        Event::from_parts(event_type, map, origin, causation_id, aggregate_id)
    }

    /// Builds an envelope from an already-serialised payload (used by `events emit`, whose
    /// payload comes from the command line and is validated afterwards as a whole).
    pub fn from_parts(
        event_type: EventType,
        payload: Map<String, Value>,
        origin: &Origin,
        causation_id: Option<String>,
        aggregate_id: Option<String>,
    ) -> Event {
        let event_id = new_ulid();
        let aggregate_type = event_type.aggregate_type(&payload);
        let implied = match aggregate_type {
            AggregateType::WorkPackage => payload.get("wp_id"),
            AggregateType::Feature => payload.get("feature_slug"),
        }
        .and_then(Value::as_str)
        .map(str::to_owned);
        let correlation_id = causation_id.clone().unwrap_or_else(|| event_id.clone());
        Event {
            event_id,
            event_type: event_type.as_str().to_owned(),
            aggregate_id: aggregate_id.or(implied).unwrap_or_default(),
            aggregate_type: aggregate_type.as_str().to_owned(),
            payload,
            node_id: origin.node_id.clone(),
            lamport_clock: 0,
            causation_id,
            correlation_id,
            timestamp: now_rfc3339(),
            project_uuid: origin.project_uuid.clone(),
            project_slug: origin.project_slug.clone(),
            team_slug: origin.team_slug.clone(),
            schema_version: SCHEMA_VERSION.to_owned(),
            git_branch: origin.git_branch.clone(),
            head_commit_sha: origin.head_commit_sha.clone(),
            repo_slug: origin.repo_slug.clone(),
        }
    }

    /// The known type of this event, if it is one of the eight.
    pub fn known_type(&self) -> Option<EventType> {
        EventType::parse(&self.event_type)
    }

    /// A string field of the payload, if present.
    pub fn payload_str(&self, key: &str) -> Option<&str> {
        self.payload.get(key).and_then(Value::as_str)
    }

    /// The one-line journal summary used as the commit subject, e.g.
    /// `WPStatusChanged WP01 planned → doing`.
    pub fn summary(&self) -> String {
        let p = |k: &str| self.payload_str(k).unwrap_or("?");
        let detail = match self.known_type() {
            Some(EventType::WPStatusChanged) => {
                format!("{} → {}", p("previous_status"), p("new_status"))
            }
            Some(EventType::WPCreated) => one_line(p("title")),
            Some(EventType::WPAssigned) => format!("{} ({})", p("agent_id"), p("phase")),
            Some(EventType::FeatureCreated) => {
                let n = self.payload.get("wp_count").and_then(Value::as_u64);
                format!("{} WPs → {}", n.unwrap_or(0), p("target_branch"))
            }
            Some(EventType::FeatureCompleted) => {
                let n = self.payload.get("total_wps").and_then(Value::as_u64);
                format!("{} WPs done", n.unwrap_or(0))
            }
            Some(EventType::HistoryAdded) => {
                format!("{}: {}", p("entry_type"), one_line(p("entry_content")))
            }
            Some(EventType::ErrorLogged) => {
                format!("{}: {}", p("error_type"), one_line(p("error_message")))
            }
            Some(EventType::DependencyResolved) => {
                format!("{} {}", p("dependency_wp_id"), p("resolution_type"))
            }
            None => String::new(),
        };
        let mut s = format!("{} {}", self.event_type, self.aggregate_id);
        if !detail.is_empty() {
            s.push(' ');
            s.push_str(&detail);
        }
        truncate_chars(&s, 120)
    }

    /// The feature this event belongs to, when it can tell.
    pub fn feature_slug(&self) -> Option<&str> {
        self.payload_str("feature_slug").or_else(|| {
            (self.aggregate_type == AggregateType::Feature.as_str())
                .then_some(self.aggregate_id.as_str())
        })
    }

    /// The work package this event belongs to, when it has one.
    pub fn wp_id(&self) -> Option<&str> {
        self.payload_str("wp_id")
    }

    /// Ordering key of the protocol: `(lamport_clock, node_id)`; timestamps never order.
    pub fn order_key(&self) -> (u64, &str) {
        (self.lamport_clock, self.node_id.as_str())
    }
}

fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_owned()
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// A new ULID in its canonical 26-character upper-case form.
pub fn new_ulid() -> String {
    ulid::Ulid::new().to_string()
}

/// Current time as RFC 3339 UTC with millisecond precision and an explicit `+00:00` offset.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// `node_id` as PROTOCOL.md defines it: the first 12 hex characters of
/// SHA-256(`"<hostname>:<username>:<absolute common git dir>"`).
pub fn node_id(hostname: &str, username: &str, common_git_dir: &str) -> String {
    let digest = Sha256::digest(format!("{hostname}:{username}:{common_git_dir}").as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The host name and user name of this process, as used for [`node_id`].
pub fn host_and_user() -> (String, String) {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    (host, user)
}

/// Parses an envelope from a JSON value without validating it (see [`validate`]).
pub fn from_value(value: Value) -> Result<Event, serde_json::Error> {
    serde_json::from_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_twelve_lowercase_hex_and_stable() {
        let a = node_id("host", "alice", "/repo/.git");
        assert_eq!(a.len(), 12);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(a, node_id("host", "alice", "/repo/.git"));
        assert_ne!(a, node_id("host", "alice", "/other/.git"));
    }

    #[test]
    fn timestamps_are_utc_with_explicit_offset() {
        let t = now_rfc3339();
        assert!(t.ends_with("+00:00"), "{t}");
        assert!(chrono::DateTime::parse_from_rfc3339(&t).is_ok());
    }

    #[test]
    fn correlation_defaults_to_event_id_or_causation() {
        let p = Payload::WPStatusChanged {
            wp_id: "WP01".into(),
            previous_status: Lane::Planned,
            new_status: Lane::Doing,
            changed_by: "alice".into(),
            feature_slug: Some("001-demo".into()),
        };
        let e = Event::new(&p, &Origin::default(), None, None);
        assert_eq!(e.correlation_id, e.event_id);
        assert_eq!(e.aggregate_id, "WP01");
        assert_eq!(e.summary(), "WPStatusChanged WP01 planned → doing");
        let c = new_ulid();
        let e = Event::new(&p, &Origin::default(), Some(c.clone()), None);
        assert_eq!(e.correlation_id, c);
    }
}
