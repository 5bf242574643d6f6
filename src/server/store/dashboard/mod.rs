//! The dashboard's projections: what the team dashboard reads, kept up to date as events are
//! stored so that no page ever scans the team's events.
//!
//! * `work_packages` (the board) gains the title, the last actor and when the current lane
//!   was entered.
//! * `dashboard_teams` counts events per team; `dashboard_features` remembers each feature's
//!   project slug and last activity.
//! * `dashboard_transitions` records every lane a work package entered, per feature, and
//!   `dashboard_flow` how many work packages entered or left each lane per minute, hour and
//!   day (migration 6, see `flow`), for the cumulative-flow chart.
//! * `events` gains an `actor` column and indexes by type, work package, feature and actor,
//!   so that every activity filter is an index range read from a `seq` cursor (migration 5
//!   replaced the first set; see `activity` for which index answers which filters).
//! * `dashboard_sessions` holds browser logins (hashed cookie tokens with their CSRF token).

mod activity;
pub mod flow;
mod ingest;
pub(super) mod queries;
mod sessions;

pub use ingest::{BatchProjection, EventFacts};
pub(super) use ingest::{count_stored, project_event};
pub use queries::{
    ActivityFilter, BoardCard, BoardFilter, DashboardCounts, FeatureRow, Transition,
};
pub use sessions::BrowserSession;

/// Migration 5: every activity index ends in `(event_type, seq)` and there is one per set of
/// the other filters, so each combination of filters is an index range from the cursor
/// (`activity`). Replaces the single-column indexes of migration 3, which left a second
/// filter to be checked row by row.
pub(super) const ACTIVITY_INDEXES: &str = r#"
    DROP INDEX events_team_wp_seq;
    DROP INDEX events_team_feature_seq;
    DROP INDEX events_team_actor_seq;
    CREATE INDEX events_team_feature_type_seq ON events(team_slug, feature_slug, event_type, seq);
    CREATE INDEX events_team_actor_type_seq ON events(team_slug, actor, event_type, seq);
    CREATE INDEX events_team_feature_wp_type_seq
        ON events(team_slug, feature_slug, wp_id, event_type, seq);
    CREATE INDEX events_team_wp_actor_type_seq ON events(team_slug, wp_id, actor, event_type, seq);
    CREATE INDEX events_team_feature_actor_type_seq
        ON events(team_slug, feature_slug, actor, event_type, seq);
"#;

/// Fills the projections from the stored events, the way ingest would have (one pass per
/// projection; run once, by the migration).
macro_rules! backfill {
    () => {
        r#"
    UPDATE events SET actor = (
        SELECT value FROM json_each(envelope, '$.payload')
        WHERE key IN ('changed_by', 'actor', 'agent_id', 'author') AND type = 'text'
          AND value != ''
        ORDER BY CASE key WHEN 'changed_by' THEN 0 WHEN 'actor' THEN 1
                          WHEN 'agent_id' THEN 2 ELSE 3 END
        LIMIT 1);
    UPDATE work_packages SET title = (
        SELECT json_extract(e.envelope, '$.payload.title') FROM events e
        WHERE e.team_slug = work_packages.team_slug AND e.wp_id = work_packages.wp_id
          AND e.event_type = 'WPCreated' AND e.project_uuid = work_packages.project_uuid
          AND e.feature_slug = work_packages.feature_slug
        ORDER BY e.seq DESC LIMIT 1);
    UPDATE work_packages SET
        last_actor = (SELECT e.actor FROM events e
                      WHERE e.seq = work_packages.updated_seq
                        AND e.event_type = 'WPStatusChanged'),
        lane_since_ms = (SELECT CAST(round((julianday(json_extract(e.envelope, '$.timestamp'))
                                      - 2440587.5) * 86400000) AS INTEGER)
                         FROM events e WHERE e.seq = work_packages.updated_seq);
    INSERT INTO dashboard_teams SELECT team_slug, count(*) FROM events GROUP BY team_slug;
    -- SQLite takes the bare columns of a max() aggregate from the row with the maximum.
    INSERT INTO dashboard_features
        SELECT team_slug, project_uuid, feature_slug,
               json_extract(envelope, '$.project_slug'), max(seq),
               CAST(round((julianday(json_extract(envelope, '$.timestamp')) - 2440587.5)
                    * 86400000) AS INTEGER)
        FROM events
        WHERE feature_slug IS NOT NULL AND feature_slug != ''
        GROUP BY team_slug, project_uuid, feature_slug;
    INSERT INTO dashboard_transitions
        SELECT team_slug, project_uuid, coalesce(feature_slug, ''), seq, wp_id,
               coalesce(CAST(round((julianday(json_extract(envelope, '$.timestamp'))
                                    - 2440587.5) * 86400000) AS INTEGER), received_at * 1000),
               CASE coalesce(json_extract(envelope, '$.payload.new_status'),
                             json_extract(envelope, '$.payload.to_lane'), 'planned')
                   WHEN 'doing' THEN 'doing' WHEN 'in_progress' THEN 'doing'
                   WHEN 'blocked' THEN 'doing' WHEN 'for_review' THEN 'for_review'
                   WHEN 'done' THEN 'done' ELSE 'planned' END
        FROM events
        WHERE event_type IN ('WPCreated', 'WPStatusChanged') AND wp_id IS NOT NULL;
    "#
    };
}

