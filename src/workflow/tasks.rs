//! `agent tasks …`: move a work package between lanes, mark WPs or subtasks, add history.

use serde::Serialize;

use super::transition::{self, Completion, Transition, parse_lane};
use super::{WorkflowError, Workspace};
use crate::event::{HistoryEntryType, Lane, Payload, new_ulid};
use crate::project::tasks_md::{self, SubtaskStatus};
use crate::project::work_package::is_subtask_id;
use crate::project::{Feature, normalize_wp_id};

/// The outcome of a lane change requested by a user or an agent.
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    #[serde(flatten)]
    pub transition: Transition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<Completion>,
}

/// `move-task WP --to LANE [--agent] [--note]`.
pub fn move_task(
    ws: &Workspace,
    feature: Option<&str>,
    wp: &str,
    to: &str,
    agent: Option<&str>,
    note: Option<&str>,
) -> Result<Moved, WorkflowError> {
    let to = parse_lane(to)?;
    let feature = ws.feature(feature)?;
    let wp = feature.work_package(wp)?;
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    let actor = ws.actor(agent);
    let causation = note.map(|_| new_ulid());
    let moved = move_one(ws, &feature, &wp.id, to, &actor, causation.as_deref())?;
    if let Some(note) = note {
        ws.emit(
            &Payload::HistoryAdded {
                wp_id: wp.id.clone(),
                entry_type: HistoryEntryType::Note,
                entry_content: note.to_owned(),
                author: actor,
                feature_slug: Some(feature.slug.clone()),
            },
            causation.as_deref(),
        );
    }
    Ok(moved)
}

/// One lane change; reaching done also resolves dependents and may complete the feature.
fn move_one(
    ws: &Workspace,
    feature: &Feature,
    wp: &str,
    to: Lane,
    actor: &str,
    causation: Option<&str>,
) -> Result<Moved, WorkflowError> {
    let wp = feature.work_package(wp)?;
    if to == Lane::Done {
        let (transition, completion) = transition::complete(ws, feature, wp, actor, causation)?;
        return Ok(Moved {
            transition,
            completion: Some(completion),
        });
    }
    let transition = transition::change_lane(ws, feature, wp, to, actor, causation)?;
    Ok(Moved {
        transition,
        completion: None,
    })
}

/// `add-history WP --note TEXT [--type] [--author]`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryNote {
    pub feature: String,
    pub wp_id: String,
    pub entry_type: HistoryEntryType,
    pub author: String,
}

pub fn parse_entry_type(given: &str) -> Result<HistoryEntryType, WorkflowError> {
    match given.trim().to_ascii_lowercase().as_str() {
        "note" => Ok(HistoryEntryType::Note),
        "review" => Ok(HistoryEntryType::Review),
        "error" => Ok(HistoryEntryType::Error),
        "comment" => Ok(HistoryEntryType::Comment),
        _ => Err(WorkflowError::bad_argument(
            format!("`{given}` is not a history entry type"),
            "use --type note, review, error or comment",
        )),
    }
}

pub fn add_history(
    ws: &Workspace,
    feature: Option<&str>,
    wp: &str,
    note: &str,
    entry_type: &str,
    author: Option<&str>,
) -> Result<HistoryNote, WorkflowError> {
    let entry_type = parse_entry_type(entry_type)?;
    let note = note.trim();
    if note.is_empty() {
        return Err(WorkflowError::bad_argument(
            "the note is empty",
            "say what happened: --note \"Reviewed the parser, two nits\"",
        ));
    }
    let feature = ws.feature(feature)?;
    let wp = feature.work_package(wp)?;
    let author = ws.actor(author);
    ws.emit(
        &Payload::HistoryAdded {
            wp_id: wp.id.clone(),
            entry_type,
            entry_content: note.to_owned(),
            author: author.clone(),
            feature_slug: Some(feature.slug.clone()),
        },
        None,
    );
    Ok(HistoryNote {
        feature: feature.slug.clone(),
        wp_id: wp.id.clone(),
        entry_type,
        author,
    })
}

/// What `mark-status` did to each id.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Marked {
    pub feature: String,
    pub work_packages: Vec<Moved>,
    pub subtasks: Vec<SubtaskChange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubtaskChange {
    pub subtask: String,
    pub wp_id: String,
    pub status: SubtaskStatus,
    /// False when the checkbox was already in that state (nothing recorded).
    pub changed: bool,
}

