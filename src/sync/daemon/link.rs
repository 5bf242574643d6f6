//! Opening the WebSocket (PROTOCOL.md): a ws token over HTTP, the token as bearer on the
//! upgrade (a 401 there: refresh, a new token, once more), then the snapshot.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::record::Connection;
use super::run::Daemon;
use crate::sync::SyncError;
use crate::sync::http::Reply;

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one connection step (token, upgrade, snapshot) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The WebSocket URL of a server URL.
pub fn ws_url(server_url: &str) -> String {
    let base = if let Some(rest) = server_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = server_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        server_url.to_owned()
    };
    format!("{base}/ws/v1/events/")
}

impl Daemon {
    /// A fresh single-use ws token (refreshing the access token once on a 401).
    async fn ws_token(&mut self, force_refresh: bool) -> Result<String, String> {
        self.with_session(move |session, _| {
            let describe = |e: SyncError| e.to_string();
            let mut access = if force_refresh {
                session.after_unauthorized().map_err(describe)?
            } else {
                session.access().map_err(describe)?
            };
            for attempt in 0..2 {
                match session.http.ws_token(&access) {
                    Reply::Ok(t) => return Ok(t),
                    Reply::Unauthorized if attempt == 0 => {
                        access = session.after_unauthorized().map_err(describe)?;
                    }
                    Reply::Unauthorized => {
                        return Err("the server refused a freshly refreshed token".into());
                    }
                    Reply::Transient { reason, .. } => return Err(reason),
                    Reply::TooLarge => return Err("ws-token: 413".into()),
                    Reply::Failed { status, message } => {
                        return Err(format!("ws-token: {status} {message}"));
                    }
                }
            }
            Err("the server refused a freshly refreshed token".into())
        })
        .await?
    }

    /// Connects and reads the snapshot; the error says why, in a few words.
    pub(super) async fn connect(&mut self) -> Result<Ws, String> {
        if self.state.connection == super::record::Connection::Starting {
            self.set_connection(Connection::Starting);
        }
        let url = ws_url(&self.identity.server_url);
        for attempt in 0..2 {
            let token = self.ws_token(attempt == 1).await?;
            let mut request = url
                .as_str()
                .into_client_request()
                .map_err(|e| format!("bad WebSocket URL {url}: {e}"))?;
            let header = format!("Bearer {token}")
                .parse()
                .map_err(|_| "the ws token is not a valid header value".to_owned())?;
            request.headers_mut().insert("Authorization", header);
            let connected =
                tokio::time::timeout(STEP_TIMEOUT, tokio_tungstenite::connect_async(request)).await;
            let mut ws = match connected {
                Err(_) => return Err("the WebSocket upgrade timed out".into()),
                Ok(Ok((ws, _))) => ws,
                Ok(Err(tungstenite::Error::Http(res))) if res.status() == 401 && attempt == 0 => {
                    continue;
                }
                Ok(Err(tungstenite::Error::Http(res))) => {
                    return Err(format!("the WebSocket upgrade answered {}", res.status()));
                }
                Ok(Err(e)) => return Err(format!("WebSocket: {e}")),
            };
            return match tokio::time::timeout(STEP_TIMEOUT, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) if t.contains("\"snapshot\"") => Ok(ws),
                Ok(Some(Ok(_))) => Err("the server did not start with a snapshot".into()),
                Ok(Some(Err(e))) => Err(format!("WebSocket: {e}")),
                Ok(None) => Err("the server closed the WebSocket at once".into()),
                Err(_) => Err("no snapshot within 10 s".into()),
            };
        }
        Err("the WebSocket upgrade was refused twice (401)".into())
    }
}
