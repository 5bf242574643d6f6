//! Readers: walking chains, merging them in protocol order, and looking events up. The
//! workflow state (lanes) is derived from these in `workflow::state`.

use std::collections::BinaryHeap;

use gix::ObjectId;

use super::log::{Chain, EventLog, StoredEvent};
use super::{Result, StoreError};
use crate::event::Event;

/// Walks one chain from its tip back to its first event (newest first).
pub struct ChainWalk<'a> {
    log: &'a EventLog,
    chain: String,
    next: Option<ObjectId>,
}

impl Iterator for ChainWalk<'_> {
    type Item = Result<StoredEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        let id = self.next.take()?;
        match self.log.read_event(&self.chain, id) {
            Ok((stored, parent)) => {
                self.next = parent;
                Some(Ok(stored))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

/// Which events a reader wants. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub wp_id: Option<String>,
    pub event_type: Option<String>,
    pub feature_slug: Option<String>,
}

impl EventFilter {
    pub fn matches(&self, e: &Event) -> bool {
        self.wp_id.as_deref().is_none_or(|w| {
            e.wp_id() == Some(w)
                || e.payload_str("dependency_wp_id") == Some(w)
                || (e.aggregate_type == "WorkPackage" && e.aggregate_id == w)
        }) && self.event_type.as_deref().is_none_or(|t| e.event_type == t)
            && self
                .feature_slug
                .as_deref()
                .is_none_or(|f| e.feature_slug() == Some(f))
    }
}

/// Max-heap entry for merging chains newest-first by `(lamport_clock, node_id)`.
struct Head {
    key: (u64, String),
    stored: StoredEvent,
    chain: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

impl EventLog {
    /// Walks `chain` newest first.
    pub fn walk(&self, chain: &Chain) -> ChainWalk<'_> {
        ChainWalk {
            log: self,
            chain: chain.ref_name.clone(),
            next: Some(chain.tip),
        }
    }

    /// Every event of `node`'s chain, oldest first.
    pub fn chain_events(&self, node: &str) -> Result<Vec<StoredEvent>> {
        let Some(chain) = self.chains()?.into_iter().find(|c| c.node_id == node) else {
            return Ok(Vec::new());
        };
        let mut v = self.walk(&chain).collect::<Result<Vec<_>>>()?;
        v.reverse();
        Ok(v)
    }

    /// Up to `limit` events matching `filter`, newest first in `(lamport_clock, node_id)`
    /// order, across all chains. Reads only as far back as it must: each chain is strictly
    /// increasing in clock, so a k-way merge from the tips stops after `limit` matches.
    pub fn recent(&self, filter: &EventFilter, limit: usize) -> Result<Vec<StoredEvent>> {
        let chains = self.chains()?;
        let mut walks: Vec<ChainWalk<'_>> = chains.iter().map(|c| self.walk(c)).collect();
        let mut heap = BinaryHeap::new();
        for (i, w) in walks.iter_mut().enumerate() {
            if let Some(s) = w.next() {
                let s = s?;
                heap.push(Head {
                    key: (s.event.lamport_clock, s.event.node_id.clone()),
                    stored: s,
                    chain: i,
                });
            }
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(head) = heap.pop() else { break };
            if let Some(s) = walks[head.chain].next() {
                let s = s?;
                heap.push(Head {
                    key: (s.event.lamport_clock, s.event.node_id.clone()),
                    stored: s,
                    chain: head.chain,
                });
            }
            if filter.matches(&head.stored.event) {
                out.push(head.stored);
            }
        }
        Ok(out)
    }

    /// Every event of every chain, oldest first in `(lamport_clock, node_id)` order.
    pub fn all_events(&self) -> Result<Vec<StoredEvent>> {
        let mut all = Vec::new();
        for chain in self.chains()? {
            for s in self.walk(&chain) {
                all.push(s?);
            }
        }
        all.sort_by(|a, b| a.event.order_key().cmp(&b.event.order_key()));
        Ok(all)
    }

    /// The event with `event_id` (a full ULID, or a unique prefix of at least 6 characters).
    pub fn find(&self, event_id: &str) -> Result<StoredEvent> {
        let wanted = event_id.to_ascii_uppercase();
        let mut found: Option<StoredEvent> = None;
        for chain in self.chains()? {
            for s in self.walk(&chain) {
                let s = s?;
                if s.event.event_id == wanted {
                    return Ok(s);
                }
                if wanted.len() >= 6 && s.event.event_id.starts_with(&wanted) {
                    if found.is_some() {
                        return Err(StoreError::NotFound(format!(
                            "{event_id} (ambiguous prefix: give more characters)"
                        )));
                    }
                    found = Some(s);
                }
            }
        }
        found.ok_or_else(|| StoreError::NotFound(event_id.to_owned()))
    }
}