/// The dashboard's migration: its tables and columns, then [`backfill!`] from the events
/// already stored.
pub(super) const MIGRATION: &str = concat!(
    r#"
    ALTER TABLE events ADD COLUMN actor TEXT;
    CREATE INDEX events_team_type_seq ON events(team_slug, event_type, seq);
    CREATE INDEX events_team_wp_seq ON events(team_slug, wp_id, seq);
    CREATE INDEX events_team_feature_seq ON events(team_slug, feature_slug, seq);
    CREATE INDEX events_team_actor_seq ON events(team_slug, actor, seq);
    ALTER TABLE work_packages ADD COLUMN title TEXT;
    ALTER TABLE work_packages ADD COLUMN last_actor TEXT;
    ALTER TABLE work_packages ADD COLUMN lane_since_ms INTEGER;
    CREATE TABLE dashboard_teams (
        team_slug  TEXT PRIMARY KEY,
        events     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE dashboard_features (
        team_slug     TEXT NOT NULL,
        project_uuid  TEXT NOT NULL,
        feature_slug  TEXT NOT NULL,
        project_slug  TEXT,
        last_seq      INTEGER NOT NULL,
        last_at_ms    INTEGER,
        PRIMARY KEY (team_slug, project_uuid, feature_slug)
    ) WITHOUT ROWID;
    CREATE TABLE dashboard_transitions (
        team_slug     TEXT NOT NULL,
        project_uuid  TEXT NOT NULL,
        feature_slug  TEXT NOT NULL,
        seq           INTEGER NOT NULL,
        wp_id         TEXT NOT NULL,
        at_ms         INTEGER NOT NULL,
        lane          TEXT NOT NULL,
        PRIMARY KEY (team_slug, project_uuid, feature_slug, seq)
    ) WITHOUT ROWID;
    CREATE TABLE dashboard_sessions (
        token_hash  TEXT PRIMARY KEY,
        username    TEXT NOT NULL REFERENCES users(username),
        csrf        TEXT NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    "#,
    backfill!()
);

#[cfg(test)]
pub(super) mod tests {
    use rusqlite::Connection;

    use super::super::{IncomingEvent, WpEffect, sqlite::Sqlite};
    use super::*;
    use crate::event::Lane;

    pub(in super::super) fn event(
        i: i64,
        wp: &str,
        event_type: &str,
        effect: WpEffect,
        actor: &str,
    ) -> IncomingEvent {
        let (payload, title) = match &effect {
            WpEffect::Moved { lane, .. } => (
                format!(
                    r#"{{"wp_id":"{wp}","new_status":"{lane}","changed_by":"{actor}","feature_slug":"001-demo"}}"#
                ),
                None,
            ),
            _ => (
                format!(
                    r#"{{"wp_id":"{wp}","title":"T {wp}","feature_slug":"001-demo","dependencies":[]}}"#
                ),
                Some(format!("T {wp}")),
            ),
        };
        let at_ms = 1_770_000_000_000 + i * 60_000;
        let ts = chrono::DateTime::from_timestamp_millis(at_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false))
            .unwrap_or_default();
        IncomingEvent {
            event_id: format!("E{i}"),
            event_type: event_type.into(),
            lamport_clock: i,
            node_id: "aaaaaaaaaaaa".into(),
            project_uuid: "p".into(),
            feature_slug: Some("001-demo".into()),
            wp_id: Some(wp.into()),
            facts: EventFacts {
                actor: (event_type == "WPStatusChanged").then(|| actor.to_owned()),
                title,
                at_ms: Some(at_ms),
                project_slug: Some("demo".into()),
            },
            effect,
            envelope: format!(
                r#"{{"event_id":"E{i}","timestamp":"{ts}","project_slug":"demo","payload":{payload}}}"#
            ),
        }
    }

    fn snapshot(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        for sql in [
            "SELECT wp_id, lane, title, last_actor, lane_since_ms FROM work_packages ORDER BY wp_id",
            "SELECT team_slug, events FROM dashboard_teams",
            "SELECT feature_slug, project_slug, last_seq, last_at_ms FROM dashboard_features",
            "SELECT seq, wp_id, at_ms, lane FROM dashboard_transitions ORDER BY seq",
            "SELECT seq, actor FROM events ORDER BY seq",
        ] {
            let mut stmt = conn.prepare(sql).expect("prepare");
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i)))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .expect("query");
            out.extend(rows.map(|r| r.expect("row")));
        }
        out
    }

    #[test]
    fn the_migration_backfill_rebuilds_what_ingest_keeps() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.db");
        let store = Sqlite::open(&path).expect("open");
        let moved = |lane| WpEffect::Moved {
            feature_slug: Some("001-demo".into()),
            lane,
        };
        let created = || WpEffect::Created {
            feature_slug: "001-demo".into(),
        };
        store
            .insert_events(
                "acme",
                &[
                    event(1, "WP01", "WPCreated", created(), ""),
                    event(2, "WP02", "WPCreated", created(), ""),
                    event(3, "WP01", "WPStatusChanged", moved(Lane::Doing), "claude"),
                    event(
                        4,
                        "WP01",
                        "WPStatusChanged",
                        moved(Lane::ForReview),
                        "robin",
                    ),
                ],
            )
            .expect("insert");
        drop(store);
        let conn = Connection::open(&path).expect("open");
        let kept = snapshot(&conn);
        assert!(kept.iter().any(|r| r.contains("robin")), "{kept:?}");
        // A database of before the dashboard: the projections are empty.
        conn.execute_batch(
            "UPDATE work_packages SET title = NULL, last_actor = NULL, lane_since_ms = NULL;
             UPDATE events SET actor = NULL;
             DELETE FROM dashboard_teams; DELETE FROM dashboard_features;
             DELETE FROM dashboard_transitions;",
        )
        .expect("clear");
        conn.execute_batch(backfill!()).expect("backfill");
        assert_eq!(snapshot(&conn), kept);
    }
}
