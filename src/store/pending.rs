//! Pending accounting: the one home of "what the server has not settled yet".
//!
//! For every chain, pending = the events after its sync state's mark (never sent, or sent but
//! not answered) ∪ the events at or before the mark that the server rejected. A
//! [`PendingRange`] is that set for one chain; [`settle`] is the one rule that turns a server's
//! answers into the next rejected list (previous rejections kept, a re-rejection counted).

use std::collections::{HashMap, HashSet};

use gix::ObjectId;
use serde::Serialize;

use super::Result;
use super::log::{EventLog, StoredEvent};
use super::message::RejectedEvent;
use super::sync_state::SyncState;

/// The pending events of one chain, described by its tip and its sync state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRange {
    pub node_id: String,
    /// The chain's tip, when the chain exists.
    pub tip: Option<ObjectId>,
    /// `Seq` of the tip: how many events the chain holds.
    pub tip_seq: u64,
    /// The sync state, when the chain has ever been synced.
    pub state: Option<SyncState>,
}

/// Pending summary of one chain (what `events pending` and `sync status` print).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainPending {
    pub node_id: String,
    /// Events on the chain.
    pub total: u64,
    /// Events after the mark (never sent or not yet answered).
    pub unsent: u64,
    /// Events at or before the mark that the server rejected.
    pub rejected: u64,
}

impl ChainPending {
    pub fn pending(&self) -> u64 {
        self.unsent + self.rejected
    }
}

/// One pending event, located but not read: what a drain keeps in memory for each of
/// possibly 100,000 events, reading the envelopes one batch at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCommit {
    /// Shared by every pending commit of the chain (one allocation per chain).
    pub node_id: std::sync::Arc<str>,
    pub commit: ObjectId,
    pub seq: u64,
}

/// One pending event as a drain sends it (see [`EventLog::read_outgoing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent {
    pub node_id: std::sync::Arc<str>,
    pub commit: ObjectId,
    pub seq: u64,
    pub event_id: String,
    pub event_type: String,
    /// The commit's subject line: the event's one-line summary as recorded.
    pub summary: String,
    /// The envelope's JSON as recorded.
    pub json: String,
}

impl OutgoingEvent {
    fn from_message(c: &PendingCommit, msg: &str) -> std::result::Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(borrow)]
            event_id: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            event_type: std::borrow::Cow<'a, str>,
        }
        let t = super::message::parse_trailers(msg).map_err(|e| e.to_string())?;
        let json = super::message::event_json(msg)
            .ok_or_else(|| super::message::MessageError::MissingTrailers.to_string())?;
        let head: Head<'_> = serde_json::from_str(json)
            .map_err(|e| super::message::MessageError::BadJson(e.to_string()).to_string())?;
        if head.event_id != t.event_id {
            return Err(super::message::MessageError::Mismatch {
                field: "event_id",
                json: head.event_id.into_owned(),
                trailer: t.event_id.to_owned(),
            }
            .to_string());
        }
        Ok(OutgoingEvent {
            node_id: c.node_id.clone(),
            commit: c.commit,
            // As the commit records it, for `read_outgoing` to check against where it was
            // expected.
            seq: t.seq,
            event_id: head.event_id.into_owned(),
            event_type: head.event_type.into_owned(),
            summary: msg.lines().next().unwrap_or_default().to_owned(),
            json: json.to_owned(),
        })
    }
}

/// What the server answered for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `success` or `duplicate`: the server has it.
    Settled,
    /// `rejected`, with the server's error text.
    Rejected(String),
}

/// One answered event: where it is on its chain and what the server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub event_id: String,
    pub commit: ObjectId,
    pub seq: u64,
    pub answer: Answer,
}

/// The result of applying answers to a previous rejected list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settlement {
    /// The rejected list after these answers, oldest rejection first.
    pub rejected: Vec<RejectedEvent>,
    /// How many of the answers settled an event.
    pub acknowledged: u64,
}

