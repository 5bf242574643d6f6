//! Draining pending events to the server: batches of at most 1000 (or the server's limit),
//! gzip, bearer token; each answer applied with one compare-and-swap per chain.
//!
//! Faults never touch retry counts: 401 refreshes and resends the same batch, 413 halves the
//! batch, 429 / 5xx / timeouts / dropped connections back off (`Retry-After` when given, else
//! 0.5 s doubling to 30 s) and resend. Only a `rejected` answer counts against an event.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::SyncError;
use super::http::{Limits, Reply};
use super::session::Session;
use crate::store::{Answer, Answered, EventLog, PendingCommit, StoredEvent, SyncReport};

/// How many transient faults in a row a drain survives before it reports the server
/// unreachable (each waits longer than the last, within the total deadline).
const MAX_TRANSIENT_IN_A_ROW: u32 = 6;

/// One event the server rejected in this run.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub event_id: String,
    pub node_id: String,
    pub event_type: String,
    pub retry_count: u32,
    pub error: String,
}

/// One event's result in this run (for `--verbose`).
#[derive(Debug, Clone, Serialize)]
pub struct EventLine {
    pub event_id: String,
    pub event_type: String,
    pub summary: String,
    pub status: String,
}

/// Why a drain stopped before everything was answered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "category")]
pub enum Stop {
    Unreachable { reason: String },
    Auth { message: String },
    Server { status: u16, message: String },
    Deadline,
}

/// What a drain did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pushed {
    /// Events the server now has (success or duplicate) from this run.
    pub settled: u64,
    pub duplicates: u64,
    pub batches: u64,
    pub rejected: Vec<Rejection>,
    /// Events still unanswered when the drain stopped.
    pub left: u64,
    pub stop: Option<Stop>,
    /// Faults survived (backoffs, halvings, refreshes): counted, never charged to events.
    pub transient_faults: u64,
    #[serde(skip)]
    pub lines: Vec<EventLine>,
}

/// Progress after each answered batch: (events answered so far, total).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Drains `pending` (oldest first per chain) in batches.
pub fn drain(
    log: &EventLog,
    session: &mut Session,
    limits: Limits,
    pending: &[PendingCommit],
    deadline: Instant,
    progress: Progress<'_>,
) -> Pushed {
    let mut d = Drain {
        log,
        server: session.http.base.clone(),
        team: session.credentials().team_slug.clone(),
        session,
        max_bytes: limits.max_decompressed_bytes,
        size: limits.max_events_per_batch.clamp(1, 1000),
        transient_in_a_row: 0,
        refreshed_for_batch: false,
        deadline,
        out: Pushed::default(),
    };
    let total = pending.len() as u64;
    let mut idx = 0;
    while idx < pending.len() {
        if Instant::now() >= deadline {
            d.out.stop = Some(Stop::Deadline);
            break;
        }
        let end = (idx + d.size).min(pending.len());
        match d.send(&pending[idx..end]) {
            Ok(0) => {}
            Ok(n) => {
                idx += n;
                progress(idx as u64, total);
            }
            Err(stop) => {
                d.out.stop = Some(stop);
                break;
            }
        }
    }
    d.out.left = (pending.len() - idx) as u64;
    d.out
}

/// The state of one drain between batches.
struct Drain<'a> {
    log: &'a EventLog,
    session: &'a mut Session,
    server: String,
    team: String,
    max_bytes: Option<usize>,
    /// Events per batch (halved on 413).
    size: usize,
    transient_in_a_row: u32,
    refreshed_for_batch: bool,
    deadline: Instant,
    out: Pushed,
}

impl Drain<'_> {
    /// Sends one batch from the front of `window`: the number of events answered and applied,
    /// 0 when the same events must be sent again (after a refresh, a halving or a backoff).
    fn send(&mut self, window: &[PendingCommit]) -> Result<usize, Stop> {
        // Only one batch of envelopes is in memory at a time.
        let events = self.log.read_pending(window).map_err(|e| Stop::Server {
            status: 0,
            message: format!("pending events could not be read: {e}"),
        })?;
        let (body, n) = batch_body(&events, self.max_bytes);
        let chunk = &events[..n];
        let access = self.session.access().map_err(stop_for)?;
        match self.session.http.upload(&access, &body) {
            Reply::Ok(results) => {
                self.transient_in_a_row = 0;
                self.refreshed_for_batch = false;
                apply(
                    self.log,
                    &self.server,
                    &self.team,
                    chunk,
                    &results,
                    &mut self.out,
                )
                .map_err(|e| Stop::Server {
                    status: 0,
                    message: format!("answers could not be recorded: {e}"),
                })?;
                self.out.batches += 1;
                Ok(n)
            }
            Reply::Unauthorized if !self.refreshed_for_batch => {
                self.out.transient_faults += 1;
                self.refreshed_for_batch = true;
                self.session.after_unauthorized().map_err(stop_for)?;
                Ok(0)
            }
            Reply::Unauthorized => Err(Stop::Auth {
                message: "the server refused a freshly refreshed token".into(),
            }),
            Reply::TooLarge if n > 1 => {
                self.out.transient_faults += 1;
                self.size = (n / 2).max(1);
                Ok(0)
            }
            Reply::TooLarge => Err(Stop::Server {
                status: 413,
                message: format!(
                    "event {} alone is larger than the server accepts",
                    chunk[0].event.event_id
                ),
            }),
            Reply::Transient {
                reason,
                retry_after,
            } => {
                self.out.transient_faults += 1;
                self.transient_in_a_row += 1;
                let wait = backoff(self.transient_in_a_row, retry_after);
                if self.transient_in_a_row > MAX_TRANSIENT_IN_A_ROW
                    || Instant::now() + wait >= self.deadline
                {
                    return Err(Stop::Unreachable { reason });
                }
                std::thread::sleep(wait);
                Ok(0)
            }
            Reply::Failed { status, message } => Err(Stop::Server { status, message }),
        }
    }
}

