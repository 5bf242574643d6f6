//! The dashboard's reads and browser sessions on PostgreSQL: the queries of
//! `store/dashboard/` in PostgreSQL's dialect, over the same projections (which the shared
//! ingest keeps current). The folding of rows into features and flow buckets is shared.

use postgres::Row;
use postgres::types::ToSql;

use super::super::dashboard::flow::{FlowBucket, WIDTHS_MS, accumulate, width_for};
use super::super::dashboard::queries::{FeatureLane, fold_features};
use super::super::dashboard::{
    ActivityFilter, BoardCard, BoardFilter, BrowserSession, DashboardCounts, FeatureRow, Transition,
};
use super::super::{StoreError, StoredEvent, unix_now};
use super::Postgres;

const CARD_COLUMNS: &str = "SELECT w.project_uuid, f.project_slug, w.feature_slug, w.wp_id,
        w.lane, w.title, w.last_actor, w.lane_since_ms
     FROM work_packages w LEFT JOIN dashboard_features f
       ON f.team_slug = w.team_slug AND f.project_uuid = w.project_uuid
      AND f.feature_slug = w.feature_slug
     WHERE w.team_slug = $1";

fn card(r: &Row) -> BoardCard {
    BoardCard {
        project_uuid: r.get(0),
        project_slug: r.get(1),
        feature_slug: r.get(2),
        wp_id: r.get(3),
        lane: r.get(4),
        title: r.get(5),
        last_actor: r.get(6),
        lane_since_ms: r.get(7),
    }
}

fn stored(r: &Row) -> StoredEvent {
    StoredEvent {
        seq: r.get(0),
        event_type: r.get(1),
        envelope: r.get(2),
    }
}

/// `base` with ` AND column = $n` for every filter given, and the arguments.
fn with_filters<'a>(
    base: &str,
    mut args: Vec<&'a (dyn ToSql + Sync)>,
    filters: &'a [(&str, &Option<String>)],
) -> (String, Vec<&'a (dyn ToSql + Sync)>) {
    let mut sql = base.to_owned();
    for (column, value) in filters {
        if let Some(v) = value {
            args.push(v);
            sql.push_str(&format!(" AND {column} = ${}", args.len()));
        }
    }
    (sql, args)
}

impl Postgres {
    /// Counts of projects, features, work packages and events of the team.
    pub fn dashboard_counts(&self, team_slug: &str) -> Result<DashboardCounts, StoreError> {
        self.with(|db, client| {
            let r = client
                .query_one(
                    "SELECT
                       (SELECT count(*) FROM (SELECT project_uuid FROM work_packages
                          WHERE team_slug = $1 UNION SELECT project_uuid FROM dashboard_features
                          WHERE team_slug = $1) AS p),
                       (SELECT count(*) FROM (SELECT project_uuid, feature_slug FROM work_packages
                          WHERE team_slug = $1 AND feature_slug != ''
                          UNION SELECT project_uuid, feature_slug FROM dashboard_features
                          WHERE team_slug = $1) AS f),
                       (SELECT count(*) FROM work_packages WHERE team_slug = $1),
                       coalesce((SELECT events FROM dashboard_teams WHERE team_slug = $1), 0)",
                    &[&team_slug],
                )
                .map_err(|x| db.error(x))?;
            Ok(DashboardCounts {
                projects: r.get(0),
                features: r.get(1),
                work_packages: r.get(2),
                events: r.get(3),
            })
        })
    }

    /// The board's cards, by feature then work package.
    pub fn board(
        &self,
        team_slug: &str,
        filter: &BoardFilter,
    ) -> Result<Vec<BoardCard>, StoreError> {
        let filters = [
            ("w.project_uuid", &filter.project_uuid),
            ("w.feature_slug", &filter.feature_slug),
            ("w.lane", &filter.lane),
        ];
        let (mut sql, args) = with_filters(CARD_COLUMNS, vec![&team_slug], &filters);
        sql.push_str(" ORDER BY w.feature_slug, w.wp_id, w.project_uuid");
        self.with(|db, client| {
            let rows = client.query(&sql, &args).map_err(|x| db.error(x))?;
            Ok(rows.iter().map(card).collect())
        })
    }

