//! Git hooks: the stubs `spec-kitty hooks install` places in the hooks directory, the
//! installer, and the handlers the stubs call (`spec-kitty hooks run <hook> …`).
//!
//! The stubs (in `hooks/` at the top of the repository, embedded here) are tiny POSIX `sh`
//! scripts that run any hook that was there before (chained), then call this binary by
//! absolute path — GUI git clients run hooks without the user's PATH. Handlers never fail git:
//! they return an outcome, and the CLI prints at most one warning line.

mod files;
pub mod handlers;
pub mod install;
pub mod location;
pub mod status;

use std::path::PathBuf;

use miette::Diagnostic;

/// The hooks spec-kitty installs, in the order they are reported.
pub const HOOK_NAMES: [&str; 3] = ["post-commit", "post-merge", "post-checkout"];

/// The text every stub carries; how the installer recognises its own files.
pub const STUB_MARKER: &str = "spec-kitty hook stub";

/// The placeholder the installer replaces with the absolute path of the binary (quoted).
pub const BIN_PLACEHOLDER: &str = "@SPEC_KITTY_BIN@";

/// The directory, inside the hooks directory, holding the hooks that were in place before
/// spec-kitty (each under its own name); the stub of `<hook>` runs `.spec-kitty-chained/<hook>`
/// first.
pub const CHAINED_DIR: &str = ".spec-kitty-chained";

/// The suffix under which older installs kept a chained hook (`<hook>.spec-kitty-chained`);
/// install moves such a hook into [`CHAINED_DIR`].
pub const CHAINED_SUFFIX: &str = ".spec-kitty-chained";

/// The environment variable that turns every spec-kitty hook off (`SPEC_KITTY_HOOKS=0`).
pub const DISABLE_VAR: &str = "SPEC_KITTY_HOOKS";

/// The stub template of `hook`, as shipped in `hooks/<hook>`.
pub fn stub_template(hook: &str) -> Option<&'static str> {
    match hook {
        "post-commit" => Some(include_str!("../../hooks/post-commit")),
        "post-merge" => Some(include_str!("../../hooks/post-merge")),
        "post-checkout" => Some(include_str!("../../hooks/post-checkout")),
        _ => None,
    }
}

/// Whether `SPEC_KITTY_HOOKS=0` is set in this process's environment.
pub fn disabled_by_env() -> bool {
    std::env::var(DISABLE_VAR).is_ok_and(|v| v.trim() == "0")
}

/// Why hooks could not be installed, removed or inspected.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum HooksError {
    #[error("{} is not inside a git repository", path.display())]
    #[diagnostic(
        code(spec_kitty::hooks::not_a_repository),
        help("run `spec-kitty hooks install` inside the repository whose hooks you want")
    )]
    NotARepository { path: PathBuf },

    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(
        code(spec_kitty::hooks::io),
        help("check the permissions of the hooks directory (`git rev-parse --git-path hooks`)")
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot tell where this spec-kitty binary is: {source}")]
    #[diagnostic(
        code(spec_kitty::hooks::no_executable),
        help("run spec-kitty by its full path, e.g. `/usr/local/bin/spec-kitty hooks install`")
    )]
    NoExecutable { source: std::io::Error },

    #[error(
        "{} exists and so does {}: spec-kitty will not overwrite either",
        hook.display(),
        chained.display()
    )]
    #[diagnostic(
        code(spec_kitty::hooks::both_exist),
        help(
            "merge them into one hook yourself (or remove one), then run `spec-kitty hooks install` again"
        )
    )]
    ChainOccupied { hook: PathBuf, chained: PathBuf },

    #[error(
        "core.hooksPath comes from your {scope} git config ({file}): {} is shared by every \
         repository, so spec-kitty will not install its hooks there unasked",
        dir.display()
    )]
    #[diagnostic(
        code(spec_kitty::hooks::shared_hooks_dir),
        help(
            "either give this repository its own hooks directory — `git config --local \
             core.hooksPath {local_dir}` (copy in any shared hook it should keep running) — then \
             run `spec-kitty hooks install`; or install into the shared directory knowingly with \
             `spec-kitty hooks install --shared` (the stubs then run in every repository and do \
             nothing where there is no spec-kitty project, at the cost of one process start)"
        )
    )]
    SharedHooksDir {
        dir: PathBuf,
        scope: &'static str,
        file: String,
        /// The repository's default hooks dir, shell-quoted.
        local_dir: String,
    },

    #[error("`{0}` is not a hook spec-kitty handles (post-commit, post-merge, post-checkout)")]
    #[diagnostic(
        code(spec_kitty::hooks::unknown_hook),
        help("reinstall the stubs with `spec-kitty hooks install`")
    )]
    UnknownHook(String),
}

impl HooksError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        HooksError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
