//! Appending events that were recorded elsewhere (the Python tool's offline queue) to the
//! chain of their own node, exactly as recorded.
//!
//! An imported event keeps its `event_id`, `node_id` and `lamport_clock`, so it cannot go on
//! this clone's chain (whose clocks this repository assigns). It goes on
//! `refs/spec-kitty/events/<its node>`, in the usual event-commit format, with three additions
//! that say where it came from:
//!
//! * the trailers `Imported-From: <source> row <id>` and `Legacy-Retry-Count: <n>` after
//!   `Seq:` (readers of the trailer block ignore lines they do not know);
//! * the commit's tree holds `legacy-queue-row.json`, the row's `data` column byte for byte, so
//!   fields the protocol envelope does not carry (e.g. `data_tier`) and the original `null`s
//!   are kept: `git show <commit>:legacy-queue-row.json`.
//!
//! A chain that receives imported events is written only by this repository's imports: an
//! import never appends to this clone's own chain, nor to a chain whose tip was not imported
//! (a chain pulled from the server), and each chain stays strictly increasing in clock.

use gix::ObjectId;
use gix::bstr::BString;
use miette::Diagnostic;

use super::StoreError;
use super::cas::Proposal;
use super::log::EventLog;
use super::message;
use crate::event::{self, Event, Strictness, ValidationReport};

/// The file in an imported event commit's tree that holds the source row verbatim.
pub const LEGACY_ROW_FILE: &str = "legacy-queue-row.json";
/// Trailer naming the source of an imported event.
pub const IMPORTED_FROM_TRAILER: &str = "Imported-From";
/// Trailer carrying the Python tool's `retry_count` of an imported event.
pub const LEGACY_RETRY_TRAILER: &str = "Legacy-Retry-Count";

const MAX_ATTEMPTS: u32 = 100;

/// Where an imported event came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// Human-readable source, e.g. `/home/me/.spec-kitty/queue.db row 17`.
    pub source: String,
    /// The Python tool's `retry_count` for the row.
    pub retry_count: u32,
    /// The row's `data` column, verbatim.
    pub raw: String,
}

/// An event written by [`EventLog::append_recorded`], read back from its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub commit: ObjectId,
    pub seq: u64,
}

/// The tip of a chain as an import sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTip {
    pub commit: ObjectId,
    pub lamport: u64,
    pub seq: u64,
    /// Whether the tip commit was written by an import (has an `Imported-From:` trailer).
    pub imported: bool,
}

/// Why a recorded event could not be appended.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ImportError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),

    #[error(
        "the event belongs to this clone's own node {node}, whose clocks this repository assigns"
    )]
    #[diagnostic(
        code(spec_kitty::store::import_own_node),
        help("nothing was written; `spec-kitty events log` shows this clone's events")
    )]
    OwnNode { node: String },

    #[error(
        "chain {node} was not written by an import (it was pulled from a server or emitted here)"
    )]
    #[diagnostic(
        code(spec_kitty::store::import_foreign_chain),
        help("nothing was written; `spec-kitty sync now` uploads and pulls that node's events")
    )]
    ForeignChain { node: String },

    #[error("Lamport clock {clock} is not above the tip of chain {node} ({tip})")]
    #[diagnostic(
        code(spec_kitty::store::import_clock_order),
        help("nothing was written; `spec-kitty events log` shows that chain")
    )]
    ClockNotAbove { node: String, clock: u64, tip: u64 },

    #[error("the event is invalid even by the server's compatible rules: {0}")]
    #[diagnostic(
        code(spec_kitty::store::import_invalid),
        help("nothing was written; docs/reference/events.md lists every rule")
    )]
    Invalid(ValidationReport),

    #[error("the commit written for {event_id} could not be read back from {chain}: {reason}")]
    #[diagnostic(
        code(spec_kitty::store::import_unverified),
        help("run `spec-kitty events verify`, then rerun the import (it skips what is there)")
    )]
    Unverified {
        event_id: String,
        chain: String,
        reason: String,
    },
}

