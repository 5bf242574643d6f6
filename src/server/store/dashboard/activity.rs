//! The activity feed's reads: every combination of filters (event type, work package,
//! feature, actor) is answered by index ranges that start at the `seq` cursor and stop after
//! `limit` rows, so a page costs the same at any depth and with any filter.
//!
//! A range is only bounded when every filter is an equality on a column of the index in front
//! of `seq`; a filter checked row by row after the index (a residual) can make one page read
//! the whole history when it matches nothing. Fifteen combinations would need fifteen indexes.
//! Instead every index ends in `(event_type, seq)`: with a type filter the range is direct;
//! without one the feed reads one range per event type the team has (a handful; found by
//! skipping through `events_team_type_seq`, one seek per type) and merges the newest `limit`.
//! That leaves seven indexes for the fifteen combinations (migration 5):
//!
//! | filters (besides type)       | index                                  |
//! |------------------------------|----------------------------------------|
//! | none                         | `events_team_type_seq` (or `events_team_seq` without a type) |
//! | work package                 | `events_team_wp_type_seq`              |
//! | feature                      | `events_team_feature_type_seq`         |
//! | actor                        | `events_team_actor_type_seq`           |
//! | work package + actor         | `events_team_wp_actor_type_seq`        |
//! | feature + actor              | `events_team_feature_actor_type_seq`   |
//! | feature + work package (+ actor) | `events_team_feature_wp_type_seq`  |
//!
//! The one residual left is the actor when a feature and a work package are given: it is
//! checked within that one work package's events of one type, which is what its timeline
//! page reads anyway.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::super::{StoreError, StoredEvent};
use super::queries::ActivityFilter;

/// The reads that answer one filter: an index, the equalities on its columns in front of
/// `(event_type, seq)`, and the actor when it is checked after the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ActivityPlan {
    index: &'static str,
    prefix: Vec<(&'static str, String)>,
    residual_actor: Option<String>,
    /// `Some(type)` for a type filter; `None` means one range per type of the team.
    event_type: Option<String>,
}

impl ActivityPlan {
    pub(super) fn of(f: &ActivityFilter) -> ActivityPlan {
        let (wp, feature, actor) = (&f.wp_id, &f.feature_slug, &f.actor);
        let col = |c: &'static str, v: &Option<String>| v.clone().map(|v| (c, v));
        let (index, prefix, residual_actor) = match (feature, wp, actor) {
            (None, None, None) => ("events_team_type_seq", vec![], None),
            (None, Some(_), None) => ("events_team_wp_type_seq", vec![col("wp_id", wp)], None),
            (Some(_), None, None) => (
                "events_team_feature_type_seq",
                vec![col("feature_slug", feature)],
                None,
            ),
            (None, None, Some(_)) => (
                "events_team_actor_type_seq",
                vec![col("actor", actor)],
                None,
            ),
            (None, Some(_), Some(_)) => (
                "events_team_wp_actor_type_seq",
                vec![col("wp_id", wp), col("actor", actor)],
                None,
            ),
            (Some(_), None, Some(_)) => (
                "events_team_feature_actor_type_seq",
                vec![col("feature_slug", feature), col("actor", actor)],
                None,
            ),
            (Some(_), Some(_), a) => (
                "events_team_feature_wp_type_seq",
                vec![col("feature_slug", feature), col("wp_id", wp)],
                a.clone(),
            ),
        };
        ActivityPlan {
            index,
            prefix: prefix.into_iter().flatten().collect(),
            residual_actor,
            event_type: f.event_type.clone(),
        }
    }

    /// Whether this plan reads the whole feed (no filter at all): one range of
    /// `events_team_seq`, no per-type ranges.
    fn unfiltered(&self) -> bool {
        self.prefix.is_empty() && self.event_type.is_none()
    }

    /// The SQL of one range (`?1` team, `?2` cursor, `?3` limit, then the prefix, the type
    /// and the residual actor) and its arguments.
    pub(super) fn range_sql(
        &self,
        team_slug: &str,
        event_type: Option<&str>,
        before: i64,
        limit: usize,
    ) -> (String, Vec<SqlValue>) {
        let mut args = vec![
            SqlValue::from(team_slug.to_owned()),
            SqlValue::from(before),
            SqlValue::from(limit as i64),
        ];
        if self.unfiltered() {
            let sql = "SELECT seq FROM events INDEXED BY events_team_seq
                       WHERE team_slug = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
            return (sql.to_owned(), args);
        }
        let mut sql = format!(
            "SELECT seq FROM events INDEXED BY {} WHERE team_slug = ?1",
            self.index
        );
        let mut equalities = self.prefix.clone();
        if let Some(t) = event_type {
            equalities.push(("event_type", t.to_owned()));
        }
        if let Some(a) = &self.residual_actor {
            equalities.push(("actor", a.clone()));
        }
        for (column, value) in equalities {
            args.push(SqlValue::from(value));
            sql.push_str(&format!(" AND {column} = ?{}", args.len()));
        }
        sql.push_str(" AND seq < ?2 ORDER BY seq DESC LIMIT ?3");
        (sql, args)
    }

    /// The event types whose ranges this plan reads.
    pub(super) fn types(
        &self,
        conn: &Connection,
        team_slug: &str,
    ) -> Result<Vec<Option<String>>, StoreError> {
        if self.unfiltered() {
            return Ok(vec![None]);
        }
        if let Some(t) = &self.event_type {
            return Ok(vec![Some(t.clone())]);
        }
        team_event_types(conn, team_slug).map(|ts| ts.into_iter().map(Some).collect())
    }
}

