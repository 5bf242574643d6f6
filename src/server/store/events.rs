//! Events, their deduplication, and the materialised board built from them.

use rusqlite::params;
use serde::Serialize;

use crate::event::Lane;

use super::dashboard::{BatchProjection, EventFacts, count_stored, project_event};
use super::ingest_tx::{IngestTx, Move, WpKey};
use super::sqlite_ingest::SqliteIngest;
use super::{StoreError, sqlite::Sqlite, unix_now};

/// What an accepted event does to the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WpEffect {
    None,
    /// `WPCreated`: the work package appears in `planned` unless it is already known.
    Created {
        feature_slug: String,
    },
    /// `WPStatusChanged`: the work package moves to `lane` if this event is newer, by
    /// `(lamport_clock, node_id)`, than the one that set its current lane.
    Moved {
        feature_slug: Option<String>,
        lane: Lane,
    },
}

/// A validated event ready to be stored under a team.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub event_id: String,
    pub event_type: String,
    pub lamport_clock: i64,
    pub node_id: String,
    pub project_uuid: String,
    pub feature_slug: Option<String>,
    pub wp_id: Option<String>,
    pub effect: WpEffect,
    /// What the dashboard's projections need (actor, title, time).
    pub facts: EventFacts,
    /// The envelope exactly as it will be served back by pull and fan-out.
    pub envelope: String,
}

/// What storing one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored with this server sequence number.
    Stored(i64),
    /// This team already has an event with this id; nothing was stored.
    Duplicate,
    /// Another team already has an event with this id; nothing was stored, nothing is told
    /// about the other team.
    ForeignId,
}

/// One stored event as pull and the activity feed return it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: i64,
    pub event_type: String,
    pub envelope: String,
}

/// One work package of the board.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WorkPackageRow {
    pub feature_slug: String,
    pub wp_id: String,
    pub lane: String,
}

/// Sizes shown on the overview.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub features: i64,
    pub work_packages: i64,
    pub events: i64,
}

impl Sqlite {
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
        self.write(|conn| {
            let tx = conn.transaction()?;
            let outcomes = insert_in(&mut SqliteIngest { tx: &tx }, team_slug, events)?;
            tx.commit()?;
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
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, event_type, envelope FROM events
                 WHERE team_slug = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let mut rows = stmt.query(params![team_slug, after, limit as i64 + 1])?;
            let mut events = Vec::new();
            let mut page = PageBudget::new(limit, max_bytes);
            while let Some(row) = rows.next()? {
                // Sized before it is read, so an oversized row is never loaded for nothing.
                let len = row.get_ref(2)?.as_bytes().map_or(0, <[u8]>::len);
                if !page.admit(len) {
                    return Ok((events, true));
                }
                events.push(stored_event(row)?);
            }
            Ok((events, false))
        })
    }

    /// The activity feed: up to `limit` events of the team, newest first, older than `before`.
    pub fn activity(
        &self,
        team_slug: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, event_type, envelope FROM events
                 WHERE team_slug = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            )?;
            let before = before.unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![team_slug, before, limit as i64], stored_event)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The team's board: every work package with its current lane.
    pub fn work_packages(&self, team_slug: &str) -> Result<Vec<WorkPackageRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT feature_slug, wp_id, lane FROM work_packages
                 WHERE team_slug = ?1 ORDER BY feature_slug, wp_id",
            )?;
            let rows = stmt.query_map([team_slug], |r| {
                Ok(WorkPackageRow {
                    feature_slug: r.get(0)?,
                    wp_id: r.get(1)?,
                    lane: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Counts of features, work packages and events of the team.
    pub fn counts(&self, team_slug: &str) -> Result<Counts, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT
                   (SELECT count(DISTINCT project_uuid || '/' || feature_slug)
                      FROM work_packages WHERE team_slug = ?1),
                   (SELECT count(*) FROM work_packages WHERE team_slug = ?1),
                   (SELECT count(*) FROM events WHERE team_slug = ?1)",
                [team_slug],
                |r| {
                    Ok(Counts {
                        features: r.get(0)?,
                        work_packages: r.get(1)?,
                        events: r.get(2)?,
                    })
                },
            )?)
        })
    }
}