impl EventLog {
    /// The tip of `node`'s chain, if the chain exists.
    pub fn import_tip(&self, node: &str) -> Result<Option<ImportTip>, StoreError> {
        let chain = Self::chain_ref(node);
        let Some(id) = self.ref_id(&chain)? else {
            return Ok(None);
        };
        self.ensure_commit(&chain, id)?;
        let (msg, _, _) = self.commit_message(&chain, id)?;
        let trailers = message::parse_trailers(&msg).map_err(|e| StoreError::Unparseable {
            chain: chain.clone(),
            commit: id.to_string(),
            what: "event commit",
            reason: e.to_string(),
        })?;
        Ok(Some(ImportTip {
            commit: id,
            lamport: trailers.lamport,
            seq: trailers.seq,
            imported: trailer_value(&msg, IMPORTED_FROM_TRAILER).is_some(),
        }))
    }

    /// Appends `event`, exactly as recorded (its id, node and clock unchanged), to the chain
    /// of `event.node_id`, then reads it back from the chain.
    ///
    /// The event is validated with the server's compatible rules first. Refused, with nothing
    /// written: this clone's own node, a chain whose tip was not imported, a clock not above
    /// the chain's tip. A compare-and-swap on the chain ref, so concurrent imports never lose
    /// or interleave events.
    pub fn append_recorded(
        &self,
        event: &Event,
        provenance: &Provenance,
    ) -> Result<Imported, ImportError> {
        let node = event.node_id.as_str();
        if node == self.node_id() {
            return Err(ImportError::OwnNode {
                node: node.to_owned(),
            });
        }
        let value = serde_json::to_value(event).unwrap_or_default();
        event::validate(&value, Strictness::Server).map_err(ImportError::Invalid)?;
        let chain = Self::chain_ref(node);
        let tree = self.legacy_tree(&provenance.raw)?;
        let seconds = chrono::DateTime::parse_from_rfc3339(&event.timestamp)
            .map(|t| t.timestamp())
            .unwrap_or_else(|_| chrono::Utc::now().timestamp());
        let signature = gix::actor::Signature {
            name: "spec-kitty import".into(),
            email: "spec-kitty@localhost".into(),
            time: gix::date::Time { seconds, offset: 0 },
        };
        // The store's one compare-and-swap loop; a refusal found while building the proposal
        // stops it with no ref touched.
        let swapped = self.swap_ref_or(&chain, "spec-kitty: import event", |_| {
            let tip = self.import_tip(node)?;
            if let Some(t) = &tip {
                if !t.imported {
                    return Err(ImportError::ForeignChain {
                        node: node.to_owned(),
                    });
                }
                if t.lamport >= event.lamport_clock {
                    return Err(ImportError::ClockNotAbove {
                        node: node.to_owned(),
                        clock: event.lamport_clock,
                        tip: t.lamport,
                    });
                }
            }
            let seq = tip.as_ref().map_or(0, |t| t.seq) + 1;
            let commit = gix::objs::Commit {
                tree,
                parents: tip.as_ref().map(|t| t.commit).into_iter().collect(),
                author: signature.clone(),
                committer: signature.clone(),
                encoding: None,
                message: imported_message(event, seq, provenance).into(),
                extra_headers: Vec::new(),
            };
            let id = self
                .repo()
                .write_object(&commit)
                .map_err(|e| StoreError::git("writing the imported event commit", e))?
                .detach();
            Ok(Proposal {
                expected: tip.map(|t| t.commit),
                new: id,
                value: id,
            })
        });
        self.verify_imported(&chain, swapped?.value, event)
    }

    /// The Python tool's retry count of an imported event commit (`None` for an event that
    /// was not imported). The sync engine starts from it when the server first rejects the
    /// event, so the count the Python tool reached is kept.
    pub fn legacy_retry_count(
        &self,
        chain: &str,
        commit: ObjectId,
    ) -> Result<Option<u32>, StoreError> {
        let (msg, _, _) = self.commit_message(chain, commit)?;
        Ok(trailer_value(&msg, LEGACY_RETRY_TRAILER).and_then(|v| v.parse().ok()))
    }

    /// A tree holding the source row verbatim.
    fn legacy_tree(&self, raw: &str) -> Result<ObjectId, StoreError> {
        let blob = self
            .repo()
            .write_blob(raw.as_bytes())
            .map_err(|e| StoreError::git("writing the legacy row", e))?
            .detach();
        let tree = gix::objs::Tree {
            entries: vec![gix::objs::tree::Entry {
                mode: gix::objs::tree::EntryKind::Blob.into(),
                filename: BString::from(LEGACY_ROW_FILE),
                oid: blob,
            }],
        };
        Ok(self
            .repo()
            .write_object(&tree)
            .map_err(|e| StoreError::git("writing the legacy row tree", e))?
            .detach())
    }

