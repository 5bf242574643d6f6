//! Loading the derived workflow state fast, whatever the size of the log.
//!
//! Deriving the state means reading every event, which for 100,000 events takes far longer
//! than a command may. So the state is cached in `<common git dir>/spec-kitty/workflow-state.json`
//! together with the tip (commit and `Seq`) of every chain it covers. Loading reads the chain
//! tips (refs only); for a chain whose tip moved, it walks back only over the new events, down
//! to the cached tip. Because applying events is commutative (see [`WorkflowState::apply`]),
//! the new events can simply be folded in.
//!
//! The cache is derived data, never the source of truth: if it is missing, unreadable, from
//! another version, or describes a chain that was rewritten or removed, the state is rebuilt
//! from the whole log and the file is replaced. Writing it is best effort (atomic rename), and
//! only done once enough new events have accumulated to be worth a file write.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::state::{EventView, WorkflowState};
use crate::store::{Chain, EventLog, StoreError, StoredEvent};

/// Bump when [`WorkflowState`] or its derivation changes: older caches are then rebuilt.
const CACHE_VERSION: u32 = 1;

/// The cache is rewritten once a load had to walk at least this many new events.
const SAVE_AFTER: usize = 16;

/// The cache file, relative to the common git dir.
pub const CACHE_RELATIVE: &str = "spec-kitty/workflow-state.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CachedTip {
    commit: String,
    seq: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    tips: BTreeMap<String, CachedTip>,
    state: WorkflowState,
}

/// The workflow state of every event in the log, from the cache brought up to date.
pub fn load(log: &EventLog) -> Result<WorkflowState, StoreError> {
    let path = log.common_dir().join(CACHE_RELATIVE);
    let chains = log.chains()?;
    let cached = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
        .filter(|c| c.version == CACHE_VERSION);
    if let Some(mut cache) = cached {
        match catch_up(log, &chains, &cache.tips)? {
            Some(update) if update.new_events.is_empty() => return Ok(cache.state),
            Some(update) => {
                for stored in &update.new_events {
                    cache.state.apply(EventView::from(&stored.event));
                }
                // A few events are cheaper to walk again next time than a file is to write.
                if update.new_events.len() >= SAVE_AFTER {
                    cache.tips = update.tips;
                    save(&path, &cache);
                }
                return Ok(cache.state);
            }
            None => {} // a chain was rewritten or removed: rebuild
        }
    }
    let cache = rebuild(log, &chains)?;
    save(&path, &cache);
    Ok(cache.state)
}

/// The state of the whole log, read from scratch (no cache involved).
pub fn derive(log: &EventLog) -> Result<WorkflowState, StoreError> {
    Ok(rebuild(log, &log.chains()?)?.state)
}

struct Update {
    new_events: Vec<StoredEvent>,
    tips: BTreeMap<String, CachedTip>,
}

/// The events added since `cached` and the new tips; `None` when the cache does not describe
/// a prefix of the log (a chain vanished or was rewritten).
fn catch_up(
    log: &EventLog,
    chains: &[Chain],
    cached: &BTreeMap<String, CachedTip>,
) -> Result<Option<Update>, StoreError> {
    if cached
        .keys()
        .any(|node| !chains.iter().any(|c| &c.node_id == node))
    {
        return Ok(None);
    }
    let mut update = Update {
        new_events: Vec::new(),
        tips: BTreeMap::new(),
    };
    for chain in chains {
        let old = cached.get(&chain.node_id);
        let tip = chain.tip.to_string();
        if let Some(old) = old
            && old.commit == tip
        {
            update.tips.insert(chain.node_id.clone(), old.clone());
            continue;
        }
        let mut tip_seq = None;
        let mut reached = old.is_none();
        for stored in log.walk(chain) {
            let stored = stored?;
            tip_seq.get_or_insert(stored.seq);
            if let Some(old) = old {
                if stored.commit == old.commit.as_str() {
                    reached = true;
                    break;
                }
                if stored.seq <= old.seq {
                    break; // walked past where the cached tip should be: rewritten
                }
            }
            update.new_events.push(stored);
        }
        if !reached {
            return Ok(None);
        }
        let seq = tip_seq.unwrap_or(0);
        update
            .tips
            .insert(chain.node_id.clone(), CachedTip { commit: tip, seq });
    }
    Ok(Some(update))
}

