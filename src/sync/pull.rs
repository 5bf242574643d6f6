//! Pulling the team's events into `refs/spec-kitty/events/<their node>` chains, resuming from
//! the cursor stored with the sync state.
//!
//! Each pulled envelope is validated with the server's rules before it is written, and its
//! absent or `null` optional fields get their protocol meaning (`event::from_compatible`); one
//! that fails is reported and skipped, never written. This clone's own events are skipped (its own
//! chain has one writer). See `store::pulled` for the order of pulled chains.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::http::{EnvelopeHead, Reply};
use super::push::{Stop, backoff};
use super::session::Session;
use crate::event::{self, Event};
use crate::store::{EventLog, SyncReport};

/// Events per pull page.
const PAGE: usize = 1000;
/// An upper bound on pages per run (10 million events), so a misbehaving server cannot keep a
/// run going forever.
const MAX_PAGES: usize = 10_000;

/// A pulled event that was not written.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedEvent {
    pub event_id: Option<String>,
    pub error: String,
}

/// What a pull did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pulled {
    /// New teammates' events written.
    pub written: u64,
    /// Events received (including this clone's own and ones already present).
    pub received: u64,
    pub skipped: Vec<SkippedEvent>,
    pub cursor: Option<String>,
    pub stop: Option<Stop>,
}

/// The cursor to resume from: the one stored by the most recent sync with this server and team.
pub fn stored_cursor(log: &EventLog, server: &str, team: &str) -> Option<String> {
    let ranges = log.pending_ranges().ok()?;
    ranges
        .iter()
        .filter_map(|r| r.state.as_ref())
        .filter(|s| s.record.server_url == server && s.record.team == team)
        .filter(|s| s.record.pull_cursor.is_some())
        .max_by(|a, b| a.record.time.cmp(&b.record.time))
        .and_then(|s| s.record.pull_cursor.clone())
}

/// Pulls every new event of the team.
pub fn pull(log: &EventLog, session: &mut Session, deadline: Instant) -> Pulled {
    let server = session.http.base.clone();
    let team = session.credentials().team_slug.clone();
    let mut out = Pulled {
        cursor: stored_cursor(log, &server, &team),
        ..Pulled::default()
    };
    let initial = out.cursor.clone();
    let mut touched: Vec<String> = Vec::new();
    let mut transient = 0;
    let mut refreshed = false;
    let mut pages = 0;
    while pages < MAX_PAGES {
        if Instant::now() >= deadline {
            out.stop = Some(Stop::Deadline);
            break;
        }
        let access = match session.access() {
            Ok(a) => a,
            Err(e) => {
                out.stop = Some(Stop::Auth {
                    message: e.to_string(),
                });
                break;
            }
        };
        let page = match session.http.pull(&access, out.cursor.as_deref(), PAGE) {
            Reply::Ok(p) => p,
            Reply::Unauthorized if !refreshed => {
                refreshed = true;
                if let Err(e) = session.after_unauthorized() {
                    out.stop = Some(Stop::Auth {
                        message: e.to_string(),
                    });
                    break;
                }
                continue;
            }
            Reply::Transient {
                reason,
                retry_after,
            } => {
                transient += 1;
                let wait = backoff(transient, retry_after);
                if transient > 4 || Instant::now() + wait >= deadline {
                    out.stop = Some(Stop::Unreachable { reason });
                    break;
                }
                std::thread::sleep(wait);
                continue;
            }
            Reply::Unauthorized => {
                out.stop = Some(Stop::Auth {
                    message: "the server refused a freshly refreshed token".into(),
                });
                break;
            }
            Reply::TooLarge => {
                out.stop = Some(Stop::Server {
                    status: 413,
                    message: "pull page too large".into(),
                });
                break;
            }
            Reply::Failed { status, message } => {
                out.stop = Some(Stop::Server { status, message });
                break;
            }
        };
        pages += 1;
        transient = 0;
        refreshed = false;
        out.received += page.events.len() as u64;
        let by_node = sort_page(log.node_id(), page.events, &mut out.skipped);
        for (node, events) in by_node {
            match log.write_pulled(&node, &events, &server, &team) {
                Ok(w) => {
                    out.written += w.written;
                    if !touched.contains(&node) {
                        touched.push(node);
                    }
                }
                Err(e) => {
                    out.stop = Some(Stop::Server {
                        status: 0,
                        message: format!("pulled events of node {node} could not be written: {e}"),
                    });
                    return out;
                }
            }
        }
        let advanced = page.cursor.or(page.next.clone());
        if advanced.is_some() {
            out.cursor = advanced;
        }
        if page.next.is_none() {
            break;
        }
    }
    if out.cursor != initial {
        remember_cursor(log, &server, &team, &out, &touched);
    }
    out
}

/// Groups a page's events by node (in arrival order), dropping this clone's own and reporting
/// every envelope that fails validation.
fn sort_page(
    own_node: &str,
    events: Vec<Box<RawValue>>,
    skipped: &mut Vec<SkippedEvent>,
) -> BTreeMap<String, Vec<Event>> {
    let mut by_node: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for raw in events {
        let head = EnvelopeHead::of(&raw);
        if head.node_id.as_deref() == Some(own_node) {
            continue;
        }
        let id = head.event_id.map(|c| c.into_owned());
        let value: Value = match serde_json::from_str(raw.get()) {
            Ok(v) => v,
            Err(e) => {
                skipped.push(SkippedEvent {
                    event_id: id,
                    error: format!("not JSON: {e}"),
                });
                continue;
            }
        };
        match event::from_compatible(value) {
            Ok(e) => by_node.entry(e.node_id.clone()).or_default().push(e),
            Err(e) => skipped.push(SkippedEvent {
                event_id: id,
                error: e.to_string(),
            }),
        }
    }
    by_node
}

/// Stores the new cursor on this clone's own chain and on every chain written in this run.
fn remember_cursor(log: &EventLog, server: &str, team: &str, out: &Pulled, touched: &[String]) {
    let Some(cursor) = &out.cursor else { return };
    let own = log.node_id().to_owned();
    for node in std::iter::once(&own).chain(touched.iter()) {
        let _ = log.record_sync(
            node,
            &SyncReport {
                server_url: server,
                team,
                pull_cursor: Some(cursor.clone()),
                ..SyncReport::default()
            },
        );
    }
}
