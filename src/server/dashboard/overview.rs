//! `GET /a/<team>/dashboards/`: counts, work packages per lane, per-feature progress and the
//! last 20 events.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Serialize;

use super::super::AppState;
use super::super::store::dashboard::{DashboardCounts, FeatureRow};
use super::layout::{self, LANES, Nav, lane_label, lanes_bar};
use super::sentence::FeedItem;
use super::{DashError, Format, Viewer, base, blocking, enc, own_team};

/// Events on the overview.
const RECENT: usize = 20;

#[derive(Serialize)]
struct Overview {
    team_slug: String,
    counts: DashboardCounts,
    /// Work packages per lane, by name.
    lanes: serde_json::Map<String, serde_json::Value>,
    features: Vec<FeatureRow>,
    recent: Vec<FeedItem>,
}

/// `GET /a/<team>/dashboards` → the overview with its trailing slash.
pub async fn redirect(Path(team): Path<String>) -> Redirect {
    Redirect::permanent(&base(&team))
}

/// `GET /a/<team>/dashboards/`
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(team): Path<String>,
    Query(format): Query<Format>,
    viewer: Viewer,
) -> Result<Response, DashError> {
    own_team(&viewer, &team)?;
    let t = team.clone();
    let (counts, features, recent) = blocking(&state, move |st| {
        let counts = st.store.dashboard_counts(&t)?;
        let features = st.store.features(&t)?;
        let recent = st
            .store
            .dashboard_activity(&t, &Default::default(), None, RECENT)?;
        Ok((counts, features, recent))
    })
    .await?;
    let mut lanes = [0i64; 4];
    for f in &features {
        for (sum, n) in lanes.iter_mut().zip(f.lanes) {
            *sum += n;
        }
    }
    let recent: Vec<FeedItem> = recent
        .iter()
        .map(|e| FeedItem::new(e.seq, &e.event_type, &e.envelope))
        .collect();
    if format.json() {
        let lanes = LANES
            .iter()
            .zip(lanes)
            .map(|(l, n)| ((*l).to_owned(), n.into()))
            .collect();
        return Ok(Json(Overview {
            team_slug: team,
            counts,
            lanes,
            features,
            recent,
        })
        .into_response());
    }
    let base = base(&team);
    let body = html! {
        h1 { "Overview" }
        dl class="counts" {
            div { dt { "Projects" } dd { (counts.projects) } }
            div { dt { "Features" } dd { (counts.features) } }
            div { dt { "Work packages" } dd { (counts.work_packages) } }
            div { dt { "Events" } dd { (counts.events) } }
        }
        h2 { "Work packages per lane" }
        (lanes_bar(&lanes))
        ul class="legend" {
            @for (lane, n) in LANES.iter().zip(lanes) {
                li { span class={ "swatch lane-" (lane) } {} (lane_label(lane)) ": " (n) }
            }
        }
        h2 { "Features" }
        @if features.is_empty() {
            p { "No work packages yet. Events arrive with " code { "spec-kitty sync now" } "." }
        } @else {
            table {
                thead { tr { th scope="col" { "Feature" } th scope="col" { "Project" } th scope="col" { "Progress" } th scope="col" { "Last activity" } } }
                tbody {
                    @for f in &features {
                        tr {
                            td { a href={ (base) "board?feature=" (enc(&f.feature_slug)) } { (display_feature(&f.feature_slug)) } }
                            td { (f.project_slug.as_deref().unwrap_or(&f.project_uuid)) }
                            td {
                                progress max=(f.total) value=(f.lanes[3])
                                    aria-label={ (f.lanes[3]) " of " (f.total) " done" } {}
                                " " (f.lanes[3]) " / " (f.total) " done · "
                                a href={ (base) "features/" (enc(&f.feature_slug)) "/flow?project=" (enc(&f.project_uuid)) } { "flow" }
                            }
                            td { (layout::time(f.last_at_ms)) }
                        }
                    }
                }
            }
        }
        h2 { "Recent events" }
        ol class="feed" {
            @for item in &recent {
                li {
                    (item.render(&team))
                    " "
                    span class="meta" { "· " (layout::time(item.at_ms)) }
                }
            }
        }
        p { a href={ (base) "activity" } { "All activity" } }
    };
    let markup = layout::page(&viewer, "Overview", Nav::Overview, body);
    Ok(Html(markup.into_string()).into_response())
}

/// Work packages whose feature is not known yet are filed under "".
pub fn display_feature(slug: &str) -> &str {
    if slug.is_empty() {
        "(no feature yet)"
    } else {
        slug
    }
}