/// The bounds of one pull page, on either backend: at most `limit` events and `max_bytes` of
/// envelopes, but always the first event, however large (else a pull could never pass it).
pub(super) struct PageBudget {
    limit: usize,
    max_bytes: usize,
    taken: usize,
    bytes: usize,
}

impl PageBudget {
    pub(super) fn new(limit: usize, max_bytes: usize) -> PageBudget {
        PageBudget {
            limit,
            max_bytes,
            taken: 0,
            bytes: 0,
        }
    }

    /// Whether the next event, of `len` envelope bytes, still fits the page (and counts it
    /// when it does). Once it answers false the page is full and more events follow.
    pub(super) fn admit(&mut self, len: usize) -> bool {
        if self.taken == self.limit || (self.taken > 0 && self.bytes + len > self.max_bytes) {
            return false;
        }
        self.taken += 1;
        self.bytes += len;
        true
    }
}

fn stored_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        seq: r.get(0)?,
        event_type: r.get(1)?,
        envelope: r.get(2)?,
    })
}

/// Stores a batch through `tx` (the batch's open transaction, on either backend): each event
/// unless its id is known, the board, the dashboard's projections, the team's count.
pub(super) fn insert_in(
    tx: &mut impl IngestTx,
    team_slug: &str,
    events: &[IncomingEvent],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let now = unix_now();
    let mut outcomes = Vec::with_capacity(events.len());
    let mut stored = 0;
    let mut projection = BatchProjection::default();
    for e in events {
        if let Some(seq) = tx.insert_event(team_slug, e, now)? {
            apply_effect(tx, team_slug, e, seq)?;
            project_event(tx, team_slug, e, seq, &mut projection)?;
            stored += 1;
            outcomes.push(InsertOutcome::Stored(seq));
        } else {
            outcomes.push(match tx.event_team(&e.event_id)? {
                Some(t) if t != team_slug => InsertOutcome::ForeignId,
                _ => InsertOutcome::Duplicate,
            });
        }
    }
    projection.flush(tx, team_slug)?;
    count_stored(tx, team_slug, stored)?;
    Ok(outcomes)
}

fn apply_effect(
    tx: &mut impl IngestTx,
    team_slug: &str,
    e: &IncomingEvent,
    seq: i64,
) -> Result<(), StoreError> {
    let Some(wp_id) = e.wp_id.as_deref() else {
        return Ok(());
    };
    match &e.effect {
        WpEffect::None => {}
        WpEffect::Created { feature_slug } => {
            let wp = WpKey {
                team_slug,
                project_uuid: &e.project_uuid,
                feature_slug,
                wp_id,
            };
            // Status changes without a feature that arrived before the creation were filed
            // under feature "": now the feature is known, move them there.
            tx.wp_adopt(wp)?;
            // Order key (0, "") so that any status change, even one received earlier, wins.
            tx.wp_create(wp, seq)?;
        }
        WpEffect::Moved { feature_slug, lane } => {
            let feature = match feature_slug {
                Some(f) => f.clone(),
                None => feature_of(tx, team_slug, &e.project_uuid, wp_id)?,
            };
            // The dashboard's `last_actor` and `lane_since_ms` change with the lane, in the
            // same statement (store/dashboard/ingest.rs relies on it).
            tx.wp_move(&Move {
                team_slug,
                project_uuid: &e.project_uuid,
                feature_slug: &feature,
                wp_id,
                lane: lane.as_str(),
                lamport_clock: e.lamport_clock,
                node_id: &e.node_id,
                seq,
                actor: e.facts.actor.as_deref(),
                at_ms: e.facts.at_ms_or_now(),
            })?;
        }
    }
    Ok(())
}

