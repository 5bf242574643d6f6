//! The one compare-and-swap loop for every ref the store writes.
//!
//! Appending an event and recording a sync state are the same operation: read the ref, build a
//! new commit on what was read, and move the ref only if it still points where it did. On a
//! lost race the caller's `build` runs again on fresh state (so a Lamport clock or a merged
//! rejection list is always recomputed from what won), after a short random sleep that spreads
//! racing writers out. A ref lock that nobody releases (a killed process leaves
//! `<ref>.lock` behind) is removed once it is old enough to be certainly dead (see
//! [`STALE_LOCK_AGE`]); one that cannot be removed is reported as [`StoreError::Locked`].

use std::time::Duration;

use gix::ObjectId;
use gix::refs::Target;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use rand::Rng;

use super::log::EventLog;
use super::{Result, StoreError};

/// How many times a write re-reads and retries after losing a race before giving up.
pub(crate) const MAX_CAS_ATTEMPTS: u32 = 500;

/// How many consecutive failed attempts with an unmoved ref and an existing lock file mean the
/// lock may have been left behind (each attempt waits for gix's lock timeout of about 100 ms).
const STALE_LOCK_ATTEMPTS: u32 = 3;

/// A lock of one of our own refs (`refs/spec-kitty/…`) older than this was left by a killed
/// writer, and is removed: a live writer holds it only for the milliseconds between creating
/// `<ref>.lock` and renaming it over the ref. Younger, it is waited for (a `sync now` killed
/// between the server's answer and the ref update leaves one, and the next run must get
/// through by itself). Other refs' locks are never removed, only named.
const STALE_LOCK_AGE: Duration = Duration::from_secs(5);

/// One attempt's proposal: move the ref from `expected` (None: it must not exist) to `new`.
pub(crate) struct Proposal<T> {
    pub expected: Option<ObjectId>,
    pub new: ObjectId,
    pub value: T,
}

/// What a successful swap returns: the caller's value and how many races were lost first.
pub(crate) struct Swapped<T> {
    pub value: T,
    pub retries: u32,
}

/// Why one compare-and-swap did not go through.
pub(crate) enum CasError {
    /// Another writer moved the ref (or held its lock): re-read and retry.
    Lost,
    Other(StoreError),
}

impl EventLog {
    /// Runs `build` until its proposal wins the compare-and-swap of `ref_name`.
    ///
    /// `build` is called with the attempt number (0 first) and must read the current state
    /// itself: whatever it computed on a losing attempt is thrown away.
    pub(crate) fn swap_ref<T>(
        &self,
        ref_name: &str,
        reflog_message: &str,
        build: impl FnMut(u32) -> Result<Proposal<T>>,
    ) -> Result<Swapped<T>> {
        self.swap_ref_or(ref_name, reflog_message, build)
    }

    /// [`swap_ref`](Self::swap_ref) for a caller whose `build` may refuse with its own error
    /// (an import that finds the chain is not its to write, say): the refusal stops the loop
    /// and comes back as it was, with no ref touched.
    pub(crate) fn swap_ref_or<T, E: From<StoreError>>(
        &self,
        ref_name: &str,
        reflog_message: &str,
        mut build: impl FnMut(u32) -> std::result::Result<Proposal<T>, E>,
    ) -> std::result::Result<Swapped<T>, E> {
        let full: gix::refs::FullName = ref_name
            .try_into()
            .map_err(|e| StoreError::git(format!("naming {ref_name}"), e))?;
        let mut retries = 0;
        let mut stuck = 0;
        loop {
            let proposal = build(retries)?;
            let expected = match proposal.expected {
                Some(p) => PreviousValue::MustExistAndMatch(Target::Object(p)),
                None => PreviousValue::MustNotExist,
            };
            let err = match self.update_ref(full.clone(), proposal.new, expected, reflog_message) {
                Ok(()) => {
                    return Ok(Swapped {
                        value: proposal.value,
                        retries,
                    });
                }
                Err(e) => e,
            };
            retries += 1;
            if self.ref_id(ref_name)? != proposal.expected {
                // Lost the race: another writer moved the ref first. Re-read and retry.
                stuck = 0;
            } else {
                // Nobody moved the ref: either its lock is held (briefly, by a writer that is
                // about to move it, or forever, by a killed one) or the update failed outright.
                let lock = self.common_dir().join(format!("{ref_name}.lock"));
                stuck += 1;
                if lock.exists() && stuck >= STALE_LOCK_ATTEMPTS {
                    let ours = ref_name.starts_with("refs/spec-kitty/");
                    match lock_age(&lock) {
                        Some(age) if ours && age >= STALE_LOCK_AGE => {
                            if std::fs::remove_file(&lock).is_err() && lock.exists() {
                                return Err(StoreError::Locked { path: lock }.into());
                            }
                            stuck = 0;
                        }
                        // Bounded: about STALE_LOCK_AGE of waiting, whatever the clock says.
                        Some(age) if ours && stuck < STALE_LOCK_ATTEMPTS + 20 => {
                            let wait = STALE_LOCK_AGE.saturating_sub(age);
                            std::thread::sleep(
                                wait.clamp(Duration::from_millis(50), Duration::from_millis(300)),
                            );
                        }
                        _ => return Err(StoreError::Locked { path: lock }.into()),
                    }
                    continue;
                }
                if let CasError::Other(err) = err
                    && !lock.exists()
                {
                    return Err(err.into());
                }
            }
            if retries >= MAX_CAS_ATTEMPTS {
                return Err(StoreError::Contention {
                    name: ref_name.to_owned(),
                    attempts: retries,
                }
                .into());
            }
            jitter(retries);
        }
    }

    /// One compare-and-swap of one ref.
    fn update_ref(
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
        let (author_name, author_email) = self.author();
        let committer = gix::actor::SignatureRef {
            name: author_name,
            email: author_email,
            time: &time,
        };
        match self.repo().edit_references_as(Some(edit), Some(committer)) {
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
                        "updating a spec-kitty ref",
                        e,
                    )))
                }
            }
        }
    }
}

/// Sleeps a random, slowly growing time so that racing writers spread out.
fn jitter(attempt: u32) {
    let cap_us = 200 + 100 * u64::from(attempt.min(50));
    let us = rand::rng().random_range(0..cap_us);
    std::thread::sleep(Duration::from_micros(us));
}

/// How long ago `lock` was created (its modification time); `None` when it cannot be read.
fn lock_age(lock: &std::path::Path) -> Option<Duration> {
    let modified = std::fs::metadata(lock).ok()?.modified().ok()?;
    Some(modified.elapsed().unwrap_or_default())
}
