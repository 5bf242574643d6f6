//! `orchestrate`: run a feature to completion with the agents of `.kittify/config.yaml`.
//!
//! Each work package whose dependencies are done goes through: implement (worktree,
//! planned→doing) → WPAssigned(implementation) and the implementer's command, falling back to
//! the next implementer on failure (ErrorLogged, then WPAssigned with `retry_count`) → merge
//! into the target branch (doing→for_review) → WPAssigned(review) and the reviewer's command,
//! with the same fallbacks → accept on approval (done, DependencyResolved, and
//! FeatureCompleted after the last one). Up to `jobs` work packages run at once; steps that
//! touch the main checkout or decide completion run one at a time, each with a freshly read
//! log, so two finishing WPs can never both miss (or both record) FeatureCompleted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use serde::Serialize;

use super::agent_run::{self, AgentJob, AgentResult, phase_name};
use super::git::Git;
use super::{Attempt, Emitted, WorkflowError, Workspace, accept, implement, merge, runtime_error};
use crate::event::{AssignmentPhase, Lane, Payload};
use crate::project::agents::AgentsConfig;
use crate::project::{Feature, graph};

/// One line of progress about one work package.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub wp_id: String,
    pub message: String,
}

/// A work package orchestrate could not finish.
#[derive(Debug, Clone, Serialize)]
pub struct WpFailure {
    pub wp_id: String,
    /// `start`, `implementation`, `merge`, `review`, or `internal` (a bug: a worker panicked).
    pub phase: &'static str,
    pub reason: String,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct OrchestrateReport {
    pub feature: String,
    pub jobs: usize,
    /// Done at the end of the run (including WPs done before it).
    pub done: Vec<String>,
    /// Taken to done by this run.
    pub completed_now: Vec<String>,
    pub failed: Vec<WpFailure>,
    /// Not started because a dependency failed.
    pub blocked: Vec<String>,
    pub feature_completed: bool,
    pub events: Vec<Emitted>,
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Pending,
    Running,
    Done,
    Failed,
    Blocked,
}

/// What every worker shares.
struct Run<'a> {
    dir: &'a Path,
    feature: &'a Feature,
    agents: &'a AgentsConfig,
    log_dir: PathBuf,
    /// Serialises the steps that touch the main checkout or decide completion.
    main_lock: Mutex<()>,
    events: Mutex<Vec<Emitted>>,
    progress: &'a (dyn Fn(Progress) + Sync),
}

impl Run<'_> {
    fn say(&self, wp: &str, message: impl Into<String>) {
        (self.progress)(Progress {
            wp_id: wp.to_owned(),
            message: message.into(),
        });
    }

    /// Opens a fresh workspace, runs `f`, and keeps the events it recorded.
    fn with_ws<T>(&self, f: impl FnOnce(&Workspace) -> T) -> Result<T, WorkflowError> {
        let ws = Workspace::open(self.dir)?;
        let out = f(&ws);
        if let Ok(mut events) = self.events.lock() {
            events.extend(ws.emitted());
        }
        Ok(out)
    }

    fn locked<T>(&self, f: impl FnOnce(&Workspace) -> T) -> Result<T, WorkflowError> {
        let _guard = self.main_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.with_ws(f)
    }
}

