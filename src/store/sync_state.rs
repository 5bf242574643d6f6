//! Sync state: what the server has acknowledged of each chain, and hence what is pending.
//!
//! `refs/spec-kitty/synced/<node>` points at a sync-state commit whose first parent is the
//! newest event commit the server answered for (the *mark*) and whose second parent is the
//! previous sync-state commit. Pending = events after the mark ∪ the rejected list.

use gix::ObjectId;
use gix::refs::Target;
use gix::refs::transaction::PreviousValue;

use super::log::{CasError, Chain, EventLog, StoredEvent};
use super::message::{self, SyncRecord};
use super::{Result, SYNCED_PREFIX, StoreError};

/// The sync state of one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// The sync-state commit itself.
    pub commit: ObjectId,
    /// The newest event commit the server has answered for.
    pub mark: ObjectId,
    pub record: SyncRecord,
}

/// Pending summary of one chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
        let (msg, _, parents) = self.commit_message(&name, id)?;
        let record = message::parse_sync(&msg).map_err(|e| StoreError::Unparseable {
            chain: name.clone(),
            commit: id.to_string(),
            what: "sync-state commit",
            reason: e.to_string(),
        })?;
        let mark = parents
            .first()
            .copied()
            .ok_or_else(|| StoreError::Unparseable {
                chain: name.clone(),
                commit: id.to_string(),
                what: "sync-state commit",
                reason: "it has no parent (the mark)".into(),
            })?;
        Ok(Some(SyncState {
            commit: id,
            mark,
            record,
        }))
    }

    /// Records that the server has answered for every event of `node`'s chain up to and
    /// including `mark` (an event commit on that chain), with `record.rejected` listing every
    /// event up to the mark that is still rejected. Compare-and-swap on the sync ref.
    pub fn record_sync(
        &self,
        node: &str,
        mark: &StoredEvent,
        mut record: SyncRecord,
    ) -> Result<()> {
        record.mark_seq = mark.seq;
        let name = Self::synced_ref(node);
        let full: gix::refs::FullName = name
            .as_str()
            .try_into()
            .map_err(|e| StoreError::git("naming the sync ref", e))?;
        let empty_tree = self
            .repo()
            .write_object(gix::objs::Tree::empty())
            .map_err(|e| StoreError::git("writing the empty tree", e))?
            .detach();
        for _ in 0..50 {
            let previous = self.ref_id(&name)?;
            let signature = gix::actor::Signature {
                name: "spec-kitty".into(),
                email: "spec-kitty@localhost".into(),
                time: gix::date::Time {
                    seconds: chrono::Utc::now().timestamp(),
                    offset: 0,
                },
            };
            let commit = gix::objs::Commit {
                tree: empty_tree,
                parents: std::iter::once(mark.commit).chain(previous).collect(),
                author: signature.clone(),
                committer: signature,
                encoding: None,
                message: message::format_sync(node, &record).into(),
                extra_headers: Vec::new(),
            };
            let id = self
                .repo()
                .write_object(&commit)
                .map_err(|e| StoreError::git("writing the sync-state commit", e))?
                .detach();
            let expected = match previous {
                Some(p) => PreviousValue::MustExistAndMatch(Target::Object(p)),
                None => PreviousValue::MustNotExist,
            };
            match self.update_ref(full.clone(), id, expected, "spec-kitty: record sync") {
                Ok(()) => return Ok(()),
                Err(CasError::Lost) => continue,
                Err(CasError::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contention { name, attempts: 50 })
    }

    /// Pending counts for every chain, in O(chains): read from the tips' `Seq` trailers and
    /// the sync states, never by walking history.
    pub fn pending_by_chain(&self) -> Result<Vec<ChainPending>> {
        let chains = self.chains()?;
        chains.iter().map(|c| chain_pending(self, c)).collect()
    }

    /// Total pending events in the repository.
    pub fn pending_count(&self) -> Result<u64> {
        pending_total(self, &self.chains()?)
    }

    /// Every pending event, oldest first per chain, chains in node order.
    pub fn pending_events(&self) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        for chain in self.chains()? {
            let state = self.sync_state(&chain.node_id)?;
            let (mark_seq, rejected) = match &state {
                Some(s) => (s.record.mark_seq, s.record.rejected.clone()),
                None => (0, Vec::new()),
            };
            let mut unsent = Vec::new();
            let mut want_rejected: std::collections::HashSet<&str> =
                rejected.iter().map(|r| r.event_id.as_str()).collect();
            let mut found_rejected = Vec::new();
            for item in self.walk(&chain) {
                let stored = item?;
                let seq = stored.seq;
                if seq > mark_seq {
                    unsent.push(stored);
                } else if want_rejected.remove(stored.event.event_id.as_str()) {
                    found_rejected.push(stored);
                }
                // Newest first: once at the mark's successor with nothing rejected left to find,
                // everything older is settled.
                if want_rejected.is_empty() && seq <= mark_seq + 1 {
                    break;
                }
            }
            found_rejected.reverse();
            unsent.reverse();
            out.extend(found_rejected);
            out.extend(unsent);
        }
        Ok(out)
    }
}

fn chain_pending(log: &EventLog, chain: &Chain) -> Result<ChainPending> {
    let tip = log.tip_info(&chain.ref_name, chain.tip)?;
    pending_after(log, &chain.node_id, tip.seq)
}

/// Pending summary of `node`'s chain whose tip has sequence number `tip_seq`.
pub(crate) fn pending_after(log: &EventLog, node: &str, tip_seq: u64) -> Result<ChainPending> {
    let (mark_seq, rejected) = match log.sync_state(node)? {
        Some(s) => (s.record.mark_seq, s.record.rejected.len() as u64),
        None => (0, 0),
    };
    Ok(ChainPending {
        node_id: node.to_owned(),
        total: tip_seq,
        unsent: tip_seq.saturating_sub(mark_seq),
        rejected,
    })
}

fn pending_total(log: &EventLog, chains: &[Chain]) -> Result<u64> {
    let mut total = 0;
    for chain in chains {
        total += chain_pending(log, chain)?.pending();
    }
    Ok(total)
}
