//! The methods of the storage interface not yet answered on PostgreSQL (issue 13: the event
//! log, pulls and the dashboard's projections come next). Nothing reaches them today: `serve`
//! and the event-reading commands do not take `--database` until this file is gone.

use super::super::dashboard::flow::FlowBucket;
use super::super::dashboard::{
    ActivityFilter, BoardCard, BoardFilter, BrowserSession, DashboardCounts, FeatureRow, Transition,
};
use super::super::{StoreError, StoredEvent};
use super::Postgres;

fn pending<T>(what: &'static str) -> Result<T, StoreError> {
    Err(StoreError::NotOnPostgres { what })
}

impl Postgres {
    pub fn dashboard_counts(&self, _team_slug: &str) -> Result<DashboardCounts, StoreError> {
        pending("dashboard_counts")
    }

    pub fn board(
        &self,
        _team_slug: &str,
        _filter: &BoardFilter,
    ) -> Result<Vec<BoardCard>, StoreError> {
        pending("board")
    }

    pub fn features(&self, _team_slug: &str) -> Result<Vec<FeatureRow>, StoreError> {
        pending("features")
    }

    pub fn dashboard_activity(
        &self,
        _team_slug: &str,
        _filter: &ActivityFilter,
        _before: Option<i64>,
        _limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        pending("dashboard_activity")
    }

    pub fn work_package_events(
        &self,
        _team_slug: &str,
        _project_uuid: &str,
        _feature_slug: &str,
        _wp_id: &str,
        _limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        pending("work_package_events")
    }

    pub fn board_card(
        &self,
        _team_slug: &str,
        _project_uuid: &str,
        _feature_slug: &str,
        _wp_id: &str,
    ) -> Result<Option<BoardCard>, StoreError> {
        pending("board_card")
    }

    pub fn feature_transitions(
        &self,
        _team_slug: &str,
        _project_uuid: &str,
        _feature_slug: &str,
        _limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        pending("feature_transitions")
    }

    pub fn feature_projects(
        &self,
        _team_slug: &str,
        _feature_slug: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        pending("feature_projects")
    }

    pub fn create_browser_session(
        &self,
        _token_hash: &str,
        _username: &str,
        _csrf: &str,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        pending("create_browser_session")
    }

    pub fn browser_session(&self, _token_hash: &str) -> Result<Option<BrowserSession>, StoreError> {
        pending("browser_session")
    }

    pub fn end_browser_session(&self, _token_hash: &str) -> Result<(), StoreError> {
        pending("end_browser_session")
    }

    pub fn feature_flow_buckets(
        &self,
        _team_slug: &str,
        _project_uuid: &str,
        _feature_slug: &str,
        _width_ms: i64,
    ) -> Result<Vec<FlowBucket>, StoreError> {
        pending("feature_flow_buckets")
    }

    pub fn feature_flow(
        &self,
        _team_slug: &str,
        _project_uuid: &str,
        _feature_slug: &str,
        _columns: i64,
        _now_ms: i64,
    ) -> Result<(i64, Vec<FlowBucket>), StoreError> {
        pending("feature_flow")
    }
}
