//! The statements a batch's ingest runs, one method each, so that the ingest itself (dedup,
//! the board, the dashboard's projections: `events.rs`, `dashboard/ingest.rs`,
//! `dashboard/flow.rs`) is written once and runs on either backend. Each backend implements
//! [`IngestTx`] over its open transaction (`sqlite_ingest.rs`, `pg/ingest.rs`); every method is
//! one indexed statement, and none reads an event other than by its own key.

use super::StoreError;
use super::events::IncomingEvent;

/// A lane change that may supersede the board's current lane of a work package.
pub struct Move<'a> {
    pub team_slug: &'a str,
    pub project_uuid: &'a str,
    pub feature_slug: &'a str,
    pub wp_id: &'a str,
    pub lane: &'static str,
    pub lamport_clock: i64,
    pub node_id: &'a str,
    pub seq: i64,
    pub actor: Option<&'a str>,
    pub at_ms: i64,
}

/// A work package's identity on the board.
#[derive(Clone, Copy)]
pub struct WpKey<'a> {
    pub team_slug: &'a str,
    pub project_uuid: &'a str,
    pub feature_slug: &'a str,
    pub wp_id: &'a str,
}

/// One transition of the cumulative-flow history (`dashboard_transitions`).
pub struct TransitionRow<'a> {
    pub wp: WpKey<'a>,
    pub seq: i64,
    pub at_ms: i64,
    pub lane: &'static str,
}

/// The statements of ingest, inside one open transaction.
pub trait IngestTx {
    /// Inserts the event unless its `event_id` is stored already; its `seq` when inserted.
    fn insert_event(
        &mut self,
        team_slug: &str,
        e: &IncomingEvent,
        received_at: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// The team that holds the event with this id, if any.
    fn event_team(&mut self, event_id: &str) -> Result<Option<String>, StoreError>;

    /// Files a work package known only under feature "" (status changes that arrived before
    /// its creation) under `wp.feature_slug`, unless it is already known there.
    fn wp_adopt(&mut self, wp: WpKey<'_>) -> Result<(), StoreError>;

    /// Adds the work package in `planned` with order key `(0, "")`, unless it is known.
    fn wp_create(&mut self, wp: WpKey<'_>, seq: i64) -> Result<(), StoreError>;

    /// Moves the work package to `m.lane` when `(lamport_clock, node_id)` is newer than the
    /// change that set its current lane (`event::lane::supersedes`, bytewise on node ids), and
    /// with it `last_actor` and `lane_since_ms`; adds it when unknown.
    fn wp_move(&mut self, m: &Move<'_>) -> Result<(), StoreError>;

    /// The features (at most two) under which the project knows a work package with this id.
    fn wp_features(
        &mut self,
        team_slug: &str,
        project_uuid: &str,
        wp_id: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// The feature of the work package with this id that changed last, if any.
    fn wp_latest_feature(
        &mut self,
        team_slug: &str,
        project_uuid: &str,
        wp_id: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Sets the title from a `WPCreated` stored as `seq`, and `lane_since_ms` to `at_ms` when
    /// that event set the lane.
    fn wp_set_title(
        &mut self,
        wp: WpKey<'_>,
        title: Option<&str>,
        seq: i64,
        at_ms: i64,
    ) -> Result<(), StoreError>;

    /// Sets who works on the work package (a `WPAssigned`).
    fn wp_set_actor(&mut self, wp: WpKey<'_>, actor: &str) -> Result<(), StoreError>;

    /// Records a transition; false when one with this seq is stored already.
    fn transition_insert(&mut self, t: &TransitionRow<'_>) -> Result<bool, StoreError>;

    /// The lane of the work package's transition just before `t` and the time and lane of the
    /// one just after it, by `(at_ms, seq)`.
    #[allow(clippy::type_complexity)]
    fn transition_neighbours(
        &mut self,
        t: &TransitionRow<'_>,
    ) -> Result<(Option<String>, Option<(i64, String)>), StoreError>;

    /// Adds `delta` (planned, doing, for_review, done) to one cumulative-flow bucket.
    fn flow_add(
        &mut self,
        key: (&str, &str, &str),
        width_ms: i64,
        bucket: i64,
        delta: [i64; 4],
    ) -> Result<(), StoreError>;

    /// Records the feature's latest event (and its project slug, when named).
    fn feature_touch(
        &mut self,
        key: (&str, &str, &str),
        project_slug: Option<&str>,
        last_seq: i64,
        last_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// Adds `stored` to the team's event count.
    fn team_count_add(&mut self, team_slug: &str, stored: i64) -> Result<(), StoreError>;
}