    /// Every feature of the team with its work packages per lane and its last activity.
    pub fn features(&self, team_slug: &str) -> Result<Vec<FeatureRow>, StoreError> {
        self.with(|db, client| {
            let rows = client
                .query(
                    "SELECT w.project_uuid, f.project_slug, w.feature_slug, w.lane, count(*),
                            f.last_at_ms
                     FROM work_packages w LEFT JOIN dashboard_features f
                       ON f.team_slug = w.team_slug AND f.project_uuid = w.project_uuid
                      AND f.feature_slug = w.feature_slug
                     WHERE w.team_slug = $1
                     GROUP BY w.project_uuid, w.feature_slug, w.lane, f.project_slug, f.last_at_ms
                     ORDER BY w.feature_slug, w.project_uuid",
                    &[&team_slug],
                )
                .map_err(|x| db.error(x))?;
            Ok(fold_features(
                rows.iter()
                    .map(|r| FeatureLane {
                        project_uuid: r.get(0),
                        project_slug: r.get(1),
                        feature_slug: r.get(2),
                        lane: r.get(3),
                        count: r.get(4),
                        last_at_ms: r.get(5),
                    })
                    .collect(),
            ))
        })
    }

    /// The activity feed: up to `limit` events of the team older than `before` (a `seq`),
    /// newest first, matching every filter given. One range of the activity index that
    /// matches the filters (the same indexes as SQLite's; PostgreSQL's planner picks it).
    pub fn dashboard_activity(
        &self,
        team_slug: &str,
        filter: &ActivityFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        let limit = limit as i64;
        let filters = [
            ("event_type", &filter.event_type),
            ("wp_id", &filter.wp_id),
            ("feature_slug", &filter.feature_slug),
            ("actor", &filter.actor),
        ];
        let (mut sql, mut args) = with_filters(
            "SELECT seq, event_type, envelope FROM events WHERE team_slug = $1 AND seq < $2",
            vec![&team_slug, &before],
            &filters,
        );
        args.push(&limit);
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", args.len()));
        self.with(|db, client| {
            let rows = client.query(&sql, &args).map_err(|x| db.error(x))?;
            Ok(rows.iter().map(stored).collect())
        })
    }

