//! `events verify`: walk every chain and report anything wrong, with commit ids.

use std::collections::HashMap;

use gix::ObjectId;
use serde::Serialize;

use super::log::EventLog;
use super::message;
use super::{EVENTS_PREFIX, Result, SYNCED_PREFIX};
use crate::event::{self, Strictness};

/// One problem found by [`EventLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The ref the problem was found under.
    pub reference: String,
    /// The commit (or object) at fault, when there is one.
    pub commit: Option<String>,
    pub problem: String,
}

/// The result of a verification walk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub chains: usize,
    pub events: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl EventLog {
    /// Walks every chain and sync ref, collecting every problem instead of stopping at the
    /// first: refs that do not point at commits, unparseable messages, invalid envelopes,
    /// clocks that do not increase, broken sequence numbers, events filed under the wrong
    /// node, duplicate event ids, and sync states whose mark is not on their chain.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let mut seen: HashMap<String, (String, ObjectId)> = HashMap::new();
        let mut chain_commits: HashMap<String, HashMap<ObjectId, u64>> = HashMap::new();
        for (name, tip) in self.refs_under(EVENTS_PREFIX)? {
            let node = name[EVENTS_PREFIX.len()..].to_owned();
            if let Err(e) = self.ensure_commit(&name, tip) {
                report
                    .problems
                    .push(problem(&name, Some(tip), e.to_string()));
                continue;
            }
            report.chains += 1;
            let strictness = if node == self.node_id() {
                Strictness::Client
            } else {
                Strictness::Server
            };
            let commits = chain_commits.entry(node.clone()).or_default();
            // Newest first; `child` is the event after the current one on the chain.
            let mut child: Option<(ObjectId, u64, u64)> = None;
            let mut next = Some(tip);
            while let Some(id) = next {
                let (msg, parent, _) = match self.commit_message(&name, id) {
                    Ok(m) => m,
                    Err(e) => {
                        report
                            .problems
                            .push(problem(&name, Some(id), e.to_string()));
                        break;
                    }
                };
                next = parent;
                report.events += 1;
                let parsed = message::parse_event(&msg);
                let (event, seq) = match parsed {
                    Ok(p) => p,
                    Err(e) => {
                        report
                            .problems
                            .push(problem(&name, Some(id), e.to_string()));
                        child = None;
                        continue;
                    }
                };
                commits.insert(id, seq);
                let value = serde_json::to_value(&event).unwrap_or_default();
                if let Err(v) = event::validate(&value, strictness) {
                    report.problems.push(problem(
                        &name,
                        Some(id),
                        format!("invalid envelope: {v}"),
                    ));
                }
                if event.node_id != node {
                    report.problems.push(problem(
                        &name,
                        Some(id),
                        format!("event of node {} filed under node {node}", event.node_id),
                    ));
                }
                if let Some((child_id, child_clock, child_seq)) = child {
                    // Only the chain this clone writes is in clock order; a pulled chain is in
                    // the server's arrival order (see `store::pulled`).
                    if strictness == Strictness::Client && child_clock <= event.lamport_clock {
                        report.problems.push(problem(
                            &name,
                            Some(child_id),
                            format!(
                                "Lamport clock {child_clock} does not increase over its parent's {}",
                                event.lamport_clock
                            ),
                        ));
                    }
                    if child_seq != seq + 1 {
                        report.problems.push(problem(
                            &name,
                            Some(child_id),
                            format!("Seq {child_seq} does not follow its parent's {seq}"),
                        ));
                    }
                }
                if parent.is_none() && seq != 1 {
                    report.problems.push(problem(
                        &name,
                        Some(id),
                        format!("first event of the chain has Seq {seq}, expected 1"),
                    ));
                }
                if let Some((other_ref, other_id)) =
                    seen.insert(event.event_id.clone(), (name.clone(), id))
                {
                    report.problems.push(problem(
                        &name,
                        Some(id),
                        format!(
                            "duplicate event id {} (also in commit {other_id} on {other_ref})",
                            event.event_id
                        ),
                    ));
                }
                child = Some((id, event.lamport_clock, seq));
            }
        }
        self.verify_sync_refs(&chain_commits, &mut report)?;
        Ok(report)
    }

    fn verify_sync_refs(
        &self,
        chain_commits: &HashMap<String, HashMap<ObjectId, u64>>,
        report: &mut VerifyReport,
    ) -> Result<()> {
        for (name, id) in self.refs_under(SYNCED_PREFIX)? {
            let node = &name[SYNCED_PREFIX.len()..];
            if let Err(e) = self.ensure_commit(&name, id) {
                report
                    .problems
                    .push(problem(&name, Some(id), e.to_string()));
                continue;
            }
            match self.sync_state(node) {
                Err(e) => report
                    .problems
                    .push(problem(&name, Some(id), e.to_string())),
                Ok(None) => {}
                Ok(Some(state)) => {
                    if chain_commits
                        .get(node)
                        .and_then(|c| c.get(&state.mark))
                        .is_none()
                    {
                        report.problems.push(problem(
                            &name,
                            Some(id),
                            format!("its mark {} is not an event of chain {node}", state.mark),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn problem(reference: &str, commit: Option<ObjectId>, problem: String) -> Problem {
    Problem {
        reference: reference.to_owned(),
        commit: commit.map(|c| c.to_string()),
        problem,
    }
}
