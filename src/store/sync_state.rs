//! Sync state: what the server has acknowledged of each chain.
//!
//! `refs/spec-kitty/synced/<node>` points at a sync-state commit whose first parent is the
//! newest event commit the server answered for (the *mark*, stored only there) and whose
//! second parent is the previous sync-state commit. Which events are pending follows from it
//! in [`super::pending`].

use gix::ObjectId;

use super::cas::Proposal;
use super::log::EventLog;
use super::message::{self, SyncRecord};
use super::pending::{Answered, settle};
use super::{Result, SYNCED_PREFIX, StoreError};

/// The sync state of one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// The sync-state commit itself.
    pub commit: ObjectId,
    /// The newest event commit the server has answered for.
    pub mark: ObjectId,
    /// `Seq` of the mark, read from the mark commit.
    pub mark_seq: u64,
    pub record: SyncRecord,
}

/// One sync's outcome for one chain, as [`EventLog::record_sync`] takes it.
#[derive(Debug, Clone, Default)]
pub struct SyncReport<'a> {
    pub server_url: &'a str,
    pub team: &'a str,
    /// The server's answers, in any order.
    pub answers: &'a [Answered],
    /// Move the mark at least to this event commit (commit, seq): a pulled chain's tip, which
    /// came from the server and so is settled by definition.
    pub mark_at_least: Option<(ObjectId, u64)>,
    /// A new pull cursor to remember (None keeps the previous one).
    pub pull_cursor: Option<String>,
}

impl EventLog {
    pub fn synced_ref(node: &str) -> String {
        format!("{SYNCED_PREFIX}{node}")
    }

    /// The sync state of `node`'s chain, if it has ever been synced.
    pub fn sync_state(&self, node: &str) -> Result<Option<SyncState>> {
        let name = Self::synced_ref(node);
        let Some(id) = self.ref_id(&name)? else {
            return Ok(None);
        };
        self.ensure_commit(&name, id)?;
        let broken = |reason: String| StoreError::BrokenSyncState {
            name: name.clone(),
            commit: id.to_string(),
            reason,
        };
        let (msg, _, parents) = self
            .commit_message(&name, id)
            .map_err(|e| broken(e.to_string()))?;
        let record = message::parse_sync(&msg).map_err(|e| broken(e.to_string()))?;
        let mark = parents
            .first()
            .copied()
            .ok_or_else(|| broken("it has no parent (the mark)".into()))?;
        let mark_seq = self.seq_of(&Self::chain_ref(node), mark).map_err(|e| {
            broken(format!(
                "its mark {mark} is not a readable event commit: {e}"
            ))
        })?;
        Ok(Some(SyncState {
            commit: id,
            mark,
            mark_seq,
            record,
        }))
    }

    /// `Seq` of an event commit, from its trailers alone.
    fn seq_of(&self, chain: &str, id: ObjectId) -> Result<u64> {
        let (msg, _, _) = self.commit_message(chain, id)?;
        message::parse_trailers(&msg)
            .map(|t| t.seq)
            .map_err(|e| StoreError::Unparseable {
                chain: chain.to_owned(),
                commit: id.to_string(),
                what: "event commit",
                reason: e.to_string(),
            })
    }

    /// Records the server's answers for `node`'s chain in one compare-and-swap of its sync
    /// ref. Inside the loop, on the state that wins: the mark moves to the newest answered
    /// event (never backwards), the previous rejections are merged with the new answers
    /// ([`settle`]), and the pull cursor is kept unless a new one is given.
    ///
    /// With no answers and no `mark_at_least`, nothing is written unless a cursor is given and
    /// a sync state already exists. Returns the state written (or the current one).
    pub fn record_sync(&self, node: &str, report: &SyncReport<'_>) -> Result<Option<SyncState>> {
        let name = Self::synced_ref(node);
        let newest_answer = report.answers.iter().max_by_key(|a| a.seq);
        let wanted = newest_answer
            .map(|a| (a.commit, a.seq))
            .into_iter()
            .chain(report.mark_at_least)
            .max_by_key(|(_, seq)| *seq);
        if wanted.is_none() {
            let current = self.sync_state(node)?;
            if current.is_none() || report.pull_cursor.is_none() {
                return Ok(current);
            }
        }
        let swapped = self.swap_ref(&name, "spec-kitty: record sync", |_| {
            let previous = self.sync_state(node)?;
            let mark = match (&previous, wanted) {
                (Some(p), Some((c, s))) if s > p.mark_seq => (c, s),
                (Some(p), _) => (p.mark, p.mark_seq),
                (None, Some(w)) => w,
                (None, None) => {
                    return Err(StoreError::git(
                        format!("recording the sync state of {node}"),
                        "the sync state disappeared while it was being updated",
                    ));
                }
            };
            let previous_rejected = previous
                .as_ref()
                .map(|p| p.record.rejected.as_slice())
                .unwrap_or_default();
            let settlement = settle(previous_rejected, report.answers);
            let record = SyncRecord {
                server_url: report.server_url.to_owned(),
                team: report.team.to_owned(),
                time: crate::event::now_rfc3339(),
                // Everything up to the mark that is not rejected: derived, so a resend after
                // a crash (answered `duplicate`) is never counted twice.
                acknowledged: mark.1.saturating_sub(settlement.rejected.len() as u64),
                rejected: settlement.rejected,
                pull_cursor: report
                    .pull_cursor
                    .clone()
                    .or_else(|| previous.as_ref().and_then(|p| p.record.pull_cursor.clone())),
            };
            let tree = self.empty_tree()?;
            let commit = gix::objs::Commit {
                tree,
                parents: std::iter::once(mark.0)
                    .chain(previous.as_ref().map(|p| p.commit))
                    .collect(),
                author: self.signature(chrono::Utc::now().timestamp()),
                committer: self.signature(chrono::Utc::now().timestamp()),
                encoding: None,
                message: message::format_sync(node, mark.1, &record).into(),
                extra_headers: Vec::new(),
            };
            let id = self.write_commit(&commit)?;
            Ok(Proposal {
                expected: previous.as_ref().map(|p| p.commit),
                new: id,
                value: SyncState {
                    commit: id,
                    mark: mark.0,
                    mark_seq: mark.1,
                    record,
                },
            })
        })?;
        Ok(Some(swapped.value))
    }
}
