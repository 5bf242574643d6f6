//! [`IngestTx`] on SQLite: ingest's statements on the batch's transaction, each prepared once
//! per connection (`prepare_cached`).

use rusqlite::{OptionalExtension, Transaction, params};

use super::StoreError;
use super::events::IncomingEvent;
use super::ingest_tx::{IngestTx, Move, TransitionRow, WpKey};

/// The batch's open transaction.
pub struct SqliteIngest<'a, 'c> {
    pub tx: &'a Transaction<'c>,
}

impl IngestTx for SqliteIngest<'_, '_> {
    fn insert_event(
        &mut self,
        team_slug: &str,
        e: &IncomingEvent,
        received_at: i64,
    ) -> Result<Option<i64>, StoreError> {
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO events (event_id, team_slug, event_type, lamport_clock, node_id,
                                     project_uuid, feature_slug, wp_id, received_at, envelope,
                                     actor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(event_id) DO NOTHING",
            )?
            .execute(params![
                e.event_id,
                team_slug,
                e.event_type,
                e.lamport_clock,
                e.node_id,
                e.project_uuid,
                e.feature_slug,
                e.wp_id,
                received_at,
                e.envelope,
                e.facts.actor,
            ])?;
        Ok((inserted == 1).then(|| self.tx.last_insert_rowid()))
    }

