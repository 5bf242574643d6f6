//! How the dashboard answers what went wrong: a small HTML page (or JSON for `?format=json`
//! and scripts), never a stack of internals.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;

use super::super::error::ApiError;
use super::super::store::StoreError;
use super::layout;

/// An error of a dashboard request.
#[derive(Debug, thiserror::Error)]
pub enum DashError {
    /// No valid session: browsers go to the login form and come back to `next`.
    #[error("log in first")]
    NotLoggedIn { next: String, json: bool },
    /// Unknown page, or a page of another team (the same answer, so that team names do not
    /// leak).
    #[error("no such page")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    /// A form without a valid CSRF token or from another origin.
    #[error("this form has expired or came from another site; reload the page and try again")]
    Forbidden,
    #[error("internal server error")]
    Store(#[from] StoreError),
    #[error("internal server error")]
    Internal(String),
}

impl From<tokio::task::JoinError> for DashError {
    fn from(e: tokio::task::JoinError) -> Self {
        DashError::Internal(format!("background task failed: {e}"))
    }
}

impl From<ApiError> for DashError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound(_) => DashError::NotFound,
            ApiError::Store(s) => DashError::Store(s),
            ApiError::Unauthorized(_) => DashError::NotLoggedIn {
                next: String::new(),
                json: true,
            },
            other => DashError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let status = match &self {
            DashError::NotLoggedIn { next, json: false } => {
                let target = if next.is_empty() {
                    "/login".to_owned()
                } else {
                    format!("/login?next={}", super::enc(next))
                };
                return Redirect::to(&target).into_response();
            }
            DashError::NotLoggedIn { json: true, .. } => StatusCode::UNAUTHORIZED,
            DashError::NotFound => StatusCode::NOT_FOUND,
            DashError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DashError::Forbidden => StatusCode::FORBIDDEN,
            DashError::Store(e) => {
                tracing::error!(error = %e, "database failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            DashError::Internal(e) => {
                tracing::error!(error = %e, "internal failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = self.to_string();
        if matches!(self, DashError::NotLoggedIn { .. }) {
            let mut r = (status, Json(serde_json::json!({ "error": message }))).into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
        let body = layout::bare(
            &message,
            html! {
                h1 { (message) }
                p { a href="/" { "Back to the dashboard" } }
            },
        );
        (status, Html(body.into_string())).into_response()
    }
}
