//! The team dashboard: server-rendered pages under `/a/<team>/dashboards/` (overview, board,
//! activity, work package timeline, cumulative flow), their JSON twins (`?format=json`), a
//! login form with cookie sessions, and a live board fed by server-sent events.
//!
//! Every page reads the projections of [`super::store::dashboard`], never a scan of events.
//! Templates are [`maud`] macros, checked and compiled into the binary, escaping every
//! interpolated value; the one script and style sheet are embedded too ([`assets`]) and the
//! Content-Security-Policy allows nothing else. Team isolation: a page of another team is
//! answered exactly like a page that does not exist (404).

mod activity;
mod assets;
mod board;
mod error;
mod flow;
mod layout;
mod live;
mod overview;
mod sentence;
mod session;
mod work_package;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;

pub use error::DashError;
pub use session::Viewer;

/// The dashboard's routes, merged into the server's router.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(session::root))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/static/dashboard/{file}", get(assets::serve))
        .route("/a/{team}/dashboards/", get(overview::page))
        .route("/a/{team}/dashboards", get(overview::redirect))
        .route("/a/{team}/dashboards/board", get(board::page))
        .route("/a/{team}/dashboards/activity", get(activity::page))
        .route("/a/{team}/dashboards/live", get(live::stream))
        .route(
            "/a/{team}/dashboards/features/{feature}/flow",
            get(flow::page),
        )
        .route(
            "/a/{team}/dashboards/features/{feature}/flow.svg",
            get(flow::svg),
        )
        .route(
            "/a/{team}/dashboards/features/{feature}/{wp}",
            get(work_package::page),
        )
        .layer(axum::middleware::map_response(security_headers))
}

/// The query parameters every page understands.
#[derive(Debug, Default, Deserialize)]
pub struct Format {
    /// `json` for the page's data instead of HTML.
    pub format: Option<String>,
}

impl Format {
    fn json(&self) -> bool {
        self.format.as_deref() == Some("json")
    }
}

/// The dashboard's base path for a team.
fn base(team: &str) -> String {
    format!("/a/{}/dashboards/", enc(team))
}

/// Percent-encodes one path segment or query value (everything but unreserved characters).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A filter value from a form: empty means "all".
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Checks that the viewer belongs to `team`: any other team is "not found".
fn own_team(viewer: &Viewer, team: &str) -> Result<(), DashError> {
    if viewer.team_slug == team {
        Ok(())
    } else {
        Err(DashError::NotFound)
    }
}

/// Runs a blocking store call off the async runtime.
async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&AppState) -> Result<T, super::store::StoreError> + Send + 'static,
) -> Result<T, DashError> {
    let st = state.clone();
    Ok(tokio::task::spawn_blocking(move || f(&st)).await??)
}

/// Headers of every dashboard response: no inline script or style runs, nothing is framed,
/// nothing private is cached.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