fn rebuild(log: &EventLog, chains: &[Chain]) -> Result<CacheFile, StoreError> {
    let mut state = WorkflowState::default();
    let mut tips = BTreeMap::new();
    for chain in chains {
        let mut tip_seq = None;
        for stored in log.walk(chain) {
            let stored = stored?;
            tip_seq.get_or_insert(stored.seq);
            state.apply(EventView::from(&stored.event));
        }
        tips.insert(
            chain.node_id.clone(),
            CachedTip {
                commit: chain.tip.to_string(),
                seq: tip_seq.unwrap_or(0),
            },
        );
    }
    Ok(CacheFile {
        version: CACHE_VERSION,
        tips,
        state,
    })
}

/// Writes the cache atomically; failures are ignored (the next load rebuilds or catches up).
fn save(path: &PathBuf, cache: &CacheFile) {
    let Some(dir) = path.parent() else { return };
    let Ok(bytes) = serde_json::to_vec(cache) else {
        return;
    };
    let _ = std::fs::create_dir_all(dir);
    if let Ok(tmp) = tempfile::NamedTempFile::new_in(dir)
        && std::fs::write(tmp.path(), bytes).is_ok()
    {
        let _ = tmp.persist(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Lane, Origin, Payload};

    fn repo() -> (tempfile::TempDir, EventLog) {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("git")
            .args(["init", "-q"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .current_dir(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let log = EventLog::discover(dir.path()).unwrap();
        (dir, log)
    }

    fn move_wp(log: &EventLog, wp: &str, from: Lane, to: Lane) {
        let origin = Origin {
            node_id: log.node_id().to_owned(),
            project_uuid: "5b0e8a52-3c2f-4d8e-9a61-2f4c1d7e9b30".into(),
            team_slug: "local".into(),
            ..Origin::default()
        };
        let payload = Payload::WPStatusChanged {
            wp_id: wp.into(),
            previous_status: from,
            new_status: to,
            changed_by: "test".into(),
            feature_slug: Some("001-demo".into()),
        };
        log.append(Event::new(&payload, &origin, None, None), u64::MAX)
            .unwrap();
    }

    fn lane(state: &WorkflowState, wp: &str) -> Option<Lane> {
        state.lane("001-demo", wp).map(|m| m.lane)
    }

    #[test]
    fn the_cache_catches_up_with_new_events_and_agrees_with_a_full_derivation() {
        let (_dir, log) = repo();
        move_wp(&log, "WP01", Lane::Planned, Lane::Doing);
        let first = load(&log).unwrap();
        assert_eq!(lane(&first, "WP01"), Some(Lane::Doing));
        assert!(log.common_dir().join(CACHE_RELATIVE).is_file());
        move_wp(&log, "WP01", Lane::Doing, Lane::ForReview);
        move_wp(&log, "WP02", Lane::Planned, Lane::Doing);
        let caught_up = load(&log).unwrap();
        assert_eq!(lane(&caught_up, "WP01"), Some(Lane::ForReview));
        assert_eq!(caught_up, derive(&log).unwrap());
        // Unchanged tips: served from the file as is.
        assert_eq!(load(&log).unwrap(), caught_up);
    }

    #[test]
    fn a_corrupt_cache_or_a_rewritten_chain_means_a_rebuild() {
        let (_dir, log) = repo();
        move_wp(&log, "WP01", Lane::Planned, Lane::Doing);
        load(&log).unwrap();
        std::fs::write(log.common_dir().join(CACHE_RELATIVE), b"{not json").unwrap();
        assert_eq!(lane(&load(&log).unwrap(), "WP01"), Some(Lane::Doing));

        // Rewrite the chain: a different history of the same length.
        let chain_ref = EventLog::chain_ref(log.node_id());
        let ok = std::process::Command::new("git")
            .args(["update-ref", "-d", &chain_ref])
            .current_dir(log.common_dir())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        move_wp(&log, "WP01", Lane::Planned, Lane::Done);
        let state = load(&log).unwrap();
        assert_eq!(lane(&state, "WP01"), Some(Lane::Done));
        assert_eq!(state, derive(&log).unwrap());
    }
}