/// Runs feature `feature` (or the inferred one) to completion with `jobs` parallel WPs.
pub fn orchestrate(
    ws: &Workspace,
    feature: Option<&str>,
    jobs: usize,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<OrchestrateReport, WorkflowError> {
    let feature = ws.feature(feature)?;
    let agents = AgentsConfig::load(ws.main_root())?;
    if jobs == 0 {
        return Err(WorkflowError::bad_argument(
            "--jobs must be at least 1",
            "e.g. --jobs 2",
        ));
    }
    merge::check_main_on_target(ws, &feature)?;
    let mut status: BTreeMap<String, Status> = BTreeMap::new();
    for wp in &feature.work_packages {
        let done = ws.lane(&feature, wp)? == Lane::Done;
        status.insert(
            wp.id.clone(),
            if done { Status::Done } else { Status::Pending },
        );
    }
    let run = Run {
        dir: ws.worktree_root(),
        feature: &feature,
        agents: &agents,
        log_dir: ws.log().common_dir().join("spec-kitty").join("orchestrate"),
        main_lock: Mutex::new(()),
        events: Mutex::new(Vec::new()),
        progress,
    };
    let failed = schedule(&run, &mut status, jobs);
    let events = run.events.into_inner().unwrap_or_else(|p| p.into_inner());
    let ids = |s: Status| -> Vec<String> {
        status
            .iter()
            .filter(|(_, v)| **v == s)
            .map(|(k, _)| k.clone())
            .collect()
    };
    let feature_completed = events.iter().any(|e| e.event_type == "FeatureCompleted")
        || ws
            .state()?
            .feature(&feature.slug)
            .is_some_and(|f| f.completed);
    Ok(OrchestrateReport {
        feature: feature.slug.clone(),
        jobs,
        done: ids(Status::Done),
        completed_now: events
            .iter()
            .filter(|e| e.summary.ends_with("for_review → done"))
            .filter_map(|e| e.summary.split_whitespace().nth(1).map(str::to_owned))
            .collect(),
        failed,
        blocked: ids(Status::Blocked),
        feature_completed,
        events,
    })
}

/// Starts every WP whose dependencies are done, up to `jobs` at a time, until nothing more
/// can run. Returns the failures.
fn schedule(run: &Run<'_>, status: &mut BTreeMap<String, Status>, jobs: usize) -> Vec<WpFailure> {
    schedule_with(
        run.feature,
        status,
        jobs,
        &|id, message| run.say(id, message),
        &|id| drive(run, id),
    )
}

/// What runs one WP to done, as [`schedule_with`] sees it.
type Work<'w> = dyn Fn(&str) -> Result<(), WpFailure> + Sync + 'w;

/// [`schedule`] with the work and the progress reporting passed in. A worker that panics is a
/// failure of its WP (phase `internal`), never a run that waits forever for its result.
fn schedule_with(
    feature: &Feature,
    status: &mut BTreeMap<String, Status>,
    jobs: usize,
    say: &(dyn Fn(&str, String) + Sync),
    work: &Work<'_>,
) -> Vec<WpFailure> {
    let order = graph::topological_order(feature);
    let deps = |id: &str| -> Vec<String> {
        feature
            .work_packages
            .iter()
            .find(|w| w.id == id)
            .map(|w| w.dependencies.clone())
            .unwrap_or_default()
    };
    let mut failures = Vec::new();
    let (tx, rx) = mpsc::channel::<(String, Result<(), WpFailure>)>();
    std::thread::scope(|scope| {
        let mut running = 0;
        loop {
            for id in &order {
                if status[id] != Status::Pending {
                    continue;
                }
                let d = deps(id);
                if d.iter()
                    .any(|d| matches!(status[d], Status::Failed | Status::Blocked))
                {
                    status.insert(id.clone(), Status::Blocked);
                    say(id, "blocked: a dependency failed".to_owned());
                } else if running < jobs && d.iter().all(|d| status[d] == Status::Done) {
                    status.insert(id.clone(), Status::Running);
                    running += 1;
                    let tx = tx.clone();
                    let id = id.clone();
                    scope.spawn(move || {
                        let result = run_caught(work, &id, say);
                        let _ = tx.send((id, result));
                    });
                }
            }
            if running == 0 {
                break;
            }
            // Every worker sends exactly one result (panics are caught), so this returns.
            let Ok((id, result)) = rx.recv() else { break };
            running -= 1;
            match result {
                Ok(()) => {
                    status.insert(id, Status::Done);
                }
                Err(f) => {
                    status.insert(id, Status::Failed);
                    failures.push(f);
                }
            }
        }
    });
    failures
}

/// Runs `work` for `id`, turning a panic into a failure of that WP.
fn run_caught(
    work: &Work<'_>,
    id: &str,
    say: &(dyn Fn(&str, String) + Sync),
) -> Result<(), WpFailure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(id))).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        let reason = format!("internal error (a bug in spec-kitty): {what}");
        say(id, format!("failed (internal): {reason}"));
        Err(WpFailure {
            wp_id: id.to_owned(),
            phase: "internal",
            reason,
        })
    })
}

/// Takes one WP from wherever it is to done.
fn drive(run: &Run<'_>, id: &str) -> Result<(), WpFailure> {
    let fail = |phase: &'static str, e: WorkflowError| {
        let attempt = Attempt {
            command: "orchestrate",
            feature: Some(&run.feature.slug),
            wp: Some(id),
            agent: None,
        };
        let _ = run.with_ws(|ws| ws.log_failure(&e, &attempt));
        let reason = e.to_string();
        run.say(id, format!("failed ({phase}): {reason}"));
        WpFailure {
            wp_id: id.to_owned(),
            phase,
            reason,
        }
    };
    let wp = run
        .feature
        .work_package(id)
        .map_err(|e| fail("start", e.into()))?;
    let lane = run
        .locked(|ws| ws.lane(run.feature, wp))
        .and_then(|r| r)
        .map_err(|e| fail("start", e))?;
    let worktree = Workspace::open(run.dir)
        .map(|ws| ws.wp_worktree(run.feature, id))
        .map_err(|e| fail("start", e))?;
    if lane == Lane::Planned {
        let first = run.agents.implementers.first().map(String::as_str);
        run.locked(|ws| implement::implement(ws, Some(&run.feature.slug), id, None, first))
            .and_then(|r| r)
            .map_err(|e| fail("start", e))?;
        run.say(
            id,
            format!("planned → doing; worktree {}", worktree.display()),
        );
    }
    if lane <= Lane::Doing {
        let agent = run_phase(run, wp, &worktree, AssignmentPhase::Implementation)?;
        let message = format!("{id}: {} (implemented by {agent})", wp.title);
        Git::new(&worktree)
            .commit_all(&message)
            .map_err(|e| fail("implementation", e.into()))?;
        let merged = run.locked(|ws| {
            let result = merge::merge_one(ws, run.feature, wp, &agent);
            if let Err(WorkflowError::Conflict { .. }) = &result {
                // Leave the main checkout usable for the other work packages.
                let _ = Git::new(ws.main_root()).merge_abort();
            }
            result
        });
        let merged = merged.and_then(|r| r).map_err(|e| fail("merge", e))?;
        run.say(
            id,
            format!(
                "merged into {} ({}) → for_review",
                merged.target_branch,
                merged.merge.replace('_', " ")
            ),
        );
    }
    let reviewer = run_phase(run, wp, &worktree, AssignmentPhase::Review)?;
    let accepted = run
        .locked(|ws| accept::accept(ws, Some(&run.feature.slug), Some(id), Some(&reviewer)))
        .and_then(|r| r)
        .map_err(|e| fail("review", e))?;
    let mut message = format!("approved by {reviewer} → done");
    if !accepted.completion.unblocked.is_empty() {
        message.push_str(&format!(
            "; unblocks {}",
            accepted.completion.unblocked.join(", ")
        ));
    }
    run.say(id, message);
    if accepted.completion.feature_completed {
        run.say(id, format!("feature {} complete", run.feature.slug));
    }
    Ok(())
}

