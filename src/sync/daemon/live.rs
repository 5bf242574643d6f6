//! The connected loop: send new events as the emit path wakes us, answer pings, record acks,
//! write teammates' events into their chains at once, and batch whatever the WebSocket left
//! unanswered. Nothing here polls: every branch waits on the socket, a timer of the batch
//! interval, or the one-second gate.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::egress::BATCH_MAX;
use super::link::Ws;
use super::record::Connection;
use super::run::{Daemon, Exit, InFlight, Interrupt};
use crate::event::{self, Event, Strictness};
use crate::store::{Answer, Answered};

type Sink = SplitSink<Ws, Message>;

/// Acks arriving within this window are recorded together (one compare-and-swap per chain).
const ACK_GROUP: Duration = Duration::from_millis(15);

enum Happening {
    Message(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Wake,
    FlushAcks,
    BatchTick,
    GateTick,
    Term,
}

impl Daemon {
    /// Runs one connection until it is lost (`Ok(why)`) or the daemon must stop.
    pub(super) async fn live(&mut self, ws: Ws) -> Result<String, Interrupt> {
        let (mut sink, mut stream) = ws.split();
        self.set_connection(Connection::Connected);
        self.state.last_error = None;
        self.pull().await;
        if let Err(e) = self.send_pending(&mut sink).await {
            return Ok(self.lost(e));
        }
        let mut batch = tokio::time::interval(self.settings.batch_interval);
        let mut gate = tokio::time::interval(Duration::from_secs(1));
        let mut flush_at = tokio::time::Instant::now();
        let mut buf = [0u8; 16];
        loop {
            let has_acks = !self.acked.is_empty();
            let happening = tokio::select! {
                m = stream.next() => Happening::Message(m),
                _ = self.wake.recv(&mut buf) => Happening::Wake,
                _ = tokio::time::sleep_until(flush_at), if has_acks => Happening::FlushAcks,
                _ = batch.tick() => Happening::BatchTick,
                _ = gate.tick() => Happening::GateTick,
                _ = self.term.recv() => Happening::Term,
            };
            match happening {
                Happening::Message(Some(Ok(Message::Text(text)))) => {
                    let first_ack = self.acked.is_empty();
                    if let Err(e) = self.on_text(&text, &mut sink).await {
                        return Ok(self.lost(e));
                    }
                    if first_ack && !self.acked.is_empty() {
                        flush_at = tokio::time::Instant::now() + ACK_GROUP;
                    }
                }
                Happening::Message(Some(Ok(Message::Close(_))) | None) => {
                    return Ok(self.lost("the server closed the connection".into()));
                }
                Happening::Message(Some(Err(e))) => return Ok(self.lost(format!("WebSocket: {e}"))),
                Happening::Message(Some(Ok(_))) => {}
                Happening::Wake => {
                    self.drain_wakes();
                    if let Err(e) = self.send_pending(&mut sink).await {
                        return Ok(self.lost(e));
                    }
                }
                Happening::FlushAcks => {
                    self.flush_acks();
                    self.save_state();
                }
                Happening::BatchTick => {
                    if let Err(e) = self.send_pending(&mut sink).await {
                        return Ok(self.lost(e));
                    }
                    self.batch_stragglers().await;
                }
                Happening::GateTick => {
                    if let Some(exit) = self.should_exit() {
                        self.flush_acks();
                        let _ = sink.close().await;
                        return Err(Interrupt::Exit(exit));
                    }
                    if self.awaiting_login {
                        let _ = sink.close().await;
                        return Ok(self.lost("the session expired".into()));
                    }
                    self.save_state();
                }
                Happening::Term => {
                    self.flush_on_term(&mut sink, &mut stream).await;
                    return Err(Interrupt::Exit(Exit::Done("stopped (SIGTERM)".into())));
                }
            }
        }
    }

    /// Reads every queued wake-up datagram (one send per burst of events is enough).
    fn drain_wakes(&mut self) {
        let mut buf = [0u8; 16];
        for _ in 0..1024 {
            if self.wake.try_recv(&mut buf).is_err() {
                break;
            }
        }
        self.last_activity = Instant::now();
    }

