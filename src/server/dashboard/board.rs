//! `GET /a/<team>/dashboards/board`: the kanban board, filtered by project, feature and lane
//! through the URL (`?project=…&feature=…&lane=…`), so a filtered board can be shared. With
//! `fragment=1` it answers only the columns: the live board swaps them in on every change.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::super::AppState;
use super::super::store::dashboard::{BoardCard, BoardFilter, FeatureRow};
use super::layout::{self, LANES, Nav, lane_label};
use super::overview::display_feature;
use super::{DashError, Viewer, base, blocking, enc, given, own_team};

#[derive(Debug, Default, Deserialize)]
pub struct BoardQuery {
    format: Option<String>,
    project: Option<String>,
    feature: Option<String>,
    lane: Option<String>,
    fragment: Option<String>,
}

impl BoardQuery {
    fn filter(&self) -> BoardFilter {
        BoardFilter {
            project_uuid: given(&self.project),
            feature_slug: given(&self.feature),
            lane: given(&self.lane).filter(|l| LANES.contains(&l.as_str())),
        }
    }

    /// The query string of the filters (for links and the live fragment).
    fn query(&self) -> String {
        let f = self.filter();
        [
            ("project", f.project_uuid),
            ("feature", f.feature_slug),
            ("lane", f.lane),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", enc(&v))))
        .collect::<Vec<_>>()
        .join("&")
    }
}

#[derive(Serialize)]
struct Board {
    team_slug: String,
    lanes: Vec<Column>,
}

#[derive(Serialize)]
struct Column {
    lane: &'static str,
    count: usize,
    cards: Vec<BoardCard>,
}

/// `GET /a/<team>/dashboards/board`
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(team): Path<String>,
    Query(q): Query<BoardQuery>,
    viewer: Viewer,
) -> Result<Response, DashError> {
    own_team(&viewer, &team)?;
    let (t, filter) = (team.clone(), q.filter());
    let fragment = q.fragment.is_some();
    let json = q.format.as_deref() == Some("json");
    let (cards, features) = blocking(&state, move |st| {
        let cards = st.store.board(&t, &filter)?;
        // The filter menus only on the full page.
        let features = if fragment || json {
            Vec::new()
        } else {
            st.store.features(&t)?
        };
        Ok((cards, features))
    })
    .await?;
    let mut columns: Vec<Column> = LANES
        .iter()
        .map(|lane| Column {
            lane,
            count: 0,
            cards: Vec::new(),
        })
        .collect();
    for card in cards {
        if let Some(c) = columns.iter_mut().find(|c| c.lane == card.lane) {
            c.cards.push(card);
        }
    }
    for c in &mut columns {
        c.count = c.cards.len();
    }
    if json {
        return Ok(Json(Board {
            team_slug: team,
            lanes: columns,
        })
        .into_response());
    }
    let now = chrono::Utc::now().timestamp_millis();
    let columns_markup = render_columns(&team, &columns, now);
    if fragment {
        return Ok(Html(columns_markup.into_string()).into_response());
    }
    let base = base(&team);
    let query = q.query();
    let sep = if query.is_empty() { "" } else { "&" };
    let body = html! {
        h1 { "Board" }
        (filters(&q.filter(), &features))
        p id="live-status" class="live-status" role="status" aria-live="polite" data-state="off" {
            "Live updates need JavaScript; reload to refresh."
        }
        div id="board" class="board"
            data-live={ (base) "live" }
            data-fragment={ (base) "board?" (query) (sep) "fragment=1" } {
            (columns_markup)
        }
    };
    Ok(Html(layout::page(&viewer, "Board", Nav::Board, body).into_string()).into_response())
}

fn filters(filter: &BoardFilter, features: &[FeatureRow]) -> Markup {
    let mut projects: Vec<(&str, &str)> = features
        .iter()
        .map(|f| {
            (
                f.project_uuid.as_str(),
                f.project_slug.as_deref().unwrap_or(&f.project_uuid),
            )
        })
        .collect();
    projects.sort();
    projects.dedup();
    let mut feature_slugs: Vec<&str> = features.iter().map(|f| f.feature_slug.as_str()).collect();
    feature_slugs.dedup();
    let selected = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    html! {
        form class="filters" method="get" role="search" aria-label="Filter the board" {
            label { "Project"
                select name="project" {
                    option value="" { "All projects" }
                    @for (uuid, name) in &projects {
                        option value=(uuid) selected[selected(&filter.project_uuid, uuid)] { (name) }
                    }
                }
            }
            label { "Feature"
                select name="feature" {
                    option value="" { "All features" }
                    @for f in &feature_slugs {
                        option value=(f) selected[selected(&filter.feature_slug, f)] { (display_feature(f)) }
                    }
                }
            }
            label { "Lane"
                select name="lane" {
                    option value="" { "All lanes" }
                    @for l in LANES {
                        option value=(l) selected[selected(&filter.lane, l)] { (lane_label(l)) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

fn render_columns(team: &str, columns: &[Column], now: i64) -> Markup {
    let base = base(team);
    html! {
        @for c in columns {
            section class="lane" data-lane=(c.lane) aria-labelledby={ "lane-" (c.lane) } {
                h2 id={ "lane-" (c.lane) } { (lane_label(c.lane)) span class="count" { (c.count) } }
                ol {
                    @for card in &c.cards {
                        li class="card" data-wp=(card.wp_id) data-feature=(card.feature_slug) {
                            a class="id" id={ "card-" (card.project_uuid) "-" (card.feature_slug) "-" (card.wp_id) }
                                href={ (base) "features/" (enc(&card.feature_slug)) "/" (enc(&card.wp_id)) "?project=" (enc(&card.project_uuid)) } {
                                (card.wp_id)
                            }
                            span class="title" { (card.title.as_deref().unwrap_or("(untitled)")) }
                            span class="meta" {
                                (display_feature(&card.feature_slug))
                                @if let Some(a) = &card.last_actor { " · " (a) }
                                @if let Some(since) = card.lane_since_ms {
                                    " · in lane "
                                    (lane_age(since, now))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn lane_age(since: i64, now: i64) -> Markup {
    match chrono::DateTime::from_timestamp_millis(since) {
        Some(t) => html! {
            time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) data-since {
                (layout::age(now - since))
            }
        },
        None => html! {},
    }
}
