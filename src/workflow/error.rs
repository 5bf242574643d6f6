use std::path::PathBuf;

use miette::Diagnostic;

use super::git::GitError;
use crate::event::ErrorType;
use crate::project::{IdentityError, ProjectError};
use crate::store::StoreError;

/// Why a workflow action did not happen. Each variant says what to run to fix it.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum WorkflowError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Project(#[from] ProjectError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Git(#[from] GitError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Identity(#[from] IdentityError),

    #[error("`{given}` is not a lane: expected one of planned, doing, for_review, done")]
    #[diagnostic(
        code(spec_kitty::workflow::bad_lane),
        help("e.g. `spec-kitty agent tasks move-task WP01 --to for_review`")
    )]
    BadLane { given: String },

    #[error("{wp} is already in {lane}: nothing to move")]
    #[diagnostic(
        code(spec_kitty::workflow::no_op_move),
        help("see where every work package is with `spec-kitty status`")
    )]
    NoOpMove { wp: String, lane: String },

    #[error("{wp} is in {lane}, but {action} needs it in {expected}")]
    #[diagnostic(code(spec_kitty::workflow::wrong_lane), help("{help}"))]
    WrongLane {
        wp: String,
        lane: String,
        action: &'static str,
        expected: &'static str,
        help: String,
    },

    #[error("{wp} cannot start: its dependencies are not done: {pending}")]
    #[diagnostic(
        code(spec_kitty::workflow::dependencies_not_done),
        help(
            "finish them first (`spec-kitty accept <WP>`), or build on an unfinished one with \
             `spec-kitty implement {wp} --base <WP>`"
        )
    )]
    DependenciesNotDone { wp: String, pending: String },

    #[error("branch {branch} does not exist, so {wp} cannot start from it")]
    #[diagnostic(code(spec_kitty::workflow::missing_branch), help("{help}"))]
    MissingBranch {
        wp: String,
        branch: String,
        help: String,
    },

    #[error("{} already exists and is not the worktree of {branch}", path.display())]
    #[diagnostic(
        code(spec_kitty::workflow::worktree_in_the_way),
        help("move it away (or `git worktree remove` it), then run the command again")
    )]
    WorktreeInTheWay { path: PathBuf, branch: String },

    #[error("the worktree of {wp} ({}) does not exist", path.display())]
    #[diagnostic(
        code(spec_kitty::workflow::no_worktree),
        help("create it with `spec-kitty implement {wp}`")
    )]
    NoWorktree { wp: String, path: PathBuf },

    #[error("this is not a work package worktree (branch: {branch})")]
    #[diagnostic(
        code(spec_kitty::workflow::not_a_wp_worktree),
        help(
            "run it inside `.worktrees/<feature>-WPnn`, or name the work package: `spec-kitty {command} WP01`"
        )
    )]
    NotAWpWorktree {
        branch: String,
        command: &'static str,
    },

    #[error("the main checkout ({}) is on {current}, not on {target}, the target branch of {feature}", main.display())]
    #[diagnostic(
        code(spec_kitty::workflow::main_on_other_branch),
        help("switch it first: `git -C {} switch {target}`", main.display())
    )]
    MainOnOtherBranch {
        main: PathBuf,
        current: String,
        target: String,
        feature: String,
    },

    #[error("{} has uncommitted changes: {files}", path.display())]
    #[diagnostic(
        code(spec_kitty::workflow::dirty_worktree),
        help("commit them (`git -C {} commit -am …`) or stash them, then run the command again", path.display())
    )]
    DirtyWorktree { path: PathBuf, files: String },

    /// `what` names the operation and the branches, e.g. `merge of X into Y`.
    #[error("{what} stopped on conflicts in: {files}")]
    #[diagnostic(code(spec_kitty::workflow::conflict), help("{help}"))]
    Conflict {
        what: String,
        files: String,
        help: String,
    },

    #[error("{what}")]
    #[diagnostic(code(spec_kitty::workflow::bad_argument), help("{help}"))]
    BadArgument { what: String, help: String },

    #[error("{what}")]
    #[diagnostic(code(spec_kitty::workflow::agent_failed), help("{help}"))]
    Agents { what: String, help: String },
}

impl WorkflowError {
    /// The `error_type` of the ErrorLogged event recorded for this failure.
    pub fn error_type(&self) -> ErrorType {
        match self {
            WorkflowError::Store(_)
            | WorkflowError::Git(_)
            | WorkflowError::Conflict { .. }
            | WorkflowError::Agents { .. } => ErrorType::Runtime,
            WorkflowError::Project(ProjectError::Io { .. }) => ErrorType::Runtime,
            _ => ErrorType::Validation,
        }
    }

    pub(crate) fn bad_argument(what: impl Into<String>, help: impl Into<String>) -> Self {
        WorkflowError::BadArgument {
            what: what.into(),
            help: help.into(),
        }
    }
}
