//! The dashboard's reads. Each is an index range on a projection (or on `events` from a `seq`
//! cursor), bounded by a limit: the cost does not grow with the team's history.

use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use serde::Serialize;

use super::super::{StoreError, StoredEvent, sqlite::Sqlite};

/// Sizes shown on the overview.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DashboardCounts {
    pub projects: i64,
    pub features: i64,
    pub work_packages: i64,
    pub events: i64,
}

/// One card of the board.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BoardCard {
    pub project_uuid: String,
    pub project_slug: Option<String>,
    pub feature_slug: String,
    pub wp_id: String,
    pub lane: String,
    pub title: Option<String>,
    pub last_actor: Option<String>,
    /// When the work package entered its lane (event time, ms since the epoch).
    pub lane_since_ms: Option<i64>,
}

/// Which cards the board shows; `None` means all.
#[derive(Debug, Clone, Default)]
pub struct BoardFilter {
    pub project_uuid: Option<String>,
    pub feature_slug: Option<String>,
    pub lane: Option<String>,
}

/// One feature with its progress and last activity.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FeatureRow {
    pub project_uuid: String,
    pub project_slug: Option<String>,
    pub feature_slug: String,
    /// Work packages per lane: planned, doing, for_review, done.
    pub lanes: [i64; 4],
    pub total: i64,
    pub last_at_ms: Option<i64>,
}

/// Which events the activity feed shows; `None` means all.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub event_type: Option<String>,
    pub wp_id: Option<String>,
    pub feature_slug: Option<String>,
    pub actor: Option<String>,
}

/// A lane a work package entered.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Transition {
    pub seq: i64,
    pub wp_id: String,
    pub at_ms: i64,
    pub lane: String,
}

/// A board card from the columns project_uuid, project_slug, feature_slug, wp_id, lane,
/// title, last_actor, lane_since_ms.
fn card(r: &Row<'_>) -> rusqlite::Result<BoardCard> {
    Ok(BoardCard {
        project_uuid: r.get(0)?,
        project_slug: r.get(1)?,
        feature_slug: r.get(2)?,
        wp_id: r.get(3)?,
        lane: r.get(4)?,
        title: r.get(5)?,
        last_actor: r.get(6)?,
        lane_since_ms: r.get(7)?,
    })
}

/// The events of one work package: `?1` team, `?2` project, `?3` feature, `?4` work
/// package, `?5` limit.
const WORK_PACKAGE_EVENTS: &str = "SELECT seq, event_type, envelope FROM events
       INDEXED BY events_team_feature_wp_type_seq
     WHERE team_slug = ?1 AND feature_slug = ?3 AND wp_id = ?4 AND project_uuid = ?2
     UNION ALL
     SELECT seq, event_type, envelope FROM events
       INDEXED BY events_team_feature_wp_type_seq
     WHERE team_slug = ?1 AND feature_slug IS NULL AND wp_id = ?4 AND project_uuid = ?2
     ORDER BY seq LIMIT ?5";

/// One row of the features query: a feature's work packages in one lane.
pub(in super::super) struct FeatureLane {
    pub project_uuid: String,
    pub project_slug: Option<String>,
    pub feature_slug: String,
    pub lane: String,
    pub count: i64,
    pub last_at_ms: Option<i64>,
}

/// The features from their per-lane rows, which come grouped by feature.
pub(in super::super) fn fold_features(rows: Vec<FeatureLane>) -> Vec<FeatureRow> {
    let mut features: Vec<FeatureRow> = Vec::new();
    for r in rows {
        let same = features
            .last()
            .is_some_and(|f| f.project_uuid == r.project_uuid && f.feature_slug == r.feature_slug);
        if !same {
            features.push(FeatureRow {
                project_uuid: r.project_uuid,
                project_slug: r.project_slug,
                feature_slug: r.feature_slug,
                lanes: [0; 4],
                total: 0,
                last_at_ms: r.last_at_ms,
            });
        }
        if let Some(f) = features.last_mut() {
            if let Some(i) = lane_index(&r.lane) {
                f.lanes[i] += r.count;
            }
            f.total += r.count;
        }
    }
    features
}

