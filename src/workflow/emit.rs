//! The one emission path: build the envelope, validate it, append it.
//!
//! [`Emitter::emit`] never fails the caller: whatever goes wrong becomes an
//! [`EmitOutcome`] carrying a one-line warning (no payload, no secrets) that the CLI prints on
//! stderr while the user's command stands. [`Emitter::try_emit`] is the same path with the full
//! error, for `spec-kitty events emit`, whose job *is* the event.

use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;
use miette::Diagnostic;
use serde_json::{Map, Value};

use super::location::Location;
pub use super::location::main_worktree_root;
use crate::event::{Event, EventType, LOCAL_TEAM, Origin, Payload};
use crate::project::identity::{self, IdentityError};
use crate::store::{Appended, EventLog, StoreError};
use crate::sync::config::Background;
use crate::sync::daemon::wake::{self, Woken};
use crate::sync::{ClientConfig, ConfigError};

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum EmitError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// A problem found when the emitter was opened, reported again by each emit with its
    /// message and help unchanged (the underlying git and io errors are not `Clone`).
    #[error("{message}")]
    Setup {
        message: String,
        #[help]
        help: Option<String>,
    },
}

impl EmitError {
    /// A one-line description fit for a warning: what happened and the command that fixes it.
    pub fn one_line(&self) -> String {
        let help = self.help().map(|h| format!(" ({h})")).unwrap_or_default();
        let first = self.to_string();
        let first = first.lines().next().unwrap_or("").to_owned();
        format!("{first}{help}")
    }
}

/// What happened to one event.
#[derive(Debug)]
pub enum EmitOutcome {
    Recorded(Appended),
    /// Not recorded; the warning says why and what to run.
    NotRecorded {
        warning: String,
    },
}

impl EmitOutcome {
    pub fn warning(&self) -> Option<&str> {
        match self {
            EmitOutcome::Recorded(_) => None,
            EmitOutcome::NotRecorded { warning } => Some(warning),
        }
    }

    pub fn event_id(&self) -> Option<&str> {
        match self {
            EmitOutcome::Recorded(a) => Some(&a.event_id),
            EmitOutcome::NotRecorded { .. } => None,
        }
    }
}

/// Everything needed to emit events from one directory: the log, the envelope's origin, the
/// pending cap. Opening never fails; a problem found while opening is reported by each emit.
pub struct Emitter {
    state: Result<Ready, EmitError>,
    /// Warnings about the setup that did not stop emission (e.g. an unreadable config file,
    /// replaced by defaults). Reported once by the first emit.
    setup_warnings: std::cell::RefCell<Vec<String>>,
    /// What waking the live-sync daemon after the last recorded event found.
    woken: std::cell::RefCell<Option<Woken>>,
}

struct Ready {
    log: EventLog,
    origin: Origin,
    queue_limit: u64,
    /// Logged in and `[sync] background = "auto"`: start the daemon when none runs.
    autostart: bool,
    logged_in: bool,
    /// Where a spawned daemon runs (the main checkout, else this worktree).
    root: PathBuf,
}

impl Emitter {
    /// Prepares emission for the repository containing `dir`, with the client configuration
    /// of this user (an unreadable configuration falls back to defaults, with a warning).
    pub fn open(dir: &Path) -> Emitter {
        match ClientConfig::load() {
            Ok(c) => Self::with_config(dir, &c),
            Err(e) => {
                let emitter = Self::with_config(dir, &ClientConfig::defaults());
                let warning = format!("{}; using defaults", EmitError::from(e).one_line());
                emitter.setup_warnings.borrow_mut().push(warning);
                emitter
            }
        }
    }

    /// Prepares emission for the repository containing `dir` with an explicit configuration.
    pub fn with_config(dir: &Path, config: &ClientConfig) -> Emitter {
        let state = EventLog::discover(dir)
            .map_err(EmitError::from)
            .and_then(|log| {
                let mut origin = origin_for(&log)?;
                // New events carry the logged-in session's team (two small file reads, no
                // network); events already recorded are never rewritten.
                let team = crate::sync::session::current_team(config);
                let logged_in = team.is_some();
                if let Some(team) = team {
                    origin.team_slug = team;
                }
                let root = main_worktree_root(log.common_dir())
                    .or_else(|| log.repo().workdir().map(Path::to_path_buf))
                    .unwrap_or_else(|| dir.to_path_buf());
                Ok(Ready {
                    log,
                    origin,
                    queue_limit: config.queue_limit,
                    autostart: logged_in && config.background == Background::Auto,
                    logged_in,
                    root,
                })
            });
        Emitter {
            state,
            setup_warnings: std::cell::RefCell::new(Vec::new()),
            woken: std::cell::RefCell::new(None),
        }
    }

    /// The event log, when the repository could be opened.
    pub fn log(&self) -> Option<&EventLog> {
        self.state.as_ref().ok().map(|r| &r.log)
    }

    /// The envelope origin (node, project, git facts), when available.
    pub fn origin(&self) -> Option<&Origin> {
        self.state.as_ref().ok().map(|r| &r.origin)
    }

