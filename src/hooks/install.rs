//! Installing and removing the hook stubs.
//!
//! Stubs go where git actually looks: `core.hooksPath` when set (a relative value is relative
//! to the worktree root, as git resolves it), else `<common git dir>/hooks`. A hook already
//! there is never overwritten: it is moved to `.spec-kitty-chained/<hook>` and the stub runs
//! it first, under its own name; uninstalling puts it back. What hook managers leave behind is
//! recognised: our stub renamed by `lefthook install` (`<hook>.old`, which lefthook never
//! runs) is removed, our stub renamed by `pre-commit install` (`<hook>.legacy`, which
//! pre-commit runs) is kept and refreshed, and leftovers identical to what they would replace
//! never block a reinstall. husky owns its hooks directory: we say exactly what to add to its
//! scripts instead.

use std::path::Path;

use super::files::{self, Kind, chained_path, old_chained_path, shell_quote};
pub use super::location::{ConfigScope, HooksLocation, HooksPathOrigin, Manager, locate};
pub use super::status::{HookReport, HookState, HooksReport, WorktreeHooks, hook_command, status};
use super::status::{lefthook_configs, status_with};
use super::{BIN_PLACEHOLDER, CHAINED_DIR, HOOK_NAMES, HooksError, stub_template};

/// Whether `install` may write into a hooks directory shared by every repository (one that
/// `core.hooksPath` in the global or system git config names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharedDir {
    /// Refuse, explaining the two remedies.
    #[default]
    Refuse,
    /// Install there knowingly (`hooks install --shared`): the stubs then run in every
    /// repository and do nothing where there is no spec-kitty project.
    Allow,
}

/// Installs the stubs for the repository containing `dir`, calling `binary`.
pub fn install(dir: &Path, binary: &Path, shared: SharedDir) -> Result<HooksReport, HooksError> {
    let loc = locate(dir)?;
    if let Some(origin) = &loc.hooks_path_origin
        && origin.scope.is_shared()
        && shared == SharedDir::Refuse
    {
        return Err(HooksError::SharedHooksDir {
            dir: loc.dir.clone(),
            scope: origin.scope.as_str(),
            file: origin
                .file
                .as_ref()
                .map_or_else(|| "unknown file".to_owned(), |f| f.display().to_string()),
            local_dir: shell_quote(&loc.default_dir.to_string_lossy()),
        });
    }
    let binary = binary.to_string_lossy().into_owned();
    if let Some(Manager::Husky { .. }) = &loc.manager {
        // husky rewrites its directory; the stubs would vanish (and break its dispatch).
        return status_with(loc, Some(&binary));
    }
    std::fs::create_dir_all(&loc.dir).map_err(|e| HooksError::io("create", &loc.dir, e))?;
    for name in HOOK_NAMES {
        if lefthook_calls_us(&loc, name) {
            // lefthook runs spec-kitty from its config: a stub on top would only run it twice,
            // and `lefthook install` would rename it anyway.
            clear_leftovers(&loc.dir, name)?;
            continue;
        }
        install_one(&loc.dir, name, &binary)?;
    }
    status_with(loc, Some(&binary))
}

/// Whether git runs lefthook's script for `name` and lefthook's config calls spec-kitty.
fn lefthook_calls_us(loc: &HooksLocation, name: &str) -> bool {
    files::read(&loc.dir.join(name)).is_some_and(|t| files::kind(&t) == Kind::Lefthook)
        && lefthook_configs(&loc.worktree_root)
            .any(|c| files::read(&c).is_some_and(|t| files::calls_us(&t, name)))
}

