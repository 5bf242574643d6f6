//! `POST /api/v1/events/batch/`: gzip or plain JSON batches of up to 1000 events.
//!
//! Size is bounded twice: the raw body is read with a byte limit, and decompression goes
//! through a bounded reader, so a gzip bomb costs at most `max_decompressed_bytes` of memory
//! and is answered 413.

use std::io::Read;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tracing::Span;

use super::AppState;
use super::auth::AuthUser;
use super::error::ApiError;
use super::ingest::{EventResult, ingest};

/// The most events one batch may hold (PROTOCOL.md).
pub const MAX_EVENTS_PER_BATCH: usize = 1000;

#[derive(Serialize)]
pub struct BatchResponse {
    results: Vec<EventResult>,
}

/// `POST /api/v1/events/batch/`
pub async fn upload(
    State(state): State<Arc<AppState>>,
    user: AuthUser,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BatchResponse>, ApiError> {
    let gzip = match headers.get(CONTENT_ENCODING).map(|v| v.to_str()) {
        None => false,
        Some(Ok(v)) if v.eq_ignore_ascii_case("gzip") => true,
        Some(Ok(v)) if v.eq_ignore_ascii_case("identity") => false,
        Some(_) => {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Encoding must be gzip or absent".into(),
            ));
        }
    };
    let max_body = state.config.max_body_bytes;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(too_large_body(max_body));
    }
    let bytes = read_body(body, max_body).await?;
    // Taken after the body is read, so that slow uploads do not hold a slot.
    let _slot = state
        .batch_slots
        .acquire()
        .await
        .map_err(|_| ApiError::Internal("batch slots closed".into()))?;
    let span = Span::current();
    let st = state.clone();
    let results = tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let events = decode(&bytes, gzip, st.config.max_decompressed_bytes)?;
            let n = events.len();
            let results = ingest(&st, &user.team_slug, events, None)?;
            tracing::info!(events = n, team = %user.team_slug, "batch stored");
            Ok::<_, ApiError>(results)
        })
    })
    .await??;
    Ok(Json(BatchResponse { results }))
}

fn too_large_body(max: usize) -> ApiError {
    ApiError::TooLarge(format!(
        "request body larger than {max} bytes; send fewer events per batch"
    ))
}

async fn read_body(body: Body, max: usize) -> Result<Bytes, ApiError> {
    let read = axum::body::to_bytes(body, max);
    let read = tokio::time::timeout(super::error::BODY_TIMEOUT, read)
        .await
        .map_err(|_| super::error::body_timeout())?;
    read.map_err(|e| {
        // `to_bytes` reports both an exceeded limit and a broken connection; only the first is
        // the client's fault, and after the second nobody reads the answer anyway.
        let text = format!("{e:?} {e}");
        if text.contains("length limit") {
            too_large_body(max)
        } else {
            ApiError::BadRequest(format!("cannot read the request body: {e}"))
        }
    })
}

/// Decompresses (bounded) and parses a batch body into its event elements.
fn decode(bytes: &[u8], gzip: bool, max_decompressed: usize) -> Result<Vec<String>, ApiError> {
    let too_large = || {
        ApiError::TooLarge(format!(
            "batch larger than {max_decompressed} bytes once decompressed; send fewer events"
        ))
    };
    let inflated;
    let json: &[u8] = if gzip {
        let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(max_decompressed));
        flate2::read::GzDecoder::new(bytes)
            .take(max_decompressed as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| invalid(format!("the body is not valid gzip: {e}")))?;
        if out.len() > max_decompressed {
            return Err(too_large());
        }
        inflated = out;
        &inflated
    } else {
        if bytes.len() > max_decompressed {
            return Err(too_large());
        }
        bytes
    };
    let batch: BatchShape<'_> = serde_json::from_slice(json).map_err(|e| {
        invalid(if e.classify() == serde_json::error::Category::Data {
            format!("the body must be an object with an \"events\" array: {e}")
        } else {
            format!("the body is not valid JSON: {e}")
        })
    })?;
    if batch.events.len() > MAX_EVENTS_PER_BATCH {
        // 413 rather than 400: PROTOCOL.md clients halve the batch on 413 and retry.
        return Err(ApiError::TooLarge(format!(
            "batch has {} events; at most {MAX_EVENTS_PER_BATCH} per batch",
            batch.events.len()
        )));
    }
    Ok(batch
        .events
        .into_iter()
        .map(|raw| raw.get().to_owned())
        .collect())
}

/// The shape of a batch body; each event stays raw text until it is looked at.
#[derive(Deserialize)]
struct BatchShape<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

fn invalid(message: String) -> ApiError {
    ApiError::InvalidBatch {
        message,
        details: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).expect("in-memory write");
        enc.finish().expect("in-memory write")
    }

    #[test]
    fn a_gzip_bomb_is_refused_without_inflating_it_all() {
        let bomb = gzip(&vec![b' '; 8 << 20]);
        let err = decode(&bomb, true, 1 << 20).expect_err("must refuse");
        assert!(matches!(err, ApiError::TooLarge(_)), "{err:?}");
    }

    #[test]
    fn a_body_without_an_events_array_is_an_invalid_batch() {
        for body in [&b"{}"[..], b"[]", b"{\"events\":{}}", b"not json"] {
            let err = decode(body, false, 1 << 20).expect_err("must refuse");
            assert!(matches!(err, ApiError::InvalidBatch { .. }), "{err:?}");
        }
    }

    #[test]
    fn more_than_1000_events_is_too_large() {
        let body = format!("{{\"events\":[{}]}}", vec!["{}"; 1001].join(","));
        let err = decode(body.as_bytes(), false, 1 << 20).expect_err("must refuse");
        assert!(matches!(err, ApiError::TooLarge(_)), "{err:?}");
    }
}
