//! The kanban board of a feature: every work package in its lane, derived from the log.

use serde::Serialize;

use super::{WorkflowError, Workspace};
use crate::event::Lane;
use crate::project::Feature;

/// One feature's board.
#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub feature: String,
    pub target_branch: String,
    pub completed: bool,
    pub work_packages: Vec<BoardCard>,
}

/// One work package on the board.
#[derive(Debug, Clone, Serialize)]
pub struct BoardCard {
    pub wp_id: String,
    pub title: String,
    pub lane: Lane,
    /// `events` when a status event placed it, `file` when it has none yet.
    pub lane_source: &'static str,
    pub changed_by: Option<String>,
    pub dependencies: Vec<String>,
    /// Dependencies not yet done.
    pub waiting_for: Vec<String>,
    /// Whether its worktree exists.
    pub worktree: bool,
}

impl Board {
    pub fn lane(&self, lane: Lane) -> impl Iterator<Item = &BoardCard> {
        self.work_packages.iter().filter(move |c| c.lane == lane)
    }
}

/// Builds the board of `feature`.
pub fn board(ws: &Workspace, feature: &Feature) -> Result<Board, WorkflowError> {
    let state = ws.state()?;
    let lane_of = |id: &str| {
        let wp = feature.work_packages.iter().find(|w| w.id == id);
        state
            .lane(&feature.slug, id)
            .map(|m| m.lane)
            .or(wp.map(|w| w.file_lane))
            .unwrap_or(Lane::Planned)
    };
    let cards = feature
        .work_packages
        .iter()
        .map(|wp| {
            let mark = state.lane(&feature.slug, &wp.id);
            BoardCard {
                wp_id: wp.id.clone(),
                title: wp.title.clone(),
                lane: lane_of(&wp.id),
                lane_source: if mark.is_some() { "events" } else { "file" },
                changed_by: mark.and_then(|m| m.changed_by.clone()),
                dependencies: wp.dependencies.clone(),
                waiting_for: wp
                    .dependencies
                    .iter()
                    .filter(|d| lane_of(d) != Lane::Done)
                    .cloned()
                    .collect(),
                worktree: ws.wp_worktree(feature, &wp.id).is_dir(),
            }
        })
        .collect();
    Ok(Board {
        feature: feature.slug.clone(),
        target_branch: feature.target_branch.clone(),
        completed: state.feature(&feature.slug).is_some_and(|f| f.completed),
        work_packages: cards,
    })
}

/// The boards of the feature `explicit` names, or of the inferred one, or of every feature when
/// none can be inferred.
pub fn boards(ws: &Workspace, explicit: Option<&str>) -> Result<Vec<Board>, WorkflowError> {
    let project = ws.project();
    match project.resolve_slug(explicit, ws.branch()) {
        Ok(slug) => Ok(vec![board(ws, &project.load_feature(&slug)?)?]),
        Err(crate::project::ProjectError::AmbiguousFeature { .. }) => project
            .feature_slugs()?
            .iter()
            .map(|slug| board(ws, &project.load_feature(slug)?))
            .collect(),
        Err(e) => Err(e.into()),
    }
}