    /// Records one event; never fails the caller.
    pub fn emit(&self, payload: &Payload, causation_id: Option<&str>) -> EmitOutcome {
        let event_type = payload.event_type();
        match self.try_emit(event_type, payload.to_map(), causation_id, None) {
            Ok(a) => EmitOutcome::Recorded(a),
            Err(e) => EmitOutcome::NotRecorded {
                warning: format!("{event_type} not recorded: {}", e.one_line()),
            },
        }
    }

    /// Records one event from a raw payload, returning the full error on failure.
    pub fn try_emit(
        &self,
        event_type: EventType,
        payload: Map<String, Value>,
        causation_id: Option<&str>,
        aggregate_id: Option<String>,
    ) -> Result<Appended, EmitError> {
        let ready = match &self.state {
            Ok(r) => r,
            Err(e) => return Err(clone_setup_error(e)),
        };
        let event = Event::from_parts(
            event_type,
            payload,
            &ready.origin,
            causation_id.map(str::to_owned),
            aggregate_id,
        );
        let appended = ready.log.append(event, ready.queue_limit)?;
        // Live sync: one datagram wakes a running daemon (microseconds, no runtime, no TLS);
        // when none answers and auto-start applies, one is spawned (once per dead daemon).
        let woken = wake::after_emit(ready.log.common_dir(), &ready.root, ready.autostart);
        *self.woken.borrow_mut() = Some(woken);
        Ok(appended)
    }

    /// The live connection state to print inline after an emitting command (`[Connected]`,
    /// `[Reconnecting]`, `[Offline]`, `[Offline-BatchMode]`), read from the daemon's state
    /// file, never from the network. `None` when not logged in or nothing was recorded.
    pub fn live_state(&self) -> Option<String> {
        let ready = self.state.as_ref().ok()?;
        let woken = self.woken.borrow().clone()?;
        // Not logged in, or live sync turned off and no daemon started by hand: nothing to say.
        if !ready.logged_in || (woken == Woken::NotRunning && !ready.autostart) {
            return None;
        }
        let label = match woken {
            Woken::SpawnFailed(why) => format!("Offline: the sync daemon could not start: {why}"),
            Woken::Spawned(_) => "Offline (starting the sync daemon)".to_owned(),
            Woken::Delivered | Woken::NotRunning => wake::inline_state(ready.log.common_dir())
                .filter(|_| woken == Woken::Delivered)
                .map(|c| c.label().to_owned())
                .unwrap_or_else(|| "Offline".to_owned()),
        };
        Some(format!("[{label}]"))
    }

    /// Warnings about the setup (e.g. an invalid config file replaced by defaults), taken once.
    pub fn take_setup_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.setup_warnings.borrow_mut())
    }
}

/// Setup errors are reported by every emit: a copy keeping the original message and help (a
/// malformed `.kittify/config.yaml` must still say to fix that file, not to run `git fsck`).
fn clone_setup_error(e: &EmitError) -> EmitError {
    match e {
        EmitError::Store(StoreError::NotARepository { path }) => {
            EmitError::Store(StoreError::NotARepository { path: path.clone() })
        }
        other => EmitError::Setup {
            message: other.to_string(),
            help: other.help().map(|h| h.to_string()),
        },
    }
}

/// The parts of the envelope that come from where we are: node, project, git facts.
pub fn origin_for(log: &EventLog) -> Result<Origin, EmitError> {
    let repo = log.repo();
    let here = Location::of(log, log.common_dir());
    let identity = identity::load_or_create(
        &here.worktree_root,
        &here.main_root,
        here.default_slug().as_deref(),
    )?;
    let git_branch = here.branch;
    let head_commit_sha = repo.head_id().ok().map(|id| id.to_string());
    let repo_slug = repo
        .config_snapshot()
        .string("remote.origin.url")
        .and_then(|u| repo_slug_from_url(&u.to_str_lossy()));
    Ok(Origin {
        node_id: log.node_id().to_owned(),
        project_uuid: identity.uuid,
        project_slug: identity.slug,
        team_slug: LOCAL_TEAM.to_owned(),
        git_branch,
        head_commit_sha,
        repo_slug,
    })
}

/// `owner/repo` from a remote URL in any of git's forms.
pub fn repo_slug_from_url(url: &str) -> Option<String> {
    let trimmed = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let path = if let Some((_, rest)) = trimmed.split_once("://") {
        rest.split_once('/')?.1
    } else if let Some((_, rest)) = trimmed.split_once(':') {
        rest
    } else {
        trimmed
    };
    let mut parts = path.rsplit('/').filter(|p| !p.is_empty());
    let repo = parts.next()?;
    let owner = parts.next()?;
    Some(format!("{owner}/{repo}"))
}

/// Lowercase letters, digits and single dashes.
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_slugs_from_remote_urls() {
        for url in [
            "https://github.com/acme/widgets.git",
            "git@github.com:acme/widgets.git",
            "ssh://git@host:22/acme/widgets",
        ] {
            assert_eq!(
                repo_slug_from_url(url).as_deref(),
                Some("acme/widgets"),
                "{url}"
            );
        }
        assert_eq!(repo_slug_from_url("widgets"), None);
    }

    #[test]
    fn slugify_keeps_it_simple() {
        assert_eq!(slugify("My Repo_2"), "my-repo-2");
    }
}
