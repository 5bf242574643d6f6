//! `GET /a/<team>/dashboards/activity`: the team's events newest first, 50 at a time from a
//! cursor (`before=<seq>`, an index range at any depth, never OFFSET), filtered by event
//! type, work package, feature and actor. With `fragment=1` it answers only the next items
//! and the next "older" link, which the script appends as the list scrolls.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::super::AppState;
use super::super::store::dashboard::ActivityFilter;
use super::layout::{self, Nav};
use super::sentence::FeedItem;
use super::{DashError, Viewer, base, blocking, enc, given, own_team};

/// Events per page.
const PAGE: usize = 50;

const EVENT_TYPES: [&str; 8] = [
    "WPStatusChanged",
    "WPCreated",
    "WPAssigned",
    "HistoryAdded",
    "ErrorLogged",
    "DependencyResolved",
    "FeatureCreated",
    "FeatureCompleted",
];

#[derive(Debug, Default, Deserialize)]
pub struct ActivityQuery {
    format: Option<String>,
    fragment: Option<String>,
    /// The cursor: only events older than this one.
    before: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    wp: Option<String>,
    feature: Option<String>,
    actor: Option<String>,
}

impl ActivityQuery {
    fn filter(&self) -> ActivityFilter {
        ActivityFilter {
            event_type: given(&self.event_type),
            wp_id: given(&self.wp),
            feature_slug: given(&self.feature),
            actor: given(&self.actor),
        }
    }

    fn filter_query(&self) -> String {
        let f = self.filter();
        [
            ("type", f.event_type),
            ("wp", f.wp_id),
            ("feature", f.feature_slug),
            ("actor", f.actor),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("&{k}={}", enc(&v))))
        .collect()
    }
}

#[derive(Serialize)]
struct Activity {
    team_slug: String,
    events: Vec<FeedItem>,
    /// The cursor of the next (older) page, or null at the end.
    next: Option<String>,
}

/// `GET /a/<team>/dashboards/activity`
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(team): Path<String>,
    Query(q): Query<ActivityQuery>,
    viewer: Viewer,
) -> Result<Response, DashError> {
    own_team(&viewer, &team)?;
    let before = match given(&q.before) {
        Some(b) => Some(
            b.parse::<i64>()
                .map_err(|_| DashError::BadRequest(format!("invalid cursor {b:?}")))?,
        ),
        None => None,
    };
    let (t, filter) = (team.clone(), q.filter());
    let mut rows = blocking(&state, move |st| {
        st.store.dashboard_activity(&t, &filter, before, PAGE + 1)
    })
    .await?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let next = more
        .then(|| rows.last().map(|e| e.seq.to_string()))
        .flatten();
    let items: Vec<FeedItem> = rows
        .iter()
        .map(|e| FeedItem::new(e.seq, &e.event_type, &e.envelope))
        .collect();
    if q.format.as_deref() == Some("json") {
        return Ok(Json(Activity {
            team_slug: team,
            events: items,
            next,
        })
        .into_response());
    }
    let base = base(&team);
    let more_link = next
        .as_ref()
        .map(|n| format!("{base}activity?before={n}{}", q.filter_query()));
    if q.fragment.is_some() {
        return Ok(Html(
            html! { (list_items(&team, &items)) (more_markup(&more_link)) }.into_string(),
        )
        .into_response());
    }
    let f = q.filter();
    let body = html! {
        h1 { "Activity" }
        form class="filters" method="get" role="search" aria-label="Filter the activity" {
            label { "Event type"
                select name="type" {
                    option value="" { "All types" }
                    @for t in EVENT_TYPES {
                        option value=(t) selected[f.event_type.as_deref() == Some(t)] { (t) }
                    }
                    @if let Some(other) = f.event_type.as_deref().filter(|t| !EVENT_TYPES.contains(t)) {
                        option value=(other) selected { (other) }
                    }
                }
            }
            label { "Work package" input name="wp" type="text" size="6" placeholder="WP01" value=(f.wp_id.as_deref().unwrap_or("")); }
            label { "Feature" input name="feature" type="text" size="18" placeholder="001-feature" value=(f.feature_slug.as_deref().unwrap_or("")); }
            label { "Actor" input name="actor" type="text" size="10" value=(f.actor.as_deref().unwrap_or("")); }
            button type="submit" { "Filter" }
        }
        @if items.is_empty() {
            p { "No events match." }
        }
        ol id="feed" class="feed" { (list_items(&team, &items)) }
        (more_markup(&more_link))
    };
    Ok(Html(layout::page(&viewer, "Activity", Nav::Activity, body).into_string()).into_response())
}

fn list_items(team: &str, items: &[FeedItem]) -> Markup {
    html! {
        @for item in items {
            li data-seq=(item.seq) {
                (item.render(team))
                " "
                span class="meta" { "· " (layout::time(item.at_ms)) " · " span class="type" { (item.event_type) } }
            }
        }
    }
}

fn more_markup(link: &Option<String>) -> Markup {
    html! {
        @if let Some(href) = link {
            a id="more" class="more" rel="next" href=(href) { "Older events" }
        }
    }
}
