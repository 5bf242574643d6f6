//! The page shell (head, navigation, skip link), times, and the small pieces shared by pages.

use maud::{DOCTYPE, Markup, html};

use super::session::{Viewer, logout_form};
use super::{assets, base};

/// Which page of the navigation is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Board,
    Activity,
    None,
}

/// A page of the dashboard for a logged-in viewer.
pub fn page(viewer: &Viewer, title: &str, current: Nav, body: Markup) -> Markup {
    let team = &viewer.team_slug;
    let base = base(team);
    let link = |nav: Nav, href: String, label: &str| {
        html! {
            @if nav == current {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&format!("{title} · {team}")))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    span class="brand" { "spec-kitty" span class="team" { (team) } }
                    nav aria-label="Dashboard" {
                        (link(Nav::Overview, base.clone(), "Overview"))
                        (link(Nav::Board, format!("{base}board"), "Board"))
                        (link(Nav::Activity, format!("{base}activity"), "Activity"))
                    }
                    (logout_form(viewer))
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

/// A page without navigation (login, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { (body) }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) }
            link rel="stylesheet" href=(assets::CSS_URL);
            script src=(assets::JS_URL) defer {}
        }
    }
}

/// An event time: ISO in `datetime` (the script shows it in the viewer's zone with a relative
/// age), a UTC fallback as text.
pub fn time(at_ms: Option<i64>) -> Markup {
    let Some(t) = at_ms.and_then(chrono::DateTime::from_timestamp_millis) else {
        return html! { span class="time" { "unknown time" } };
    };
    let iso = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let now = chrono::Utc::now().timestamp_millis();
    html! {
        time datetime=(iso) title=(t.format("%Y-%m-%d %H:%M:%S UTC").to_string()) {
            (age(now - t.timestamp_millis())) " ago"
        }
    }
}

/// A duration as people say it: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// The human name of a lane.
pub fn lane_label(lane: &str) -> &'static str {
    match lane {
        "planned" => "Planned",
        "doing" => "Doing",
        "for_review" => "For review",
        "done" => "Done",
        _ => "Unknown",
    }
}

/// The four lanes, in board order.
pub const LANES: [&str; 4] = ["planned", "doing", "for_review", "done"];

/// Colours of the lanes in charts (checked for contrast against the white background).
pub fn lane_colour(lane: &str) -> &'static str {
    match lane {
        "planned" => "#5b6b7f",
        "doing" => "#0550ae",
        "for_review" => "#9a6700",
        "done" => "#1a7f37",
        _ => "#6e7781",
    }
}

/// A horizontal bar of work packages per lane, as SVG (no inline styles: CSP allows none).
pub fn lanes_bar(lanes: &[i64; 4]) -> Markup {
    let total: i64 = lanes.iter().sum();
    let label = LANES
        .iter()
        .zip(lanes)
        .map(|(l, n)| format!("{}: {n}", lane_label(l)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut x = 0.0;
    let mut rects = Vec::new();
    for (lane, n) in LANES.iter().zip(lanes) {
        if *n > 0 && total > 0 {
            let w = *n as f64 * 100.0 / total as f64;
            rects.push((*lane, *n, x, w));
            x += w;
        }
    }
    html! {
        svg class="lanes-bar" viewBox="0 0 100 6" preserveAspectRatio="none" role="img"
            aria-label=(label) {
            @if rects.is_empty() {
                rect x="0" y="0" width="100" height="6" fill="#d0d7de" {}
            }
            @for (lane, n, x, w) in &rects {
                rect x=(format!("{x:.3}")) y="0" width=(format!("{w:.3}")) height="6"
                    fill=(lane_colour(lane)) { title { (lane_label(lane)) ": " (n) } }
            }
        }
    }
}
