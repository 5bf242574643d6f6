//! The wire: one blocking HTTP client (reqwest with rustls on ring) and one function per
//! endpoint of PROTOCOL.md. Only `auth` and `sync` commands create it; the emit and hook paths
//! never reach this module.
//!
//! Every function returns what the server meant ([`Reply`]), not transport details, so the
//! drain loop can decide: refresh on 401, halve on 413, back off on 429/5xx/timeouts.

use std::io::Write;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::SyncError;

/// A server's answer, classified.
#[derive(Debug)]
pub enum Reply<T> {
    Ok(T),
    /// 401: refresh, then retry once.
    Unauthorized,
    /// 413: the batch is too large.
    TooLarge,
    /// 429 (with `Retry-After` seconds when given), 5xx, timeouts, connection resets: try again
    /// later, and never count it against the events.
    Transient {
        reason: String,
        retry_after: Option<u64>,
    },
    /// Any other answer: a bug on one side; reported with its status and text.
    Failed {
        status: u16,
        message: String,
    },
}

impl<T> Reply<T> {
    /// The same answer with its success value changed by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        self.and_then(|v| Reply::Ok(f(v)))
    }

    /// Continues with `f` on success; every other answer passes through as it is.
    pub fn and_then<U>(self, f: impl FnOnce(T) -> Reply<U>) -> Reply<U> {
        match self {
            Reply::Ok(v) => f(v),
            Reply::Unauthorized => Reply::Unauthorized,
            Reply::TooLarge => Reply::TooLarge,
            Reply::Transient {
                reason,
                retry_after,
            } => Reply::Transient {
                reason,
                retry_after,
            },
            Reply::Failed { status, message } => Reply::Failed { status, message },
        }
    }
}

/// The token endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    #[serde(default = "default_access_lifetime")]
    pub access_lifetime: i64,
    #[serde(default = "default_refresh_lifetime")]
    pub refresh_lifetime: i64,
    #[serde(default)]
    pub team_slug: Option<String>,
}

fn default_access_lifetime() -> i64 {
    900
}
fn default_refresh_lifetime() -> i64 {
    604_800
}

/// The server's batch limits from `/api/v1/sync/health/`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_events_per_batch: usize,
    pub max_decompressed_bytes: Option<usize>,
}

/// One result of a batch response.
#[derive(Debug, Clone, Deserialize)]
pub struct EventResult {
    pub event_id: String,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
}