    /// The events of one work package (at most `limit`, oldest first by server order): the
    /// ones filed under `feature_slug` and the ones that name no feature.
    pub fn work_package_events(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        wp_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.with(|db, client| {
            let rows = client
                .query(
                    "SELECT seq, event_type, envelope FROM events
                     WHERE team_slug = $1 AND project_uuid = $2 AND wp_id = $4
                       AND (feature_slug = $3 OR feature_slug IS NULL)
                     ORDER BY seq LIMIT $5",
                    &[
                        &team_slug,
                        &project_uuid,
                        &feature_slug,
                        &wp_id,
                        &(limit as i64),
                    ],
                )
                .map_err(|x| db.error(x))?;
            Ok(rows.iter().map(stored).collect())
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
        let sql = format!(
            "{CARD_COLUMNS} AND w.project_uuid = $2 AND w.feature_slug = $3 AND w.wp_id = $4"
        );
        self.with(|db, client| {
            let row = client
                .query_opt(&sql, &[&team_slug, &project_uuid, &feature_slug, &wp_id])
                .map_err(|x| db.error(x))?;
            Ok(row.as_ref().map(card))
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
        self.with(|db, client| {
            let rows = client
                .query(
                    "SELECT seq, wp_id, at_ms, lane FROM dashboard_transitions
                     WHERE team_slug = $1 AND project_uuid = $2 AND feature_slug = $3
                     ORDER BY seq LIMIT $4",
                    &[&team_slug, &project_uuid, &feature_slug, &(limit as i64)],
                )
                .map_err(|x| db.error(x))?;
            Ok(rows
                .iter()
                .map(|r| Transition {
                    seq: r.get(0),
                    wp_id: r.get(1),
                    at_ms: r.get(2),
                    lane: r.get(3),
                })
                .collect())
        })
    }

    /// The projects that have `feature_slug` (usually one), with their slug.
    pub fn feature_projects(
        &self,
        team_slug: &str,
        feature_slug: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        self.with(|db, client| {
            let rows = client
                .query(
                    "SELECT project_uuid, max(project_slug) FROM (
                       SELECT project_uuid, NULL::text AS project_slug FROM work_packages
                       WHERE team_slug = $1 AND feature_slug = $2
                       UNION ALL SELECT project_uuid, project_slug FROM dashboard_features
                       WHERE team_slug = $1 AND feature_slug = $2) AS p
                     GROUP BY project_uuid ORDER BY project_uuid",
                    &[&team_slug, &feature_slug],
                )
                .map_err(|x| db.error(x))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Records a new browser session (and forgets expired ones).
    pub fn create_browser_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.with(|db, client| {
            let e = |x| db.error(x);
            client
                .execute(
                    "DELETE FROM dashboard_sessions WHERE expires_at <= $1",
                    &[&unix_now()],
                )
                .map_err(e)?;
            client
                .execute(
                    "INSERT INTO dashboard_sessions VALUES ($1, $2, $3, $4)",
                    &[&token_hash, &username, &csrf, &expires_at],
                )
                .map_err(e)?;
            Ok(())
        })
    }

    /// The live session with this token hash, if any.
    pub fn browser_session(&self, token_hash: &str) -> Result<Option<BrowserSession>, StoreError> {
        self.with(|db, client| {
            let row = client
                .query_opt(
                    "SELECT s.username, u.team_slug, s.csrf FROM dashboard_sessions s
                     JOIN users u ON u.username = s.username
                     WHERE s.token_hash = $1 AND s.expires_at > $2 AND NOT u.disabled",
                    &[&token_hash, &unix_now()],
                )
                .map_err(|x| db.error(x))?;
            Ok(row.map(|r| BrowserSession {
                username: r.get(0),
                team_slug: r.get(1),
                csrf: r.get(2),
            }))
        })
    }

    /// Ends a browser session (logout). Unknown tokens are fine.
    pub fn end_browser_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.with(|db, client| {
            client
                .execute(
                    "DELETE FROM dashboard_sessions WHERE token_hash = $1",
                    &[&token_hash],
                )
                .map_err(|x| db.error(x))?;
            Ok(())
        })
    }

    /// The cumulative flow of one feature from its buckets of `width_ms`.
    pub fn feature_flow_buckets(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        width_ms: i64,
    ) -> Result<Vec<FlowBucket>, StoreError> {
        self.with(|db, client| {
            let rows = client
                .query(
                    "SELECT bucket, planned, doing, for_review, done FROM dashboard_flow
                     WHERE team_slug = $1 AND project_uuid = $2 AND feature_slug = $3
                       AND width_ms = $4
                     ORDER BY bucket",
                    &[&team_slug, &project_uuid, &feature_slug, &width_ms],
                )
                .map_err(|x| db.error(x))?;
            Ok(accumulate(
                rows.iter()
                    .map(|r| (r.get(0), [r.get(1), r.get(2), r.get(3), r.get(4)])),
                width_ms,
            ))
        })
    }

    /// The cumulative flow of one feature at the finest bucket width that gives at most
    /// `columns` buckets from its first transition to `now_ms`, and that width.
    pub fn feature_flow(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        columns: i64,
        now_ms: i64,
    ) -> Result<(i64, Vec<FlowBucket>), StoreError> {
        let first: Option<i64> = self.with(|db, client| {
            Ok(client
                .query_opt(
                    "SELECT bucket FROM dashboard_flow
                     WHERE team_slug = $1 AND project_uuid = $2 AND feature_slug = $3
                       AND width_ms = $4 ORDER BY bucket LIMIT 1",
                    &[&team_slug, &project_uuid, &feature_slug, &WIDTHS_MS[0]],
                )
                .map_err(|x| db.error(x))?
                .map(|r| r.get(0)))
        })?;
        let width = width_for(first, columns, now_ms);
        Ok((
            width,
            self.feature_flow_buckets(team_slug, project_uuid, feature_slug, width)?,
        ))
    }
}
