//! `accept WP`: a reviewed work package is done.

use serde::Serialize;

use super::transition::{self, Completion, Transition};
use super::{WorkflowError, Workspace};
use crate::event::{Lane, new_ulid};

/// What accept recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    #[serde(flatten)]
    pub transition: Transition,
    #[serde(flatten)]
    pub completion: Completion,
}

/// Moves `wp` (or the current worktree's WP) from for_review to done; records
/// DependencyResolved for every WP that depends on it and FeatureCompleted when it was the
/// last one, all with one causation id.
pub fn accept(
    ws: &Workspace,
    feature: Option<&str>,
    wp: Option<&str>,
    agent: Option<&str>,
) -> Result<Accepted, WorkflowError> {
    let feature = ws.feature(feature)?;
    let wp = ws.named_or_current_wp(&feature, wp, "accept")?;
    let lane = ws.lane(&feature, wp)?;
    if lane != Lane::ForReview {
        return Err(WorkflowError::WrongLane {
            wp: wp.id.clone(),
            lane: lane.to_string(),
            action: "accept",
            expected: "for_review",
            help: match lane {
                Lane::Doing => format!("merge it first: `spec-kitty merge {}`", wp.id),
                Lane::Planned => format!("start it first: `spec-kitty implement {}`", wp.id),
                _ => "nothing to do; see the board with `spec-kitty status`".to_owned(),
            },
        });
    }
    let actor = ws.actor(agent);
    let causation = new_ulid();
    let (transition, completion) =
        transition::complete(ws, &feature, wp, &actor, Some(&causation))?;
    Ok(Accepted {
        transition,
        completion,
    })
}
