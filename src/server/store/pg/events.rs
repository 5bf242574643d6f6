//! Events on PostgreSQL: storing a batch, pulling by cursor, the board.
//!
//! The pull cursor is `seq`, and it must never step over an event: a puller that has seen
//! seq 7 must not later find a 6 committed behind it. An identity column alone would allow
//! that across replicas (values are drawn in one order, committed in another), so a batch
//! first takes its team's transaction-scoped advisory lock: within a team, batches draw and
//! commit their seq values one after another, and seq order is commit order. Teams do not wait
//! for each other. Deduplication is the unique index on `event_id`: the same event sent to two
//! replicas at once waits on the index, then one insert wins and the other answers duplicate.

use super::super::events::{PageBudget, insert_in};
use super::super::{Counts, IncomingEvent, InsertOutcome, StoreError, StoredEvent, WorkPackageRow};
use super::Postgres;
use super::ingest::PgIngest;

/// The first key of the per-team ingest lock (the second is the team's `hashtext`); the
/// two-key form keeps it apart from the migration lock's one-key space.
const INGEST_LOCK_CLASS: i32 = 0x736b_6576; // "skev"

impl Postgres {
    /// Stores a batch for `team_slug` in one transaction: either every new event of the batch
    /// is stored and the board updated, or nothing is.
    pub fn insert_events(
        &self,
        team_slug: &str,
        events: &[IncomingEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.with_conn(|db, conn| {
            let e = |x| db.error(x);
            let mut tx = conn.client.transaction().map_err(e)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&INGEST_LOCK_CLASS, &team_slug],
            )
            .map_err(e)?;
            let outcomes = insert_in(
                &mut PgIngest {
                    db,
                    tx: &mut tx,
                    statements: &mut conn.statements,
                },
                team_slug,
                events,
            )?;
            tx.commit().map_err(e)?;
            Ok(outcomes)
        })
    }

    /// Up to `limit` events of the team after sequence `after`, in server order, holding at
    /// most `max_bytes` of envelopes (but always at least one event), and whether more follow.
    pub fn events_after(
        &self,
        team_slug: &str,
        after: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<(Vec<StoredEvent>, bool), StoreError> {
        // Sizes first, then only the envelopes that fit: a page never loads more than
        // max_bytes of envelopes (plus one), however large the rows after it are.
        self.with(|db, client| {
            let e = |x| db.error(x);
            let sizes = client
                .query(
                    "SELECT seq, octet_length(envelope)::bigint FROM events
                     WHERE team_slug = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&team_slug, &after, &(limit as i64 + 1)],
                )
                .map_err(e)?;
            let mut page = PageBudget::new(limit, max_bytes);
            let (mut last, mut more) = (None, false);
            for row in &sizes {
                if !page.admit(row.get::<_, i64>(1) as usize) {
                    more = true;
                    break;
                }
                last = Some(row.get::<_, i64>(0));
            }
            let Some(last) = last else {
                return Ok((Vec::new(), false));
            };
            let rows = client
                .query(
                    "SELECT seq, event_type, envelope FROM events
                     WHERE team_slug = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
                    &[&team_slug, &after, &last],
                )
                .map_err(e)?;
            Ok((rows.iter().map(stored_event).collect(), more))
        })
    }

    /// The activity feed: up to `limit` events of the team, newest first, older than `before`.
    pub fn activity(
        &self,
        team_slug: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.with(|db, client| {
            let rows = client
                .query(
                    "SELECT seq, event_type, envelope FROM events
                     WHERE team_slug = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
                    &[&team_slug, &before.unwrap_or(i64::MAX), &(limit as i64)],
                )
                .map_err(|x| db.error(x))?;
            Ok(rows.iter().map(stored_event).collect())
        })
    }

    /// The team's board: every work package with its current lane.
    pub fn work_packages(&self, team_slug: &str) -> Result<Vec<WorkPackageRow>, StoreError> {
        self.with(|db, client| {
            let rows = client
                .query(
                    "SELECT feature_slug, wp_id, lane FROM work_packages
                     WHERE team_slug = $1 ORDER BY feature_slug, wp_id",
                    &[&team_slug],
                )
                .map_err(|x| db.error(x))?;
            Ok(rows
                .iter()
                .map(|r| WorkPackageRow {
                    feature_slug: r.get(0),
                    wp_id: r.get(1),
                    lane: r.get(2),
                })
                .collect())
        })
    }

    /// Counts of features, work packages and events of the team.
    pub fn counts(&self, team_slug: &str) -> Result<Counts, StoreError> {
        self.with(|db, client| {
            let r = client
                .query_one(
                    "SELECT
                       (SELECT count(DISTINCT (project_uuid, feature_slug))
                          FROM work_packages WHERE team_slug = $1),
                       (SELECT count(*) FROM work_packages WHERE team_slug = $1),
                       coalesce((SELECT events FROM dashboard_teams WHERE team_slug = $1), 0)",
                    &[&team_slug],
                )
                .map_err(|x| db.error(x))?;
            Ok(Counts {
                features: r.get(0),
                work_packages: r.get(1),
                events: r.get(2),
            })
        })
    }
}

fn stored_event(r: &postgres::Row) -> StoredEvent {
    StoredEvent {
        seq: r.get(0),
        event_type: r.get(1),
        envelope: r.get(2),
    }
}