    /// Sends every unsent event not already in flight (oldest first per chain, ≤ 1000).
    async fn send_pending(&mut self, sink: &mut Sink) -> Result<(), String> {
        let ranges = self.log.pending_ranges().map_err(|e| e.to_string())?;
        if ranges.iter().all(|r| r.unsent() == 0) {
            return Ok(());
        }
        self.gate()?;
        self.state.pending_seen = ranges.iter().map(|r| r.pending()).sum();
        let waiting: HashSet<&str> = self
            .acked
            .iter()
            .map(|(_, a)| a.event_id.as_str())
            .collect();
        let mut fresh = Vec::new();
        for r in ranges.iter().filter(|r| r.unsent() > 0) {
            let mark = r.mark_seq();
            for e in r.events(&self.log).map_err(|e| e.to_string())? {
                let id = e.event.event_id.as_str();
                if e.seq > mark && !self.inflight.contains_key(id) && !waiting.contains(id) {
                    fresh.push(e);
                }
            }
        }
        drop(waiting);
        fresh.truncate(BATCH_MAX);
        if fresh.is_empty() {
            return Ok(());
        }
        let n = fresh.len();
        for e in fresh {
            let text = serde_json::to_string(&e.event).map_err(|e| e.to_string())?;
            sink.feed(Message::Text(text.into()))
                .await
                .map_err(|e| format!("WebSocket send: {e}"))?;
            self.inflight.insert(
                e.event.event_id.clone(),
                InFlight {
                    event: e,
                    sent: Instant::now(),
                },
            );
        }
        sink.flush()
            .await
            .map_err(|e| format!("WebSocket send: {e}"))?;
        self.journal.line(&format!("sent {n} event(s) live"));
        self.state.last_send = Some(crate::event::now_rfc3339());
        self.last_activity = Instant::now();
        self.state_dirty = true;
        Ok(())
    }

    /// One server message: ping → pong, ack → recorded soon, event → written now.
    async fn on_text(&mut self, text: &str, sink: &mut Sink) -> Result<(), String> {
        let Ok(mut v) = serde_json::from_str::<Value>(text) else {
            return Ok(());
        };
        match v["type"].as_str() {
            Some("ping") => {
                let pong = json!({"type": "pong", "timestamp": v["timestamp"]}).to_string();
                sink.send(Message::Text(pong.into()))
                    .await
                    .map_err(|e| format!("WebSocket send: {e}"))?;
            }
            Some("ack") => self.on_ack(&v),
            Some("event") => {
                if let Some(obj) = v.as_object_mut() {
                    obj.remove("type");
                }
                self.on_teammate_event(v);
            }
            _ => {}
        }
        Ok(())
    }

    fn on_ack(&mut self, v: &Value) {
        let Some(id) = v["event_id"].as_str() else {
            return;
        };
        let Some(f) = self.inflight.remove(id) else {
            return;
        };
        let answer = match v["status"].as_str() {
            Some("success" | "duplicate") => Answer::Settled,
            other => Answer::Rejected(
                v["error"]
                    .as_str()
                    .or(other)
                    .unwrap_or("rejected")
                    .to_owned(),
            ),
        };
        self.acked.push((
            f.event.event.node_id.clone(),
            Answered {
                event_id: f.event.event.event_id.clone(),
                commit: f.event.commit,
                seq: f.event.seq,
                answer,
            },
        ));
    }

    /// A teammate's event: validated like a pulled one and written into its chain at once.
    fn on_teammate_event(&mut self, v: Value) {
        if v["node_id"].as_str() == Some(self.log.node_id()) {
            return;
        }
        if let Err(report) = event::validate(&v, Strictness::Server) {
            self.journal
                .line(&format!("skipped an invalid teammate event: {report}"));
            return;
        }
        let Ok(e) = serde_json::from_value::<Event>(v) else {
            return;
        };
        let node = e.node_id.clone();
        match self
            .log
            .write_pulled(&node, &[e], &self.identity.server_url, &self.identity.team)
        {
            Ok(w) => {
                self.state.received_live += w.written;
                self.state.last_receive = Some(crate::event::now_rfc3339());
                self.last_activity = Instant::now();
                self.state_dirty = true;
            }
            Err(e) => self
                .journal
                .line(&format!("writing a teammate event of {node} failed: {e}")),
        }
    }

    /// The connection is gone: record what can be recorded; everything else in flight is
    /// sent again after reconnecting (the server deduplicates).
    fn lost(&mut self, why: String) -> String {
        self.flush_acks();
        self.acked.clear();
        self.inflight.clear();
        self.save_state();
        why
    }

    /// SIGTERM while connected: wait (≤ the flush timeout) for the acks of events in flight,
    /// record them, and close.
    async fn flush_on_term(
        &mut self,
        sink: &mut Sink,
        stream: &mut futures_util::stream::SplitStream<Ws>,
    ) {
        let deadline = tokio::time::Instant::now() + self.settings.flush_timeout;
        let _ = self.send_pending(sink).await;
        while !self.inflight.is_empty() {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let _ = self.on_text(&text, sink).await;
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        self.flush_acks();
        self.state.connection = Connection::Stopped;
        self.state_dirty = true;
        self.save_state();
        let _ = sink.close().await;
    }
}
