//! The outgoing index: where each unsent event of a chain is, so that a drain of 100,000
//! pending events finds them without walking the chain back from its tip.
//!
//! A chain links each commit to its parent only, so listing the unsent events oldest first
//! means reading every one of them from the tip back before the first can be sent: 1.3 s of a
//! 9 s `sync now` at 100,000 events (docs/benchmarks.md, "Sync client"). Yet each of those
//! commits was known for free when it was written. Every append adds one line
//! `<seq> <commit> <parent>` (`-` for none) to `<common git dir>/spec-kitty/outgoing/<node>`,
//! after its compare-and-swap succeeded.
//!
//! Why a stale, partial or damaged index is harmless: it is used only when it proves itself.
//! The reader takes, for every `Seq` after the mark, the last line naming it (a chain deleted
//! and started again writes newer lines), and uses them only when every position from the
//! mark's `Seq` + 1 to the tip's is there, the tip's line names the tip the ref points at, and
//! each line's parent is the commit of the line before, down to the mark itself. That is the
//! chain, link by link, as the commits say (each line copies its commit's parent), and each
//! commit read for sending is checked again against its `Seq` trailer. Anything else (no
//! file, a line lost to a killed process, a rewrite racing an append, garbage) falls back to
//! the walk, which then rewrites the index. Writing a line is best effort and never fails an
//! append; nothing here is fsynced, because nothing is lost with it.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use gix::ObjectId;

use super::log::EventLog;
use super::pending::{PendingCommit, PendingRange};

/// One line of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub seq: u64,
    pub commit: ObjectId,
    pub parent: Option<ObjectId>,
}

impl Entry {
    fn line(&self) -> String {
        match self.parent {
            Some(p) => format!("{} {} {p}\n", self.seq, self.commit),
            None => format!("{} {} -\n", self.seq, self.commit),
        }
    }

    fn parse(line: &str) -> Option<Entry> {
        let mut parts = line.split(' ');
        let seq = parts.next()?.parse().ok()?;
        let commit = ObjectId::from_hex(parts.next()?.as_bytes()).ok()?;
        let parent = match parts.next()? {
            "-" => None,
            hex => Some(ObjectId::from_hex(hex.as_bytes()).ok()?),
        };
        parts.next().is_none().then_some(Entry {
            seq,
            commit,
            parent,
        })
    }
}

/// Replaces the hint file `path` with `bytes` at once (a temporary file renamed over it), best
/// effort: a hint that cannot be written is only a walk later. Shared with store/oldest.rs.
pub(crate) fn replace_hint(path: &std::path::Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
        return;
    };
    if tmp.write_all(bytes).is_ok() {
        let _ = tmp.persist(path);
    }
}

/// An index longer than this many lines beyond what a reader needs is rewritten by that
/// reader (the settled lines are of no further use).
const COMPACT_SLACK: usize = 10_000;

impl EventLog {
    pub(crate) fn outgoing_path(&self, node: &str) -> PathBuf {
        self.common_dir()
            .join("spec-kitty")
            .join("outgoing")
            .join(node)
    }

    /// Records the event just appended at `seq` of `node`'s chain (best effort: one short
    /// `O_APPEND` write, atomic against other appenders).
    pub(crate) fn record_outgoing(&self, node: &str, entry: Entry) {
        let path = self.outgoing_path(node);
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        };
        let file = match open() {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => path
                .parent()
                .map_or(Err(e), std::fs::create_dir_all)
                .and_then(|()| open()),
            Err(e) => Err(e),
        };
        if let Ok(mut file) = file {
            let _ = file.write_all(entry.line().as_bytes());
        }
    }

    /// Replaces `node`'s index with `entries` (after a walk, or to drop settled lines).
    pub(crate) fn rewrite_outgoing(&self, node: &str, entries: &[Entry]) {
        let text: String = entries.iter().map(Entry::line).collect();
        replace_hint(&self.outgoing_path(node), text.as_bytes());
    }

    /// The unsent events of `range`, oldest first, when the index proves them (see the module
    /// docs); `None` to walk instead.
    pub(crate) fn outgoing_from_index(&self, range: &PendingRange) -> Option<Vec<PendingCommit>> {
        let tip = range.tip?;
        let mark_seq = range.mark_seq();
        let mark = range.state.as_ref().map(|s| s.mark);
        if range.unsent() == 0 {
            return Some(Vec::new());
        }
        // Read line by line into one slot per unsent position: 100,000 lines are 9 MB of
        // text, never held at once.
        let file = std::fs::File::open(self.outgoing_path(&range.node_id)).ok()?;
        let mut reader = std::io::BufReader::new(file);
        let mut slots: Vec<Option<(ObjectId, Option<ObjectId>)>> =
            vec![None; usize::try_from(range.unsent()).ok()?];
        let (mut line, mut lines) = (String::new(), 0usize);
        while reader.read_line(&mut line).ok()? > 0 {
            lines += 1;
            // A torn last line (a full disk) is skipped; the checks below still hold.
            if let Some(e) = Entry::parse(line.trim_end_matches('\n'))
                && e.seq > mark_seq
                && e.seq <= range.tip_seq
            {
                slots[(e.seq - mark_seq - 1) as usize] = Some((e.commit, e.parent));
            }
            line.clear();
        }
        let mut entries = Vec::with_capacity(slots.len());
        let mut below = mark;
        for (seq, slot) in (mark_seq + 1..).zip(slots) {
            let (commit, parent) = slot?;
            if parent != below {
                return None;
            }
            below = Some(commit);
            entries.push(Entry {
                seq,
                commit,
                parent,
            });
        }
        if below != Some(tip) {
            return None;
        }
        if lines > entries.len() + COMPACT_SLACK {
            self.rewrite_outgoing(&range.node_id, &entries);
        }
        let node: std::sync::Arc<str> = range.node_id.as_str().into();
        Some(
            entries
                .into_iter()
                .map(|e| PendingCommit {
                    node_id: node.clone(),
                    commit: e.commit,
                    seq: e.seq,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    #[test]
    fn a_line_round_trips() {
        for entry in [
            Entry {
                seq: 1,
                commit: id(1),
                parent: None,
            },
            Entry {
                seq: 123_456,
                commit: id(2),
                parent: Some(id(3)),
            },
        ] {
            assert_eq!(Entry::parse(entry.line().trim_end()), Some(entry));
        }
    }

    #[test]
    fn garbage_is_no_line() {
        for bad in [
            "",
            "1",
            "x 0101010101010101010101010101010101010101 -",
            "1 0101 -",
            "1 0101010101010101010101010101010101010101",
            "1 0101010101010101010101010101010101010101 - extra",
            "1 0101010101010101010101010101010101010101 zz",
            "-1 0101010101010101010101010101010101010101 -",
        ] {
            assert_eq!(Entry::parse(bad), None, "{bad:?}");
        }
    }
}
