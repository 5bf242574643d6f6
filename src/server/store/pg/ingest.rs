//! [`IngestTx`] on PostgreSQL: the statements of `sqlite_ingest.rs` in PostgreSQL's dialect,
//! each prepared once per connection.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Row, Statement, Transaction};

use super::super::StoreError;
use super::super::events::IncomingEvent;
use super::super::ingest_tx::{IngestTx, Move, TransitionRow, WpKey};
use super::Postgres;

/// The batch's open transaction and its connection's prepared statements.
pub(super) struct PgIngest<'a, 't> {
    pub db: &'a Postgres,
    pub tx: &'a mut Transaction<'t>,
    pub statements: &'a mut HashMap<&'static str, Statement>,
}

impl PgIngest<'_, '_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql).map_err(|e| self.db.error(e))?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let s = self.statement(sql)?;
        self.tx.execute(&s, args).map_err(|e| self.db.error(e))
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let s = self.statement(sql)?;
        self.tx.query_opt(&s, args).map_err(|e| self.db.error(e))
    }

    fn query(
        &mut self,
        sql: &'static str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let s = self.statement(sql)?;
        self.tx.query(&s, args).map_err(|e| self.db.error(e))
    }
}

impl IngestTx for PgIngest<'_, '_> {
    fn insert_event(
        &mut self,
        team_slug: &str,
        e: &IncomingEvent,
        received_at: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row = self.query_opt(
            "INSERT INTO events (event_id, team_slug, event_type, lamport_clock, node_id,
                                 project_uuid, feature_slug, wp_id, received_at, envelope, actor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (event_id) DO NOTHING
             RETURNING seq",
            &[
                &e.event_id,
                &team_slug,
                &e.event_type,
                &e.lamport_clock,
                &e.node_id,
                &e.project_uuid,
                &e.feature_slug,
                &e.wp_id,
                &received_at,
                &e.envelope,
                &e.facts.actor,
            ],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    fn event_team(&mut self, event_id: &str) -> Result<Option<String>, StoreError> {
        let row = self.query_opt(
            "SELECT team_slug FROM events WHERE event_id = $1",
            &[&event_id],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    fn wp_adopt(&mut self, wp: WpKey<'_>) -> Result<(), StoreError> {
        // SQLite's UPDATE OR IGNORE: skip when the work package is known under the feature.
        self.execute(
            "UPDATE work_packages SET feature_slug = $3
             WHERE team_slug = $1 AND project_uuid = $2 AND wp_id = $4 AND feature_slug = ''
               AND NOT EXISTS (SELECT 1 FROM work_packages k
                               WHERE k.team_slug = $1 AND k.project_uuid = $2
                                 AND k.feature_slug = $3 AND k.wp_id = $4)",
            &[&wp.team_slug, &wp.project_uuid, &wp.feature_slug, &wp.wp_id],
        )?;
        Ok(())
    }

    fn wp_create(&mut self, wp: WpKey<'_>, seq: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO work_packages (team_slug, project_uuid, feature_slug, wp_id, lane,
                                        lamport_clock, node_id, updated_seq)
             VALUES ($1, $2, $3, $4, 'planned', 0, '', $5)
             ON CONFLICT DO NOTHING",
            &[
                &wp.team_slug,
                &wp.project_uuid,
                &wp.feature_slug,
                &wp.wp_id,
                &seq,
            ],
        )?;
        Ok(())
    }

    fn wp_move(&mut self, m: &Move<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO work_packages (team_slug, project_uuid, feature_slug, wp_id, lane,
                                        lamport_clock, node_id, updated_seq, last_actor,
                                        lane_since_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (team_slug, project_uuid, feature_slug, wp_id) DO UPDATE SET
               lane = excluded.lane, lamport_clock = excluded.lamport_clock,
               node_id = excluded.node_id, updated_seq = excluded.updated_seq,
               last_actor = excluded.last_actor, lane_since_ms = excluded.lane_since_ms
             WHERE (excluded.lamport_clock, excluded.node_id)
                 > (work_packages.lamport_clock, work_packages.node_id)",
            &[
                &m.team_slug,
                &m.project_uuid,
                &m.feature_slug,
                &m.wp_id,
                &m.lane,
                &m.lamport_clock,
                &m.node_id,
                &m.seq,
                &m.actor,
                &m.at_ms,
            ],
        )?;
        Ok(())
    }

    fn wp_features(
        &mut self,
        team_slug: &str,
        project_uuid: &str,
        wp_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = self.query(
            "SELECT feature_slug FROM work_packages
             WHERE team_slug = $1 AND project_uuid = $2 AND wp_id = $3 LIMIT 2",
            &[&team_slug, &project_uuid, &wp_id],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn wp_latest_feature(
        &mut self,
        team_slug: &str,
        project_uuid: &str,
        wp_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = self.query_opt(
            "SELECT feature_slug FROM work_packages
             WHERE team_slug = $1 AND project_uuid = $2 AND wp_id = $3
             ORDER BY updated_seq DESC LIMIT 1",
            &[&team_slug, &project_uuid, &wp_id],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    fn wp_set_title(
        &mut self,
        wp: WpKey<'_>,
        title: Option<&str>,
        seq: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE work_packages SET title = $5,
               lane_since_ms = CASE WHEN updated_seq = $6 THEN $7 ELSE lane_since_ms END
             WHERE team_slug = $1 AND project_uuid = $2 AND feature_slug = $3 AND wp_id = $4",
            &[
                &wp.team_slug,
                &wp.project_uuid,
                &wp.feature_slug,
                &wp.wp_id,
                &title,
                &seq,
                &at_ms,
            ],
        )?;
        Ok(())
    }

    fn wp_set_actor(&mut self, wp: WpKey<'_>, actor: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE work_packages SET last_actor = $5
             WHERE team_slug = $1 AND project_uuid = $2 AND feature_slug = $3 AND wp_id = $4",
            &[
                &wp.team_slug,
                &wp.project_uuid,
                &wp.feature_slug,
                &wp.wp_id,
                &actor,
            ],
        )?;
        Ok(())
    }

    fn transition_insert(&mut self, t: &TransitionRow<'_>) -> Result<bool, StoreError> {
        let n = self.execute(
            "INSERT INTO dashboard_transitions VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT DO NOTHING",
            &[
                &t.wp.team_slug,
                &t.wp.project_uuid,
                &t.wp.feature_slug,
                &t.seq,
                &t.wp.wp_id,
                &t.at_ms,
                &t.lane,
            ],
        )?;
        Ok(n == 1)
    }

    fn transition_neighbours(
        &mut self,
        t: &TransitionRow<'_>,
    ) -> Result<(Option<String>, Option<(i64, String)>), StoreError> {
        let key: [&(dyn ToSql + Sync); 6] = [
            &t.wp.team_slug,
            &t.wp.project_uuid,
            &t.wp.feature_slug,
            &t.wp.wp_id,
            &t.at_ms,
            &t.seq,
        ];
        let prev = self.query_opt(
            "SELECT lane FROM dashboard_transitions
             WHERE team_slug = $1 AND project_uuid = $2 AND feature_slug = $3 AND wp_id = $4
               AND (at_ms, seq) < ($5, $6)
             ORDER BY at_ms DESC, seq DESC LIMIT 1",
            &key,
        )?;
        let next = self.query_opt(
            "SELECT at_ms, lane FROM dashboard_transitions
             WHERE team_slug = $1 AND project_uuid = $2 AND feature_slug = $3 AND wp_id = $4
               AND (at_ms, seq) > ($5, $6)
             ORDER BY at_ms, seq LIMIT 1",
            &key,
        )?;
        Ok((prev.map(|r| r.get(0)), next.map(|r| (r.get(0), r.get(1)))))
    }

    fn flow_add(
        &mut self,
        key: (&str, &str, &str),
        width_ms: i64,
        bucket: i64,
        d: [i64; 4],
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO dashboard_flow AS f VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (team_slug, project_uuid, feature_slug, width_ms, bucket) DO UPDATE
             SET planned = f.planned + excluded.planned, doing = f.doing + excluded.doing,
                 for_review = f.for_review + excluded.for_review, done = f.done + excluded.done",
            &[
                &key.0, &key.1, &key.2, &width_ms, &bucket, &d[0], &d[1], &d[2], &d[3],
            ],
        )?;
        Ok(())
    }

    fn feature_touch(
        &mut self,
        key: (&str, &str, &str),
        project_slug: Option<&str>,
        last_seq: i64,
        last_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO dashboard_features AS d VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (team_slug, project_uuid, feature_slug) DO UPDATE
             SET last_seq = excluded.last_seq, last_at_ms = excluded.last_at_ms,
                 project_slug = coalesce(excluded.project_slug, d.project_slug)",
            &[
                &key.0,
                &key.1,
                &key.2,
                &project_slug,
                &last_seq,
                &last_at_ms,
            ],
        )?;
        Ok(())
    }

    fn team_count_add(&mut self, team_slug: &str, stored: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO dashboard_teams AS t VALUES ($1, $2)
             ON CONFLICT (team_slug) DO UPDATE SET events = t.events + excluded.events",
            &[&team_slug, &stored],
        )?;
        Ok(())
    }
}
