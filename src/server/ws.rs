//! `GET /ws/v1/events/`: live events for a team, and events sent by clients.
//!
//! The [`Hub`] keeps, per team, a bounded channel to every open connection. A connection that
//! cannot keep up (its channel is full) is dropped rather than allowed to grow memory without
//! bound: its client reconnects and catches up through batch upload and pull.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{Instrument, Span};

use super::AppState;
use super::auth::{AuthUser, bearer, consume_ws_token};
use super::error::ApiError;
use super::ingest::{Element, EventResult, Status, ingest};

/// Identifies one WebSocket connection, so that fan-out skips the sender.
pub type ConnId = u64;

/// Messages queued per connection before it is considered too slow and dropped.
const CONNECTION_QUEUE: usize = 4096;

/// The largest message a client may send.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Unanswered pings after which a connection is closed (PROTOCOL.md: "two pings").
const MAX_UNANSWERED_PINGS: u32 = 2;

/// The queues of one team's open connections.
type TeamConnections = HashMap<ConnId, mpsc::Sender<Arc<str>>>;

/// The registry of open connections, per team.
#[derive(Default)]
pub struct Hub {
    next_id: AtomicU64,
    teams: Mutex<HashMap<String, TeamConnections>>,
}

impl Hub {
    fn register(&self, team_slug: &str) -> (ConnId, mpsc::Receiver<Arc<str>>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(CONNECTION_QUEUE);
        if let Ok(mut teams) = self.teams.lock() {
            teams
                .entry(team_slug.to_owned())
                .or_default()
                .insert(id, tx);
        }
        (id, rx)
    }

    fn unregister(&self, team_slug: &str, id: ConnId) {
        if let Ok(mut teams) = self.teams.lock()
            && let Some(conns) = teams.get_mut(team_slug)
        {
            conns.remove(&id);
            if conns.is_empty() {
                teams.remove(team_slug);
            }
        }
    }

    /// Sends `{"type":"event", ...envelope}` for each envelope to every connection of the team
    /// except `except`. Never blocks: a full queue drops that connection.
    pub fn broadcast(&self, team_slug: &str, except: Option<ConnId>, envelopes: &[String]) {
        let Ok(mut teams) = self.teams.lock() else {
            return;
        };
        let Some(conns) = teams.get_mut(team_slug) else {
            return;
        };
        if conns.keys().all(|id| Some(*id) == except) {
            return;
        }
        let messages: Vec<Arc<str>> = envelopes.iter().map(|e| event_message(e)).collect();
        conns.retain(|id, tx| {
            Some(*id) == except || messages.iter().all(|m| tx.try_send(m.clone()).is_ok())
        });
    }
}

/// `{"type":"event", ...envelope}` built from the stored envelope text (always a non-empty
/// JSON object, since it was validated).
fn event_message(envelope: &str) -> Arc<str> {
    match envelope.trim_start().strip_prefix('{') {
        Some(rest) if rest.trim_start() != "}" => format!("{{\"type\":\"event\",{rest}").into(),
        _ => "{\"type\":\"event\"}".into(),
    }
}

/// `GET /ws/v1/events/`: authenticates with a single-use ws token from the `Authorization`
/// header, or from `?token=` for browsers, which cannot set headers on an upgrade.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
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
    Ok(ws
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| connection(state, user, socket).instrument(span)))
}

async fn connection(state: Arc<AppState>, user: AuthUser, socket: WebSocket) {
    let (id, rx) = state.hub.register(&user.team_slug);
    tracing::info!(username = %user.username, conn = id, "websocket open");
    let reason = serve_connection(&state, &user, id, socket, rx).await;
    state.hub.unregister(&user.team_slug, id);
    tracing::info!(conn = id, reason, "websocket closed");
}

/// Runs one connection until it closes; returns why, for the log.
async fn serve_connection(
    state: &Arc<AppState>,
    user: &AuthUser,
    id: ConnId,
    socket: WebSocket,
    mut rx: mpsc::Receiver<Arc<str>>,
) -> &'static str {
    let (mut sink, mut stream) = socket.split();
    let st = state.clone();
    let team = user.team_slug.clone();
    let snapshot = match tokio::task::spawn_blocking(move || st.store.work_packages(&team)).await {
        Ok(Ok(wps)) => json!({"type": "snapshot", "work_packages": wps}).to_string(),
        _ => return "snapshot failed",
    };
    if sink.send(Message::Text(snapshot.into())).await.is_err() {
        return "send failed";
    }
    let mut ping = tokio::time::interval(state.config.ws_ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut unanswered = 0u32;
    let mut shutdown = state.shutdown.clone();
    loop {
        let outgoing: Option<String> = tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    match handle_text(state, user, id, text.as_str().trim().to_owned(), &mut unanswered).await {
                        Ok(reply) => reply,
                        Err(_) => return "internal error",
                    }
                }
                Some(Ok(Message::Close(_))) | None => return "closed by client",
                Some(Err(_)) => return "connection error",
                Some(Ok(_)) => None,
            },
            queued = rx.recv() => match queued {
                Some(message) => Some(message.to_string()),
                None => return "too slow to keep up with the team's events",
            },
            _ = ping.tick() => {
                if unanswered >= MAX_UNANSWERED_PINGS {
                    let _ = sink.send(close(close_code::POLICY, "no pong to two pings")).await;
                    return "missed pongs";
                }
                unanswered += 1;
                Some(json!({"type": "ping", "timestamp": unix_millis()}).to_string())
            },
            _ = shutdown.changed() => {
                let _ = sink.send(close(close_code::AWAY, "server shutting down")).await;
                return "server shutdown";
            },
        };
        if let Some(text) = outgoing
            && sink.send(Message::Text(text.into())).await.is_err()
        {
            return "send failed";
        }
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

/// Handles one text message; returns the reply to send, if any. Messages with a `type` are
/// control messages (only `pong` is known; others are ignored); anything else is an event.
async fn handle_text(
    state: &Arc<AppState>,
    user: &AuthUser,
    id: ConnId,
    text: String,
    unanswered: &mut u32,
) -> Result<Option<String>, ApiError> {
    let value: Value = match serde_json::from_str(&text) {
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
    if let Some(kind) = value.get("type") {
        if kind == "pong" {
            *unanswered = 0;
        }
        return Ok(None);
    }
    let st = state.clone();
    let team = user.team_slug.clone();
    let span = Span::current();
    let results = tokio::task::spawn_blocking(move || {
        span.in_scope(|| ingest(&st, &team, vec![Element::new(value, text)], Some(id)))
    })
    .await??;
    Ok(results.first().map(ack))
}

fn ack(result: &EventResult) -> String {
    let mut v = json!({"type": "ack", "event_id": result.event_id, "status": result.status});
    if let Some(error) = &result.error {
        v["error"] = json!(error);
    }
    v.to_string()
}
