//! The errors of the HTTP API and how they become responses.
//!
//! Every error answers a JSON body `{"error": "..."}` (plus `details` for an invalid batch),
//! so clients never have to parse text. Internal errors are logged with their cause and
//! answered with a generic message: the database's complaints are not the client's business.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::store::StoreError;

/// One problem with one event of an invalid batch.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    pub event_id: String,
    pub error: String,
}

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    InvalidBatch {
        message: String,
        details: Vec<Detail>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many login attempts; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("internal server error")]
    Store(#[from] StoreError),
    #[error("internal server error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidBatch { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a [Detail]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Store(e) => tracing::error!(error = %e, "database failure"),
            ApiError::Internal(e) => tracing::error!(error = %e, "internal failure"),
            _ => {}
        }
        let details = match &self {
            ApiError::InvalidBatch { details, .. } => Some(details.as_slice()),
            _ => None,
        };
        let body = ErrorBody {
            error: self.to_string(),
            details,
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(format!("background task failed: {e}"))
    }
}

/// How long a client may take to send a request body once its headers are in.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The body limit of the small JSON endpoints (axum's default body limit).
pub const JSON_BODY_LIMIT: usize = 2 << 20;

/// The answer to a body that did not arrive within [`BODY_TIMEOUT`].
pub fn body_timeout() -> ApiError {
    ApiError::RequestTimeout(format!(
        "the request body did not arrive within {} s",
        BODY_TIMEOUT.as_secs()
    ))
}

/// A JSON request body whose rejection is answered in the API's JSON error shape instead of
/// axum's plain text.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Lenient about Content-Type: older clients do not always send it.
        let read = Bytes::from_request(req, state);
        let bytes = match tokio::time::timeout(BODY_TIMEOUT, read).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::TooLarge(format!(
                    "request body larger than {JSON_BODY_LIMIT} bytes"
                )));
            }
            Ok(Err(e)) => return Err(ApiError::BadRequest(e.body_text())),
            Err(_) => return Err(body_timeout()),
        };
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// A query string whose rejection is answered in the API's JSON error shape (400) instead of
/// axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// Answers unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

/// Answers known paths called with the wrong method.
pub async fn method_not_allowed() -> Response {
    let body = ErrorBody {
        error: "method not allowed on this endpoint".into(),
        details: None,
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
