//! Appending an event to this node's chain: one commit and one compare-and-swap.

use super::cas::Proposal;
use super::log::{Appended, EventLog, TipInfo};
use super::outgoing::Entry;
use super::pending::PendingRange;
use super::{Result, StoreError, message};
use crate::event::{self, Event, Strictness};

impl EventLog {
    /// Appends `event` to this node's chain.
    ///
    /// The event is validated first (nothing invalid is ever written). Inside the
    /// compare-and-swap loop the Lamport clock is set to one more than the highest clock
    /// witnessed on any chain, and the pending cap is checked against every chain's sync state.
    /// The event id is kept across retries; each lost race leaves one unreferenced commit that
    /// `git gc` removes.
    pub fn append(&self, mut event: Event, queue_limit: u64) -> Result<Appended> {
        let ref_name = Self::chain_ref(self.node_id());
        event.node_id = self.node_id().to_owned();
        let seconds = chrono::DateTime::parse_from_rfc3339(&event.timestamp)
            .map(|t| t.timestamp())
            .unwrap_or_else(|_| chrono::Utc::now().timestamp());
        let signature = self.signature(seconds);
        let swapped = self.swap_ref(&ref_name, "spec-kitty: append event", |attempt| {
            let chains = self.chains()?;
            let mut own_tip: Option<TipInfo> = None;
            let mut max_clock = 0;
            let mut pending = 0;
            let mut first_unsent = true;
            // One read of each tip serves the clock, this node's parent and the pending count.
            for chain in &chains {
                let info = self.tip_info(&chain.ref_name, chain.tip)?;
                max_clock = max_clock.max(info.lamport);
                let range = PendingRange::of(self, &chain.node_id, Some(chain.tip), info.seq)?;
                pending += range.pending();
                if chain.node_id == self.node_id() {
                    first_unsent = range.unsent() == 0;
                    own_tip = Some(info);
                }
            }
            if pending >= queue_limit {
                return Err(StoreError::QueueFull {
                    pending,
                    limit: queue_limit,
                });
            }
            event.lamport_clock = max_clock + 1;
            let seq = own_tip.as_ref().map_or(0, |t| t.seq) + 1;
            if attempt == 0 {
                let value = serde_json::to_value(&event).unwrap_or_default();
                event::validate(&value, Strictness::Client).map_err(StoreError::Invalid)?;
            }
            if own_tip.is_none() {
                // The first event of a chain names the empty tree, which must exist for `git
                // fsck`; afterwards the chain itself keeps it alive.
                self.empty_tree()?;
            }
            let commit = gix::objs::Commit {
                tree: gix::ObjectId::empty_tree(self.repo().object_hash()),
                parents: own_tip.as_ref().map(|t| t.id).into_iter().collect(),
                author: signature.clone(),
                committer: signature.clone(),
                encoding: None,
                message: message::format_event(&event, seq).into(),
                extra_headers: Vec::new(),
            };
            let id = self.write_commit(&commit)?;
            Ok(Proposal {
                expected: own_tip.as_ref().map(|t| t.id),
                new: id,
                value: (
                    id,
                    seq,
                    event.lamport_clock,
                    first_unsent,
                    own_tip.as_ref().map(|t| t.id),
                ),
            })
        })?;
        let (commit, seq, lamport_clock, first_unsent, parent) = swapped.value;
        self.record_outgoing(
            self.node_id(),
            Entry {
                seq,
                commit,
                parent,
            },
        );
        if first_unsent {
            // The event right after the mark: remembered so `sync status` need not walk to it.
            self.record_oldest_unsent(self.node_id(), seq, commit);
        }
        Ok(Appended {
            event_id: event.event_id,
            commit,
            lamport_clock,
            seq,
            retries: swapped.retries,
        })
    }
}
