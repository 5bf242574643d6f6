//! The oldest-unsent hint: where the first event after a chain's mark is, so that `sync status`
//! can show the age of the oldest pending event without walking back through 100,000 commits.
//!
//! A chain links each commit to its parent only, so from the tip the event right after the
//! mark is as far back as there are pending events. But that event is known for free at the
//! moment it is written: an append that finds nothing unsent on its own chain is writing it.
//! That append records `<seq> <commit>` in `<common git dir>/spec-kitty/oldest-unsent/<node>`.
//!
//! Why a stale or damaged hint is harmless: a chain is append-only (every write is a
//! compare-and-swap on top of the previous tip), so a commit that carries `Seq: N` and this
//! node's id *is* position N of this chain for ever. The reader uses the hint only when its
//! `seq` is exactly the mark's `Seq` + 1 and the commit it names reads back with that `Seq`
//! and this node's id; anything else (no file, garbage, an older cycle's hint, a partial sync
//! that left the mark elsewhere) falls back to the bounded walk. Writing the hint is best
//! effort and never fails an append.

use std::path::PathBuf;

use gix::ObjectId;

use super::log::{EventLog, StoredEvent};

impl EventLog {
    fn oldest_hint_path(&self, node: &str) -> PathBuf {
        self.common_dir()
            .join("spec-kitty")
            .join("oldest-unsent")
            .join(node)
    }

    /// Records that `commit` at `seq` is the oldest unsent event of `node`'s chain.
    pub(crate) fn record_oldest_unsent(&self, node: &str, seq: u64, commit: ObjectId) {
        let line = format!("{seq} {commit}\n");
        super::outgoing::replace_hint(&self.oldest_hint_path(node), line.as_bytes());
    }

    /// The event at position `seq` of `node`'s chain, when the hint names it and it reads back
    /// as exactly that (see the module doc); `None` otherwise.
    pub(crate) fn oldest_unsent_hint(&self, node: &str, seq: u64) -> Option<StoredEvent> {
        let text = std::fs::read_to_string(self.oldest_hint_path(node)).ok()?;
        let (s, id) = text.trim().split_once(' ')?;
        if s.parse::<u64>().ok()? != seq {
            return None;
        }
        let id = ObjectId::from_hex(id.as_bytes()).ok()?;
        let (stored, _) = self.read_event(&EventLog::chain_ref(node), id).ok()?;
        (stored.seq == seq && stored.event.node_id == node).then_some(stored)
    }
}
