//! `GET /ws/v1/events/`: live events for a team, and events sent by clients.
//!
//! Each connection subscribes to the team's [`Fanout`](super::fanout::Fanout) and runs two
//! tasks: the connection loop (reads, pings, fan-out, revocation) and a writer that owns the
//! socket's sending half. The loop never waits on the network to send: it puts frames on the
//! writer's bounded queue, and a full queue (a client that stopped reading) closes the
//! connection with 1008. A client that cannot keep up reconnects and catches up through batch
//! upload and pull.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{Instrument, Span};

use super::AppState;
use super::auth::{AuthUser, bearer, consume_ws_token};
use super::error::{ApiError, ApiQuery};
use super::fanout::{Closed, DEFAULT_QUEUE, SubscribeAs, SubscriberId};
use super::ingest::{EventResult, Status, ingest};

/// The largest message (and frame) a client may send. Checked on the frame header, before
/// anything is buffered.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Frames waiting for the writer before the client counts as not reading.
const WRITE_QUEUE: usize = 256;

/// How long one frame may take to reach the socket before the client counts as not reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Unanswered pings after which a connection is closed (PROTOCOL.md: "two pings").
const MAX_UNANSWERED_PINGS: u32 = 2;

/// `GET /ws/v1/events/`: authenticates with a single-use ws token from the `Authorization`
/// header, or from `?token=` for browsers, which cannot set headers on an upgrade.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let token = bearer(&headers)
        .map(str::to_owned)
        .or_else(|| query.get("token").cloned())
        .ok_or_else(|| ApiError::Unauthorized("missing ws token".into()))?;
    let user = consume_ws_token(&state, &token)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid, used or expired ws token".into()))?;
    let span = Span::current();
    // A client sends one envelope per message: a megabyte is far more than any event needs.
    // The frame cap is what makes tungstenite refuse by the header instead of buffering.
    Ok(ws
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| connection(state, user, socket).instrument(span)))
}

async fn connection(state: Arc<AppState>, user: AuthUser, socket: WebSocket) {
    let subscription = state.fanout.subscribe(
        SubscribeAs {
            team_slug: user.team_slug.clone(),
            username: user.username.clone(),
            session: user.session.clone(),
        },
        DEFAULT_QUEUE,
    );
    let id = subscription.id();
    tracing::info!(username = %user.username, conn = id, "websocket open");
    let (sink, stream) = socket.split();
    let (out, queue) = mpsc::channel(WRITE_QUEUE);
    let mut writer = tokio::spawn(write_frames(sink, queue));
    let conn = Connection {
        state: &state,
        user: &user,
        id,
        out,
    };
    let (reason, close) = tokio::select! {
        ended = conn.run(stream, subscription) => ended,
        _ = &mut writer => ("client not reading or gone", None),
    };
    if let Some(close) = close {
        // Sent when the queue has room; the writer then ends after the close frame.
        let _ = conn.out.try_send(close);
    }
    drop(conn);
    // A client that stopped reading cannot take the close frame: do not wait for it long.
    if tokio::time::timeout(Duration::from_secs(1), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    tracing::info!(conn = id, reason, "websocket closed");
}

/// Sends queued frames until the queue closes, a close frame is sent, or a send fails or
/// takes longer than [`WRITE_TIMEOUT`].
async fn write_frames(mut sink: SplitSink<WebSocket, Message>, mut queue: mpsc::Receiver<Message>) {
    while let Some(message) = queue.recv().await {
        let is_close = matches!(message, Message::Close(_));
        match tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) if !is_close => {}
            _ => return,
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
}

struct Connection<'a> {
    state: &'a Arc<AppState>,
    user: &'a AuthUser,
    id: SubscriberId,
    out: mpsc::Sender<Message>,
}

