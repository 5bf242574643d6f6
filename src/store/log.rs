//! Opening the repository, reading chain tips, and the compare-and-swap append.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gix::ObjectId;
use gix::bstr::{BString, ByteSlice};
use gix::refs::Target;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use rand::Rng;

use super::message;
use super::{EVENTS_PREFIX, Result, StoreError, sync_state};
use crate::event::{self, Event, Strictness};

/// How many times an append re-reads and retries after losing a race before giving up.
const MAX_CAS_ATTEMPTS: u32 = 500;

/// The identity event commits are written with when git has none configured.
const FALLBACK_NAME: &str = "spec-kitty";
const FALLBACK_EMAIL: &str = "spec-kitty@localhost";

/// The event log of one repository, opened from any directory inside it (including linked
/// worktrees and their subdirectories). All reads and writes go to the refs shared by every
/// worktree.
pub struct EventLog {
    repo: gix::Repository,
    node_id: String,
    common_dir: PathBuf,
    author: (BString, BString),
}

/// One chain: the events of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub node_id: String,
    pub ref_name: String,
    pub tip: ObjectId,
}

/// An event as stored: the envelope plus where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub commit: ObjectId,
    /// 1-based position on its chain.
    pub seq: u64,
    pub event: Event,
}

/// The result of a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub event_id: String,
    pub commit: ObjectId,
    pub lamport_clock: u64,
    pub seq: u64,
    /// How many times another writer won the race first.
    pub retries: u32,
}

/// The tip of a chain with its trailers already read.
pub(crate) struct TipInfo {
    pub id: ObjectId,
    pub lamport: u64,
    pub seq: u64,
}

impl EventLog {
    /// Opens the event log of the repository containing `dir`.
    pub fn discover(dir: &Path) -> Result<EventLog> {
        let repo = gix::discover(dir).map_err(|e| {
            if e.classify().is_not_found() || e.to_string().contains("not a git") {
                StoreError::NotARepository {
                    path: dir.to_path_buf(),
                }
            } else {
                // gix reports "no repository found" in several shapes; anything that stops
                // discovery means the same thing to a user.
                StoreError::NotARepository {
                    path: dir.to_path_buf(),
                }
            }
        })?;
        let common_dir = std::fs::canonicalize(repo.common_dir())
            .unwrap_or_else(|_| repo.common_dir().to_path_buf());
        let (host, user) = event::host_and_user();
        let node_id = event::node_id(&host, &user, &common_dir.to_string_lossy());
        let author = git_identity(&repo);
        Ok(EventLog {
            repo,
            node_id,
            common_dir,
            author,
        })
    }

    /// This clone's node id (the chain it writes).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The git user's name (`GIT_COMMITTER_NAME`, else `user.name`), if one is configured.
    pub fn git_user_name(&self) -> Option<&str> {
        let name = self.author.0.to_str().ok()?;
        (self.author != (FALLBACK_NAME.into(), FALLBACK_EMAIL.into())).then_some(name)
    }

    /// The common git directory shared by all worktrees (canonical path).
    pub fn common_dir(&self) -> &Path {
        &self.common_dir
    }

    /// The underlying repository, for callers that need git facts (branch, HEAD, remotes).
    pub fn repo(&self) -> &gix::Repository {
        &self.repo
    }

    /// The full ref name of `node`'s chain.
    pub fn chain_ref(node: &str) -> String {
        format!("{EVENTS_PREFIX}{node}")
    }

    /// Every chain under `refs/spec-kitty/events/`, sorted by node id.
    ///
    /// A ref there that does not point at a commit is an error naming it: nothing can be
    /// appended or read reliably until it is repaired.
    pub fn chains(&self) -> Result<Vec<Chain>> {
        let mut out = Vec::new();
        for (name, id) in self.refs_under(EVENTS_PREFIX)? {
            self.ensure_commit(&name, id)?;
            out.push(Chain {
                node_id: name[EVENTS_PREFIX.len()..].to_owned(),
                ref_name: name,
                tip: id,
            });
        }
        out.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Ok(out)
    }

