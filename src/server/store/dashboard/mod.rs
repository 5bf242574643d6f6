//! The dashboard's projections: what the team dashboard reads, kept up to date as events are
//! stored so that no page ever scans the team's events.
//!
//! * `work_packages` (the board) gains the title, the last actor and when the current lane
//!   was entered.
//! * `dashboard_teams` counts events per team; `dashboard_features` remembers each feature's
//!   project slug and last activity.
//! * `dashboard_transitions` records every lane a work package entered, per feature, for the
//!   cumulative-flow chart.
//! * `events` gains an `actor` column and indexes by type, work package, feature and actor,
//!   so that every activity filter is an index range read from a `seq` cursor.
//! * `dashboard_sessions` holds browser logins (hashed cookie tokens with their CSRF token).

mod ingest;
mod queries;
mod sessions;

pub use ingest::EventFacts;
pub(super) use ingest::{count_stored, project_event};
pub use queries::{
    ActivityFilter, BoardCard, BoardFilter, DashboardCounts, FeatureRow, Transition,
};
pub use sessions::BrowserSession;

/// Migration 2: the dashboard's projections, filled from the events already stored.
pub(super) const MIGRATION: &str = r#"
    ALTER TABLE events ADD COLUMN actor TEXT;
    UPDATE events SET actor = (
        SELECT value FROM json_each(envelope, '$.payload')
        WHERE key IN ('changed_by', 'actor', 'agent_id', 'author') AND type = 'text'
        ORDER BY CASE key WHEN 'changed_by' THEN 0 WHEN 'actor' THEN 1
                          WHEN 'agent_id' THEN 2 ELSE 3 END
        LIMIT 1);
    CREATE INDEX events_team_type_seq ON events(team_slug, event_type, seq);
    CREATE INDEX events_team_wp_seq ON events(team_slug, wp_id, seq);
    CREATE INDEX events_team_feature_seq ON events(team_slug, feature_slug, seq);
    CREATE INDEX events_team_actor_seq ON events(team_slug, actor, seq);

    ALTER TABLE work_packages ADD COLUMN title TEXT;
    ALTER TABLE work_packages ADD COLUMN last_actor TEXT;
    ALTER TABLE work_packages ADD COLUMN lane_since_ms INTEGER;
    UPDATE work_packages SET title = (
        SELECT json_extract(e.envelope, '$.payload.title') FROM events e
        WHERE e.team_slug = work_packages.team_slug AND e.wp_id = work_packages.wp_id
          AND e.event_type = 'WPCreated' AND e.project_uuid = work_packages.project_uuid
          AND e.feature_slug = work_packages.feature_slug
        ORDER BY e.seq DESC LIMIT 1);
    UPDATE work_packages SET
        last_actor = (SELECT e.actor FROM events e WHERE e.seq = work_packages.updated_seq),
        lane_since_ms = (SELECT CAST((julianday(json_extract(e.envelope, '$.timestamp'))
                                      - 2440587.5) * 86400000 AS INTEGER)
                         FROM events e WHERE e.seq = work_packages.updated_seq);

    CREATE TABLE dashboard_teams (
        team_slug  TEXT PRIMARY KEY,
        events     INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO dashboard_teams SELECT team_slug, count(*) FROM events GROUP BY team_slug;

    CREATE TABLE dashboard_features (
        team_slug     TEXT NOT NULL,
        project_uuid  TEXT NOT NULL,
        feature_slug  TEXT NOT NULL,
        project_slug  TEXT,
        last_seq      INTEGER NOT NULL,
        last_at_ms    INTEGER,
        PRIMARY KEY (team_slug, project_uuid, feature_slug)
    ) WITHOUT ROWID;
    -- SQLite takes the bare columns of a max() aggregate from the row with the maximum.
    INSERT INTO dashboard_features
        SELECT team_slug, project_uuid, feature_slug,
               json_extract(envelope, '$.project_slug'), max(seq),
               CAST((julianday(json_extract(envelope, '$.timestamp')) - 2440587.5)
                    * 86400000 AS INTEGER)
        FROM events
        WHERE feature_slug IS NOT NULL AND feature_slug != ''
        GROUP BY team_slug, project_uuid, feature_slug;

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
    INSERT INTO dashboard_transitions
        SELECT team_slug, project_uuid, coalesce(feature_slug, ''), seq, wp_id,
               coalesce(CAST((julianday(json_extract(envelope, '$.timestamp')) - 2440587.5)
                             * 86400000 AS INTEGER), received_at * 1000),
               CASE coalesce(json_extract(envelope, '$.payload.new_status'),
                             json_extract(envelope, '$.payload.to_lane'), 'planned')
                   WHEN 'doing' THEN 'doing' WHEN 'in_progress' THEN 'doing'
                   WHEN 'blocked' THEN 'doing' WHEN 'for_review' THEN 'for_review'
                   WHEN 'done' THEN 'done' ELSE 'planned' END
        FROM events
        WHERE event_type IN ('WPCreated', 'WPStatusChanged') AND wp_id IS NOT NULL;

    CREATE TABLE dashboard_sessions (
        token_hash  TEXT PRIMARY KEY,
        username    TEXT NOT NULL REFERENCES users(username),
        csrf        TEXT NOT NULL,
        expires_at  INTEGER NOT NULL
    );
"#;