/// Installs the stub of `name` in `dir`.
fn install_one(dir: &Path, name: &str, binary: &str) -> Result<(), HooksError> {
    let template = stub_template(name).ok_or_else(|| HooksError::UnknownHook(name.into()))?;
    let stub = template.replace(BIN_PLACEHOLDER, &shell_quote(binary));
    let path = dir.join(name);
    let chained = chained_path(dir, name);
    clear_leftovers(dir, name)?;
    let legacy = dir.join(format!("{name}.legacy"));
    if files::read(&path).is_some_and(|t| files::kind(&t) == Kind::PreCommit)
        && files::is_stub(&legacy)
    {
        // pre-commit kept our stub as `<hook>.legacy` and runs it: refresh it there. A copy
        // of pre-commit's script chained by an earlier install is a leftover.
        if files::identical(&path, &chained) {
            files::remove(&chained)?;
        }
        return files::write_executable(&legacy, &stub);
    }
    if files::occupied(&path) && !files::is_stub(&path) {
        if files::occupied(&chained) {
            if files::identical(&path, &chained) || files::is_stub(&chained) {
                files::remove(&chained)?;
            } else {
                return Err(HooksError::ChainOccupied {
                    hook: path,
                    chained,
                });
            }
        }
        // A symlink (even a dangling one) is moved as the link it is, never followed.
        files::move_to(&path, &chained)?;
    }
    files::write_executable(&path, &stub)
}

/// Removes what an earlier install or a hook manager left of ours next to `name`, and moves a
/// hook chained the old way (`<hook>.spec-kitty-chained`) to where stubs look now. Fails only
/// when a leftover differs from the hook it would replace.
fn clear_leftovers(dir: &Path, name: &str) -> Result<(), HooksError> {
    let path = dir.join(name);
    let chained = chained_path(dir, name);
    let old = old_chained_path(dir, name);
    if files::occupied(&old) {
        if files::is_stub(&old) {
            files::remove(&old)?;
        } else if !files::occupied(&chained) {
            files::move_to(&old, &chained)?;
        } else if files::identical(&old, &chained) {
            files::remove(&old)?;
        } else {
            return Err(HooksError::ChainOccupied { hook: old, chained });
        }
    }
    // lefthook renamed our stub and never runs it.
    let renamed = dir.join(format!("{name}.old"));
    if files::is_stub(&renamed) {
        files::remove(&renamed)?;
    }
    // A chained stub of ours would only run us twice.
    if files::is_stub(&chained) {
        files::remove(&chained)?;
    }
    // A `.legacy` stub that pre-commit no longer runs.
    let legacy = dir.join(format!("{name}.legacy"));
    let pre_commit = files::read(&path).is_some_and(|t| files::kind(&t) == Kind::PreCommit);
    if !pre_commit && files::is_stub(&legacy) {
        files::remove(&legacy)?;
    }
    Ok(())
}

/// Removes the stubs (from the hooks directory git uses, and from the default one if they
/// were left there), whatever a hook manager renamed them to, and puts chained hooks back.
pub fn uninstall(dir: &Path) -> Result<HooksReport, HooksError> {
    let loc = locate(dir)?;
    let mut dirs = vec![loc.dir.clone()];
    if loc.default_dir != loc.dir {
        dirs.push(loc.default_dir.clone());
    }
    for d in &dirs {
        for name in HOOK_NAMES {
            uninstall_one(d, name)?;
        }
        // Gone once empty; a hook we could not put back stays, and so does the directory.
        let _ = std::fs::remove_dir(d.join(CHAINED_DIR));
    }
    status_with(loc, None)
}

fn uninstall_one(dir: &Path, name: &str) -> Result<(), HooksError> {
    let path = dir.join(name);
    for p in [
        path.clone(),
        dir.join(format!("{name}.old")),
        dir.join(format!("{name}.legacy")),
        old_chained_path(dir, name),
    ] {
        if files::is_stub(&p) {
            files::remove(&p)?;
        }
    }
    for chained in [chained_path(dir, name), old_chained_path(dir, name)] {
        if !files::occupied(&chained) {
            continue;
        }
        if !files::occupied(&path) {
            std::fs::rename(&chained, &path).map_err(|e| HooksError::io("restore", &chained, e))?;
        } else if files::identical(&chained, &path) {
            files::remove(&chained)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::{CHAINED_SUFFIX, STUB_MARKER};

    #[test]
    fn every_stub_calls_its_handler_and_chains_under_the_hooks_own_name() {
        for name in HOOK_NAMES {
            let t = stub_template(name).unwrap();
            assert!(t.starts_with("#!/bin/sh\n") && t.contains(STUB_MARKER));
            assert!(t.contains(&format!("hooks run {name} \"$@\"")));
            assert!(t.contains(CHAINED_SUFFIX) && t.contains(BIN_PLACEHOLDER));
            assert!(t.contains("/.spec-kitty-chained/${0##*/}"));
        }
    }
}
