//! Draining pending events to the server: batches of at most 1000 (or the server's limit),
//! gzip, bearer token; each answer applied with one compare-and-swap per chain.
//!
//! Faults never touch retry counts: 401 refreshes and resends the same batch, 413 halves the
//! batch, 429 / 5xx / timeouts / dropped connections back off (`Retry-After` when given, else
//! 0.5 s doubling to 30 s) and resend. Only a `rejected` answer counts against an event.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::SyncError;
use super::http::{EventResult, Limits, Reply, gzip};
use super::session::Session;
use crate::store::{Answer, Answered, EventLog, OutgoingEvent, PendingCommit, SyncReport};

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

/// How a drain reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct DrainOptions {
    /// Keep one [`EventLine`] per answered event (`sync now --verbose`); without it a drain of
    /// 100,000 events keeps nothing per event but the rejections.
    pub verbose: bool,
}

/// One batch, read and compressed, ready to send (and to resend as it is).
struct Batch {
    /// Index in `pending` of its first event.
    start: usize,
    events: Vec<OutgoingEvent>,
    gz: Vec<u8>,
}

/// What the uploader thread is asked to do: send this body with this token.
type Job = (String, Vec<u8>);

/// Drains `pending` (oldest first per chain) in batches.
///
/// Pipelined, one request in flight: while the server works on batch N, this thread reads
/// and compresses batch N+1, and as soon as N is answered, N+1 goes out before N's answers
/// are recorded. Answers are still recorded strictly in batch order, one compare-and-swap per
/// chain per batch, so the sync-state refs only ever move forward over answered events; a
/// kill at any point leaves at most the events in flight to be resent (answered `duplicate`).
pub fn drain(
    log: &EventLog,
    session: &mut Session,
    limits: Limits,
    pending: &[PendingCommit],
    deadline: Instant,
    options: DrainOptions,
    progress: Progress<'_>,
) -> Pushed {
    let http = session.http.clone();
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
        options,
        out: Pushed::default(),
    };
    let idx = std::thread::scope(|scope| {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(1);
        let (reply_tx, replies) = mpsc::sync_channel(1);
        scope.spawn(move || {
            for (access, gz) in job_rx {
                if reply_tx.send(http.upload_gzipped(&access, gz)).is_err() {
                    break;
                }
            }
        });
        let mut idx = 0;
        if let Err(stop) = d.run(pending, &jobs, &replies, &mut idx, progress) {
            d.out.stop = Some(stop);
        }
        // Dropping `jobs` ends the uploader once its request (if any) is answered.
        drop(jobs);
        idx
    });
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
    options: DrainOptions,
    out: Pushed,
}

/// What to do after a fault.
enum Next {
    /// Send the same batch again (after a refresh or a backoff).
    Resend,
    /// Read the events again in smaller batches (after a 413).
    Rebatch,
}

