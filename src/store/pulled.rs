//! Writing events pulled from the team server onto the chains of the nodes that emitted them.
//!
//! A pulled chain (`refs/spec-kitty/events/<their node>`) has the same commit format as this
//! clone's own chain, but it is in *arrival* order: the server delivers an event it accepted on
//! a later retry after events with higher clocks. Its commits therefore carry a `Witnessed:`
//! trailer when the chain's highest clock so far exceeds the event's own, so the next local
//! event's clock is still above everything witnessed, and `events verify` requires strictly
//! increasing clocks only on the chain this clone writes. Its sync state is set to its tip as it
//! is written: what came from the server is settled by definition.

use std::collections::HashSet;

use gix::ObjectId;

use super::cas::Proposal;
use super::log::{Chain, EventLog};
use super::sync_state::SyncReport;
use super::{Result, StoreError, message};
use crate::event::Event;

/// What [`EventLog::write_pulled`] did on one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledWrite {
    pub node_id: String,
    /// Events written (those already on the chain are skipped).
    pub written: u64,
    /// The chain's tip afterwards, if it exists.
    pub tip: Option<ObjectId>,
}

impl EventLog {
    /// Appends `events` (all of node `node`, already validated by the caller, in the order the
    /// server delivered them) to that node's chain, skipping any event id the chain already
    /// holds, in one compare-and-swap of the chain ref; then marks the chain synced up to its
    /// new tip. Refuses this clone's own node: its chain has exactly one writer.
    pub fn write_pulled(
        &self,
        node: &str,
        events: &[Event],
        server_url: &str,
        team: &str,
    ) -> Result<PulledWrite> {
        if node == self.node_id() {
            return Err(StoreError::git(
                "writing pulled events",
                "refusing to write pulled events onto this clone's own chain",
            ));
        }
        let ref_name = Self::chain_ref(node);
        if events.is_empty() {
            return Ok(PulledWrite {
                node_id: node.to_owned(),
                written: 0,
                tip: self.ref_id(&ref_name)?,
            });
        }
        let swapped = self.swap_ref(&ref_name, "spec-kitty: pull events", |_| {
            let tip = self.ref_id(&ref_name)?;
            let (mut parent, mut seq, mut witnessed, known) = match tip {
                Some(t) => {
                    let info = self.tip_info(&ref_name, t)?;
                    let chain = Chain {
                        node_id: node.to_owned(),
                        ref_name: ref_name.clone(),
                        tip: t,
                    };
                    let mut known = HashSet::new();
                    for s in self.walk(&chain) {
                        known.insert(s?.event.event_id);
                    }
                    (Some(t), info.seq, info.lamport, known)
                }
                None => (None, 0, 0, HashSet::new()),
            };
            let mut written = 0u64;
            let mut known = known;
            for event in events {
                if !known.insert(event.event_id.clone()) {
                    continue;
                }
                if parent.is_none() {
                    self.empty_tree()?;
                }
                seq += 1;
                witnessed = witnessed.max(event.lamport_clock);
                let seconds = chrono::DateTime::parse_from_rfc3339(&event.timestamp)
                    .map(|t| t.timestamp())
                    .unwrap_or_else(|_| chrono::Utc::now().timestamp());
                let signature = self.signature(seconds);
                let commit = gix::objs::Commit {
                    tree: gix::ObjectId::empty_tree(self.repo().object_hash()),
                    parents: parent.into_iter().collect(),
                    author: signature.clone(),
                    committer: signature,
                    encoding: None,
                    message: message::format_event_witnessed(event, seq, witnessed).into(),
                    extra_headers: Vec::new(),
                };
                parent = Some(self.write_commit(&commit)?);
                written += 1;
            }
            Ok(Proposal {
                expected: tip,
                // Nothing new: "swap" the ref to itself, which only checks it did not move.
                new: parent
                    .or(tip)
                    .unwrap_or_else(|| ObjectId::null(self.repo().object_hash())),
                value: (written, parent.or(tip), seq),
            })
        })?;
        let (written, tip, seq) = swapped.value;
        if let Some(t) = tip {
            self.record_sync(
                node,
                &SyncReport {
                    server_url,
                    team,
                    mark_at_least: Some((t, seq)),
                    ..SyncReport::default()
                },
            )?;
        }
        Ok(PulledWrite {
            node_id: node.to_owned(),
            written,
            tip,
        })
    }
}