/// `min(0.5·2^(n-1), 30)` s, or the server's `Retry-After` (at most 30 s).
pub fn backoff(attempt: u32, retry_after: Option<u64>) -> Duration {
    if let Some(s) = retry_after {
        return Duration::from_secs(s.min(30));
    }
    let ms = 500u64.saturating_mul(1 << attempt.saturating_sub(1).min(6));
    Duration::from_millis(ms.min(30_000))
}

fn stop_for(e: SyncError) -> Stop {
    match e {
        SyncError::Unreachable { reason, .. } => Stop::Unreachable { reason },
        SyncError::Server {
            status, message, ..
        } => Stop::Server { status, message },
        other => Stop::Auth {
            message: other.to_string(),
        },
    }
}

/// The JSON body for as many events of `chunk` as fit under `max_bytes` (at least one).
fn batch_body(chunk: &[StoredEvent], max_bytes: Option<usize>) -> (Vec<u8>, usize) {
    let mut body = Vec::with_capacity(chunk.len() * 700 + 16);
    body.extend_from_slice(b"{\"events\":[");
    let mut n = 0;
    for s in chunk {
        let json = serde_json::to_vec(&s.event).unwrap_or_default();
        if n > 0 && max_bytes.is_some_and(|m| body.len() + json.len() + 3 > m) {
            break;
        }
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&json);
        n += 1;
    }
    body.extend_from_slice(b"]}");
    (body, n)
}

/// Applies one batch's results: per chain, one `record_sync` (one compare-and-swap).
fn apply(
    log: &EventLog,
    server: &str,
    team: &str,
    chunk: &[StoredEvent],
    results: &[super::http::EventResult],
    out: &mut Pushed,
) -> Result<(), crate::store::StoreError> {
    let by_id: std::collections::HashMap<&str, &super::http::EventResult> =
        results.iter().map(|r| (r.event_id.as_str(), r)).collect();
    let mut per_chain: BTreeMap<&str, Vec<Answered>> = BTreeMap::new();
    for s in chunk {
        // An event the server did not answer for stays pending (it is simply sent again).
        let Some(r) = by_id.get(s.event.event_id.as_str()) else {
            continue;
        };
        let answer = match r.status.as_str() {
            "success" | "duplicate" => Answer::Settled,
            _ => Answer::Rejected(r.error.clone().unwrap_or_else(|| r.status.clone())),
        };
        match &answer {
            Answer::Settled => {
                out.settled += 1;
                if r.status == "duplicate" {
                    out.duplicates += 1;
                }
            }
            Answer::Rejected(_) => {}
        }
        out.lines.push(EventLine {
            event_id: s.event.event_id.clone(),
            event_type: s.event.event_type.clone(),
            summary: s.event.summary(),
            status: r.status.clone(),
        });
        per_chain
            .entry(s.event.node_id.as_str())
            .or_default()
            .push(Answered {
                event_id: s.event.event_id.clone(),
                commit: s.commit,
                seq: s.seq,
                answer,
            });
    }
    for (node, answers) in per_chain {
        let state = log.record_sync(
            node,
            &SyncReport {
                server_url: server,
                team,
                answers: &answers,
                ..SyncReport::default()
            },
        )?;
        let rejected_now = answers
            .iter()
            .filter(|a| matches!(a.answer, Answer::Rejected(_)));
        for a in rejected_now {
            let retry_count = state
                .as_ref()
                .and_then(|s| s.record.rejected.iter().find(|r| r.event_id == a.event_id))
                .map_or(1, |r| r.retry_count);
            let event_type = chunk
                .iter()
                .find(|s| s.event.event_id == a.event_id)
                .map(|s| s.event.event_type.clone())
                .unwrap_or_default();
            let error = match &a.answer {
                Answer::Rejected(e) => e.clone(),
                Answer::Settled => String::new(),
            };
            out.rejected.push(Rejection {
                event_id: a.event_id.clone(),
                node_id: node.to_owned(),
                event_type,
                retry_count,
                error,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_honours_retry_after() {
        assert_eq!(backoff(1, None), Duration::from_millis(500));
        assert_eq!(backoff(2, None), Duration::from_millis(1000));
        assert_eq!(backoff(20, None), Duration::from_secs(30));
        assert_eq!(backoff(1, Some(3)), Duration::from_secs(3));
        assert_eq!(backoff(1, Some(3600)), Duration::from_secs(30));
    }
}
