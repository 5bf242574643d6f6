//! `POST /api/v1/events/batch/`: gzip or plain JSON batches of up to 1000 events.
//!
//! Size is bounded twice: the raw body is read with a byte limit (and a time limit), and
//! decompression goes through a bounded reader, so a gzip bomb costs at most
//! `max_decompressed_bytes` of memory and is answered 413. Decoding is bounded by count (batch
//! slots) and by bytes in flight (the batch byte budget, reserved before decoding), and events
//! are parsed one at a time with caps (`envelope`), so concurrent hostile batches cannot add up
//! to unbounded memory.

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
    let upload = Upload { stored: false };
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
    // Decoding memory, reserved before decoding: a gzip body may inflate up to the cap, a
    // plain one is its own size. What a gzip body did not need is returned once inflated.
    let max_decompressed = state.config.max_decompressed_bytes;
    let worst = if gzip { max_decompressed } else { bytes.len() };
    let mut reserved = state
        .batch_bytes
        .acquire_many(kib(worst))
        .await
        .map_err(|_| ApiError::Internal("batch byte budget closed".into()))?;
    let json = if gzip {
        let span = Span::current();
        let inflated = tokio::task::spawn_blocking(move || {
            span.in_scope(|| inflate(&bytes, max_decompressed))
        })
        .await??;
        let unused = reserved
            .num_permits()
            .saturating_sub(kib(inflated.len()) as usize);
        drop(reserved.split(unused));
        Bytes::from(inflated)
    } else {
        bytes
    };
    tracing::info!(bytes = json.len(), "batch received");
    if let Some(delay) = state.config.test_ingest_delay {
        tokio::time::sleep(delay).await;
    }
    let span = Span::current();
    let st = state.clone();
    let results = tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let events = decode(&json, max_decompressed)?;
            let n = events.len();
            let results = ingest(&st, &user.team_slug, &events, None)?;
            tracing::info!(events = n, team = %user.team_slug, "batch stored");
            Ok::<_, ApiError>(results)
        })
    })
    .await??;
    drop(reserved);
    upload.stored();
    Ok(Json(BatchResponse { results }))
}

/// Logs, when dropped before [`Upload::stored`], that a batch upload ended without being
/// stored: refused, or cut off because the client went away mid-upload (hyper then drops the
/// request's future, so this is the only trace of it).
struct Upload {
    stored: bool,
}

impl Upload {
    fn stored(mut self) {
        self.stored = true;
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.stored {
            tracing::info!("batch upload ended without storing anything");
        }
    }
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

/// Permits of the batch byte budget for `bytes` bytes (one per KiB, rounded up).
pub fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Inflates a gzip body, at most `max_decompressed` bytes. Exactly one gzip member, with
/// nothing after it: trailing bytes are refused rather than silently ignored.
fn inflate(bytes: &[u8], max_decompressed: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(max_decompressed));
    // The bufread decoder reads exactly the member, so what remains of the slice is trailing.
    let mut decoder = flate2::bufread::GzDecoder::new(bytes);
    (&mut decoder)
        .take(max_decompressed as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| invalid(format!("the body is not valid gzip: {e}")))?;
    if out.len() > max_decompressed {
        return Err(too_large_batch(max_decompressed));
    }
    if !decoder.into_inner().is_empty() {
        return Err(invalid(
            "the body has bytes after the end of its gzip stream".into(),
        ));
    }
    Ok(out)
}

fn too_large_batch(max_decompressed: usize) -> ApiError {
    ApiError::TooLarge(format!(
        "batch larger than {max_decompressed} bytes once decompressed; send fewer events"
    ))
}

/// Parses a (decompressed) batch body into the raw texts of its events, borrowed from it.
fn decode(json: &[u8], max_decompressed: usize) -> Result<Vec<&str>, ApiError> {
    if json.len() > max_decompressed {
        return Err(too_large_batch(max_decompressed));
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let shape = BatchShape::deserialize(&mut de).and_then(|b| de.end().map(|()| b));
    let batch = shape.map_err(|e| {
        invalid(if e.classify() == serde_json::error::Category::Data {
            format!("the body must be an object with an \"events\" array: {e}")
        } else {
            format!("the body is not valid JSON: {e}")
        })
    })?;
    match batch.events {
        Events::Raw(events) => Ok(events.into_iter().map(RawValue::get).collect()),
        // 413 rather than 400: PROTOCOL.md clients halve the batch on 413 and retry.
        Events::TooMany => Err(ApiError::TooLarge(format!(
            "batch has more than {MAX_EVENTS_PER_BATCH} events; at most \
             {MAX_EVENTS_PER_BATCH} per batch"
        ))),
    }
}

/// The shape of a batch body; each event stays raw text until it is looked at.
#[derive(Deserialize)]
struct BatchShape<'a> {
    #[serde(borrow)]
    events: Events<'a>,
}

/// The events of a batch, collected only up to the limit: an array of eight million zeros
/// must not become eight million entries before it is refused.
enum Events<'a> {
    Raw(Vec<&'a RawValue>),
    TooMany,
}

impl<'de: 'a, 'a> Deserialize<'de> for Events<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bounded;
        impl<'de> serde::de::Visitor<'de> for Bounded {
            type Value = Events<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of events")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Events<'de>, A::Error> {
                let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                    if events.len() == MAX_EVENTS_PER_BATCH {
                        // The rest is checked for syntax but not kept: the answer is 413.
                        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                        return Ok(Events::TooMany);
                    }
                    events.push(raw);
                }
                Ok(Events::Raw(events))
            }
        }
        d.deserialize_seq(Bounded)
    }
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
        let err = inflate(&bomb, 1 << 20).expect_err("must refuse");
        assert!(matches!(err, ApiError::TooLarge(_)), "{err:?}");
    }

    #[test]
    fn junk_after_the_gzip_stream_is_refused() {
        let mut body = gzip(b"{\"events\":[]}");
        assert!(inflate(&body, 1 << 20).is_ok());
        body.extend_from_slice(b"junk");
        let err = inflate(&body, 1 << 20).expect_err("must refuse");
        assert!(matches!(err, ApiError::InvalidBatch { .. }), "{err:?}");
    }

    #[test]
    fn a_body_without_an_events_array_is_an_invalid_batch() {
        for body in [&b"{}"[..], b"[]", b"{\"events\":{}}", b"not json"] {
            let err = decode(body, 1 << 20).expect_err("must refuse");
            assert!(matches!(err, ApiError::InvalidBatch { .. }), "{err:?}");
        }
    }

    #[test]
    fn more_than_1000_events_is_too_large() {
        let body = format!("{{\"events\":[{}]}}", vec!["{}"; 1001].join(","));
        let err = decode(body.as_bytes(), 1 << 20).expect_err("must refuse");
        assert!(matches!(err, ApiError::TooLarge(_)), "{err:?}");
    }
}
