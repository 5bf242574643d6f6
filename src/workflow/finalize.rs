//! `agent feature finalize-tasks`: announce a feature and its work packages.

use serde::Serialize;

use super::{WorkflowError, Workspace};
use crate::event::{Payload, new_ulid, now_rfc3339};

/// What finalize-tasks recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Finalized {
    pub feature: String,
    pub wp_count: usize,
    /// Whether FeatureCreated was recorded by this run.
    pub feature_created: bool,
    /// WPs announced by this run (WPCreated).
    pub created: Vec<String>,
    /// WPs announced by an earlier run (nothing recorded for them).
    pub already_created: Vec<String>,
    /// Shared by every event of this run; `None` when nothing was recorded.
    pub causation_id: Option<String>,
}

/// Records FeatureCreated and one WPCreated per work package (title, dependencies), all with
/// one causation id. Running it again records only what was not recorded before. The feature
/// is validated first (frontmatter, unknown dependencies, cycles): nothing is recorded for an
/// invalid feature.
pub fn finalize_tasks(ws: &Workspace, feature: Option<&str>) -> Result<Finalized, WorkflowError> {
    let feature = ws.feature(feature)?;
    if feature.work_packages.is_empty() {
        return Err(WorkflowError::bad_argument(
            format!(
                "{} has no work packages (no WPnn-*.md files in {})",
                feature.slug,
                feature.dir.join("tasks").display()
            ),
            "write the work package files first (see docs/reference/workflow.md for the format)",
        ));
    }
    let (feature_known, known): (bool, Vec<bool>) = {
        let state = ws.state()?;
        (
            state
                .feature(&feature.slug)
                .is_some_and(|f| f.created_at.is_some()),
            feature
                .work_packages
                .iter()
                .map(|wp| state.wp(&feature.slug, &wp.id).is_some_and(|f| f.created))
                .collect(),
        )
    };
    let anything_new = !feature_known || known.iter().any(|k| !k);
    let causation = anything_new.then(new_ulid);
    let mut out = Finalized {
        feature: feature.slug.clone(),
        wp_count: feature.work_packages.len(),
        feature_created: false,
        created: Vec::new(),
        already_created: Vec::new(),
        causation_id: causation.clone(),
    };
    if !feature_known {
        let created_at = feature
            .created_at
            .clone()
            .filter(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
            .unwrap_or_else(now_rfc3339);
        ws.emit(
            &Payload::FeatureCreated {
                feature_slug: feature.slug.clone(),
                feature_number: feature.number.clone(),
                target_branch: feature.target_branch.clone(),
                wp_count: u32::try_from(feature.work_packages.len()).unwrap_or(u32::MAX),
                created_at: Some(created_at),
            },
            causation.as_deref(),
        );
        out.feature_created = true;
    }
    for (wp, known) in feature.work_packages.iter().zip(known) {
        if known {
            out.already_created.push(wp.id.clone());
            continue;
        }
        ws.emit(
            &Payload::WPCreated {
                wp_id: wp.id.clone(),
                title: wp.title.clone(),
                feature_slug: feature.slug.clone(),
                dependencies: wp.dependencies.clone(),
            },
            causation.as_deref(),
        );
        out.created.push(wp.id.clone());
    }
    Ok(out)
}
