use std::path::PathBuf;

use miette::Diagnostic;

/// Everything that can be wrong with a project's specs: the feature directories under
/// `kitty-specs/`, their `meta.json`, `tasks.md` and work package files. Every variant names
/// the file to fix.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ProjectError {
    #[error("{} does not exist: this project has no features yet", path.display())]
    #[diagnostic(
        code(spec_kitty::project::no_specs),
        help(
            "create a feature directory `kitty-specs/<NNN-slug>/` with a meta.json and \
             tasks/WPnn-*.md files (see docs/reference/workflow.md), then run \
             `spec-kitty agent feature finalize-tasks`"
        )
    )]
    NoSpecs { path: PathBuf },

    #[error("no feature `{slug}` in {}", dir.display())]
    #[diagnostic(
        code(spec_kitty::project::unknown_feature),
        help("known features: {known}; list them with `spec-kitty status`")
    )]
    UnknownFeature {
        slug: String,
        dir: PathBuf,
        known: String,
    },

    #[error("which feature? this project has several: {known}")]
    #[diagnostic(
        code(spec_kitty::project::ambiguous_feature),
        help(
            "pass `--feature <slug>`, or run the command inside a WP worktree, whose branch names its feature"
        )
    )]
    AmbiguousFeature { known: String },

    #[error("`{given}` is not a feature slug (expected NNN-slug, e.g. 001-checkout-flow)")]
    #[diagnostic(
        code(spec_kitty::project::bad_feature_slug),
        help("list the features with `spec-kitty status`")
    )]
    BadFeatureSlug { given: String },

    #[error("{} is missing: every feature needs one", path.display())]
    #[diagnostic(
        code(spec_kitty::project::missing_meta),
        help(
            "create it with at least {{\"feature_number\": \"NNN\", \"slug\": \"NNN-name\", \
             \"target_branch\": \"main\"}} (see docs/reference/workflow.md)"
        )
    )]
    MissingMeta { path: PathBuf },

    #[error("{}:{line}:{column}: malformed {what}: {message}", path.display())]
    #[diagnostic(
        code(spec_kitty::project::malformed),
        help("fix the syntax at that line; nothing was recorded")
    )]
    Malformed {
        path: PathBuf,
        what: &'static str,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{}: {what}", path.display())]
    #[diagnostic(
        code(spec_kitty::project::invalid),
        help(
            "fix the file (docs/reference/workflow.md describes the format); nothing was recorded"
        )
    )]
    Invalid { path: PathBuf, what: String },

    #[error("{}: no YAML frontmatter (a `---` line, the fields, and a closing `---` line)", path.display())]
    #[diagnostic(
        code(spec_kitty::project::missing_frontmatter),
        help(
            "start the file with a frontmatter block holding work_package_id, title, lane, \
             dependencies and subtasks (see docs/reference/workflow.md)"
        )
    )]
    MissingFrontmatter { path: PathBuf },

    #[error("{wp} is defined twice: {} and {}", first.display(), second.display())]
    #[diagnostic(
        code(spec_kitty::project::duplicate_wp),
        help("give one of them another work_package_id (and file name)")
    )]
    DuplicateWorkPackage {
        wp: String,
        first: PathBuf,
        second: PathBuf,
    },

    #[error("{}: {wp} depends on {dependency}, which is not a work package of {feature}", path.display())]
    #[diagnostic(
        code(spec_kitty::project::unknown_dependency),
        help("fix `dependencies:` in that file; known work packages: {known}")
    )]
    UnknownDependency {
        path: PathBuf,
        feature: String,
        wp: String,
        dependency: String,
        known: String,
    },

    #[error("dependency cycle in {feature}: {cycle} (files: {files})")]
    #[diagnostic(
        code(spec_kitty::project::dependency_cycle),
        help("remove one of these dependencies so that the work packages can be ordered")
    )]
    DependencyCycle {
        feature: String,
        cycle: String,
        files: String,
    },

    #[error("no work package {wp} in {feature} ({})", dir.display())]
    #[diagnostic(
        code(spec_kitty::project::unknown_wp),
        help(
            "known work packages: {known}; see the board with `spec-kitty status --feature {feature}`"
        )
    )]
    UnknownWorkPackage {
        feature: String,
        wp: String,
        dir: PathBuf,
        known: String,
    },

    #[error("`{given}` is not a work package id (expected WP and two digits, e.g. WP01)")]
    #[diagnostic(
        code(spec_kitty::project::bad_wp_id),
        help("see the work packages with `spec-kitty status`")
    )]
    BadWpId { given: String },

    #[error("{}: no checkbox line for subtask {subtask} (expected `- [ ] {subtask} …`)", path.display())]
    #[diagnostic(
        code(spec_kitty::project::unknown_subtask),
        help("add the subtask to tasks.md, or check the id")
    )]
    UnknownSubtask { path: PathBuf, subtask: String },

    #[error("subtask {subtask} belongs to no work package: no WP file lists it under `subtasks:` and no `WPnn` heading precedes it in {}", path.display())]
    #[diagnostic(
        code(spec_kitty::project::orphan_subtask),
        help("list it under `subtasks:` in its work package file")
    )]
    OrphanSubtask { path: PathBuf, subtask: String },

    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(
        code(spec_kitty::project::io),
        help("check that the file exists and that you may read and write it")
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ProjectError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ProjectError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        ProjectError::Invalid {
            path: path.into(),
            what: what.into(),
        }
    }

    pub(crate) fn yaml(
        path: impl Into<PathBuf>,
        line_offset: usize,
        e: &serde_norway::Error,
    ) -> Self {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        ProjectError::Malformed {
            path: path.into(),
            what: "YAML",
            line: line + line_offset,
            column,
            message: e.to_string(),
        }
    }
}
