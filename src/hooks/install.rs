//! Installing, removing and inspecting the hook stubs.
//!
//! Stubs go where git actually looks: `core.hooksPath` when set (a relative value is relative
//! to the worktree root, as git resolves it), else `<common git dir>/hooks`. A hook already
//! there is never overwritten: it is renamed to `<name>.spec-kitty-chained` and the stub runs
//! it first; uninstalling puts it back. Hook managers are recognised: husky owns its hooks
//! directory, so we say exactly what to add to its scripts; lefthook and pre-commit hooks are
//! chained (and for lefthook we say what to add so that `lefthook install` keeps us).

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use super::location::{ConfigScope, HooksLocation, HooksPathOrigin, Manager, locate};
use super::{
    BIN_PLACEHOLDER, CHAINED_SUFFIX, HOOK_NAMES, HooksError, STUB_MARKER, disabled_by_env,
    stub_template,
};

/// The state of one hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookState {
    Installed,
    Missing,
    /// Installed somewhere git does not run it, or turned off by SPEC_KITTY_HOOKS=0.
    Bypassed,
}

#[derive(Debug, Clone, Serialize)]
pub struct HookReport {
    pub name: &'static str,
    pub state: HookState,
    /// The file git runs for this hook.
    pub path: PathBuf,
    /// The pre-existing hook the stub runs first, if any.
    pub chained: Option<PathBuf>,
    /// The spec-kitty binary the stub calls.
    pub binary: Option<String>,
    /// Why it is bypassed, or what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `hooks status` (and the result of install/uninstall).
#[derive(Debug, Clone, Serialize)]
pub struct HooksReport {
    #[serde(flatten)]
    pub location: HooksLocation,
    pub disabled_by_env: bool,
    pub hooks: Vec<HookReport>,
    /// What the user should do by hand, if anything (exact lines to add).
    pub advice: Vec<String>,
}

/// `'path'` with any `'` escaped, for the stub.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The binary a stub calls (the single-quoted word after `[ -x `).
fn stub_binary(text: &str) -> Option<String> {
    let rest = &text[text.find("[ -x '")? + 5..];
    let mut out = String::new();
    let mut chars = rest.chars();
    loop {
        // Each quoted segment: '…', possibly joined by \' escapes.
        if chars.next()? != '\'' {
            return None;
        }
        for c in chars.by_ref() {
            if c == '\'' {
                break;
            }
            out.push(c);
        }
        let tail = chars.as_str();
        if let Some(after) = tail.strip_prefix("\\'") {
            out.push('\'');
            chars = after.chars();
        } else {
            return Some(out);
        }
    }
}

fn is_stub(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(STUB_MARKER))
}

fn chained_path(hook: &Path) -> PathBuf {
    let mut s = hook.as_os_str().to_owned();
    s.push(CHAINED_SUFFIX);
    PathBuf::from(s)
}

/// The line a user adds to a husky or lefthook setup to call spec-kitty from `hook`.
pub fn hook_command(binary: &str, hook: &str) -> String {
    format!("{} hooks run {hook} \"$@\"", shell_quote(binary))
}

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
        let path = loc.dir.join(name);
        let chained = chained_path(&path);
        if path.exists() && !is_stub(&path) {
            if chained.exists() {
                return Err(HooksError::ChainOccupied {
                    hook: path,
                    chained,
                });
            }
            std::fs::rename(&path, &chained).map_err(|e| HooksError::io("rename", &path, e))?;
        }
        let template = stub_template(name).ok_or_else(|| HooksError::UnknownHook(name.into()))?;
        write_executable(
            &path,
            &template.replace(BIN_PLACEHOLDER, &shell_quote(&binary)),
        )?;
    }
    status_with(loc, Some(&binary))
}

fn write_executable(path: &Path, text: &str) -> Result<(), HooksError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| HooksError::io("write", path, e))?;
    std::fs::write(tmp.path(), text).map_err(|e| HooksError::io("write", path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| HooksError::io("make executable", path, e))?;
    }
    tmp.persist(path)
        .map_err(|e| HooksError::io("replace", path, e.error))?;
    Ok(())
}

/// Removes the stubs (from the hooks directory git uses, and from the default one if they
/// were left there) and puts chained hooks back.
pub fn uninstall(dir: &Path) -> Result<HooksReport, HooksError> {
    let loc = locate(dir)?;
    let mut dirs = vec![loc.dir.clone()];
    if loc.default_dir != loc.dir {
        dirs.push(loc.default_dir.clone());
    }
    for d in &dirs {
        for name in HOOK_NAMES {
            let path = d.join(name);
            let chained = chained_path(&path);
            if is_stub(&path) {
                std::fs::remove_file(&path).map_err(|e| HooksError::io("remove", &path, e))?;
            }
            if chained.exists() && !path.exists() {
                std::fs::rename(&chained, &path)
                    .map_err(|e| HooksError::io("restore", &chained, e))?;
            }
        }
    }
    status_with(loc, None)
}

/// Reports installed / missing / bypassed for every hook.
pub fn status(dir: &Path) -> Result<HooksReport, HooksError> {
    let loc = locate(dir)?;
    status_with(loc, None)
}