/// Index of a lane in [`FeatureRow::lanes`].
pub fn lane_index(lane: &str) -> Option<usize> {
    ["planned", "doing", "for_review", "done"]
        .iter()
        .position(|l| *l == lane)
}

impl Sqlite {
    /// Counts of projects, features, work packages and events of the team.
    pub fn dashboard_counts(&self, team_slug: &str) -> Result<DashboardCounts, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT
                   (SELECT count(*) FROM (SELECT project_uuid FROM work_packages
                      WHERE team_slug = ?1 UNION SELECT project_uuid FROM dashboard_features
                      WHERE team_slug = ?1)),
                   (SELECT count(*) FROM (SELECT project_uuid, feature_slug FROM work_packages
                      WHERE team_slug = ?1 AND feature_slug != ''
                      UNION SELECT project_uuid, feature_slug FROM dashboard_features
                      WHERE team_slug = ?1)),
                   (SELECT count(*) FROM work_packages WHERE team_slug = ?1),
                   coalesce((SELECT events FROM dashboard_teams WHERE team_slug = ?1), 0)",
                [team_slug],
                |r| {
                    Ok(DashboardCounts {
                        projects: r.get(0)?,
                        features: r.get(1)?,
                        work_packages: r.get(2)?,
                        events: r.get(3)?,
                    })
                },
            )?)
        })
    }

    /// The board's cards, by feature then work package.
    pub fn board(
        &self,
        team_slug: &str,
        filter: &BoardFilter,
    ) -> Result<Vec<BoardCard>, StoreError> {
        let mut sql = String::from(
            "SELECT w.project_uuid, f.project_slug, w.feature_slug, w.wp_id, w.lane, w.title,
                    w.last_actor, w.lane_since_ms
             FROM work_packages w LEFT JOIN dashboard_features f
               ON f.team_slug = w.team_slug AND f.project_uuid = w.project_uuid
              AND f.feature_slug = w.feature_slug
             WHERE w.team_slug = ?1",
        );
        let mut args = vec![SqlValue::from(team_slug.to_owned())];
        for (column, value) in [
            ("w.project_uuid", &filter.project_uuid),
            ("w.feature_slug", &filter.feature_slug),
            ("w.lane", &filter.lane),
        ] {
            if let Some(v) = value {
                args.push(SqlValue::from(v.clone()));
                sql.push_str(&format!(" AND {column} = ?{}", args.len()));
            }
        }
        sql.push_str(" ORDER BY w.feature_slug, w.wp_id, w.project_uuid");
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), card)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Every feature of the team with its work packages per lane and its last activity.
    pub fn features(&self, team_slug: &str) -> Result<Vec<FeatureRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT w.project_uuid, f.project_slug, w.feature_slug, w.lane, count(*),
                        f.last_at_ms
                 FROM work_packages w LEFT JOIN dashboard_features f
                   ON f.team_slug = w.team_slug AND f.project_uuid = w.project_uuid
                  AND f.feature_slug = w.feature_slug
                 WHERE w.team_slug = ?1
                 GROUP BY w.project_uuid, w.feature_slug, w.lane
                 ORDER BY w.feature_slug, w.project_uuid",
            )?;
            let rows = stmt.query_map([team_slug], |r| {
                Ok(FeatureLane {
                    project_uuid: r.get(0)?,
                    project_slug: r.get(1)?,
                    feature_slug: r.get(2)?,
                    lane: r.get(3)?,
                    count: r.get(4)?,
                    last_at_ms: r.get(5)?,
                })
            })?;
            Ok(fold_features(rows.collect::<Result<Vec<_>, _>>()?))
        })
    }

    /// The activity feed: up to `limit` events of the team older than `before` (a `seq`),
    /// newest first, matching every filter given; index ranges from the cursor whatever the
    /// filters (see `activity`).
    pub fn dashboard_activity(
        &self,
        team_slug: &str,
        filter: &ActivityFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|conn| super::activity::read_activity(conn, team_slug, filter, before, limit))
    }

    /// The events of one work package (at most `limit`, oldest first by server order): the
    /// ones filed under `feature_slug` and the ones that name no feature. Two ranges of
    /// `events_team_feature_wp_type_seq`, so only this work package's events are read, never
    /// those of the same id in the team's other features.
    pub fn work_package_events(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        wp_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(WORK_PACKAGE_EVENTS)?;
            let rows = stmt.query_map(
                params![team_slug, project_uuid, feature_slug, wp_id, limit as i64],
                |r| {
                    Ok(StoredEvent {
                        seq: r.get(0)?,
                        event_type: r.get(1)?,
                        envelope: r.get(2)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The board's card of one work package, by its whole key.
    pub fn board_card(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        wp_id: &str,
    ) -> Result<Option<BoardCard>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT w.project_uuid, f.project_slug, w.feature_slug, w.wp_id, w.lane,
                            w.title, w.last_actor, w.lane_since_ms
                     FROM work_packages w LEFT JOIN dashboard_features f
                       ON f.team_slug = w.team_slug AND f.project_uuid = w.project_uuid
                      AND f.feature_slug = w.feature_slug
                     WHERE w.team_slug = ?1 AND w.project_uuid = ?2 AND w.feature_slug = ?3
                       AND w.wp_id = ?4",
                )?
                .query_row(params![team_slug, project_uuid, feature_slug, wp_id], card)
                .optional()?)
        })
    }

    /// The lanes entered by the work packages of one feature, in server order (at most
    /// `limit`).
    pub fn feature_transitions(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, wp_id, at_ms, lane FROM dashboard_transitions
                 WHERE team_slug = ?1 AND project_uuid = ?2 AND feature_slug = ?3
                 ORDER BY seq LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![team_slug, project_uuid, feature_slug, limit as i64],
                |r| {
                    Ok(Transition {
                        seq: r.get(0)?,
                        wp_id: r.get(1)?,
                        at_ms: r.get(2)?,
                        lane: r.get(3)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The projects that have `feature_slug` (usually one), with their slug.
    pub fn feature_projects(
        &self,
        team_slug: &str,
        feature_slug: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT project_uuid, max(project_slug) FROM (
                   SELECT project_uuid, NULL AS project_slug FROM work_packages
                   WHERE team_slug = ?1 AND feature_slug = ?2
                   UNION ALL SELECT project_uuid, project_slug FROM dashboard_features
                   WHERE team_slug = ?1 AND feature_slug = ?2)
                 GROUP BY project_uuid ORDER BY project_uuid",
            )?;
            let rows = stmt.query_map(params![team_slug, feature_slug], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_work_package_timeline_reads_only_that_work_package_of_that_feature() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Sqlite::open(&dir.path().join("s.db")).expect("open");
        let conn = store.writer.lock().expect("writer");
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {WORK_PACKAGE_EVENTS}"))
            .expect("plan");
        let searches: Vec<String> = stmt
            .query_map(params!["acme", "p", "001-demo", "WP07", 10], |r| {
                r.get::<_, String>(3)
            })
            .expect("explain")
            .map(|r| r.expect("row"))
            .filter(|l| l.contains("events"))
            .collect();
        // Two ranges (the feature's, and the events that name no feature), both bound by
        // team, feature and work package: never the id's events in other features.
        assert_eq!(searches.len(), 2, "{searches:?}");
        for line in &searches {
            assert!(
                line.contains(
                    "INDEX events_team_feature_wp_type_seq \
                     (team_slug=? AND feature_slug=? AND wp_id=?)"
                ),
                "{line}"
            );
        }
    }
}
