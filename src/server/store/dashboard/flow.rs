//! The cumulative-flow projection: how many work packages of a feature entered or left each
//! lane per time bucket, at three bucket widths (minute, hour, day), kept at ingest.
//!
//! The chart plots, at each moment, how many work packages are in each lane, a work package
//! being in the lane of its latest transition by event time (`at_ms`, then `seq`). A
//! transition moves one work package from the lane of the transition before it (by that
//! order) to its own lane: `-1` and `+1` in the bucket of its time. One that arrives late,
//! between two others, also changes what the next one left: that one's bucket gets the
//! correction. So a transition costs two seeks in the work package's transitions and at most
//! two bucket changes per width, however long the history, summed per batch and written once
//! per bucket ([`FlowDeltas`]); and the chart reads at most a few hundred buckets of one width
//! (the finest that fits the chart's width), never the transitions.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::super::ingest_tx::{IngestTx, TransitionRow};
use super::super::{StoreError, sqlite::Sqlite};

/// The bucket widths kept, finest first.
pub const WIDTHS_MS: [i64; 3] = [60_000, 3_600_000, 86_400_000];

/// The lanes of a delta or a count, in this order.
const LANES: [&str; 4] = ["planned", "doing", "for_review", "done"];

/// The migration: the table, the index on each work package's transitions by time, and the
/// buckets of the transitions already stored.
pub(in super::super) const MIGRATION: &str = r#"
    CREATE INDEX dashboard_transitions_wp_time
        ON dashboard_transitions(team_slug, project_uuid, feature_slug, wp_id, at_ms, seq);
    CREATE TABLE dashboard_flow (
        team_slug     TEXT NOT NULL,
        project_uuid  TEXT NOT NULL,
        feature_slug  TEXT NOT NULL,
        width_ms      INTEGER NOT NULL,
        bucket        INTEGER NOT NULL,
        planned       INTEGER NOT NULL,
        doing         INTEGER NOT NULL,
        for_review    INTEGER NOT NULL,
        done          INTEGER NOT NULL,
        PRIMARY KEY (team_slug, project_uuid, feature_slug, width_ms, bucket)
    ) WITHOUT ROWID;
    INSERT INTO dashboard_flow
    SELECT team_slug, project_uuid, feature_slug, width_ms,
           (at_ms - ((at_ms % width_ms) + width_ms) % width_ms) / width_ms AS b,
           sum((lane = 'planned') - (prev IS 'planned')),
           sum((lane = 'doing') - (prev IS 'doing')),
           sum((lane = 'for_review') - (prev IS 'for_review')),
           sum((lane = 'done') - (prev IS 'done'))
    FROM (SELECT team_slug, project_uuid, feature_slug, at_ms, lane,
                 lag(lane) OVER (PARTITION BY team_slug, project_uuid, feature_slug, wp_id
                                 ORDER BY at_ms, seq) AS prev
          FROM dashboard_transitions),
         (SELECT 60000 AS width_ms UNION ALL SELECT 3600000 UNION ALL SELECT 86400000)
    GROUP BY team_slug, project_uuid, feature_slug, width_ms, b;
"#;

fn delta(plus: Option<&str>, minus: Option<&str>) -> [i64; 4] {
    let mut d = [0i64; 4];
    for (i, lane) in LANES.iter().enumerate() {
        d[i] += i64::from(plus == Some(*lane)) - i64::from(minus == Some(*lane));
    }
    d
}

/// The bucket changes of one batch, summed in memory and written once per bucket when the
/// batch's transaction ends ([`FlowDeltas::flush`]): a batch of 1,000 lane changes of one
/// feature touches a handful of buckets, where writing each change at once cost up to six
/// upserts per lane change (two per width). Safe to defer: ingest reads only
/// `dashboard_transitions` (written at once), never `dashboard_flow`, and both are written in
/// the same transaction.
///
/// It also remembers, per work package, the latest transition by time recorded in this batch
/// when nothing in the database comes after it ([`Latest`]): the next transition of that work
/// package in the batch that is later still (the usual case: a batch holds a work package's
/// moves in order) then needs neither seek, since its `prev` is that one and it has no `next`.
#[derive(Debug, Default)]
pub struct FlowDeltas {
    sums: HashMap<(String, String, String, i64, i64), [i64; 4]>,
    latest: HashMap<(String, String, String, String), Latest>,
}

