//! The cumulative-flow diagram of a feature: work packages per lane over time, drawn on the
//! server as SVG (`…/features/<feature>/flow` embeds it, `…/flow.svg` is the image alone,
//! `?format=json` the series). Bands from the bottom: done, for review, doing, planned — a band
//! that widens is where work piles up.
//!
//! A feature with at most [`MAX_EXACT`] lane changes is drawn change by change; a longer one
//! from the `dashboard_flow` projection at the finest bucket (minute, hour or day) that gives
//! at most one bucket per pixel column, so the page reads a few hundred rows however long the
//! history.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{PreEscaped, html};
use serde::{Deserialize, Serialize};

use super::super::AppState;
use super::super::store::dashboard::Transition;
use super::layout::{self, LANES, Nav, lane_colour, lane_label};
use super::work_package::project_of;
use super::{DashError, Viewer, base, blocking, enc, given, own_team};

/// Lane changes drawn one by one at most; past that the chart is drawn from buckets.
const MAX_EXACT: usize = 720;

/// Pixel columns of the plot area: at most one bucket per column.
const COLUMNS: i64 = (W - PAD_L - 8.0) as i64;

#[derive(Debug, Default, Deserialize)]
pub struct FlowQuery {
    format: Option<String>,
    project: Option<String>,
}

/// The number of work packages per lane from `at_ms` on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Point {
    pub at_ms: i64,
    /// planned, doing, for_review, done
    pub lanes: [i64; 4],
}

#[derive(Serialize)]
struct Flow {
    team_slug: String,
    project_uuid: String,
    feature_slug: String,
    /// `null` when each point is one lane change; else the bucket width in milliseconds, each
    /// point being a bucket's start with the counts at its end.
    bucket_ms: Option<i64>,
    points: Vec<Point>,
}

/// The series: after each lane change (in event-time order), the count of each lane.
pub fn series(mut transitions: Vec<Transition>) -> Vec<Point> {
    transitions.sort_by_key(|t| (t.at_ms, t.seq));
    let mut lane_of: HashMap<String, usize> = HashMap::new();
    let mut counts = [0i64; 4];
    let mut points: Vec<Point> = Vec::new();
    for t in transitions {
        let Some(new) = LANES.iter().position(|l| *l == t.lane) else {
            continue;
        };
        if let Some(old) = lane_of.insert(t.wp_id, new) {
            counts[old] -= 1;
        }
        counts[new] += 1;
        match points.last_mut() {
            Some(p) if p.at_ms == t.at_ms => p.lanes = counts,
            _ => points.push(Point {
                at_ms: t.at_ms,
                lanes: counts,
            }),
        }
    }
    points
}

const W: f64 = 720.0;
const H: f64 = 260.0;
const PAD_L: f64 = 36.0;
const PAD_B: f64 = 24.0;

/// The chart as a standalone SVG document (no scripts, no styles: presentation attributes).
pub fn render_svg(feature: &str, points: &[Point], now_ms: i64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-labelledby="flow-title flow-desc">"##
    );
    let _ = write!(
        s,
        r#"<title id="flow-title">Cumulative flow of {}</title>"#,
        maud::html! { (feature) }.into_string()
    );
    let desc = match points.last() {
        Some(p) => LANES
            .iter()
            .zip(p.lanes)
            .map(|(l, n)| format!("{}: {n}", lane_label(l)))
            .collect::<Vec<_>>()
            .join(", "),
        None => "No lane changes yet".into(),
    };
    let _ = write!(s, r#"<desc id="flow-desc">Now — {desc}</desc>"#);
    let _ = write!(
        s,
        r##"<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>"##
    );
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#57606a" font-size="14">No lane changes yet</text></svg>"##,
            W / 2.0,
            H / 2.0
        );
        return s;
    };
    let t0 = first.at_ms;
    let t1 = now_ms.max(last.at_ms).max(t0 + 1);
    let max = points
        .iter()
        .map(|p| p.lanes.iter().sum::<i64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let x = |t: i64| PAD_L + (t - t0) as f64 / (t1 - t0) as f64 * (W - PAD_L - 8.0);
    let y = |n: i64| (H - PAD_B) - n as f64 / max as f64 * (H - PAD_B - 8.0);
    // Stack from the bottom: done (3), for_review (2), doing (1), planned (0).
    let order = [3usize, 2, 1, 0];
    for (k, &lane) in order.iter().enumerate() {
        let below = |p: &Point| order[..k].iter().map(|&i| p.lanes[i]).sum::<i64>();
        let above = |p: &Point| below(p) + p.lanes[lane];
        let mut upper = Vec::new();
        let mut lower = Vec::new();
        for (i, p) in points.iter().enumerate() {
            let end = points.get(i + 1).map_or(t1, |n| n.at_ms);
            upper.push((x(p.at_ms), y(above(p))));
            upper.push((x(end), y(above(p))));
            lower.push((x(p.at_ms), y(below(p))));
            lower.push((x(end), y(below(p))));
        }
        lower.reverse();
        let pts: Vec<String> = upper
            .iter()
            .chain(lower.iter())
            .map(|(a, b)| format!("{a:.1},{b:.1}"))
            .collect();
        let _ = write!(
            s,
            r#"<polygon points="{}" fill="{}"><title>{}</title></polygon>"#,
            pts.join(" "),
            lane_colour(LANES[lane]),
            lane_label(LANES[lane])
        );
    }
    // Axes: count on the left, start and end dates below.
    let axis = "#57606a";
    let _ = write!(
        s,
        r#"<line x1="{PAD_L}" y1="{}" x2="{}" y2="{}" stroke="{axis}"/>"#,
        H - PAD_B,
        W - 8.0,
        H - PAD_B
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="{axis}">{max}</text>"#,
        PAD_L - 4.0,
        16.0
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="{axis}">0</text>"#,
        PAD_L - 4.0,
        H - PAD_B
    );
    let date = |t: i64| {
        chrono::DateTime::from_timestamp_millis(t)
            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    };
    let _ = write!(
        s,
        r#"<text x="{PAD_L}" y="{}" font-size="11" fill="{axis}">{}</text>"#,
        H - 6.0,
        date(t0)
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="{axis}">{}</text>"#,
        W - 8.0,
        H - 6.0,
        date(t1)
    );
    s.push_str("</svg>");
    s
}

