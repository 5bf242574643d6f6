//! Where a workflow command runs: the repository and its event log, the main checkout whose
//! `kitty-specs/` holds the features, the current worktree and branch, the derived workflow
//! state, and a journal of every event the command emitted.

use std::cell::{Ref, RefCell};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::emit::{EmitOutcome, Emitter};
use super::location::Location;
use super::state::{EventView, WorkflowState};
use super::{WorkflowError, state_cache};
use crate::event::{ErrorType, Lane, Payload, is_feature_slug, now_rfc3339};
use crate::project::{Feature, Project, WorkPackage, normalize_wp_id, parse_wp_branch};
use crate::store::EventLog;

/// One event a command tried to record, for its output.
#[derive(Debug, Clone, Serialize)]
pub struct Emitted {
    pub event_type: String,
    pub summary: String,
    /// `None` when it could not be recorded; `warning` says why.
    pub event_id: Option<String>,
    pub lamport_clock: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What a failed command was about, for the ErrorLogged event it records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attempt<'a> {
    pub command: &'a str,
    pub feature: Option<&'a str>,
    pub wp: Option<&'a str>,
    pub agent: Option<&'a str>,
}

/// A repository opened for workflow commands.
pub struct Workspace {
    emitter: Emitter,
    /// The log, opened separately only when the emitter could not be set up (e.g. a malformed
    /// config file): reads still work, emits report the problem.
    fallback_log: Option<EventLog>,
    project: Project,
    worktree_root: PathBuf,
    git_dir: PathBuf,
    branch: Option<String>,
    state: RefCell<Option<WorkflowState>>,
    journal: RefCell<Vec<Emitted>>,
    warnings: RefCell<Vec<String>>,
}

impl Workspace {
    /// Opens the repository containing `dir` (any worktree, any subdirectory).
    pub fn open(dir: &Path) -> Result<Workspace, WorkflowError> {
        let emitter = Emitter::open(dir);
        let warnings = emitter.take_setup_warnings();
        let fallback_log = match emitter.log() {
            Some(_) => None,
            None => Some(EventLog::discover(dir)?),
        };
        let log = emitter.log().or(fallback_log.as_ref()).ok_or_else(|| {
            WorkflowError::bad_argument("no repository", "run inside a git repository")
        })?;
        let here = Location::of(log, dir);
        Ok(Workspace {
            emitter,
            fallback_log,
            project: Project::new(here.main_root),
            worktree_root: here.worktree_root,
            git_dir: here.git_dir,
            branch: here.branch,
            state: RefCell::new(None),
            journal: RefCell::new(Vec::new()),
            warnings: RefCell::new(warnings),
        })
    }

    pub fn log(&self) -> &EventLog {
        match (self.emitter.log(), &self.fallback_log) {
            (Some(l), _) => l,
            (None, Some(l)) => l,
            // open() guarantees one of them.
            (None, None) => unreachable!("a workspace always has an event log"),
        }
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    /// The main checkout (where `kitty-specs/` and `.worktrees/` live).
    pub fn main_root(&self) -> &Path {
        &self.project.root
    }

    /// The worktree the command runs in.
    pub fn worktree_root(&self) -> &Path {
        &self.worktree_root
    }

    /// This worktree's own git dir (where a rebase in progress keeps its state).
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// The checked-out branch (short name), if HEAD is on one.
    pub fn branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }

    /// The work package this worktree's branch names, as (feature, WP id).
    pub fn current_wp(&self) -> Option<(&str, &str)> {
        self.branch().and_then(parse_wp_branch)
    }