/// The latest transition of a work package by `(at_ms, seq)`, with nothing after it.
#[derive(Debug)]
struct Latest {
    at_ms: i64,
    seq: i64,
    lane: &'static str,
}

impl FlowDeltas {
    fn add(&mut self, e: &TransitionRow<'_>, width: i64, bucket: i64, d: [i64; 4]) {
        if d == [0; 4] {
            return;
        }
        let key = (
            e.wp.team_slug.to_owned(),
            e.wp.project_uuid.to_owned(),
            e.wp.feature_slug.to_owned(),
            width,
            bucket,
        );
        let sum = self.sums.entry(key).or_insert([0; 4]);
        for (s, x) in sum.iter_mut().zip(d) {
            *s += x;
        }
    }

    /// Writes the summed changes (call once, before the transaction commits).
    pub fn flush(self, tx: &mut impl IngestTx) -> Result<(), StoreError> {
        for ((team, project, feature, width, bucket), d) in self.sums {
            if d != [0; 4] {
                tx.flow_add((&team, &project, &feature), width, bucket, d)?;
            }
        }
        Ok(())
    }
}

/// Adds to `deltas` the bucket changes for a transition already inserted into `dashboard_transitions`.
pub(super) fn record(
    tx: &mut impl IngestTx,
    e: &TransitionRow<'_>,
    deltas: &mut FlowDeltas,
) -> Result<(), StoreError> {
    let wp_key = (
        e.wp.team_slug.to_owned(),
        e.wp.project_uuid.to_owned(),
        e.wp.feature_slug.to_owned(),
        e.wp.wp_id.to_owned(),
    );
    let (prev, next) = match deltas.latest.get(&wp_key) {
        Some(l) if (e.at_ms, e.seq) > (l.at_ms, l.seq) => (Some(l.lane.to_owned()), None),
        _ => tx.transition_neighbours(e)?,
    };
    let here = delta(Some(e.lane), prev.as_deref());
    // The next transition left `prev` before; now it leaves this one's lane.
    let later = next.map(|(at, _)| (at, delta(prev.as_deref(), Some(e.lane))));
    for width in WIDTHS_MS {
        deltas.add(e, width, e.at_ms.div_euclid(width), here);
        if let Some((at, d)) = later {
            deltas.add(e, width, at.div_euclid(width), d);
        }
    }
    if later.is_none() {
        // Nothing comes after this one, so it is now the latest. (When something does, the
        // remembered latest, if any, is still the latest.)
        deltas.latest.insert(
            wp_key,
            Latest {
                at_ms: e.at_ms,
                seq: e.seq,
                lane: e.lane,
            },
        );
    }
    Ok(())
}

/// Work packages per lane (planned, doing, for_review, done) at the end of each bucket of
/// `width_ms` in which something changed, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowBucket {
    pub start_ms: i64,
    pub lanes: [i64; 4],
}

fn buckets(
    conn: &Connection,
    key: (&str, &str, &str),
    width_ms: i64,
) -> Result<Vec<FlowBucket>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT bucket, planned, doing, for_review, done FROM dashboard_flow
         WHERE team_slug = ?1 AND project_uuid = ?2 AND feature_slug = ?3 AND width_ms = ?4
         ORDER BY bucket",
    )?;
    let rows = stmt.query_map(params![key.0, key.1, key.2, width_ms], |r| {
        Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
    })?;
    Ok(accumulate(
        rows.collect::<Result<Vec<_>, _>>()?.into_iter(),
        width_ms,
    ))
}

/// The running counts at the end of each bucket from the buckets' deltas `(bucket, delta)`
/// in bucket order; buckets whose changes cancel out are left out.
pub(in super::super) fn accumulate(
    rows: impl Iterator<Item = (i64, [i64; 4])>,
    width_ms: i64,
) -> Vec<FlowBucket> {
    let mut counts = [0i64; 4];
    let mut out = Vec::new();
    for (bucket, d) in rows {
        if d == [0; 4] {
            continue;
        }
        for (c, x) in counts.iter_mut().zip(d) {
            *c += x;
        }
        out.push(FlowBucket {
            start_ms: bucket * width_ms,
            lanes: counts,
        });
    }
    out
}