/// The chart's data: exact for a short history, from the projection's buckets for a long one.
struct Loaded {
    project: String,
    slug: Option<String>,
    bucket_ms: Option<i64>,
    points: Vec<Point>,
}

async fn load(
    state: &Arc<AppState>,
    viewer: &Viewer,
    team: &str,
    feature: &str,
    project: Option<String>,
    now_ms: i64,
) -> Result<Loaded, DashError> {
    own_team(viewer, team)?;
    let (project, slug) = project_of(state, team, feature, project).await?;
    let (t, p, f) = (team.to_owned(), project.clone(), feature.to_owned());
    let (bucket_ms, points) = blocking(state, move |st| {
        let exact = st.store.feature_transitions(&t, &p, &f, MAX_EXACT + 1)?;
        if exact.len() <= MAX_EXACT {
            return Ok((None, series(exact)));
        }
        let (width, buckets) = st.store.feature_flow(&t, &p, &f, COLUMNS, now_ms)?;
        let points = buckets
            .into_iter()
            .map(|b| Point {
                at_ms: b.start_ms,
                lanes: b.lanes,
            })
            .collect();
        Ok((Some(width), points))
    })
    .await?;
    Ok(Loaded {
        project,
        slug,
        bucket_ms,
        points,
    })
}

/// "minute", "hour" or "day" for a bucket width.
fn bucket_name(ms: i64) -> &'static str {
    match ms {
        ..=60_000 => "minute",
        60_001..=3_600_000 => "hour",
        _ => "day",
    }
}

/// `GET /a/<team>/dashboards/features/<feature>/flow`
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path((team, feature)): Path<(String, String)>,
    Query(q): Query<FlowQuery>,
    viewer: Viewer,
) -> Result<Response, DashError> {
    let now = chrono::Utc::now().timestamp_millis();
    let Loaded {
        project,
        slug,
        bucket_ms,
        points,
    } = load(&state, &viewer, &team, &feature, given(&q.project), now).await?;
    if q.format.as_deref() == Some("json") {
        return Ok(Json(Flow {
            team_slug: team,
            project_uuid: project,
            feature_slug: feature,
            bucket_ms,
            points,
        })
        .into_response());
    }
    let base = base(&team);
    let body = html! {
        p { a href={ (base) "board?feature=" (enc(&feature)) } { "← " (feature) " on the board" } }
        h1 { "Cumulative flow: " (feature) }
        p class="hint" { "Project " (slug.as_deref().unwrap_or(&project)) ". Each band is the number of work packages in a lane over time; a band that widens is where work piles up."
            @if let Some(ms) = bucket_ms { " Drawn per " (bucket_name(ms)) ": the counts at the end of each " (bucket_name(ms)) " with a change." } }
        figure class="flow" {
            (PreEscaped(render_svg(&feature, &points, now)))
            figcaption {
                ul class="legend" {
                    @for lane in LANES.iter().rev() {
                        li { span class={ "swatch lane-" (lane) } {} (lane_label(lane)) }
                    }
                }
            }
        }
        @if let Some(first) = points.first() {
            p class="meta" { "From " (layout::time(Some(first.at_ms))) " to now (the axis is in UTC)." }
        }
        p { a href={ (base) "features/" (enc(&feature)) "/flow.svg?project=" (enc(&project)) } { "The chart as an SVG file" } }
    };
    Ok(
        Html(layout::page(&viewer, "Cumulative flow", Nav::None, body).into_string())
            .into_response(),
    )
}

/// `GET /a/<team>/dashboards/features/<feature>/flow.svg`
pub async fn svg(
    State(state): State<Arc<AppState>>,
    Path((team, feature)): Path<(String, String)>,
    Query(q): Query<FlowQuery>,
    viewer: Viewer,
) -> Result<Response, DashError> {
    let now = chrono::Utc::now().timestamp_millis();
    let loaded = load(&state, &viewer, &team, &feature, given(&q.project), now).await?;
    let mut r = render_svg(&feature, &loaded.points, now).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seq: i64, wp: &str, at_ms: i64, lane: &str) -> Transition {
        Transition {
            seq,
            wp_id: wp.into(),
            at_ms,
            lane: lane.into(),
        }
    }

    #[test]
    fn the_series_counts_each_work_package_once_in_its_latest_lane() {
        let points = series(vec![
            t(1, "WP01", 10, "planned"),
            t(2, "WP02", 10, "planned"),
            t(4, "WP01", 30, "done"),
            // Arrived before the move to done but happened earlier.
            t(3, "WP01", 20, "doing"),
        ]);
        assert_eq!(
            points,
            [
                Point {
                    at_ms: 10,
                    lanes: [2, 0, 0, 0]
                },
                Point {
                    at_ms: 20,
                    lanes: [1, 1, 0, 0]
                },
                Point {
                    at_ms: 30,
                    lanes: [1, 0, 0, 1]
                },
            ]
        );
        let svg = render_svg("001-<x>", &points, 40);
        assert!(svg.contains("001-&lt;x&gt;"), "feature name escaped: {svg}");
        assert_eq!(svg.matches("<polygon").count(), 4);
    }
}
