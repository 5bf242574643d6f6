//! `GET /a/<team>/dashboards/features/<feature>/<wp>`: one work package's timeline — every
//! status change, assignment, history entry, error and dependency resolution in
//! `(lamport_clock, node_id)` order — and how long it spent in each lane.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use serde::{Deserialize, Serialize};

use super::super::AppState;
use super::super::store::dashboard::BoardCard;
use super::layout::{self, LANES, Nav, lane_label};
use super::sentence::FeedItem;
use super::{DashError, Viewer, base, blocking, enc, given, own_team};

/// Events shown on one work package's page at most.
const MAX_EVENTS: usize = 5000;

#[derive(Debug, Default, Deserialize)]
pub struct WpQuery {
    format: Option<String>,
    project: Option<String>,
}

#[derive(Serialize)]
struct WorkPackage {
    team_slug: String,
    project_uuid: String,
    card: Option<BoardCard>,
    /// Milliseconds spent in each lane, the current one counted up to now.
    time_in_lane_ms: serde_json::Map<String, serde_json::Value>,
    timeline: Vec<FeedItem>,
}

/// Resolves the project of a feature: the one asked for, else the only (or first) one.
pub async fn project_of(
    state: &Arc<AppState>,
    team: &str,
    feature: &str,
    asked: Option<String>,
) -> Result<(String, Option<String>), DashError> {
    let (t, f) = (team.to_owned(), feature.to_owned());
    let projects = blocking(state, move |st| st.store.feature_projects(&t, &f)).await?;
    let found = match asked {
        Some(p) => projects.into_iter().find(|(uuid, _)| *uuid == p),
        None => projects.into_iter().next(),
    };
    found.ok_or(DashError::NotFound)
}

/// `GET /a/<team>/dashboards/features/<feature>/<wp>`
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path((team, feature, wp)): Path<(String, String, String)>,
    Query(q): Query<WpQuery>,
    viewer: Viewer,
) -> Result<Response, DashError> {
    own_team(&viewer, &team)?;
    let (project, _) = project_of(&state, &team, &feature, given(&q.project)).await?;
    let (t, p, f, w) = (team.clone(), project.clone(), feature.clone(), wp.clone());
    let (events, card) = blocking(&state, move |st| {
        let events = st.store.work_package_events(&t, &p, &f, &w, MAX_EVENTS)?;
        let card = st.store.board_card(&t, &p, &f, &w)?;
        Ok((events, card))
    })
    .await?;
    if events.is_empty() && card.is_none() {
        return Err(DashError::NotFound);
    }
    let mut timeline: Vec<FeedItem> = events
        .iter()
        .map(|e| FeedItem::new(e.seq, &e.event_type, &e.envelope))
        .collect();
    timeline.sort_by(|a, b| (a.lamport_clock, &a.node_id).cmp(&(b.lamport_clock, &b.node_id)));
    let now = chrono::Utc::now().timestamp_millis();
    let spent = time_in_lanes(&timeline, now);
    if q.format.as_deref() == Some("json") {
        let time_in_lane_ms = LANES
            .iter()
            .zip(spent)
            .map(|(l, ms)| ((*l).to_owned(), ms.into()))
            .collect();
        return Ok(Json(WorkPackage {
            team_slug: team,
            project_uuid: project,
            card,
            time_in_lane_ms,
            timeline,
        })
        .into_response());
    }
    let base = base(&team);
    let title = card
        .as_ref()
        .and_then(|c| c.title.clone())
        .unwrap_or_else(|| "(untitled)".into());
    let body = html! {
        p { a href={ (base) "board?feature=" (enc(&feature)) } { "← " (feature) " on the board" } }
        h1 { (wp) " " q { (title) } }
        @if let Some(c) = &card {
            p { "Now in " span class={ "lane-tag lane-" (c.lane) } { (lane_label(&c.lane)) }
                @if let Some(a) = &c.last_actor { " · last touched by " strong { (a) } } }
        }
        h2 { "Time in each lane" }
        table class="lane-times" {
            thead { tr { th scope="col" { "Lane" } th scope="col" { "Time" } } }
            tbody {
                @for (lane, ms) in LANES.iter().zip(spent) {
                    tr { th scope="row" { (lane_label(lane)) } td { (layout::age(ms)) } }
                }
            }
        }
        h2 { "Timeline" }
        ol class="timeline" {
            @for item in &timeline {
                li { (item.render(&team)) " " span class="meta" { "· " (layout::time(item.at_ms)) } }
            }
        }
        p { a href={ (base) "features/" (enc(&feature)) "/flow?project=" (enc(&project)) } { "Cumulative flow of " (feature) } }
    };
    Ok(Html(layout::page(&viewer, &wp, Nav::None, body).into_string()).into_response())
}

/// Milliseconds in each lane: from each lane change to the next, the last up to `now`.
fn time_in_lanes(timeline: &[FeedItem], now: i64) -> [i64; 4] {
    let mut spent = [0i64; 4];
    let mut current: Option<(usize, i64)> = None;
    for item in timeline {
        let Some(lane) = item.lane_entered else {
            continue;
        };
        let Some(at) = item.at_ms else { continue };
        // A creation after a move (arrived late) does not reset the lane.
        if item.event_type == "WPCreated" && current.is_some() {
            continue;
        }
        if let Some((i, since)) = current {
            spent[i] += (at - since).max(0);
        }
        let idx = LANES.iter().position(|l| *l == lane.as_str()).unwrap_or(0);
        current = Some((idx, at));
    }
    if let Some((i, since)) = current {
        spent[i] += (now - since).max(0);
    }
    spent
}