/// The distinct event types of the team: one index seek per type (a skip scan), however many
/// events there are.
pub(super) fn team_event_types(
    conn: &Connection,
    team_slug: &str,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT min(event_type) FROM events INDEXED BY events_team_type_seq
         WHERE team_slug = ?1 AND event_type > ?2",
    )?;
    let mut types: Vec<String> = Vec::new();
    // Bounded by the number of distinct types, which is finite and small in practice.
    loop {
        let after = types.last().map_or("", String::as_str);
        let next: Option<String> = stmt
            .query_row(rusqlite::params![team_slug, after], |r| r.get(0))
            .optional()?
            .flatten();
        match next {
            Some(t) => types.push(t),
            None => return Ok(types),
        }
    }
}

/// Up to `limit` events matching `filter`, older than `before`, newest first: the newest
/// `limit` sequence numbers of each range (index only), merged, then those rows.
pub(super) fn read_activity(
    conn: &Connection,
    team_slug: &str,
    filter: &ActivityFilter,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let plan = ActivityPlan::of(filter);
    let before = before.unwrap_or(i64::MAX);
    let mut seqs: Vec<i64> = Vec::new();
    for event_type in plan.types(conn, team_slug)? {
        let (sql, args) = plan.range_sql(team_slug, event_type.as_deref(), before, limit);
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| r.get::<_, i64>(0))?;
        for seq in rows {
            seqs.push(seq?);
        }
    }
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    seqs.truncate(limit);
    let mut stmt =
        conn.prepare_cached("SELECT seq, event_type, envelope FROM events WHERE seq = ?1")?;
    let mut events = Vec::with_capacity(seqs.len());
    for seq in seqs {
        events.push(stmt.query_row([seq], |r| {
            Ok(StoredEvent {
                seq: r.get(0)?,
                event_type: r.get(1)?,
                envelope: r.get(2)?,
            })
        })?);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::super::super::sqlite::Sqlite;
    use super::*;

    /// Every combination of the four filters, as (type, wp, feature, actor) presence bits.
    fn combinations() -> Vec<ActivityFilter> {
        (0..16u8)
            .map(|bits| {
                let on = |bit: u8, v: &str| (bits & bit != 0).then(|| v.to_owned());
                ActivityFilter {
                    event_type: on(1, "WPStatusChanged"),
                    wp_id: on(2, "WP07"),
                    feature_slug: on(4, "042-feature"),
                    actor: on(8, "robin"),
                }
            })
            .collect()
    }

    #[test]
    fn every_filter_combination_is_an_index_range_from_the_cursor() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Sqlite::open(&dir.path().join("s.db")).expect("open");
        let conn = store.writer.lock().expect("writer");
        for filter in combinations() {
            let plan = ActivityPlan::of(&filter);
            // A filtered read binds a type: the one given, or each of the team's in turn.
            let event_type = (!plan.unfiltered()).then_some("WPStatusChanged");
            let (sql, args) = plan.range_sql("acme", event_type, 100, 51);
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("plan");
            let lines: Vec<String> = stmt
                .query_map(params_from_iter(args), |r| r.get::<_, String>(3))
                .expect("explain")
                .map(|r| r.expect("row"))
                .collect();
            // One index search, constrained by every filter the index holds and by the
            // cursor, in the index's order: no scan, no temporary sort.
            assert_eq!(lines.len(), 1, "{filter:?}: {lines:?}");
            let line = &lines[0];
            assert!(
                line.starts_with("SEARCH events USING ") && line.contains(" INDEX events_team_"),
                "{filter:?}: {line}"
            );
            assert!(line.ends_with(" AND seq<?)"), "{filter:?}: {line}");
            let bound = |column: &str| line.contains(&format!("{column}=?"));
            assert!(bound("team_slug"), "{filter:?}: {line}");
            // The type is bound for every filtered read (given, or one range per type).
            assert_eq!(
                bound("event_type"),
                !plan.unfiltered(),
                "{filter:?}: {line}"
            );
            assert_eq!(bound("wp_id"), filter.wp_id.is_some(), "{filter:?}: {line}");
            assert_eq!(
                bound("feature_slug"),
                filter.feature_slug.is_some(),
                "{filter:?}: {line}"
            );
            // The actor is in the index except with a feature and a work package, where it
            // is checked within that one work package's events.
            let within_one_wp = filter.feature_slug.is_some() && filter.wp_id.is_some();
            assert_eq!(
                bound("actor"),
                filter.actor.is_some() && !within_one_wp,
                "{filter:?}: {line}"
            );
        }
    }

    #[test]
    fn the_type_skip_scan_finds_each_type_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Sqlite::open(&dir.path().join("s.db")).expect("open");
        let conn = store.writer.lock().expect("writer");
        for (i, (team, t)) in [
            ("acme", "WPCreated"),
            ("acme", "WPStatusChanged"),
            ("acme", "WPStatusChanged"),
            ("other", "ErrorLogged"),
            ("acme", "SomethingNew"),
        ]
        .iter()
        .enumerate()
        {
            conn.execute(
                "INSERT INTO events (event_id, team_slug, event_type, lamport_clock, node_id,
                   project_uuid, received_at, envelope) VALUES (?1, ?2, ?3, 1, 'n', 'p', 0, '{}')",
                rusqlite::params![format!("E{i}"), team, t],
            )
            .expect("insert");
        }
        assert_eq!(
            team_event_types(&conn, "acme").expect("types"),
            ["SomethingNew", "WPCreated", "WPStatusChanged"]
        );
    }
}