/// The finest of [`WIDTHS_MS`] that gives at most `columns` buckets from the feature's first
/// minute bucket (if any) to `now_ms`.
pub(in super::super) fn width_for(first_minute: Option<i64>, columns: i64, now_ms: i64) -> i64 {
    let start = first_minute.unwrap_or(0) * WIDTHS_MS[0];
    let span = (now_ms - start).max(1);
    WIDTHS_MS
        .into_iter()
        .find(|w| span / w <= columns)
        .unwrap_or(WIDTHS_MS[WIDTHS_MS.len() - 1])
}

impl Sqlite {
    /// The cumulative flow of one feature from its buckets of `width_ms` (one of
    /// [`WIDTHS_MS`]).
    pub fn feature_flow_buckets(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        width_ms: i64,
    ) -> Result<Vec<FlowBucket>, StoreError> {
        self.read(|conn| buckets(conn, (team_slug, project_uuid, feature_slug), width_ms))
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
        self.read(|conn| {
            let first: Option<i64> = conn
                .prepare_cached(
                    "SELECT bucket FROM dashboard_flow
                     WHERE team_slug = ?1 AND project_uuid = ?2 AND feature_slug = ?3
                       AND width_ms = ?4 ORDER BY bucket LIMIT 1",
                )?
                .query_row(
                    params![team_slug, project_uuid, feature_slug, WIDTHS_MS[0]],
                    |r| r.get(0),
                )
                .optional()?;
            let width = width_for(first, columns, now_ms);
            let key = (team_slug, project_uuid, feature_slug);
            Ok((width, buckets(conn, key, width)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::super::super::{WpEffect, sqlite::Sqlite};
    use super::super::tests::event;
    use super::*;
    use crate::event::Lane;

    /// The lanes at the end of each bucket, from the raw transitions in event-time order.
    fn raw_counts_at(conn: &Connection, end_ms: i64) -> [i64; 4] {
        let mut stmt = conn
            .prepare(
                "SELECT wp_id, lane FROM dashboard_transitions WHERE at_ms < ?1
                 ORDER BY at_ms, seq",
            )
            .expect("prepare");
        let mut lane_of = std::collections::HashMap::new();
        let rows = stmt
            .query_map([end_ms], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .expect("query");
        for row in rows {
            let (wp, lane) = row.expect("row");
            lane_of.insert(wp, lane);
        }
        let mut counts = [0i64; 4];
        for lane in lane_of.values() {
            if let Some(i) = LANES.iter().position(|l| l == lane) {
                counts[i] += 1;
            }
        }
        counts
    }

    /// 1,200 transitions of 12 work packages, one a minute, stored in a shuffled order so that
    /// most arrive after later ones, in batches of `batch` events.
    fn store_with_history(path: &std::path::Path) -> Sqlite {
        store_in_batches(path, 100, true)
    }

    /// The same history, shuffled or in time order (each work package's moves in order, the
    /// case [`FlowDeltas`] remembers the latest transition for).
    fn store_in_batches(path: &std::path::Path, batch: usize, shuffled: bool) -> Sqlite {
        let store = Sqlite::open(path).expect("open");
        let lanes = [Lane::Doing, Lane::ForReview, Lane::Done, Lane::Planned];
        let n = 1200;
        let events: Vec<_> = (0..n)
            .map(|k| if shuffled { (k * 7919) % n } else { k }) // a permutation of 0..n
            .map(|i| {
                let wp = format!("WP{:02}", i % 12);
                if i < 12 {
                    event(
                        i,
                        &wp,
                        "WPCreated",
                        WpEffect::Created {
                            feature_slug: "001-demo".into(),
                        },
                        "",
                    )
                } else {
                    let lane = lanes[(i as usize / 12 + i as usize) % 4];
                    event(
                        i,
                        &wp,
                        "WPStatusChanged",
                        WpEffect::Moved {
                            feature_slug: Some("001-demo".into()),
                            lane,
                        },
                        "robin",
                    )
                }
            })
            .collect();
        for chunk in events.chunks(batch) {
            store.insert_events("acme", chunk).expect("insert");
        }
        store
    }

    /// Every projection table of the database, row by row.
    fn projections(path: &std::path::Path) -> Vec<String> {
        let conn = Connection::open(path).expect("open");
        let mut rows = Vec::new();
        // A bucket whose changes cancel out is a row of zeros one way and no row the other;
        // the chart skips both.
        for (table, filter, order) in [
            (
                "dashboard_flow",
                "planned != 0 OR doing != 0 OR for_review != 0 OR done != 0",
                "1, 2, 3, 4, 5",
            ),
            ("dashboard_features", "1", "1, 2, 3"),
            ("dashboard_teams", "1", "1"),
            ("work_packages", "1", "1, 2, 3, 4"),
            ("dashboard_transitions", "1", "1, 2, 3, 4"),
        ] {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT * FROM {table} WHERE {filter} ORDER BY {order}"
                ))
                .expect("prepare");
            let columns = stmt.column_count();
            let table_rows = stmt
                .query_map([], |r| {
                    (0..columns)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Text(t) => {
                                    String::from_utf8_lossy(t).into_owned()
                                }
                                v => format!("{v:?}"),
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .expect("query")
                .map(|r| format!("{table}: {}", r.expect("row").join("|")));
            rows.extend(table_rows);
        }
        rows
    }

    /// What ingest sums or remembers within a batch ([`FlowDeltas`], the features' latest
    /// activity) gives exactly what one event per batch gives.
    #[test]
    fn batching_changes_no_projection() {
        for shuffled in [true, false] {
            let dir = tempfile::tempdir().expect("temp dir");
            let (one, many) = (dir.path().join("one.db"), dir.path().join("many.db"));
            drop(store_in_batches(&one, 1, shuffled));
            drop(store_in_batches(&many, 1000, shuffled));
            same_rows(projections(&one), projections(&many));
        }
    }

    fn same_rows(a: Vec<String>, b: Vec<String>) {
        assert!(a.len() > 2000, "{}", a.len());
        let only_one: Vec<_> = a.iter().filter(|r| !b.contains(r)).take(5).collect();
        let only_many: Vec<_> = b.iter().filter(|r| !a.contains(r)).take(5).collect();
        assert!(
            only_one.is_empty() && only_many.is_empty(),
            "one by one only: {only_one:#?}\nbatched only: {only_many:#?}"
        );
        assert_eq!(a, b, "the same rows in the same order");
    }

    #[test]
    fn the_projected_buckets_match_the_raw_transitions_at_every_width() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.db");
        let store = store_with_history(&path);
        let conn = Connection::open(&path).expect("open");
        for width in WIDTHS_MS {
            let buckets = store
                .feature_flow_buckets("acme", "p", "001-demo", width)
                .expect("buckets");
            assert!(!buckets.is_empty());
            for b in &buckets {
                assert_eq!(
                    b.lanes,
                    raw_counts_at(&conn, b.start_ms + width),
                    "width {width}, bucket at {}",
                    b.start_ms
                );
            }
            // Every work package is counted once, in the lane it ends in.
            let last = buckets.last().expect("last").lanes;
            assert_eq!(last.iter().sum::<i64>(), 12, "width {width}");
        }
        // 1,200 minutes: too many minute buckets for 720 columns, so hours (20 of them).
        let now = 1_770_000_000_000 + 1200 * 60_000;
        let (width, buckets) = store
            .feature_flow("acme", "p", "001-demo", 720, now)
            .expect("flow");
        assert_eq!(width, 3_600_000);
        assert!(buckets.len() <= 21, "{}", buckets.len());
    }

    #[test]
    fn the_migration_backfill_rebuilds_the_buckets_ingest_keeps() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.db");
        drop(store_with_history(&path));
        let conn = Connection::open(&path).expect("open");
        let snapshot = |conn: &Connection| -> Vec<String> {
            let mut stmt = conn
                .prepare(
                    "SELECT width_ms, bucket, planned, doing, for_review, done FROM dashboard_flow
                     WHERE planned != 0 OR doing != 0 OR for_review != 0 OR done != 0
                     ORDER BY width_ms, bucket",
                )
                .expect("prepare");
            stmt.query_map([], |r| {
                Ok((0..6)
                    .map(|i| r.get::<_, i64>(i).map(|v| v.to_string()))
                    .collect::<Result<Vec<_>, _>>()?
                    .join("|"))
            })
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
        };
        let kept = snapshot(&conn);
        assert!(kept.len() > 100, "{}", kept.len());
        conn.execute_batch("DROP TABLE dashboard_flow; DROP INDEX dashboard_transitions_wp_time;")
            .expect("drop");
        conn.execute_batch(MIGRATION).expect("backfill");
        assert_eq!(snapshot(&conn), kept);
    }
}