fn status_with(loc: HooksLocation, binary: Option<&str>) -> Result<HooksReport, HooksError> {
    let env_off = disabled_by_env();
    let mut hooks = Vec::new();
    for name in HOOK_NAMES {
        hooks.push(hook_report(&loc, name, env_off));
    }
    let current = std::env::current_exe()
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let binary = binary
        .map(str::to_owned)
        .or_else(|| hooks.iter().find_map(|h| h.binary.clone()))
        .or(current)
        .unwrap_or_else(|| "spec-kitty".to_owned());
    let advice = advice(&loc, &hooks, &binary);
    Ok(HooksReport {
        location: loc,
        disabled_by_env: env_off,
        hooks,
        advice,
    })
}

fn hook_report(loc: &HooksLocation, name: &'static str, env_off: bool) -> HookReport {
    let path = loc.dir.join(name);
    let text = std::fs::read_to_string(&path).ok();
    let ours = text.as_deref().is_some_and(|t| t.contains(STUB_MARKER));
    let via_manager = match &loc.manager {
        Some(Manager::Husky { scripts_dir }) => mentions_us(&scripts_dir.join(name), name),
        Some(Manager::Lefthook { config }) => mentions_us(config, name),
        _ => false,
    };
    let chained = Some(chained_path(&path)).filter(|c| c.exists());
    let binary = text.as_deref().and_then(stub_binary);
    let stray = loc.default_dir != loc.dir && is_stub(&loc.default_dir.join(name));
    let (state, note) = if (ours || via_manager) && env_off {
        (
            HookState::Bypassed,
            Some("SPEC_KITTY_HOOKS=0 is set".to_owned()),
        )
    } else if ours || via_manager {
        let gone = binary.as_deref().is_some_and(|b| !Path::new(b).exists());
        let note = gone.then(|| {
            "the binary it calls no longer exists: run `spec-kitty hooks install` again".to_owned()
        });
        (HookState::Installed, note)
    } else if stray {
        let note = format!(
            "installed in {}, but core.hooksPath makes git run hooks from {}",
            loc.default_dir.display(),
            loc.dir.display()
        );
        (HookState::Bypassed, Some(note))
    } else {
        (HookState::Missing, None)
    };
    HookReport {
        name,
        state,
        path,
        chained,
        binary,
        note,
    }
}

fn mentions_us(file: &Path, hook: &str) -> bool {
    std::fs::read_to_string(file).is_ok_and(|t| t.contains(&format!("hooks run {hook}")))
}

fn advice(loc: &HooksLocation, hooks: &[HookReport], binary: &str) -> Vec<String> {
    let mut out = Vec::new();
    match &loc.manager {
        Some(Manager::Husky { scripts_dir }) => {
            for h in hooks.iter().filter(|h| h.state == HookState::Missing) {
                out.push(format!(
                    "husky manages this repository's hooks: add this line to {}: {}",
                    scripts_dir.join(h.name).display(),
                    hook_command(binary, h.name)
                ));
            }
        }
        Some(Manager::Lefthook { config })
            if !hooks.iter().all(|h| mentions_us(config, h.name)) =>
        {
            let mut yaml = String::new();
            for h in HOOK_NAMES {
                let args = if h == "post-commit" { "" } else { " {0}" };
                yaml.push_str(&format!(
                    "\n{h}:\n  commands:\n    spec-kitty:\n      run: {} hooks run {h}{args}",
                    shell_quote(binary)
                ));
            }
            out.push(format!(
                "lefthook is set up: the stubs chain its hooks now, but `lefthook install` \
                 replaces them; to keep spec-kitty, add to {}:{yaml}",
                config.display()
            ));
        }
        _ => {}
    }
    if let Some(p) = &loc.hooks_path
        && !Path::new(p).is_absolute()
        && !p.starts_with("~/")
        && !matches!(loc.manager, Some(Manager::Husky { .. }))
    {
        out.push(format!(
            "core.hooksPath is relative ({p}): git resolves it inside each worktree, so WP \
             worktrees run the hooks in their own {p}; make it absolute to share the stubs: \
             git config core.hooksPath {}",
            shell_quote(&loc.dir.to_string_lossy())
        ));
    }
    if hooks.iter().any(|h| h.state == HookState::Missing)
        && !matches!(loc.manager, Some(Manager::Husky { .. }))
    {
        out.push("install the missing hooks with `spec-kitty hooks install`".to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_round_trips_through_shell_quoting() {
        for path in ["/usr/bin/spec-kitty", "/home/o'neil/my tools/spec-kitty"] {
            let stub = format!("if [ -x {} ]; then", shell_quote(path));
            assert_eq!(stub_binary(&stub).as_deref(), Some(path));
        }
    }

    #[test]
    fn every_stub_calls_its_handler_and_chains() {
        for name in HOOK_NAMES {
            let t = stub_template(name).unwrap();
            assert!(t.starts_with("#!/bin/sh\n") && t.contains(STUB_MARKER));
            assert!(t.contains(&format!("hooks run {name} \"$@\"")));
            assert!(t.contains(CHAINED_SUFFIX) && t.contains(BIN_PLACEHOLDER));
        }
    }
}