/// One page of `GET /api/v1/events/`.
#[derive(Debug, Deserialize)]
pub struct Page {
    /// The envelopes as the server sent them, not yet parsed: a pull skips this clone's own
    /// events by their [`EnvelopeHead`] without building a JSON tree for each.
    pub events: Vec<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// The two fields of a pulled envelope that decide what to do with it.
#[derive(Debug, Default, Deserialize)]
pub struct EnvelopeHead<'a> {
    #[serde(borrow, default)]
    pub event_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub node_id: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> EnvelopeHead<'a> {
    /// The head of `raw`; an envelope that is not an object (or names neither field with a
    /// string) has an empty head, and is left to validation to report.
    pub fn of(raw: &'a serde_json::value::RawValue) -> EnvelopeHead<'a> {
        serde_json::from_str(raw.get()).unwrap_or_default()
    }
}

/// A batch body compressed for the wire (the fastest level: on a LAN or loopback the CPU, not
/// the bytes, is what a drain waits for).
pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// A blocking client bound to one server (clones share the connection pool).
#[derive(Clone)]
pub struct Http {
    client: reqwest::blocking::Client,
    pub base: String,
}

impl Http {
    /// A client for `base` with a per-request `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Http, SyncError> {
        // reqwest is built without a default crypto provider (no aws-lc): use ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("spec-kitty/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Unreachable {
                server: base.to_owned(),
                reason: format!("cannot set up HTTP: {e}"),
            })?;
        Ok(Http {
            client,
            base: base.to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /api/v1/token/`.
    pub fn login(&self, username: &str, password: &str) -> Reply<Tokens> {
        let req = self
            .client
            .post(self.url("/api/v1/token/"))
            .json(&json!({"username": username, "password": password}));
        self.send_json(req)
    }

    /// `POST /api/v1/token/refresh/` (both tokens rotate).
    pub fn refresh(&self, refresh: &str) -> Reply<Tokens> {
        let req = self
            .client
            .post(self.url("/api/v1/token/refresh/"))
            .json(&json!({"refresh": refresh}));
        self.send_json(req)
    }

    /// `POST /api/v1/logout/` (ext): revokes the refresh token.
    pub fn logout(&self, refresh: &str) -> Reply<()> {
        let req = self
            .client
            .post(self.url("/api/v1/logout/"))
            .timeout(Duration::from_secs(5))
            .json(&json!({"refresh": refresh}));
        match self.send(req) {
            Ok((status, _, _)) if (200..300).contains(&status) => Reply::Ok(()),
            Ok((status, text, retry)) => classify(status, &text, retry),
            Err(r) => r,
        }
    }

    /// `GET /api/v1/sync/health/`.
    pub fn health(&self) -> Reply<Limits> {
        self.send_json::<Value>(self.client.get(self.url("/api/v1/sync/health/")))
            .and_then(|v| {
                let limits = &v["limits"];
                Reply::Ok(Limits {
                    max_events_per_batch: limits["max_events_per_batch"]
                        .as_u64()
                        .map_or(1000, |n| n.clamp(1, 1000) as usize),
                    max_decompressed_bytes: limits["max_decompressed_bytes_per_batch"]
                        .as_u64()
                        .map(|n| n as usize),
                })
            })
    }

    /// `POST /api/v1/events/batch/` with a body already gzipped by [`gzip`].
    pub fn upload_gzipped(&self, access: &str, gz: Vec<u8>) -> Reply<Vec<EventResult>> {
        let req = self
            .client
            .post(self.url("/api/v1/events/batch/"))
            .bearer_auth(access)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(gz);
        #[derive(Deserialize)]
        struct Results {
            results: Vec<EventResult>,
        }
        self.send_json::<Results>(req).map(|r| r.results)
    }

    /// `POST /api/v1/ws-token/`: a short-lived, single-use token for the WebSocket upgrade
    /// (the live-sync daemon's only HTTP call of its own).
    pub fn ws_token(&self, access: &str) -> Reply<String> {
        #[derive(Deserialize)]
        struct WsToken {
            ws_token: String,
        }
        let req = self
            .client
            .post(self.url("/api/v1/ws-token/"))
            .bearer_auth(access);
        self.send_json::<WsToken>(req).map(|t| t.ws_token)
    }

    /// The authenticated probe of `sync status --check`: an empty batch.
    pub fn probe(&self, access: Option<&str>) -> Reply<()> {
        let mut req = self
            .client
            .post(self.url("/api/v1/events/batch/"))
            .header("Content-Type", "application/json")
            .body(r#"{"events":[]}"#);
        if let Some(a) = access {
            req = req.bearer_auth(a);
        }
        match self.send(req) {
            Ok((200, _, _)) => Reply::Ok(()),
            Ok((status, text, retry)) => classify(status, &text, retry),
            Err(r) => r,
        }
    }

    /// `GET /api/v1/events/?after=…&limit=…`.
    pub fn pull(&self, access: &str, after: Option<&str>, limit: usize) -> Reply<Page> {
        let mut url = format!("{}?limit={limit}", self.url("/api/v1/events/"));
        if let Some(a) = after {
            url.push_str("&after=");
            url.push_str(&urlencode(a));
        }
        let req = self.client.get(url).bearer_auth(access);
        self.send_json::<Page>(req)
    }

    fn send(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> Result<(u16, String, Option<u64>), Reply<()>> {
        match req.send() {
            Ok(res) => {
                let status = res.status().as_u16();
                let retry = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok());
                match res.text() {
                    Ok(text) => Ok((status, text, retry)),
                    Err(e) => Err(Reply::Transient {
                        reason: describe(&e),
                        retry_after: None,
                    }),
                }
            }
            Err(e) => Err(Reply::Transient {
                reason: describe(&e),
                retry_after: None,
            }),
        }
    }

    fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> Reply<T> {
        match self.send(req) {
            Ok((200, text, _)) => match serde_json::from_str(&text) {
                Ok(v) => Reply::Ok(v),
                Err(e) => Reply::Failed {
                    status: 200,
                    message: format!("unexpected answer: {e}"),
                },
            },
            Ok((status, text, retry)) => classify(status, &text, retry),
            Err(Reply::Transient {
                reason,
                retry_after,
            }) => Reply::Transient {
                reason,
                retry_after,
            },
            Err(_) => Reply::Failed {
                status: 0,
                message: "request failed".into(),
            },
        }
    }
}

fn classify<T>(status: u16, text: &str, retry_after: Option<u64>) -> Reply<T> {
    match status {
        401 => Reply::Unauthorized,
        413 => Reply::TooLarge,
        429 => Reply::Transient {
            reason: "429 Too Many Requests".into(),
            retry_after,
        },
        500..=599 => Reply::Transient {
            reason: format!("{status} {}", error_text(text)),
            retry_after,
        },
        _ => Reply::Failed {
            status,
            message: error_text(text),
        },
    }
}

/// The `error` field of a JSON error body, else the body itself (cut short).
fn error_text(text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(text)
        && let Some(e) = v["error"].as_str()
    {
        return e.to_owned();
    }
    text.chars().take(200).collect()
}

/// A transport error in a few words (no URL query strings, never a token).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        match tls_failure(e) {
            Some(tls) => format!("TLS handshake failed: {tls}"),
            None => "connection refused or host not found".into(),
        }
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the answer".into()
    } else if e.is_request() {
        "connection dropped while sending".into()
    } else {
        e.to_string()
    }
}

/// The TLS error under a failed connection, if that is what failed (an untrusted or expired
/// certificate, a name mismatch): a reachable server must not read as "connection refused".
/// rustls's errors come wrapped in `io::Error`s (two deep), whose `source()` skips the wrapped
/// error, so those are unwrapped with `get_ref()`.
fn tls_failure(e: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