/// Applies `answers` to the `previous` rejected list: a settled event leaves it, a rejected one
/// joins it with retry count 1 or, when it was already there, with its count + 1 and the new
/// error; every other previous rejection is kept as it was. Nothing is ever forgotten.
pub fn settle(previous: &[RejectedEvent], answers: &[Answered]) -> Settlement {
    let mut by_id: HashMap<&str, &Answer> = HashMap::new();
    for a in answers {
        by_id.insert(a.event_id.as_str(), &a.answer);
    }
    let mut out = Settlement::default();
    let mut seen: HashSet<&str> = HashSet::new();
    for r in previous {
        seen.insert(r.event_id.as_str());
        match by_id.get(r.event_id.as_str()) {
            None => out.rejected.push(r.clone()),
            Some(Answer::Settled) => {}
            Some(Answer::Rejected(error)) => out.rejected.push(RejectedEvent {
                event_id: r.event_id.clone(),
                retry_count: r.retry_count.saturating_add(1),
                error: error.clone(),
            }),
        }
    }
    for a in answers {
        match &a.answer {
            Answer::Settled => out.acknowledged += 1,
            Answer::Rejected(error) if seen.insert(a.event_id.as_str()) => {
                out.rejected.push(RejectedEvent {
                    event_id: a.event_id.clone(),
                    retry_count: 1,
                    error: error.clone(),
                });
            }
            Answer::Rejected(_) => {}
        }
    }
    out
}

impl PendingRange {
    /// The pending range of `node`'s chain whose tip is `tip` with sequence number `tip_seq`.
    pub(crate) fn of(
        log: &EventLog,
        node: &str,
        tip: Option<ObjectId>,
        tip_seq: u64,
    ) -> Result<PendingRange> {
        Ok(PendingRange {
            node_id: node.to_owned(),
            tip,
            tip_seq,
            state: log.sync_state(node)?,
        })
    }

    /// `Seq` of the mark (0 when never synced).
    pub fn mark_seq(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.mark_seq)
    }

    /// The rejected list of the sync state.
    pub fn rejected(&self) -> &[RejectedEvent] {
        self.state.as_ref().map_or(&[], |s| &s.record.rejected)
    }

    /// Events after the mark.
    pub fn unsent(&self) -> u64 {
        self.tip_seq.saturating_sub(self.mark_seq())
    }

    /// Every pending event of the chain: unsent plus rejected.
    pub fn pending(&self) -> u64 {
        self.unsent() + self.rejected().len() as u64
    }

    pub fn summary(&self) -> ChainPending {
        ChainPending {
            node_id: self.node_id.clone(),
            total: self.tip_seq,
            unsent: self.unsent(),
            rejected: self.rejected().len() as u64,
        }
    }

    /// The pending events themselves, oldest first (rejected ones, then unsent ones). Reads
    /// the chain back from its tip only as far as it must.
    pub fn events(&self, log: &EventLog) -> Result<Vec<StoredEvent>> {
        log.read_pending(&self.commits(log)?)
    }
}

impl PendingRange {
    /// The pending events as [`PendingCommit`]s, oldest first (rejected ones, then unsent
    /// ones), read from the trailers only (no JSON parsing). The unsent ones come from the
    /// outgoing index when it proves them (store/outgoing.rs), else from a walk back from the
    /// tip, which then rewrites the index; the rejected ones from a walk back from the mark.
    pub fn commits(&self, log: &EventLog) -> Result<Vec<PendingCommit>> {
        let Some(tip) = self.tip else {
            return Ok(Vec::new());
        };
        let (unsent, rejected_from) = match log.outgoing_from_index(self) {
            Some(unsent) => (unsent, self.state.as_ref().map(|s| s.mark)),
            None => (self.walk_unsent(log, tip)?, None),
        };
        let mut found_rejected = match rejected_from {
            Some(mark) => self.walk_rejected(log, mark)?,
            None => Vec::new(),
        };
        if found_rejected.is_empty() {
            return Ok(unsent);
        }
        found_rejected.extend(unsent);
        Ok(found_rejected)
    }

    /// The walk of [`PendingRange::commits`] from the tip: the unsent events, and the rejected
    /// ones when they are reached on the way (all of them, by the end). Rewrites the outgoing
    /// index from what it read.
    fn walk_unsent(&self, log: &EventLog, tip: ObjectId) -> Result<Vec<PendingCommit>> {
        let node: std::sync::Arc<str> = self.node_id.as_str().into();
        let mark_seq = self.mark_seq();
        let mut want_rejected: HashSet<&str> = self
            .rejected()
            .iter()
            .map(|r| r.event_id.as_str())
            .collect();
        let mut unsent = Vec::with_capacity(self.unsent().min(1 << 20) as usize);
        let mut index = Vec::with_capacity(unsent.capacity());
        let mut found_rejected = Vec::new();
        self.walk(log, tip, |id, parent, t| {
            let item = PendingCommit {
                node_id: node.clone(),
                commit: id,
                seq: t.seq,
            };
            if t.seq > mark_seq {
                unsent.push(item);
                index.push(super::outgoing::Entry {
                    seq: t.seq,
                    commit: id,
                    parent,
                });
            } else if want_rejected.remove(t.event_id) {
                found_rejected.push(item);
            }
            !(want_rejected.is_empty() && t.seq <= mark_seq + 1)
        })?;
        unsent.reverse();
        if !index.is_empty() {
            index.reverse();
            log.rewrite_outgoing(&self.node_id, &index);
        }
        found_rejected.reverse();
        found_rejected.extend(unsent);
        Ok(found_rejected)
    }