    /// The work package `wp` names, or, without one, the WP of the worktree the command runs
    /// in (an error naming `command` when it is not a WP worktree of `feature`).
    pub fn named_or_current_wp<'f>(
        &self,
        feature: &'f Feature,
        wp: Option<&str>,
        command: &'static str,
    ) -> Result<&'f WorkPackage, WorkflowError> {
        match (wp, self.current_wp()) {
            (Some(wp), _) => Ok(feature.work_package(wp)?),
            (None, Some((f, wp))) if f == feature.slug => Ok(feature.work_package(wp)?),
            (None, _) => Err(WorkflowError::NotAWpWorktree {
                branch: self.branch().unwrap_or("(detached HEAD)").to_owned(),
                command,
            }),
        }
    }

    /// Resolves and loads the feature a command is about (see [`Project::resolve_slug`]).
    pub fn feature(&self, explicit: Option<&str>) -> Result<Feature, WorkflowError> {
        Ok(self.project.feature(explicit, self.branch())?)
    }

    /// The `.worktrees/<feature>-WPnn` directory of a work package.
    pub fn wp_worktree(&self, feature: &Feature, wp: &str) -> PathBuf {
        self.main_root()
            .join(".worktrees")
            .join(feature.wp_branch(wp))
    }

    /// The derived workflow state (loaded once per command, kept current by [`Self::emit`]).
    pub fn state(&self) -> Result<Ref<'_, WorkflowState>, WorkflowError> {
        if self.state.borrow().is_none() {
            let state = state_cache::load(self.log())?;
            *self.state.borrow_mut() = Some(state);
        }
        Ok(Ref::map(self.state.borrow(), |s| {
            s.as_ref().expect("loaded above")
        }))
    }

    /// The current lane of `wp`: its last status event, else its file's `lane:`.
    pub fn lane(&self, feature: &Feature, wp: &WorkPackage) -> Result<Lane, WorkflowError> {
        Ok(self
            .state()?
            .lane(&feature.slug, &wp.id)
            .map_or(wp.file_lane, |m| m.lane))
    }

    /// Who is acting: `explicit`, else git's user.name, else the OS user.
    pub fn actor(&self, explicit: Option<&str>) -> String {
        if let Some(a) = explicit.map(str::trim).filter(|a| !a.is_empty()) {
            return a.to_owned();
        }
        if let Some(name) = self.log().git_user_name() {
            return name.to_owned();
        }
        crate::event::host_and_user().1
    }

    /// Records one event through the one emission path and notes it in the journal. Never
    /// fails: a warning in the journal says what went wrong.
    pub fn emit(&self, payload: &Payload, causation_id: Option<&str>) -> EmitOutcome {
        let outcome = self.emitter.emit(payload, causation_id);
        self.note(payload, &outcome);
        outcome
    }

    fn note(&self, payload: &Payload, outcome: &EmitOutcome) {
        let map = payload.to_map();
        let appended = match outcome {
            EmitOutcome::Recorded(a) => Some(a),
            EmitOutcome::NotRecorded { .. } => None,
        };
        if let (Some(a), Some(state)) = (appended, self.state.borrow_mut().as_mut()) {
            let timestamp = now_rfc3339();
            state.apply(EventView {
                event_type: payload.event_type().as_str(),
                payload: &map,
                lamport_clock: a.lamport_clock,
                node_id: self.log().node_id(),
                event_id: &a.event_id,
                timestamp: &timestamp,
            });
        }
        let summary = crate::event::Event::new(payload, &Default::default(), None, None).summary();
        self.journal.borrow_mut().push(Emitted {
            event_type: payload.event_type().as_str().to_owned(),
            summary,
            event_id: appended.map(|a| a.event_id.clone()),
            lamport_clock: appended.map(|a| a.lamport_clock),
            warning: outcome.warning().map(str::to_owned),
        });
    }

    /// Every event this command tried to record, in order.
    pub fn emitted(&self) -> Vec<Emitted> {
        self.journal.borrow().clone()
    }

    /// The live-sync connection state to show after this command's events (see
    /// [`Emitter::live_state`]).
    pub fn live_state(&self) -> Option<String> {
        self.emitter.live_state()
    }

    /// Warnings for the user: setup problems and events that could not be recorded. Taken once.
    pub fn take_warnings(&self) -> Vec<String> {
        let mut out = std::mem::take(&mut *self.warnings.borrow_mut());
        out.extend(
            self.journal
                .borrow()
                .iter()
                .filter_map(|e| e.warning.clone()),
        );
        out
    }

    /// Records an ErrorLogged event for a failed command: with the WP when the failure is
    /// about a known work package, else on the feature; when the feature cannot be told, with
    /// the WP id as given. Returns `None` when there is nothing to attach the error to.
    pub fn log_failure(&self, err: &WorkflowError, attempt: &Attempt<'_>) -> Option<EmitOutcome> {
        let slug = attempt
            .feature
            .filter(|f| is_feature_slug(f))
            .map(str::to_owned)
            .or_else(|| {
                self.project
                    .resolve_slug(attempt.feature, self.branch())
                    .ok()
            });
        // The WP when it exists in the feature; when no feature could be told at all, the WP
        // id as given (still the best thing to attach the error to).
        let wp = attempt
            .wp
            .and_then(|w| normalize_wp_id(w).ok())
            .filter(|w| match &slug {
                Some(s) => self
                    .project
                    .load_feature(s)
                    .is_ok_and(|f| f.work_packages.iter().any(|p| &p.id == w)),
                None => true,
            });
        let first_line = err.to_string().lines().next().unwrap_or("").to_owned();
        let message = match &slug {
            Some(s) => format!("{} [{s}]: {first_line}", attempt.command),
            None => format!("{}: {first_line}", attempt.command),
        };
        let payload = Payload::ErrorLogged {
            error_type: err.error_type(),
            error_message: message,
            wp_id: wp.clone(),
            stack_trace: None,
            agent_id: attempt.agent.map(str::to_owned),
        };
        self.record_error(&payload, slug)
    }

    /// Records an ErrorLogged payload. Its aggregate is the WP it names, else `feature`; with
    /// neither there is nothing to attach it to and `None` is returned.
    pub fn record_error(&self, payload: &Payload, feature: Option<String>) -> Option<EmitOutcome> {
        let names_wp = matches!(payload, Payload::ErrorLogged { wp_id: Some(_), .. });
        let aggregate = if names_wp { None } else { Some(feature?) };
        let outcome =
            match self
                .emitter
                .try_emit(payload.event_type(), payload.to_map(), None, aggregate)
            {
                Ok(a) => EmitOutcome::Recorded(a),
                Err(e) => EmitOutcome::NotRecorded {
                    warning: format!("ErrorLogged not recorded: {}", e.one_line()),
                },
            };
        self.note(payload, &outcome);
        Some(outcome)
    }
}

/// An ErrorLogged payload for a runtime problem of an agent or a git step.
pub fn runtime_error(message: String, wp: Option<&str>, agent: Option<&str>) -> Payload {
    Payload::ErrorLogged {
        error_type: ErrorType::Runtime,
        error_message: message,
        wp_id: wp.map(str::to_owned),
        stack_trace: None,
        agent_id: agent.map(str::to_owned),
    }
}