    /// All refs under `prefix` that point (directly) at an object, as (full name, id).
    pub(crate) fn refs_under(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        let platform = self
            .repo
            .references()
            .map_err(|e| StoreError::git("listing references", e))?;
        let iter = platform
            .prefixed(prefix)
            .map_err(|e| StoreError::git("listing references", e))?;
        let mut out = Vec::new();
        for r in iter {
            let r = r.map_err(|e| StoreError::git("reading a reference", e))?;
            let name = r.name().as_bstr().to_str_lossy().into_owned();
            match r.target().try_id() {
                Some(id) => out.push((name, id.to_owned())),
                None => {
                    return Err(StoreError::RefNotACommit {
                        name,
                        id: "(symbolic)".into(),
                        kind: "symbolic ref".into(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The id `name` points at, if the ref exists.
    pub(crate) fn ref_id(&self, name: &str) -> Result<Option<ObjectId>> {
        let r = self
            .repo
            .try_find_reference(name)
            .map_err(|e| StoreError::git(format!("reading {name}"), e))?;
        Ok(r.and_then(|r| r.target().try_id().map(ToOwned::to_owned)))
    }

    pub(crate) fn ensure_commit(&self, name: &str, id: ObjectId) -> Result<()> {
        let header = self
            .repo
            .find_header(id)
            .map_err(|e| StoreError::git(format!("reading the object {name} points at"), e))?;
        let kind = header.kind();
        if kind != gix::object::Kind::Commit {
            return Err(StoreError::RefNotACommit {
                name: name.to_owned(),
                id: id.to_string(),
                kind: kind.to_string(),
            });
        }
        Ok(())
    }

    /// The raw message and first parent of a commit.
    pub(crate) fn commit_message(
        &self,
        chain: &str,
        id: ObjectId,
    ) -> Result<(String, Option<ObjectId>, Vec<ObjectId>)> {
        let commit = self
            .repo
            .find_commit(id)
            .map_err(|e| StoreError::Unparseable {
                chain: chain.to_owned(),
                commit: id.to_string(),
                what: "commit",
                reason: e.to_string(),
            })?;
        let msg = commit.message_raw_sloppy();
        let msg = msg.to_str().map_err(|_| StoreError::Unparseable {
            chain: chain.to_owned(),
            commit: id.to_string(),
            what: "event commit",
            reason: message::MessageError::NotUtf8.to_string(),
        })?;
        let parents: Vec<ObjectId> = commit.parent_ids().map(|p| p.detach()).collect();
        Ok((msg.to_owned(), parents.first().copied(), parents))
    }

    /// Reads the event stored in commit `id` of `chain`.
    pub fn read_event(&self, chain: &str, id: ObjectId) -> Result<(StoredEvent, Option<ObjectId>)> {
        let (msg, parent, _) = self.commit_message(chain, id)?;
        let (event, seq) = message::parse_event(&msg).map_err(|e| StoreError::Unparseable {
            chain: chain.to_owned(),
            commit: id.to_string(),
            what: "event commit",
            reason: e.to_string(),
        })?;
        Ok((
            StoredEvent {
                commit: id,
                seq,
                event,
            },
            parent,
        ))
    }

    /// The tip of `chain` with its clock and sequence number. The whole message is parsed (a
    /// few microseconds per chain) so that nothing is ever appended on top of a broken event.
    pub(crate) fn tip_info(&self, chain: &str, id: ObjectId) -> Result<TipInfo> {
        let (stored, _) = self.read_event(chain, id)?;
        Ok(TipInfo {
            id,
            lamport: stored.event.lamport_clock,
            seq: stored.seq,
        })
    }

    /// Appends `event` to this node's chain.
    ///
    /// The event is validated first (nothing invalid is ever written). Inside the
    /// compare-and-swap loop the Lamport clock is set to one more than the highest clock of any
    /// chain tip, and the pending cap is checked against every chain's sync state. The event id
    /// is kept across retries; each lost race leaves one unreferenced commit that `git gc`
    /// removes.
    pub fn append(&self, mut event: Event, queue_limit: u64) -> Result<Appended> {
        let ref_name = Self::chain_ref(&self.node_id);
        let full_name: gix::refs::FullName = ref_name
            .as_str()
            .try_into()
            .map_err(|e| StoreError::git("naming the chain ref", e))?;
        event.node_id = self.node_id.clone();
        let empty_tree = gix::ObjectId::empty_tree(self.repo.object_hash());
        // An event commit is always a new object, so it goes straight into the loose store:
        // the generic write path first checks every pack index for the object, and loading a
        // large repository's pack index costs more than the whole rest of the append.
        let loose = gix::odb::loose::Store::at(
            self.repo.objects.store_ref().path(),
            self.repo.object_hash(),
        );
        let seconds = chrono::DateTime::parse_from_rfc3339(&event.timestamp)
            .map(|t| t.timestamp())
            .unwrap_or_else(|_| chrono::Utc::now().timestamp());
        let signature = gix::actor::Signature {
            name: self.author.0.clone(),
            email: self.author.1.clone(),
            time: gix::date::Time { seconds, offset: 0 },
        };

        let mut retries = 0;
        let mut stuck = 0;
        loop {
            let chains = self.chains()?;
            let mut own_tip: Option<TipInfo> = None;
            let mut max_clock = 0;
            let mut pending = 0;
            // One read of each tip serves the clock, this node's parent and the pending count.
            for chain in &chains {
                let info = self.tip_info(&chain.ref_name, chain.tip)?;
                max_clock = max_clock.max(info.lamport);
                pending += sync_state::pending_after(self, &chain.node_id, info.seq)?.pending();
                if chain.node_id == self.node_id {
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
            if retries == 0 {
                let value = serde_json::to_value(&event).unwrap_or_default();
                event::validate(&value, Strictness::Client).map_err(StoreError::Invalid)?;
            }
            let commit = gix::objs::Commit {
                tree: empty_tree,
                parents: own_tip.as_ref().map(|t| t.id).into_iter().collect(),
                author: signature.clone(),
                committer: signature.clone(),
                encoding: None,
                message: message::format_event(&event, seq).into(),
                extra_headers: Vec::new(),
            };
            if own_tip.is_none() {
                // The first event of a chain names the empty tree, which must exist for `git
                // fsck`; afterwards the chain itself keeps it alive.
                self.repo
                    .write_object(gix::objs::Tree::empty())
                    .map_err(|e| StoreError::git("writing the empty tree", e))?;
            }
            let id = gix::objs::Write::write(&loose, &commit)
                .map_err(|e| StoreError::git("writing the event commit", e))?;
            let expected = match &own_tip {
                Some(t) => PreviousValue::MustExistAndMatch(Target::Object(t.id)),
                None => PreviousValue::MustNotExist,
            };
            match self.update_ref(full_name.clone(), id, expected, "spec-kitty: append event") {
                Ok(()) => {
                    return Ok(Appended {
                        event_id: event.event_id,
                        commit: id,
                        lamport_clock: event.lamport_clock,
                        seq,
                        retries,
                    });
                }
                Err(e) => {
                    retries += 1;
                    let moved = self.ref_id(&ref_name)? != own_tip.as_ref().map(|t| t.id);
                    if moved {
                        // Lost the race: another writer appended first. Re-read and retry.
                        stuck = 0;
                    } else {
                        // Nobody moved the ref. A lock that outlives several lock timeouts
                        // (100 ms each) was left behind by a killed process.
                        let lock = self.common_dir.join(format!("{ref_name}.lock"));
                        stuck += 1;
                        if lock.exists() && stuck >= 3 {
                            return Err(StoreError::Locked { path: lock });
                        }
                        if let CasError::Other(err) = e {
                            if !lock.exists() {
                                return Err(err);
                            }
                        }
                    }
                    if retries >= MAX_CAS_ATTEMPTS {
                        return Err(StoreError::Contention {
                            name: ref_name,
                            attempts: retries,
                        });
                    }
                    jitter(retries);
                }
            }
        }
    }

    /// Compare-and-swap of one ref.
    pub(crate) fn update_ref(
        &self,
        name: gix::refs::FullName,
        new: ObjectId,
        expected: PreviousValue,
        reflog_message: &str,
    ) -> std::result::Result<(), CasError> {
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: reflog_message.into(),
                },
                expected,
                new: Target::Object(new),
            },
            name,
            deref: false,
        };
        let time = format!("{} +0000", chrono::Utc::now().timestamp());
        let committer = gix::actor::SignatureRef {
            name: self.author.0.as_bstr(),
            email: self.author.1.as_bstr(),
            time: &time,
        };
        match self.repo.edit_references_as(Some(edit), Some(committer)) {
            Ok(_) => Ok(()),
            Err(e) => {
                let lost = e.classify().is_conflict()
                    || e.classify().can_retry()
                    || e
                        .downcast_any_ref::<gix::refs::file::transaction::prepare::ReferenceOutOfDate>()
                        .is_some()
                    || e
                        .downcast_any_ref::<gix::refs::file::transaction::prepare::MustNotExist>()
                        .is_some();
                if lost {
                    Err(CasError::Lost)
                } else {
                    Err(CasError::Other(StoreError::git(
                        "updating the event ref",
                        e,
                    )))
                }
            }
        }
    }
}

/// Why a compare-and-swap did not go through.
pub(crate) enum CasError {
    /// Another writer moved the ref (or held its lock): re-read and retry.
    Lost,
    Other(StoreError),
}

/// The committer identity as git resolves it (environment, `committer.*`, `user.*`), or the
/// fixed spec-kitty identity when none is configured: a missing identity never stops an event.
///
/// Read directly rather than through `Repository::committer()`, which also resolves the local
/// time zone, and that alone scans the whole zoneinfo database on every process start.
fn git_identity(repo: &gix::Repository) -> (BString, BString) {
    let config = repo.config_snapshot();
    let lookup = |env: &str, keys: [&str; 2]| -> Option<BString> {
        std::env::var(env)
            .ok()
            .filter(|v| !v.is_empty())
            .map(BString::from)
            .or_else(|| keys.iter().find_map(|k| config.string(*k)))
            .filter(|v| !v.is_empty())
    };
    let name = lookup("GIT_COMMITTER_NAME", ["committer.name", "user.name"]);
    let email = lookup("GIT_COMMITTER_EMAIL", ["committer.email", "user.email"]);
    match (name, email) {
        (Some(n), Some(e)) => (n, e),
        (Some(n), None) => (n, FALLBACK_EMAIL.into()),
        _ => (FALLBACK_NAME.into(), FALLBACK_EMAIL.into()),
    }
}

/// Sleeps a random, slowly growing time so that racing writers spread out.
fn jitter(attempt: u32) {
    let cap_us = 200 + 100 * u64::from(attempt.min(50));
    let us = rand::rng().random_range(0..cap_us);
    std::thread::sleep(Duration::from_micros(us));
}