/// Runs the agents of one phase in order until one succeeds; returns its name.
fn run_phase(
    run: &Run<'_>,
    wp: &crate::project::WorkPackage,
    worktree: &Path,
    phase: AssignmentPhase,
) -> Result<String, WpFailure> {
    let agents = match phase {
        AssignmentPhase::Implementation => &run.agents.implementers,
        AssignmentPhase::Review => &run.agents.reviewers,
    };
    let name = phase_name(phase);
    let mut reasons = Vec::new();
    for (attempt, agent) in agents.iter().enumerate() {
        let retry_count = u32::try_from(attempt).unwrap_or(u32::MAX);
        let assigned = Payload::WPAssigned {
            wp_id: wp.id.clone(),
            agent_id: agent.clone(),
            phase,
            retry_count,
            feature_slug: Some(run.feature.slug.clone()),
        };
        let _ = run.with_ws(|ws| ws.emit(&assigned, None));
        let retry = if attempt > 0 {
            format!(" (retry {attempt})")
        } else {
            String::new()
        };
        run.say(&wp.id, format!("{name}: {agent}{retry}"));
        let job = AgentJob {
            feature: run.feature,
            wp,
            worktree,
            phase,
            agent,
            attempt: retry_count,
        };
        match agent_run::run_agent(run.agents, &job, &run.log_dir) {
            AgentResult::Succeeded => return Ok(agent.clone()),
            AgentResult::Failed { reason, log } => {
                let message = format!(
                    "{name} of {} by {agent} failed: {reason} (output: {})",
                    wp.id,
                    log.display()
                );
                let error = runtime_error(message.clone(), Some(&wp.id), Some(agent));
                let _ = run.with_ws(|ws| ws.record_error(&error, None));
                run.say(&wp.id, message);
                reasons.push(format!("{agent}: {reason}"));
            }
        }
    }
    Err(WpFailure {
        wp_id: wp.id.clone(),
        phase: name,
        reason: format!("every {name} agent failed ({})", reasons.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wp(id: &str, deps: &[&str]) -> crate::project::WorkPackage {
        crate::project::WorkPackage {
            id: id.to_owned(),
            title: id.to_owned(),
            file_lane: Lane::Planned,
            dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
            subtasks: Vec::new(),
            path: PathBuf::from(format!("{id}.md")),
        }
    }

    #[test]
    fn a_panicking_worker_fails_its_wp_blocks_dependents_and_the_run_ends() {
        let feature = Feature {
            slug: "001-demo".into(),
            number: "001".into(),
            target_branch: "main".into(),
            created_at: None,
            friendly_name: None,
            dir: PathBuf::from("kitty-specs/001-demo"),
            work_packages: vec![wp("WP01", &[]), wp("WP02", &["WP01"]), wp("WP03", &[])],
        };
        // The run happens on its own thread so that a regression (a hang) fails the test
        // instead of stalling the suite.
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut status: BTreeMap<String, Status> = feature
                .work_packages
                .iter()
                .map(|w| (w.id.clone(), Status::Pending))
                .collect();
            let failures = schedule_with(&feature, &mut status, 2, &|_, _| {}, &|id| {
                if id == "WP01" {
                    panic!("worker bug");
                }
                Ok(())
            });
            let _ = done_tx.send((failures, status));
        });
        let (failures, status) = done_rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the run ends although a worker panicked");
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].wp_id, "WP01");
        assert_eq!(failures[0].phase, "internal");
        assert!(
            failures[0].reason.contains("worker bug"),
            "{:?}",
            failures[0]
        );
        assert_eq!(status["WP02"], Status::Blocked);
        assert_eq!(status["WP03"], Status::Done);
    }
}
