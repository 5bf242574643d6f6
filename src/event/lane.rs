//! The lane rule, shared by the client's workflow state and the server's board.
//!
//! * A `WPStatusChanged` payload names its target lane as `new_status` (the 4-lane form this
//!   client writes) or `to_lane` (the 7-lane form of other clients), mapped onto the 4 lanes
//!   ([`Lane::from_any`]). Anything else moves nothing.
//! * Of two status changes of one work package, the later in `(lamport_clock, node_id)` order
//!   wins, whatever order they arrive in ([`supersedes`]). The server's SQL upsert encodes the
//!   same comparison (`server/store/events.rs`, tested against this function there).

use serde_json::{Map, Value};

use super::Lane;

/// The lane a `WPStatusChanged` payload moves its work package to, if it names a known one.
pub fn target_lane(payload: &Map<String, Value>) -> Option<Lane> {
    let named = |key: &str| payload.get(key).and_then(Value::as_str);
    named("new_status")
        .or_else(|| named("to_lane"))
        .and_then(Lane::from_any)
}

/// Whether a status change at `(lamport_clock, node_id)` = `new` replaces the one at
/// `current`: strictly later clock, or the same clock and a greater node id.
pub fn supersedes(new: (u64, &str), current: (u64, &str)) -> bool {
    new > current
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn either_lane_form_is_understood_and_the_four_lane_one_wins() {
        let four = payload(json!({"new_status": "for_review"}));
        assert_eq!(target_lane(&four), Some(Lane::ForReview));
        let seven = payload(json!({"to_lane": "in_progress"}));
        assert_eq!(target_lane(&seven), Some(Lane::Doing));
        let both = payload(json!({"new_status": "done", "to_lane": "blocked"}));
        assert_eq!(target_lane(&both), Some(Lane::Done));
        assert_eq!(
            target_lane(&payload(json!({"new_status": "nowhere"}))),
            None
        );
        assert_eq!(target_lane(&payload(json!({"new_status": 3}))), None);
    }

    #[test]
    fn later_clocks_win_and_ties_go_to_the_greater_node() {
        assert!(supersedes((5, "a"), (4, "z")));
        assert!(supersedes((5, "b"), (5, "a")));
        assert!(!supersedes((5, "a"), (5, "a")));
        assert!(!supersedes((4, "z"), (5, "a")));
    }
}
