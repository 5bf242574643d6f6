//! Lane changes and what follows a work package reaching `done`. Every lane change of every
//! command goes through [`change_lane`], so the previous lane is always the one derived from
//! the log, and status changes never edit files.

use serde::Serialize;

use super::{WorkflowError, Workspace};
use crate::event::{DependencyResolution, Lane, Payload};
use crate::project::{Feature, WorkPackage};

/// One recorded lane change.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub feature: String,
    pub wp_id: String,
    pub previous_lane: Lane,
    pub new_lane: Lane,
    pub changed_by: String,
}

/// Parses a lane given on the command line.
pub fn parse_lane(given: &str) -> Result<Lane, WorkflowError> {
    let norm = given.trim().to_ascii_lowercase().replace('-', "_");
    Lane::parse(&norm).ok_or_else(|| WorkflowError::BadLane {
        given: given.to_owned(),
    })
}

/// Moves `wp` to `to`, refusing a no-op, and records WPStatusChanged with the true previous
/// lane (from the log, else the file's `lane:`).
pub fn change_lane(
    ws: &Workspace,
    feature: &Feature,
    wp: &WorkPackage,
    to: Lane,
    changed_by: &str,
    causation_id: Option<&str>,
) -> Result<Transition, WorkflowError> {
    let from = ws.lane(feature, wp)?;
    if from == to {
        return Err(WorkflowError::NoOpMove {
            wp: wp.id.clone(),
            lane: to.to_string(),
        });
    }
    ws.emit(
        &Payload::WPStatusChanged {
            wp_id: wp.id.clone(),
            previous_status: from,
            new_status: to,
            changed_by: changed_by.to_owned(),
            feature_slug: Some(feature.slug.clone()),
        },
        causation_id,
    );
    Ok(Transition {
        feature: feature.slug.clone(),
        wp_id: wp.id.clone(),
        previous_lane: from,
        new_lane: to,
        changed_by: changed_by.to_owned(),
    })
}

/// What reaching `done` led to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Completion {
    /// Work packages whose dependency on this one was resolved.
    pub resolved: Vec<String>,
    /// Work packages that became ready to start (every dependency done).
    pub unblocked: Vec<String>,
    /// Whether this completed the feature (FeatureCompleted recorded).
    pub feature_completed: bool,
}

/// Moves `wp` to done and records what follows: DependencyResolved for every dependent (the
/// first time the WP reaches done), and FeatureCompleted when every WP of the feature is done.
pub fn complete(
    ws: &Workspace,
    feature: &Feature,
    wp: &WorkPackage,
    changed_by: &str,
    causation_id: Option<&str>,
) -> Result<(Transition, Completion), WorkflowError> {
    let first_time = !ws
        .state()?
        .wp(&feature.slug, &wp.id)
        .is_some_and(|f| f.ever_done);
    let transition = change_lane(ws, feature, wp, Lane::Done, changed_by, causation_id)?;
    let mut completion = Completion::default();
    if first_time {
        for dependent in feature.dependents(&wp.id) {
            ws.emit(
                &Payload::DependencyResolved {
                    wp_id: dependent.id.clone(),
                    dependency_wp_id: wp.id.clone(),
                    resolution_type: DependencyResolution::Completed,
                },
                causation_id,
            );
            completion.resolved.push(dependent.id.clone());
            if ready(ws, feature, dependent)? {
                completion.unblocked.push(dependent.id.clone());
            }
        }
    }
    completion.feature_completed = complete_feature(ws, feature, causation_id)?;
    Ok((transition, completion))
}

/// Whether every dependency of `wp` is done and `wp` itself is still planned.
pub fn ready(ws: &Workspace, feature: &Feature, wp: &WorkPackage) -> Result<bool, WorkflowError> {
    if ws.lane(feature, wp)? != Lane::Planned {
        return Ok(false);
    }
    for dep in &wp.dependencies {
        let dep = feature.work_package(dep)?;
        if ws.lane(feature, dep)? != Lane::Done {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Records FeatureCompleted if every WP is done and it was not recorded before.
fn complete_feature(
    ws: &Workspace,
    feature: &Feature,
    causation_id: Option<&str>,
) -> Result<bool, WorkflowError> {
    if feature.work_packages.is_empty() {
        return Ok(false);
    }
    for wp in &feature.work_packages {
        if ws.lane(feature, wp)? != Lane::Done {
            return Ok(false);
        }
    }
    let started = {
        let state = ws.state()?;
        let facts = state.feature(&feature.slug);
        if facts.is_some_and(|f| f.completed) {
            return Ok(false);
        }
        facts
            .and_then(|f| f.created_at.clone().or_else(|| f.first_seen.clone()))
            .or_else(|| feature.created_at.clone())
    };
    let now = chrono::Utc::now();
    let total_duration = started
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
        .map(|s| format_duration(now.signed_duration_since(s).num_seconds()));
    ws.emit(
        &Payload::FeatureCompleted {
            feature_slug: feature.slug.clone(),
            total_wps: u32::try_from(feature.work_packages.len()).unwrap_or(u32::MAX),
            completed_at: Some(crate::event::now_rfc3339()),
            total_duration,
        },
        causation_id,
    );
    Ok(true)
}

/// `8h 30m`, `2d 4h 10m`, `0h 0m`.
pub fn format_duration(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    let (days, hours, mins) = (minutes / 1440, (minutes / 60) % 24, minutes % 60);
    if days > 0 {
        format!("{days}d {hours}h {mins}m")
    } else {
        format!("{hours}h {mins}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_spec() {
        assert_eq!(format_duration(8 * 3600 + 30 * 60 + 12), "8h 30m");
        assert_eq!(format_duration(2 * 86400 + 4 * 3600 + 600), "2d 4h 10m");
        assert_eq!(format_duration(-5), "0h 0m");
    }

    #[test]
    fn lanes_parse_leniently_but_strictly() {
        assert_eq!(parse_lane("for-review").unwrap(), Lane::ForReview);
        assert_eq!(parse_lane("DONE").unwrap(), Lane::Done);
        assert!(parse_lane("bogus").is_err());
    }
}
