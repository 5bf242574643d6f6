//! Running one agent command for one work package: `sh -c <command>` inside the WP worktree,
//! with the WP's facts in the environment, its output captured in a log file under the common
//! git dir (never in the worktree, which must stay clean for the merge).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::event::AssignmentPhase;
use crate::project::agents::AgentsConfig;
use crate::project::{Feature, WorkPackage};

/// One agent run to do.
pub struct AgentJob<'a> {
    pub feature: &'a Feature,
    pub wp: &'a WorkPackage,
    pub worktree: &'a Path,
    pub phase: AssignmentPhase,
    pub agent: &'a str,
    pub attempt: u32,
}

/// How an agent run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentResult {
    Succeeded,
    /// It ran and failed: why (exit status, timeout, could not start), and where its output is.
    Failed {
        reason: String,
        log: PathBuf,
    },
}

pub fn phase_name(phase: AssignmentPhase) -> &'static str {
    match phase {
        AssignmentPhase::Implementation => "implementation",
        AssignmentPhase::Review => "review",
    }
}

/// Runs `job` with `config`'s command for its agent; its output goes to a log file in
/// `log_dir`.
pub fn run_agent(config: &AgentsConfig, job: &AgentJob<'_>, log_dir: &Path) -> AgentResult {
    let phase = phase_name(job.phase);
    let log = log_dir.join(format!(
        "{}-{}-{phase}-{}-{}.log",
        job.feature.slug, job.wp.id, job.attempt, job.agent
    ));
    let failed = |reason: String| AgentResult::Failed {
        reason,
        log: log.clone(),
    };
    let Some(command) = config.command(job.agent) else {
        return failed(format!("agent `{}` has no command", job.agent));
    };
    let out = std::fs::create_dir_all(log_dir).and_then(|_| std::fs::File::create(&log));
    let (stdout, stderr) = match out.and_then(|f| Ok((f.try_clone()?, f))) {
        Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
        Err(e) => return failed(format!("cannot create its log file: {e}")),
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&command)
        .current_dir(job.worktree)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    for (name, value) in [
        ("SPEC_KITTY_WP_ID", job.wp.id.clone()),
        ("SPEC_KITTY_FEATURE", job.feature.slug.clone()),
        ("SPEC_KITTY_TITLE", job.wp.title.clone()),
        ("SPEC_KITTY_WORKTREE", job.worktree.display().to_string()),
        ("SPEC_KITTY_WP_FILE", job.wp.path.display().to_string()),
        ("SPEC_KITTY_BRANCH", job.feature.wp_branch(&job.wp.id)),
        (
            "SPEC_KITTY_TARGET_BRANCH",
            job.feature.target_branch.clone(),
        ),
        ("SPEC_KITTY_PHASE", phase.to_owned()),
        ("SPEC_KITTY_AGENT", job.agent.to_owned()),
        ("SPEC_KITTY_ATTEMPT", job.attempt.to_string()),
    ] {
        cmd.env(name, value);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start `sh`: {e}")),
    };
    let secs = config.timeout_seconds();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return failed(format!("timed out after {secs} s"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => break Err(e),
        }
    };
    match status {
        Ok(s) if s.success() => AgentResult::Succeeded,
        Ok(s) => failed(match s.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_owned(),
        }),
        Err(e) => failed(format!("could not be waited for: {e}")),
    }
}