    /// The rejected events, oldest first, walking back from the mark until all are found.
    fn walk_rejected(&self, log: &EventLog, mark: ObjectId) -> Result<Vec<PendingCommit>> {
        let mut want: HashSet<&str> = self
            .rejected()
            .iter()
            .map(|r| r.event_id.as_str())
            .collect();
        if want.is_empty() {
            return Ok(Vec::new());
        }
        let node: std::sync::Arc<str> = self.node_id.as_str().into();
        let mut found = Vec::new();
        self.walk(log, mark, |id, _, t| {
            if want.remove(t.event_id) {
                found.push(PendingCommit {
                    node_id: node.clone(),
                    commit: id,
                    seq: t.seq,
                });
            }
            !want.is_empty()
        })?;
        found.reverse();
        Ok(found)
    }

    /// Reads the chain back from `from` through the trailers, calling `visit(commit, parent,
    /// trailers)` until it answers `false` or the chain ends.
    fn walk(
        &self,
        log: &EventLog,
        from: ObjectId,
        mut visit: impl FnMut(ObjectId, Option<ObjectId>, &super::message::EventTrailers<'_>) -> bool,
    ) -> Result<()> {
        let chain = EventLog::chain_ref(&self.node_id);
        let mut next = Some(from);
        while let Some(id) = next {
            let (msg, parent, _) = log.commit_message(&chain, id)?;
            let t = super::message::parse_trailers(&msg).map_err(|e| {
                super::StoreError::Unparseable {
                    chain: chain.clone(),
                    commit: id.to_string(),
                    what: "event commit",
                    reason: e.to_string(),
                }
            })?;
            if !visit(id, parent, &t) {
                break;
            }
            next = parent;
        }
        Ok(())
    }
}

impl PendingRange {
    /// The oldest unsent event (the one right after the mark), reading back from the tip at
    /// most `max_steps` commits through their trailers only; when the chain is longer, the
    /// oldest one reached, with `false` (the true oldest is older still).
    pub fn oldest_unsent(
        &self,
        log: &EventLog,
        max_steps: usize,
    ) -> Result<Option<(StoredEvent, bool)>> {
        let Some(mut id) = self.tip.filter(|_| self.unsent() > 0) else {
            return Ok(None);
        };
        if let Some(stored) = log.oldest_unsent_hint(&self.node_id, self.mark_seq() + 1) {
            return Ok(Some((stored, true)));
        }
        let chain = EventLog::chain_ref(&self.node_id);
        let target = self.mark_seq() + 1;
        let mut exact = false;
        for _ in 0..max_steps {
            let (msg, parent, _) = log.commit_message(&chain, id)?;
            let seq = super::message::parse_trailers(&msg)
                .map(|t| t.seq)
                .unwrap_or(0);
            match parent {
                Some(p) if seq > target => id = p,
                _ => {
                    exact = true;
                    break;
                }
            }
        }
        let (stored, _) = log.read_event(&chain, id)?;
        Ok(Some((stored, exact)))
    }
}

impl EventLog {
    /// Every pending event as a [`PendingCommit`], oldest first per chain, chains in node
    /// order.
    pub fn pending_commits(&self) -> Result<Vec<PendingCommit>> {
        let mut out = Vec::new();
        for range in self.pending_ranges()? {
            let commits = range.commits(self)?;
            if out.is_empty() {
                out = commits;
            } else {
                out.extend(commits);
            }
        }
        Ok(out)
    }

    /// Reads the events of `commits` (for one batch).
    pub fn read_pending(&self, commits: &[PendingCommit]) -> Result<Vec<StoredEvent>> {
        commits
            .iter()
            .map(|c| {
                self.read_event(&EventLog::chain_ref(&c.node_id), c.commit)
                    .map(|(s, _)| s)
            })
            .collect()
    }