    /// Reads the chain back: the ref must name `id`, and `id` must hold `event`.
    fn verify_imported(
        &self,
        chain: &str,
        id: ObjectId,
        event: &Event,
    ) -> Result<Imported, ImportError> {
        let unverified = |reason: String| ImportError::Unverified {
            event_id: event.event_id.clone(),
            chain: chain.to_owned(),
            reason,
        };
        // Another import may have appended on top already; the event must be on the chain.
        let Some(tip) = self.ref_id(chain)? else {
            return Err(unverified("the chain ref is gone".into()));
        };
        if tip != id {
            let mut next = Some(tip);
            let mut found = false;
            for _ in 0..MAX_ATTEMPTS {
                let Some(c) = next else { break };
                if c == id {
                    found = true;
                    break;
                }
                next = self.commit_message(chain, c)?.1;
            }
            if !found {
                return Err(unverified("the commit is not on the chain".into()));
            }
        }
        let (stored, _) = self.read_event(chain, id)?;
        if stored.event != *event {
            return Err(unverified(
                "the stored envelope differs from the recorded one".into(),
            ));
        }
        Ok(Imported {
            commit: id,
            seq: stored.seq,
        })
    }
}

/// The event-commit message of [`message::format_event`] plus the provenance trailers. The
/// subject of a 7-lane status change names its lanes.
fn imported_message(event: &Event, seq: u64, provenance: &Provenance) -> String {
    let mut msg = message::format_event(event, seq);
    if event.payload.contains_key("to_lane") && !event.payload.contains_key("new_status") {
        let lane = |k: &str| event.payload_str(k).unwrap_or("?").to_owned();
        let subject = format!(
            "{} {} {} → {}",
            event.event_type,
            event.aggregate_id,
            lane("from_lane"),
            lane("to_lane")
        );
        if let Some((_, rest)) = msg.split_once('\n') {
            msg = format!("{subject}\n{rest}");
        }
    }
    let source: String = provenance
        .source
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    msg.push_str(&format!(
        "{IMPORTED_FROM_TRAILER}: {source}\n{LEGACY_RETRY_TRAILER}: {}\n",
        provenance.retry_count
    ));
    msg
}

/// The value of trailer `key` in an event commit's trailer block.
fn trailer_value<'m>(msg: &'m str, key: &str) -> Option<&'m str> {
    let start = msg.rfind("\n\nEvent-Id: ")?;
    msg[start..].lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(": "))
            .map(str::trim)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_trailers_follow_the_standard_ones_and_parse_back() {
        let mut e: Event = serde_json::from_value(serde_json::json!({
            "event_id": "01JKQ8Y6T10000000000000005", "event_type": "WPStatusChanged",
            "aggregate_id": "WP01", "aggregate_type": "WorkPackage",
            "payload": {"wp_id": "WP01", "from_lane": "in_progress", "to_lane": "for_review"},
            "node_id": "a1b2c3d4e5f6", "lamport_clock": 4, "causation_id": null,
            "correlation_id": "01JKQ8Y6T10000000000000005",
            "timestamp": "2026-02-05T15:08:07+00:00",
            "project_uuid": "5b1f3c1e-7a2d-4c0e-9f41-2d7a9e6b8c10", "project_slug": null,
            "team_slug": "acme", "schema_version": "1.0.0", "git_branch": null,
            "head_commit_sha": null, "repo_slug": null
        }))
        .unwrap();
        e.lamport_clock = 4;
        let p = Provenance {
            source: "queue.db row 5".into(),
            retry_count: 2,
            raw: "{}".into(),
        };
        let msg = imported_message(&e, 3, &p);
        assert!(
            msg.starts_with("WPStatusChanged WP01 in_progress → for_review\n\n{"),
            "{msg}"
        );
        let (back, seq) = message::parse_event(&msg).unwrap();
        assert_eq!((back, seq), (e, 3));
        assert_eq!(
            trailer_value(&msg, IMPORTED_FROM_TRAILER),
            Some("queue.db row 5")
        );
        assert_eq!(trailer_value(&msg, LEGACY_RETRY_TRAILER), Some("2"));
    }
}