    fn event_team(&mut self, event_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT team_slug FROM events WHERE event_id = ?1")?
            .query_row([event_id], |r| r.get(0))
            .optional()?)
    }

    fn wp_adopt(&mut self, wp: WpKey<'_>) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE OR IGNORE work_packages SET feature_slug = ?3
                 WHERE team_slug = ?1 AND project_uuid = ?2 AND wp_id = ?4 AND feature_slug = ''",
            )?
            .execute(params![
                wp.team_slug,
                wp.project_uuid,
                wp.feature_slug,
                wp.wp_id
            ])?;
        Ok(())
    }

    fn wp_create(&mut self, wp: WpKey<'_>, seq: i64) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO work_packages (team_slug, project_uuid, feature_slug, wp_id, lane,
                                            lamport_clock, node_id, updated_seq)
                 VALUES (?1, ?2, ?3, ?4, 'planned', 0, '', ?5)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                wp.team_slug,
                wp.project_uuid,
                wp.feature_slug,
                wp.wp_id,
                seq
            ])?;
        Ok(())
    }

    fn wp_move(&mut self, m: &Move<'_>) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO work_packages (team_slug, project_uuid, feature_slug, wp_id, lane,
                                            lamport_clock, node_id, updated_seq, last_actor,
                                            lane_since_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (team_slug, project_uuid, feature_slug, wp_id) DO UPDATE SET
                   lane = excluded.lane, lamport_clock = excluded.lamport_clock,
                   node_id = excluded.node_id, updated_seq = excluded.updated_seq,
                   last_actor = excluded.last_actor, lane_since_ms = excluded.lane_since_ms
                 WHERE (excluded.lamport_clock, excluded.node_id)
                     > (work_packages.lamport_clock, work_packages.node_id)",
            )?
            .execute(params![
                m.team_slug,
                m.project_uuid,
                m.feature_slug,
                m.wp_id,
                m.lane,
                m.lamport_clock,
                m.node_id,
                m.seq,
                m.actor,
                m.at_ms
            ])?;
        Ok(())
    }

    fn wp_features(
        &mut self,
        team_slug: &str,
        project_uuid: &str,
        wp_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT feature_slug FROM work_packages
             WHERE team_slug = ?1 AND project_uuid = ?2 AND wp_id = ?3 LIMIT 2",
        )?;
        let found = stmt
            .query_map(params![team_slug, project_uuid, wp_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(found)
    }

    fn wp_latest_feature(
        &mut self,
        team_slug: &str,
        project_uuid: &str,
        wp_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT feature_slug FROM work_packages
                 WHERE team_slug = ?1 AND project_uuid = ?2 AND wp_id = ?3
                 ORDER BY updated_seq DESC LIMIT 1",
            )?
            .query_row(params![team_slug, project_uuid, wp_id], |r| r.get(0))
            .optional()?)
    }

    fn wp_set_title(
        &mut self,
        wp: WpKey<'_>,
        title: Option<&str>,
        seq: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE work_packages SET title = ?5,
                   lane_since_ms = CASE WHEN updated_seq = ?6 THEN ?7 ELSE lane_since_ms END
                 WHERE team_slug = ?1 AND project_uuid = ?2 AND feature_slug = ?3
                   AND wp_id = ?4",
            )?
            .execute(params![
                wp.team_slug,
                wp.project_uuid,
                wp.feature_slug,
                wp.wp_id,
                title,
                seq,
                at_ms
            ])?;
        Ok(())
    }

    fn wp_set_actor(&mut self, wp: WpKey<'_>, actor: &str) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE work_packages SET last_actor = ?5
                 WHERE team_slug = ?1 AND project_uuid = ?2 AND feature_slug = ?3
                   AND wp_id = ?4",
            )?
            .execute(params![
                wp.team_slug,
                wp.project_uuid,
                wp.feature_slug,
                wp.wp_id,
                actor
            ])?;
        Ok(())
    }

    fn transition_insert(&mut self, t: &TransitionRow<'_>) -> Result<bool, StoreError> {
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO dashboard_transitions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                t.wp.team_slug,
                t.wp.project_uuid,
                t.wp.feature_slug,
                t.seq,
                t.wp.wp_id,
                t.at_ms,
                t.lane
            ])?;
        Ok(inserted == 1)
    }

    fn transition_neighbours(
        &mut self,
        t: &TransitionRow<'_>,
    ) -> Result<(Option<String>, Option<(i64, String)>), StoreError> {
        let key = params![
            t.wp.team_slug,
            t.wp.project_uuid,
            t.wp.feature_slug,
            t.wp.wp_id,
            t.at_ms,
            t.seq
        ];
        let prev: Option<String> = self
            .tx
            .prepare_cached(
                "SELECT lane FROM dashboard_transitions INDEXED BY dashboard_transitions_wp_time
                 WHERE team_slug = ?1 AND project_uuid = ?2 AND feature_slug = ?3 AND wp_id = ?4
                   AND (at_ms, seq) < (?5, ?6)
                 ORDER BY at_ms DESC, seq DESC LIMIT 1",
            )?
            .query_row(key, |r| r.get(0))
            .optional()?;
        let next: Option<(i64, String)> = self
            .tx
            .prepare_cached(
                "SELECT at_ms, lane FROM dashboard_transitions
                   INDEXED BY dashboard_transitions_wp_time
                 WHERE team_slug = ?1 AND project_uuid = ?2 AND feature_slug = ?3 AND wp_id = ?4
                   AND (at_ms, seq) > (?5, ?6)
                 ORDER BY at_ms, seq LIMIT 1",
            )?
            .query_row(key, |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok((prev, next))
    }

    fn flow_add(
        &mut self,
        key: (&str, &str, &str),
        width_ms: i64,
        bucket: i64,
        d: [i64; 4],
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO dashboard_flow VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT DO UPDATE SET planned = planned + excluded.planned,
                   doing = doing + excluded.doing, for_review = for_review + excluded.for_review,
                   done = done + excluded.done",
            )?
            .execute(params![
                key.0, key.1, key.2, width_ms, bucket, d[0], d[1], d[2], d[3]
            ])?;
        Ok(())
    }

    fn feature_touch(
        &mut self,
        key: (&str, &str, &str),
        project_slug: Option<&str>,
        last_seq: i64,
        last_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO dashboard_features VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT DO UPDATE SET last_seq = excluded.last_seq,
                   last_at_ms = excluded.last_at_ms,
                   project_slug = coalesce(excluded.project_slug, project_slug)",
            )?
            .execute(params![
                key.0,
                key.1,
                key.2,
                project_slug,
                last_seq,
                last_at_ms
            ])?;
        Ok(())
    }

    fn team_count_add(&mut self, team_slug: &str, stored: i64) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO dashboard_teams VALUES (?1, ?2)
                 ON CONFLICT DO UPDATE SET events = events + excluded.events",
            )?
            .execute(params![team_slug, stored])?;
        Ok(())
    }
}