/// Why a connection ended (for the log) and the close frame to send, if any.
type Ended = (&'static str, Option<Message>);

impl Connection<'_> {
    /// Queues a text frame; `false` when the client is not reading (its queue is full).
    fn send(&self, text: String) -> bool {
        self.out.try_send(Message::Text(text.into())).is_ok()
    }

    async fn run(
        &self,
        mut stream: futures_util::stream::SplitStream<WebSocket>,
        mut subscription: super::fanout::Subscription,
    ) -> Ended {
        let slow = || {
            (
                "too slow to keep up with the team's events",
                Some(close(close_code::POLICY, "too slow; catch up by pull")),
            )
        };
        let st = self.state.clone();
        let team = self.user.team_slug.clone();
        let snapshot =
            match tokio::task::spawn_blocking(move || st.store.work_packages(&team)).await {
                Ok(Ok(wps)) => json!({"type": "snapshot", "work_packages": wps}).to_string(),
                _ => {
                    return (
                        "snapshot failed",
                        Some(close(close_code::ERROR, "internal error")),
                    );
                }
            };
        if !self.send(snapshot) {
            return slow();
        }
        let mut ping = tokio::time::interval(self.state.config.ws_ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut unanswered = 0u32;
        let mut shutdown = self.state.shutdown.clone();
        loop {
            let outgoing: Option<String> = tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        match self.handle_text(text.as_str().trim().to_owned(), &mut unanswered).await {
                            Ok(reply) => reply,
                            Err(_) => return ("internal error", Some(close(close_code::ERROR, "internal error"))),
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => return ("closed by client", None),
                    Some(Err(e)) if is_too_long(&e) => {
                        return ("message too long", Some(close(close_code::SIZE, "message larger than 1 MiB")));
                    }
                    Some(Err(_)) => return ("connection error", None),
                    Some(Ok(_)) => None,
                },
                queued = subscription.recv() => match queued {
                    Ok(envelope) => Some(event_frame(&envelope)),
                    Err(Closed::TooSlow) => return slow(),
                    Err(Closed::Revoked) => {
                        return ("access revoked", Some(close(close_code::POLICY, "access revoked")));
                    }
                },
                _ = ping.tick() => {
                    if unanswered >= MAX_UNANSWERED_PINGS {
                        return ("missed pongs", Some(close(close_code::POLICY, "no pong to two pings")));
                    }
                    unanswered += 1;
                    Some(json!({"type": "ping", "timestamp": unix_millis()}).to_string())
                },
                _ = shutdown.changed() => {
                    return ("server shutdown", Some(close(close_code::AWAY, "server shutting down")));
                },
            };
            if let Some(text) = outgoing
                && !self.send(text)
            {
                return slow();
            }
        }
    }

    /// Handles one text message; returns the reply to send, if any. Messages with a `type` are
    /// control messages (only `pong` is known; others are ignored); anything else is an event.
    async fn handle_text(
        &self,
        text: String,
        unanswered: &mut u32,
    ) -> Result<Option<String>, ApiError> {
        #[derive(serde::Deserialize)]
        struct Control<'a> {
            #[serde(borrow, rename = "type")]
            kind: Option<&'a serde_json::value::RawValue>,
        }
        let control: Control<'_> = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                let result = EventResult {
                    event_id: String::new(),
                    status: Status::Rejected,
                    error: Some(format!("the message is not valid JSON: {e}")),
                };
                return Ok(Some(ack(&result)));
            }
        };
        if let Some(kind) = control.kind {
            if kind.get() == "\"pong\"" {
                *unanswered = 0;
            }
            return Ok(None);
        }
        let st = self.state.clone();
        let team = self.user.team_slug.clone();
        let span = Span::current();
        let id = self.id;
        let results = tokio::task::spawn_blocking(move || {
            span.in_scope(|| ingest(&st, &team, vec![text], Some(id)))
        })
        .await??;
        Ok(results.first().map(ack))
    }
}

/// Whether a read failed because a frame or message is over the size cap.
fn is_too_long(e: &axum::Error) -> bool {
    // axum wraps tungstenite's `Capacity(MessageTooLong)`; its text is the stable part.
    let text = e.to_string();
    text.contains("too long") || text.contains("Space limit exceeded")
}

/// `{"type":"event", ...envelope}` built from the stored envelope text (a JSON object that has
/// no `type` key of its own: ingest refuses those, so the message type cannot be forged).
pub fn event_frame(envelope: &str) -> String {
    match envelope.trim_start().strip_prefix('{') {
        Some(rest) if rest.trim_start() != "}" => format!("{{\"type\":\"event\",{rest}"),
        _ => "{\"type\":\"event\"}".into(),
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn ack(result: &EventResult) -> String {
    let mut v = json!({"type": "ack", "event_id": result.event_id, "status": result.status});
    if let Some(error) = &result.error {
        v["error"] = json!(error);
    }
    v.to_string()
}
