//! The dashboard's style sheet and script, compiled into the binary: the dashboard works
//! offline and loads nothing from anywhere else.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/dashboard.js");

pub const CSS_URL: &str = "/static/dashboard/dashboard.css";
pub const JS_URL: &str = "/static/dashboard/dashboard.js";

/// `GET /static/dashboard/{file}`
pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "dashboard.css" => (CSS, "text/css; charset=utf-8"),
        "dashboard.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Revalidated every time: a server upgrade must not leave an old script running.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