    /// Reads the events of `commits` for sending: each envelope's JSON exactly as it was
    /// recorded (it is the source of truth, so it goes on the wire byte for byte) and the few
    /// fields a drain needs to apply the answer. The JSON is checked to be an object naming
    /// the trailer's event id, but not parsed into an [`crate::event::Event`]: a batch of 1000
    /// costs one commit read per event and nothing else.
    pub fn read_outgoing(&self, commits: &[PendingCommit]) -> Result<Vec<OutgoingEvent>> {
        commits
            .iter()
            .map(|c| {
                let chain = EventLog::chain_ref(&c.node_id);
                let (msg, _, _) = self.commit_message(&chain, c.commit)?;
                let unparseable = |reason| super::StoreError::Unparseable {
                    chain: chain.clone(),
                    commit: c.commit.to_string(),
                    what: "event commit",
                    reason,
                };
                let event = OutgoingEvent::from_message(c, &msg).map_err(unparseable)?;
                if event.seq != c.seq {
                    // Only a damaged outgoing index can name a commit at the wrong place;
                    // without it the next run walks the chain.
                    let _ = std::fs::remove_file(self.outgoing_path(&c.node_id));
                    return Err(unparseable(format!(
                        "the commit records Seq {} where Seq {} was expected",
                        event.seq, c.seq
                    )));
                }
                Ok(event)
            })
            .collect()
    }

    /// The pending range of every chain, in node order, in O(chains): read from the tips'
    /// `Seq` trailers and the sync states, never by walking history.
    pub fn pending_ranges(&self) -> Result<Vec<PendingRange>> {
        let mut out = Vec::new();
        for chain in self.chains()? {
            let tip = self.tip_info(&chain.ref_name, chain.tip)?;
            out.push(PendingRange::of(
                self,
                &chain.node_id,
                Some(chain.tip),
                tip.seq,
            )?);
        }
        Ok(out)
    }

    /// Pending counts for every chain.
    pub fn pending_by_chain(&self) -> Result<Vec<ChainPending>> {
        Ok(self
            .pending_ranges()?
            .iter()
            .map(PendingRange::summary)
            .collect())
    }

    /// Total pending events in the repository.
    pub fn pending_count(&self) -> Result<u64> {
        Ok(self
            .pending_ranges()?
            .iter()
            .map(PendingRange::pending)
            .sum())
    }

    /// Every pending event, oldest first per chain, chains in node order.
    pub fn pending_events(&self) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        for range in self.pending_ranges()? {
            out.extend(range.events(self)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(id: &str, seq: u64, answer: Answer) -> Answered {
        Answered {
            event_id: id.into(),
            commit: ObjectId::null(gix::hash::Kind::Sha1),
            seq,
            answer,
        }
    }

    fn rejected(id: &str, retry_count: u32, error: &str) -> RejectedEvent {
        RejectedEvent {
            event_id: id.into(),
            retry_count,
            error: error.into(),
        }
    }

    #[test]
    fn a_first_rejection_counts_one_and_keeps_the_error() {
        let s = settle(
            &[],
            &[
                answered("A", 1, Answer::Settled),
                answered("B", 2, Answer::Rejected("missing field".into())),
            ],
        );
        assert_eq!(s.acknowledged, 1);
        assert_eq!(s.rejected, vec![rejected("B", 1, "missing field")]);
    }

    #[test]
    fn previous_rejections_survive_a_sync_that_did_not_resend_them() {
        let previous = vec![rejected("B", 2, "old")];
        let s = settle(&previous, &[answered("C", 3, Answer::Settled)]);
        assert_eq!(s.rejected, previous);
        assert_eq!(s.acknowledged, 1);
    }

    #[test]
    fn a_re_rejection_bumps_the_count_and_takes_the_new_error() {
        let previous = vec![rejected("B", 2, "old"), rejected("D", 1, "other")];
        let s = settle(
            &previous,
            &[
                answered("B", 2, Answer::Rejected("new".into())),
                answered("D", 4, Answer::Settled),
            ],
        );
        assert_eq!(s.rejected, vec![rejected("B", 3, "new")]);
        assert_eq!(s.acknowledged, 1);
    }

    #[test]
    fn an_event_answered_twice_in_one_report_is_listed_once() {
        let s = settle(
            &[],
            &[
                answered("B", 2, Answer::Rejected("x".into())),
                answered("B", 2, Answer::Rejected("x".into())),
            ],
        );
        assert_eq!(s.rejected.len(), 1);
    }
}