/// `mark-status ID… --status VALUE`: lanes for WP ids, checkboxes in tasks.md for subtask ids.
/// Every id is validated before anything changes.
pub fn mark_status(
    ws: &Workspace,
    feature: Option<&str>,
    ids: &[String],
    status: &str,
    agent: Option<&str>,
) -> Result<Marked, WorkflowError> {
    if ids.is_empty() {
        return Err(WorkflowError::bad_argument(
            "no ids given",
            "e.g. `spec-kitty agent tasks mark-status T001 T002 --status done`",
        ));
    }
    let feature = ws.feature(feature)?;
    let mut wps: Vec<(String, Lane)> = Vec::new();
    let mut subtasks: Vec<(String, SubtaskStatus)> = Vec::new();
    for id in ids {
        let upper = id.trim().to_ascii_uppercase();
        if is_subtask_id(&upper) {
            let s = SubtaskStatus::parse(&status.trim().to_ascii_lowercase()).ok_or_else(|| {
                WorkflowError::bad_argument(
                    format!("`{status}` is not a subtask status (for {upper})"),
                    "use --status done or --status pending for subtask ids",
                )
            })?;
            subtasks.push((upper, s));
        } else if upper.starts_with("WP") {
            let wp = feature.work_package(&normalize_wp_id(id)?)?;
            let lane = parse_lane(status)?;
            if ws.lane(&feature, wp)? == lane {
                return Err(WorkflowError::NoOpMove {
                    wp: wp.id.clone(),
                    lane: lane.to_string(),
                });
            }
            wps.push((wp.id.clone(), lane));
        } else {
            return Err(WorkflowError::bad_argument(
                format!("`{id}` is neither a work package id (WP01) nor a subtask id (T001)"),
                "see the ids in tasks.md or with `spec-kitty status`",
            ));
        }
    }
    let subtask_plan = plan_subtasks(&feature, &subtasks)?;
    let actor = ws.actor(agent);
    let causation = new_ulid();
    let mut marked = Marked {
        feature: feature.slug.clone(),
        ..Marked::default()
    };
    for (wp, lane) in wps {
        marked
            .work_packages
            .push(move_one(ws, &feature, &wp, lane, &actor, Some(&causation))?);
    }
    marked.subtasks = apply_subtasks(ws, &feature, subtask_plan, &actor, &causation)?;
    Ok(marked)
}

/// Checks every subtask against tasks.md and finds its owner; returns the new text too.
struct SubtaskPlan {
    text: Option<String>,
    changes: Vec<SubtaskChange>,
}

fn plan_subtasks(
    feature: &Feature,
    subtasks: &[(String, SubtaskStatus)],
) -> Result<SubtaskPlan, WorkflowError> {
    if subtasks.is_empty() {
        return Ok(SubtaskPlan {
            text: None,
            changes: Vec::new(),
        });
    }
    let path = feature.tasks_md_path();
    let mut text = tasks_md::read(feature)?;
    let mut changes = Vec::new();
    for (id, status) in subtasks {
        let boxes = tasks_md::checkboxes(&text);
        let Some(current) = boxes.iter().find(|b| &b.subtask == id) else {
            return Err(crate::project::ProjectError::UnknownSubtask {
                path,
                subtask: id.clone(),
            }
            .into());
        };
        let owner = tasks_md::owner(feature, &boxes, id).ok_or_else(|| {
            crate::project::ProjectError::OrphanSubtask {
                path: path.clone(),
                subtask: id.clone(),
            }
        })?;
        let changed = current.status != *status;
        if changed {
            text = tasks_md::set_status(&text, &boxes, id, *status);
        }
        changes.push(SubtaskChange {
            subtask: id.clone(),
            wp_id: owner.to_owned(),
            status: *status,
            changed,
        });
    }
    Ok(SubtaskPlan {
        text: Some(text),
        changes,
    })
}

fn apply_subtasks(
    ws: &Workspace,
    feature: &Feature,
    plan: SubtaskPlan,
    actor: &str,
    causation: &str,
) -> Result<Vec<SubtaskChange>, WorkflowError> {
    let (Some(text), true) = (plan.text, plan.changes.iter().any(|c| c.changed)) else {
        return Ok(plan.changes);
    };
    tasks_md::write(&feature.tasks_md_path(), &text)?;
    for change in plan.changes.iter().filter(|c| c.changed) {
        ws.emit(
            &Payload::HistoryAdded {
                wp_id: change.wp_id.clone(),
                entry_type: HistoryEntryType::Note,
                entry_content: format!("{} marked {}", change.subtask, change.status.as_str()),
                author: actor.to_owned(),
                feature_slug: Some(feature.slug.clone()),
            },
            Some(causation),
        );
    }
    Ok(plan.changes)
}