impl Drain<'_> {
    /// The loop; `idx` is the index of the first event not yet answered.
    fn run(
        &mut self,
        pending: &[PendingCommit],
        jobs: &mpsc::SyncSender<Job>,
        replies: &mpsc::Receiver<Reply<Vec<EventResult>>>,
        idx: &mut usize,
        progress: Progress<'_>,
    ) -> Result<(), Stop> {
        let total = pending.len() as u64;
        // Read and compressed ahead, not sent yet.
        let mut ready: Option<Batch> = None;
        // Sent, not answered yet.
        let mut inflight: Option<Batch> = None;
        loop {
            let batch = match inflight.take() {
                Some(b) => b,
                None => {
                    if *idx >= pending.len() {
                        return Ok(());
                    }
                    if Instant::now() >= self.deadline {
                        return Err(Stop::Deadline);
                    }
                    let b = match ready.take() {
                        Some(b) if b.start == *idx => b,
                        _ => self.prepare(pending, *idx)?,
                    };
                    self.send(jobs, &b)?;
                    b
                }
            };
            let end = batch.start + batch.events.len();
            if ready.is_none() && end < pending.len() {
                ready = Some(self.prepare(pending, end)?);
            }
            let reply = replies.recv().map_err(|_| Stop::Server {
                status: 0,
                message: "the upload thread stopped unexpectedly".into(),
            })?;
            let Reply::Ok(results) = reply else {
                match self.fault(reply, &batch)? {
                    Next::Resend => {
                        self.send(jobs, &batch)?;
                        inflight = Some(batch);
                    }
                    Next::Rebatch => ready = None,
                }
                continue;
            };
            self.transient_in_a_row = 0;
            self.refreshed_for_batch = false;
            // The next batch goes out before this one's answers are recorded, so the server
            // is never idle while this thread writes the sync-state commit.
            if Instant::now() < self.deadline
                && let Some(b) = ready.take().filter(|b| b.start == end)
            {
                self.send(jobs, &b)?;
                inflight = Some(b);
            }
            apply(
                self.log,
                &self.server,
                &self.team,
                &batch.events,
                &results,
                self.options.verbose,
                &mut self.out,
            )
            .map_err(|e| Stop::Server {
                status: 0,
                message: format!("answers could not be recorded: {e}"),
            })?;
            self.out.batches += 1;
            *idx = end;
            progress(end as u64, total);
        }
    }

    /// Reads and compresses the batch starting at `start`: at most `size` events, and as many
    /// as fit under the server's byte limit (at least one).
    fn prepare(&self, pending: &[PendingCommit], start: usize) -> Result<Batch, Stop> {
        let end = (start + self.size).min(pending.len());
        let mut events =
            self.log
                .read_outgoing(&pending[start..end])
                .map_err(|e| Stop::Server {
                    status: 0,
                    message: format!("pending events could not be read: {e}"),
                })?;
        let (body, n) = batch_body(&events, self.max_bytes);
        events.truncate(n);
        let gz = gzip(&body).map_err(|e| Stop::Server {
            status: 0,
            message: format!("cannot compress the batch: {e}"),
        })?;
        Ok(Batch { start, events, gz })
    }

    /// Hands `batch` to the uploader with a fresh token.
    fn send(&mut self, jobs: &mpsc::SyncSender<Job>, batch: &Batch) -> Result<(), Stop> {
        let access = self.session.access().map_err(stop_for)?;
        jobs.send((access, batch.gz.clone()))
            .map_err(|_| Stop::Server {
                status: 0,
                message: "the upload thread stopped unexpectedly".into(),
            })
    }

    /// What a fault means for `batch`: send it again (after a refresh or a backoff), read it
    /// again in smaller batches (413), or stop.
    fn fault(&mut self, reply: Reply<Vec<EventResult>>, batch: &Batch) -> Result<Next, Stop> {
        let n = batch.events.len();
        match reply {
            Reply::Ok(_) => Ok(Next::Resend),
            Reply::Unauthorized if !self.refreshed_for_batch => {
                self.out.transient_faults += 1;
                self.refreshed_for_batch = true;
                self.session.after_unauthorized().map_err(stop_for)?;
                Ok(Next::Resend)
            }
            Reply::Unauthorized => Err(Stop::Auth {
                message: "the server refused a freshly refreshed token".into(),
            }),
            Reply::TooLarge if n > 1 => {
                self.out.transient_faults += 1;
                self.size = (n / 2).max(1);
                Ok(Next::Rebatch)
            }
            Reply::TooLarge => Err(Stop::Server {
                status: 413,
                message: format!(
                    "event {} alone is larger than the server accepts",
                    batch.events[0].event_id
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
                Ok(Next::Resend)
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

/// The JSON body for as many events of `chunk` as fit under `max_bytes` (at least one): the
/// envelopes exactly as recorded.
fn batch_body(chunk: &[OutgoingEvent], max_bytes: Option<usize>) -> (Vec<u8>, usize) {
    let mut body = Vec::with_capacity(chunk.iter().map(|e| e.json.len() + 1).sum::<usize>() + 16);
    body.extend_from_slice(b"{\"events\":[");
    let mut n = 0;
    for e in chunk {
        let json = e.json.as_bytes();
        if n > 0 && max_bytes.is_some_and(|m| body.len() + json.len() + 3 > m) {
            break;
        }
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(json);
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
    chunk: &[OutgoingEvent],
    results: &[EventResult],
    verbose: bool,
    out: &mut Pushed,
) -> Result<(), crate::store::StoreError> {
    let by_id: std::collections::HashMap<&str, &EventResult> =
        results.iter().map(|r| (r.event_id.as_str(), r)).collect();
    let mut per_chain: BTreeMap<&str, Vec<Answered>> = BTreeMap::new();
    for s in chunk {
        // An event the server did not answer for stays pending (it is simply sent again).
        let Some(r) = by_id.get(s.event_id.as_str()) else {
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
        if verbose {
            out.lines.push(EventLine {
                event_id: s.event_id.clone(),
                event_type: s.event_type.clone(),
                summary: s.summary.clone(),
                status: r.status.clone(),
            });
        }
        per_chain.entry(&s.node_id).or_default().push(Answered {
            event_id: s.event_id.clone(),
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
                .find(|s| s.event_id == a.event_id)
                .map(|s| s.event_type.clone())
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
