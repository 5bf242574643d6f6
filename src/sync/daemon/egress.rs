//! The daemon's HTTP work (ws tokens, batch drains, pull) and recording acks. The blocking
//! session runs on tokio's blocking pool, with its own handle on the event log; a drain takes
//! the repository's sync lock without waiting, so the daemon and `sync now` never both send
//! the same batch (when `sync now` holds it, the daemon simply tries again later).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::run::Daemon;
use crate::store::{Answer, Answered, EventLog, PendingCommit, StoredEvent, SyncReport};
use crate::sync::config::ClientConfig;
use crate::sync::credentials::CredentialStore;
use crate::sync::gate::{self, Sender};
use crate::sync::http::{Limits, Reply};
use crate::sync::lock;
use crate::sync::push::{self, Pushed};
use crate::sync::session::Session;

/// The per-request timeout of the daemon's HTTP calls.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The most events one daemon batch carries (PROTOCOL.md: ≤ 1000).
pub(super) const BATCH_MAX: usize = 1000;

/// How often events the server rejected are offered again while connected.
const REJECTED_RETRY: Duration = Duration::from_secs(300);

impl Daemon {
    /// Runs `f` with the session and a fresh handle on the event log, off the async thread.
    pub(super) async fn with_session<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Session, &EventLog) -> T + Send + 'static,
    ) -> Result<T, String> {
        let session = self.session.take();
        let root = self.root.clone();
        let url = self.identity.server_url.clone();
        let identity = self.identity.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut session = match session {
                Some(s) => s,
                None => {
                    let store = CredentialStore::from_env().map_err(|e| e.to_string())?;
                    Session::open(store, &url, REQUEST_TIMEOUT).map_err(|e| e.to_string())?
                }
            };
            let log = EventLog::discover(&root).map_err(|e| e.to_string())?;
            // The egress gate, on the thread that sends.
            let config = ClientConfig::load().map_err(|e| e.to_string())?;
            gate::clear_to_send(&log, &config, Sender::Daemon(&identity))
                .map_err(|e| format!("refused to send: {e}"))?;
            let out = f(&mut session, &log);
            // An expired session is dropped here, off the async thread.
            let expired = session.expired();
            Ok::<_, String>(((!expired).then_some(session), out))
        })
        .await;
        match joined {
            Ok(Ok((Some(session), out))) => {
                self.session = Some(session);
                Ok(out)
            }
            Ok(Ok((None, out))) => {
                self.session_expired();
                Ok(out)
            }
            Ok(Err(e)) => Err(e),
            Err(e) => Err(format!("the HTTP task failed: {e}")),
        }
    }

    /// Drops the session off the async thread (the blocking client must not die on it).
    pub(super) async fn close_session(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = tokio::task::spawn_blocking(move || drop(s)).await;
        }
    }

    /// Drains `events` (sorted by chain and position) by batch, under the sync lock.
    async fn drain(&mut self, events: Vec<PendingCommit>) -> Result<Pushed, String> {
        self.last_batch = Some(Instant::now());
        let common = self.log.common_dir().to_path_buf();
        let pushed = self
            .with_session(move |session, log| {
                let _lock = lock::acquire(&common, Duration::ZERO).map_err(|e| e.to_string())?;
                let limits = Limits {
                    max_events_per_batch: BATCH_MAX,
                    max_decompressed_bytes: None,
                };
                let deadline = Instant::now() + REQUEST_TIMEOUT * 2;
                Ok::<_, String>(push::drain(
                    log,
                    session,
                    limits,
                    &events,
                    deadline,
                    push::DrainOptions::default(),
                    &mut |_, _| {},
                ))
            })
            .await??;
        self.state.sent_batch += pushed.settled;
        if pushed.settled > 0 {
            self.state.last_send = Some(crate::event::now_rfc3339());
            self.last_activity = Instant::now();
        }
        self.state_dirty = true;
        self.journal.line(&format!(
            "batch: {} settled, {} rejected, {} left{}",
            pushed.settled,
            pushed.rejected.len(),
            pushed.left,
            pushed
                .stop
                .as_ref()
                .map(|s| format!(" (stopped: {s:?})"))
                .unwrap_or_default()
        ));
        Ok(pushed)
    }

    /// `Offline-BatchMode`'s attempt: the oldest ≤ 1000 pending events, or, with nothing
    /// pending, an authenticated probe. `Ok` when the server answered.
    pub(super) async fn batch_all(&mut self) -> Result<(), String> {
        let mut pending = self.log.pending_commits().map_err(|e| e.to_string())?;
        self.state.pending_seen = pending.len() as u64;
        pending.truncate(BATCH_MAX);
        if pending.is_empty() {
            return self
                .with_session(|session, _| {
                    let access = session.access().map_err(|e| e.to_string())?;
                    match session.http.probe(Some(&access)) {
                        Reply::Ok(()) => Ok(()),
                        Reply::Transient { reason, .. } => Err(reason),
                        Reply::Unauthorized => Err("401 on the probe".to_owned()),
                        Reply::TooLarge => Err("413 on the probe".to_owned()),
                        Reply::Failed { status, message } => Err(format!("{status} {message}")),
                    }
                })
                .await?;
        }
        let pushed = self.drain(pending).await?;
        match pushed.stop {
            None => Ok(()),
            Some(stop) => Err(format!("batch stopped: {stop:?}")),
        }
    }

    /// While connected: events sent live and unanswered for a batch interval, and (every 5
    /// minutes) the rejected ones, go by batch; at most one batch per batch interval.
    pub(super) async fn batch_stragglers(&mut self) {
        if self
            .last_batch
            .is_some_and(|t| t.elapsed() < self.settings.batch_interval)
        {
            return;
        }
        let interval = self.settings.batch_interval;
        let stale = self.inflight.values().any(|f| f.sent.elapsed() >= interval);
        let mut events: Vec<StoredEvent> = Vec::new();
        if stale {
            // All of them, so that the sync mark never passes an unanswered event.
            events.extend(self.inflight.drain().map(|(_, f)| f.event));
        }
        if self.last_rejected_retry.elapsed() >= REJECTED_RETRY {
            self.last_rejected_retry = Instant::now();
            if let Ok(ranges) = self.log.pending_ranges() {
                for r in ranges.iter().filter(|r| !r.rejected().is_empty()) {
                    if let Ok(list) = r.events(&self.log) {
                        let mark = r.mark_seq();
                        events.extend(list.into_iter().filter(|e| e.seq <= mark));
                    }
                }
            }
        }
        if events.is_empty() {
            return;
        }
        events.sort_by(|a, b| (&a.event.node_id, a.seq).cmp(&(&b.event.node_id, b.seq)));
        events.truncate(BATCH_MAX);
        let commits = events.into_iter().map(located).collect();
        if let Err(e) = self.drain(commits).await {
            self.state.last_error = Some(e);
            self.state_dirty = true;
        }
    }

    /// Records the acks received so far: one compare-and-swap per chain, and only up to the
    /// first event of that chain still in flight (the mark never passes an unanswered event).
    pub(super) fn flush_acks(&mut self) {
        if self.acked.is_empty() {
            return;
        }
        let mut lowest_in_flight: BTreeMap<&str, u64> = BTreeMap::new();
        for f in self.inflight.values() {
            let e = lowest_in_flight
                .entry(f.event.event.node_id.as_str())
                .or_insert(u64::MAX);
            *e = (*e).min(f.event.seq);
        }
        let mut ready: BTreeMap<String, Vec<Answered>> = BTreeMap::new();
        let mut keep = Vec::new();
        for (node, a) in std::mem::take(&mut self.acked) {
            let limit = lowest_in_flight
                .get(node.as_str())
                .copied()
                .unwrap_or(u64::MAX);
            if a.seq < limit {
                ready.entry(node).or_default().push(a);
            } else {
                keep.push((node, a));
            }
        }
        self.acked = keep;
        for (node, answers) in ready {
            let settled = answers
                .iter()
                .filter(|a| a.answer == Answer::Settled)
                .count() as u64;
            let report = SyncReport {
                server_url: &self.identity.server_url,
                team: &self.identity.team,
                answers: &answers,
                ..SyncReport::default()
            };
            match self.log.record_sync(&node, &report) {
                Ok(_) => self.state.sent_live += settled,
                Err(e) => {
                    self.journal
                        .line(&format!("recording acks of chain {node} failed: {e}"));
                    self.state.last_error = Some(format!("recording acks: {e}"));
                }
            }
        }
        self.state_dirty = true;
    }

    /// Catch-up after (re)connecting: the team's events missed while away.
    pub(super) async fn pull(&mut self) {
        let pulled = self
            .with_session(|session, log| {
                crate::sync::pull::pull(log, session, Instant::now() + REQUEST_TIMEOUT * 2)
            })
            .await;
        match pulled {
            Ok(p) => {
                self.state.received_live += p.written;
                if p.written > 0 {
                    self.state.last_receive = Some(crate::event::now_rfc3339());
                }
                if let Some(stop) = p.stop {
                    self.journal.line(&format!("pull stopped: {stop:?}"));
                }
                self.state_dirty = true;
            }
            Err(e) => self.journal.line(&format!("pull failed: {e}")),
        }
    }
}

/// Where an event read earlier lives, as a drain takes it.
fn located(e: StoredEvent) -> PendingCommit {
    PendingCommit {
        node_id: e.event.node_id.into(),
        commit: e.commit,
        seq: e.seq,
    }
}
