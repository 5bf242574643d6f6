//! Opening the repository and reading refs, commits and chain tips: the plumbing that
//! appending ([`super::append`]), sync state and pending accounting build on.

use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::bstr::{BString, ByteSlice};

use super::message;
use super::{EVENTS_PREFIX, Result, StoreError};
use crate::event::{self, Event};

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
    /// The highest Lamport clock on the chain up to and including the tip: the tip's own
    /// clock, or more on a pulled chain whose events arrived out of clock order.
    pub lamport: u64,
    pub seq: u64,
}

impl EventLog {
    /// Opens the event log of the repository containing `dir`.
    pub fn discover(dir: &Path) -> Result<EventLog> {
        let repo = gix::discover(dir).map_err(|e| open_error(dir, e))?;
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
        // The common case without gix's mmap per object (store/loose.rs says why); gix for
        // everything else, and for its error messages.
        if let Some(c) = super::loose::read_commit(&self.common_dir.join("objects"), &id) {
            return Ok((c.message, c.parents.first().copied(), c.parents));
        }
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
        let (msg, _, _) = self.commit_message(chain, id)?;
        let unparseable = |e: message::MessageError| StoreError::Unparseable {
            chain: chain.to_owned(),
            commit: id.to_string(),
            what: "event commit",
            reason: e.to_string(),
        };
        let (event, seq) = message::parse_event(&msg).map_err(unparseable)?;
        let witnessed = message::parse_trailers(&msg)
            .map_err(unparseable)?
            .witnessed;
        Ok(TipInfo {
            id,
            lamport: event.lamport_clock.max(witnessed),
            seq,
        })
    }

    /// The identity commits are written with (git's, or the fixed spec-kitty one).
    pub(crate) fn author(&self) -> (&gix::bstr::BStr, &gix::bstr::BStr) {
        (self.author.0.as_bstr(), self.author.1.as_bstr())
    }

    /// A commit signature with this repository's identity at `seconds` (UTC): the one
    /// signature every event and sync-state commit carries.
    pub(crate) fn signature(&self, seconds: i64) -> gix::actor::Signature {
        gix::actor::Signature {
            name: self.author.0.clone(),
            email: self.author.1.clone(),
            time: gix::date::Time { seconds, offset: 0 },
        }
    }

    /// The well-known empty tree, written into the repository (once is enough; writing an
    /// existing object is a no-op) so that `git fsck` finds what the commits name.
    pub(crate) fn empty_tree(&self) -> Result<ObjectId> {
        Ok(self
            .repo
            .write_object(gix::objs::Tree::empty())
            .map_err(|e| StoreError::git("writing the empty tree", e))?
            .detach())
    }

    /// Writes a new commit object straight into the loose object store.
    ///
    /// A commit we build is always a new object; the generic write path first checks every
    /// pack index for it, and loading a large repository's pack index costs more than the
    /// whole rest of an append.
    pub(crate) fn write_commit(&self, commit: &gix::objs::Commit) -> Result<ObjectId> {
        let loose = gix::odb::loose::Store::at(
            self.repo.objects.store_ref().path(),
            self.repo.object_hash(),
        );
        gix::objs::Write::write(&loose, commit).map_err(|e| StoreError::git("writing a commit", e))
    }
}

/// Only "no repository here" means "create one with `git init`"; anything else (permissions,
/// a broken git config, an unreadable `.git`) is reported as what it is.
fn open_error(dir: &Path, e: gix::Error) -> StoreError {
    // gix classifies a missing repository (and a search stopped by a ceiling or a filesystem
    // boundary) as "not found"; an untrusted one is "permission denied".
    let not_found = e.classify().is_not_found();
    if not_found {
        StoreError::NotARepository {
            path: dir.to_path_buf(),
        }
    } else {
        StoreError::Open {
            path: dir.to_path_buf(),
            message: e.to_string(),
        }
    }
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