/// The feature of a status change that does not name one (`feature_slug` is optional in
/// `WPStatusChanged`): the only known work package with that id in the project, else "".
fn feature_of(
    tx: &mut impl IngestTx,
    team_slug: &str,
    project_uuid: &str,
    wp_id: &str,
) -> Result<String, StoreError> {
    let found = tx.wp_features(team_slug, project_uuid, wp_id)?;
    Ok(match found.as_slice() {
        [one] => one.clone(),
        _ => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, wp: &str, lamport: i64, node: &str, effect: WpEffect) -> IncomingEvent {
        IncomingEvent {
            event_id: id.into(),
            event_type: "WPStatusChanged".into(),
            lamport_clock: lamport,
            node_id: node.into(),
            project_uuid: "p".into(),
            feature_slug: Some("001-demo".into()),
            wp_id: Some(wp.into()),
            effect,
            facts: EventFacts::default(),
            envelope: format!("{{\"event_id\":\"{id}\"}}"),
        }
    }

    fn moved(lane: Lane) -> WpEffect {
        WpEffect::Moved {
            feature_slug: None,
            lane,
        }
    }

    fn created() -> WpEffect {
        WpEffect::Created {
            feature_slug: "001-demo".into(),
        }
    }

    #[test]
    fn the_board_follows_lamport_then_node_order_not_arrival_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Sqlite::open(&dir.path().join("s.db")).expect("open");
        let batch = [
            event("A", "WP01", 5, "bbbbbbbbbbbb", moved(Lane::Done)),
            // Arrives later but is older: ignored by the board.
            event("B", "WP01", 4, "cccccccccccc", moved(Lane::Doing)),
            // Same clock, greater node: wins.
            event("C", "WP01", 5, "cccccccccccc", moved(Lane::ForReview)),
            // Created after a move: does not reset the lane.
            event("D", "WP01", 1, "aaaaaaaaaaaa", created()),
            event("E", "WP02", 2, "aaaaaaaaaaaa", created()),
        ];
        let outcomes = store.insert_events("acme", &batch).expect("insert");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, InsertOutcome::Stored(_)))
        );
        let lanes: Vec<(String, String)> = store
            .work_packages("acme")
            .expect("board")
            .into_iter()
            .map(|w| (w.wp_id, w.lane))
            .collect();
        assert_eq!(
            lanes,
            [
                ("WP01".to_owned(), "for_review".to_owned()),
                ("WP02".to_owned(), "planned".to_owned())
            ]
        );
        let counts = store.counts("acme").expect("counts");
        assert_eq!(
            (counts.features, counts.work_packages, counts.events),
            (1, 2, 5)
        );
        let feed: Vec<i64> = store
            .activity("acme", None, 2)
            .expect("feed")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(feed, [5, 4], "newest first");
    }

    #[test]
    fn the_boards_order_is_the_lane_rule_of_the_event_module() {
        use crate::event::lane::supersedes;
        let cases: [(i64, &str); 5] = [(1, "b"), (2, "a"), (2, "b"), (3, "a"), (1, "c")];
        for (i, first) in cases.iter().enumerate() {
            for (j, second) in cases.iter().enumerate() {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = Sqlite::open(&dir.path().join("s.db")).expect("open");
                let batch = [
                    event(
                        &format!("A{i}"),
                        "WP01",
                        first.0,
                        first.1,
                        moved(Lane::Doing),
                    ),
                    event(
                        &format!("B{j}"),
                        "WP01",
                        second.0,
                        second.1,
                        moved(Lane::Done),
                    ),
                ];
                store.insert_events("acme", &batch).expect("insert");
                let lane = store.work_packages("acme").expect("board")[0].lane.clone();
                let wins = supersedes((second.0 as u64, second.1), (first.0 as u64, first.1));
                assert_eq!(lane == "done", wins, "{first:?} then {second:?}");
            }
        }
    }

    #[test]
    fn an_id_of_another_team_is_neither_stored_nor_a_duplicate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Sqlite::open(&dir.path().join("s.db")).expect("open");
        let e = event("A", "WP01", 1, "aaaaaaaaaaaa", created());
        store
            .insert_events("acme", std::slice::from_ref(&e))
            .expect("insert");
        let again = store
            .insert_events("acme", std::slice::from_ref(&e))
            .expect("insert");
        assert_eq!(again, [InsertOutcome::Duplicate]);
        let foreign = store.insert_events("evil", &[e]).expect("insert");
        assert_eq!(foreign, [InsertOutcome::ForeignId]);
        assert!(store.work_packages("evil").expect("board").is_empty());
        assert_eq!(store.counts("evil").expect("counts").events, 0);
    }
}
