//! `hooks status`: what git will really run for each hook, from every worktree, and whether
//! that records events.
//!
//! A hook only counts as installed when, in every worktree, the hooks directory git uses there
//! exists, the file git runs is executable, and running it reaches a live (not commented-out)
//! `spec-kitty hooks run <hook>` line: our stub directly, pre-commit's script through
//! `<hook>.legacy`, lefthook's script through its config, husky's through `.husky/<hook>`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::files::{self, Kind, calls_us, chained_path, old_chained_path, shell_quote};
use super::location::{HooksLocation, Manager, locate};
use super::{HOOK_NAMES, HooksError, disabled_by_env};

/// The state of one hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookState {
    /// A commit (merge, checkout) in any worktree records its event.
    Installed,
    Missing,
    /// Installed, but some or all commits record nothing: SPEC_KITTY_HOOKS=0, a stub git does
    /// not run (renamed by a hook manager, in a directory git does not use, commented out), or
    /// a worktree where git runs no hook at all. `note` says which.
    Bypassed,
}

#[derive(Debug, Clone, Serialize)]
pub struct HookReport {
    pub name: &'static str,
    pub state: HookState,
    /// The file git runs for this hook (in the worktree the command runs in).
    pub path: PathBuf,
    /// How the file git runs reaches spec-kitty: `stub`, `pre-commit`, `lefthook`, `husky` or
    /// `own` (a hook of yours that calls it); absent when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'static str>,
    /// The pre-existing hook the stub runs first, if any.
    pub chained: Option<PathBuf>,
    /// The spec-kitty binary the stub calls.
    pub binary: Option<String>,
    /// Why it is bypassed or missing, or what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One worktree, as git runs hooks there.
#[derive(Debug, Clone, Serialize)]
pub struct WorktreeHooks {
    pub path: PathBuf,
    /// The hooks directory git uses in this worktree.
    pub hooks_dir: PathBuf,
    pub hooks_dir_exists: bool,
    /// The hooks whose run records events here.
    pub recording: Vec<&'static str>,
}

/// `hooks status` (and the result of install/uninstall).
#[derive(Debug, Clone, Serialize)]
pub struct HooksReport {
    #[serde(flatten)]
    pub location: HooksLocation,
    pub disabled_by_env: bool,
    pub hooks: Vec<HookReport>,
    pub worktrees: Vec<WorktreeHooks>,
    /// What the user should do by hand, if anything (exact lines to add).
    pub advice: Vec<String>,
}

/// Reports installed / missing / bypassed for every hook.
pub fn status(dir: &Path) -> Result<HooksReport, HooksError> {
    status_with(locate(dir)?, None)
}

/// How running a hook file reaches spec-kitty, or why it does not.
type Effect = Result<&'static str, String>;

/// What git runs for `hook` in the worktree `root`.
fn effect(loc: &HooksLocation, root: &Path, hook: &str) -> Effect {
    let dir = loc.dir_in(root);
    if !dir.is_dir() {
        return Err(format!(
            "{} does not exist in {}, so git runs no hook there",
            dir.display(),
            root.display()
        ));
    }
    let path = dir.join(hook);
    if !files::occupied(&path) {
        return Err(format!("there is no {} hook", path.display()));
    }
    if !files::executable(&path) {
        return Err(format!(
            "{} is not executable, so git skips it",
            path.display()
        ));
    }
    let text = files::read(&path).unwrap_or_default();
    match files::kind(&text) {
        Kind::Stub if calls_us(&text, hook) => Ok("stub"),
        Kind::Stub => Err(format!(
            "the spec-kitty line of {} is commented out",
            path.display()
        )),
        Kind::PreCommit => {
            let legacy = dir.join(format!("{hook}.legacy"));
            let live = files::executable(&legacy)
                && files::read(&legacy).is_some_and(|t| calls_us(&t, hook));
            live.then_some("pre-commit").ok_or_else(|| {
                format!("pre-commit runs {hook}, and nothing it runs calls spec-kitty")
            })
        }
        Kind::Lefthook => {
            if lefthook_configs(root).any(|c| files::read(&c).is_some_and(|t| calls_us(&t, hook))) {
                Ok("lefthook")
            } else if files::is_stub(&dir.join(format!("{hook}.old"))) {
                Err(format!(
                    "lefthook renamed the stub to {hook}.old and does not run it; add \
                     spec-kitty to lefthook's config (below)"
                ))
            } else {
                Err(format!(
                    "lefthook runs {hook}, and its config does not call spec-kitty"
                ))
            }
        }
        Kind::Husky => {
            let script = dir.parent().unwrap_or(&dir).join(hook);
            if files::read(&script).is_some_and(|t| calls_us(&t, hook)) {
                Ok("husky")
            } else {
                Err(format!(
                    "husky runs {}, which does not call spec-kitty",
                    script.display()
                ))
            }
        }
        Kind::Other if calls_us(&text, hook) => Ok("own"),
        Kind::Other => Err(format!("{} does not call spec-kitty", path.display())),
    }
}

/// The lefthook config files in the worktree `root`.
pub(super) fn lefthook_configs(root: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    [
        "lefthook.yml",
        ".lefthook.yml",
        "lefthook.yaml",
        ".lefthook.yaml",
        "lefthook-local.yml",
        ".lefthook-local.yml",
        "lefthook.toml",
        "lefthook.json",
    ]
    .into_iter()
    .map(|n| root.join(n))
    .filter(|p| p.is_file())
}

pub(super) fn status_with(
    loc: HooksLocation,
    binary: Option<&str>,
) -> Result<HooksReport, HooksError> {
    let env_off = disabled_by_env();
    let worktrees = loc.worktrees();
    let effects: Vec<Vec<Effect>> = worktrees
        .iter()
        .map(|w| HOOK_NAMES.iter().map(|h| effect(&loc, w, h)).collect())
        .collect();
    let mut hooks = Vec::new();
    for (i, name) in HOOK_NAMES.into_iter().enumerate() {
        let per_worktree: Vec<(&Path, &Effect)> = worktrees
            .iter()
            .map(PathBuf::as_path)
            .zip(effects.iter().map(|e| &e[i]))
            .collect();
        hooks.push(hook_report(&loc, name, env_off, &per_worktree));
    }
    let worktrees = worktrees
        .iter()
        .zip(&effects)
        .map(|(w, e)| {
            let hooks_dir = loc.dir_in(w);
            WorktreeHooks {
                path: w.clone(),
                hooks_dir_exists: hooks_dir.is_dir(),
                hooks_dir,
                recording: HOOK_NAMES
                    .into_iter()
                    .zip(e)
                    .filter(|(_, e)| e.is_ok() && !env_off)
                    .map(|(h, _)| h)
                    .collect(),
            }
        })
        .collect();
    let current = std::env::current_exe()
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let binary = binary
        .map(str::to_owned)
        .or_else(|| hooks.iter().find_map(|h| h.binary.clone()))
        .or(current)
        .unwrap_or_else(|| "spec-kitty".to_owned());
    let mut report = HooksReport {
        location: loc,
        disabled_by_env: env_off,
        hooks,
        worktrees,
        advice: Vec::new(),
    };
    report.advice = advice(&report, &binary);
    Ok(report)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

fn hook_report(
    loc: &HooksLocation,
    name: &'static str,
    env_off: bool,
    per_worktree: &[(&Path, &Effect)],
) -> HookReport {
    let path = loc.dir.join(name);
    let here = per_worktree
        .iter()
        .find(|(w, _)| same_dir(w, &loc.worktree_root))
        .map(|(_, e)| (*e).clone())
        .unwrap_or_else(|| effect(loc, &loc.worktree_root, name));
    let legacy = loc.dir.join(format!("{name}.legacy"));
    let stub_text = [&path, &legacy]
        .into_iter()
        .filter_map(|p| files::read(p))
        .find(|t| files::kind(t) == Kind::Stub);
    let binary = stub_text.as_deref().and_then(files::stub_binary);
    // Only the stub git runs chains a hook (an older stub runs `<hook>.spec-kitty-chained`);
    // one left next to a manager's script that replaced the stub runs nowhere.
    let chained = files::read(&path)
        .filter(|t| files::kind(t) == Kind::Stub)
        .and_then(|t| {
            let runs = if t.contains("\"$0.spec-kitty-chained\"") {
                old_chained_path(&loc.dir, name)
            } else {
                chained_path(&loc.dir, name)
            };
            files::occupied(&runs).then_some(runs)
        });
    let elsewhere: Vec<String> = per_worktree
        .iter()
        .filter(|(w, _)| !same_dir(w, &loc.worktree_root))
        .filter_map(|(w, e)| e.as_ref().err().map(|why| (w, why)))
        .map(|(w, why)| format!("in {}: {why}", w.display()))
        .collect();
    let ours_somewhere = stub_text.is_some()
        || files::is_stub(&loc.dir.join(format!("{name}.old")))
        || (!same_dir(&loc.default_dir, &loc.dir) && files::is_stub(&loc.default_dir.join(name)));
    let (state, note) = match here {
        Ok(_) if env_off => (
            HookState::Bypassed,
            Some("SPEC_KITTY_HOOKS=0 is set".to_owned()),
        ),
        Ok(_) if !elsewhere.is_empty() => (
            HookState::Bypassed,
            Some(format!("records nothing {}", elsewhere.join("; "))),
        ),
        Ok(_) => {
            let gone = binary.as_deref().is_some_and(|b| !Path::new(b).exists());
            let note = gone.then(|| {
                "the binary it calls no longer exists: run `spec-kitty hooks install` again"
                    .to_owned()
            });
            (HookState::Installed, note)
        }
        Err(_)
            if !same_dir(&loc.default_dir, &loc.dir)
                && files::is_stub(&loc.default_dir.join(name)) =>
        {
            let note = format!(
                "installed in {}, but core.hooksPath makes git run hooks from {}",
                loc.default_dir.display(),
                loc.dir.display()
            );
            (HookState::Bypassed, Some(note))
        }
        Err(why) if ours_somewhere => (HookState::Bypassed, Some(why)),
        Err(why) => (HookState::Missing, Some(why)),
    };
    HookReport {
        name,
        state,
        path,
        via: here_via(loc, name, per_worktree),
        chained,
        binary,
        note,
    }
}

fn here_via(
    loc: &HooksLocation,
    name: &str,
    per_worktree: &[(&Path, &Effect)],
) -> Option<&'static str> {
    per_worktree
        .iter()
        .find(|(w, _)| same_dir(w, &loc.worktree_root))
        .and_then(|(_, e)| e.as_ref().ok().copied())
        .or_else(|| effect(loc, &loc.worktree_root, name).ok())
}

/// The line a user adds to a husky script (or any hook of their own) to call spec-kitty.
pub fn hook_command(binary: &str, hook: &str) -> String {
    format!("{} hooks run {hook} \"$@\"", shell_quote(binary))
}

/// `binary` as one shell word: as is when it needs no quoting.
fn shell_word(binary: &str) -> String {
    let plain = !binary.is_empty()
        && binary
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
    if plain {
        binary.to_owned()
    } else {
        shell_quote(binary)
    }
}

/// The lefthook config that calls spec-kitty from every hook, as valid YAML: each `run:` is
/// one single-quoted scalar (a quote inside it doubled).
pub fn lefthook_snippet(binary: &str) -> String {
    let mut yaml = String::new();
    for h in HOOK_NAMES {
        let args = if h == "post-commit" { "" } else { " {0}" };
        let run = format!("{} hooks run {h}{args}", shell_word(binary));
        yaml.push_str(&format!(
            "{h}:\n  commands:\n    spec-kitty:\n      run: '{}'\n",
            run.replace('\'', "''")
        ));
    }
    yaml
}

fn advice(report: &HooksReport, binary: &str) -> Vec<String> {
    let loc = &report.location;
    let hooks = &report.hooks;
    let mut out = Vec::new();
    let husky = matches!(loc.manager, Some(Manager::Husky { .. }));
    match &loc.manager {
        Some(Manager::Husky { scripts_dir }) => {
            for h in hooks.iter().filter(|h| h.via.is_none()) {
                out.push(format!(
                    "husky manages this repository's hooks: add this line to {}: {}",
                    scripts_dir.join(h.name).display(),
                    hook_command(binary, h.name)
                ));
            }
        }
        Some(Manager::Lefthook { .. }) if hooks.iter().any(|h| h.via != Some("lefthook")) => {
            out.push(format!(
                "lefthook is set up: `lefthook install` (and lefthook's automatic re-sync when \
                 its config changes) replaces the stubs; to keep spec-kitty, add to lefthook.yml:\n{}",
                lefthook_snippet(binary).trim_end()
            ));
        }
        _ => {}
    }
    let no_dir: Vec<String> = report
        .worktrees
        .iter()
        .filter(|w| !w.hooks_dir_exists)
        .map(|w| w.path.display().to_string())
        .collect();
    if let Some(p) = &loc.hooks_path
        && !Path::new(p).is_absolute()
        && !p.starts_with("~/")
    {
        if husky {
            if !no_dir.is_empty() {
                out.push(format!(
                    "husky's core.hooksPath ({p}) is relative and its directory is not committed: \
                     git runs no hook at all in {}; run `npx husky` in each WP worktree once it \
                     exists (after `spec-kitty implement`), or share the main checkout's hooks: \
                     git config core.hooksPath {} (husky resets it when it runs again)",
                    no_dir.join(", "),
                    shell_quote(&loc.dir_in(&report.worktrees[0].path).to_string_lossy())
                ));
            }
        } else {
            out.push(format!(
                "core.hooksPath is relative ({p}): git resolves it inside each worktree, so WP \
                 worktrees run the hooks in their own {p}; make it absolute to share the stubs: \
                 git config core.hooksPath {}",
                shell_quote(&loc.dir.to_string_lossy())
            ));
        }
    }
    if hooks.iter().any(|h| h.state != HookState::Installed) && !husky && !report.disabled_by_env {
        out.push("install the missing hooks with `spec-kitty hooks install`".to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lefthook_snippet_is_valid_yaml_whose_commands_call_us() {
        for binary in [
            "/usr/local/bin/spec-kitty",
            "/home/o'neil/my tools/spec-kitty",
        ] {
            let yaml = lefthook_snippet(binary);
            let v: serde_norway::Value = serde_norway::from_str(&yaml).expect(&yaml);
            for h in HOOK_NAMES {
                let run = v[h]["commands"]["spec-kitty"]["run"].as_str().expect(&yaml);
                assert!(run.contains(&format!("hooks run {h}")), "{run}");
                assert!(run.starts_with(&shell_word(binary)), "{run}");
            }
        }
    }
}
