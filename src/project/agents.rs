//! The `agents:` section of `.kittify/config.yaml`, which `orchestrate` uses:
//!
//! ```yaml
//! agents:
//!   implementer: [claude, codex]   # tried in order: the first, then each fallback
//!   reviewer: codex                # one name or a list
//!   timeout_seconds: 3600          # optional (default 3600): an agent running longer has failed
//!   commands:                      # name → command template, run with `sh -c` in the WP worktree
//!     claude: claude -p "Implement {wp_id} ({title}); instructions in {wp_file}"
//!     codex: codex exec "Review {wp_id} in {worktree}; exit 0 to approve"
//! ```
//!
//! Placeholders become references to environment variables the agent also receives
//! (`{wp_id}` → `${SPEC_KITTY_WP_ID}`), so a value is never parsed as shell code. The file is
//! only read here; the `project:` key (identity) is managed by `identity`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::ProjectError;
use super::identity::CONFIG_RELATIVE;

/// The placeholders of a command template and the variables they stand for.
pub const PLACEHOLDERS: [(&str, &str); 10] = [
    ("wp_id", "SPEC_KITTY_WP_ID"),
    ("feature", "SPEC_KITTY_FEATURE"),
    ("title", "SPEC_KITTY_TITLE"),
    ("worktree", "SPEC_KITTY_WORKTREE"),
    ("wp_file", "SPEC_KITTY_WP_FILE"),
    ("branch", "SPEC_KITTY_BRANCH"),
    ("target_branch", "SPEC_KITTY_TARGET_BRANCH"),
    ("phase", "SPEC_KITTY_PHASE"),
    ("agent", "SPEC_KITTY_AGENT"),
    ("attempt", "SPEC_KITTY_ATTEMPT"),
];

/// The agents orchestrate may run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentsConfig {
    pub path: PathBuf,
    /// Implementers in the order they are tried.
    pub implementers: Vec<String>,
    /// Reviewers in the order they are tried.
    pub reviewers: Vec<String>,
    pub commands: BTreeMap<String, String>,
    pub timeout_seconds: Option<u64>,
}

/// How long an agent may run when `agents.timeout_seconds` is not set: an agent that never
/// exits must not hold `orchestrate` forever.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;

impl AgentsConfig {
    /// How long one agent run may take before it has failed (`agents.timeout_seconds`, else
    /// [`DEFAULT_TIMEOUT_SECONDS`]).
    pub fn timeout_seconds(&self) -> u64 {
        self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS)
    }
}

impl AgentsConfig {
    /// Reads `agents:` from `<root>/.kittify/config.yaml`.
    pub fn load(root: &Path) -> Result<AgentsConfig, ProjectError> {
        let path = root.join(CONFIG_RELATIVE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(missing(&path, "the file does not exist"));
            }
            Err(e) => return Err(ProjectError::io("read", path, e)),
        };
        let doc: Value =
            serde_norway::from_str(&text).map_err(|e| ProjectError::yaml(&path, 0, &e))?;
        let Some(agents) = doc.get("agents").filter(|v| !v.is_null()) else {
            return Err(missing(&path, "it has no `agents:` section"));
        };
        let Value::Mapping(agents) = agents else {
            return Err(ProjectError::invalid(&path, "`agents` must be a mapping"));
        };
        parse(&path, agents)
    }

    /// The command of `agent` with placeholders turned into variable references.
    pub fn command(&self, agent: &str) -> Option<String> {
        let mut cmd = self.commands.get(agent)?.clone();
        for (name, var) in PLACEHOLDERS {
            cmd = cmd.replace(&format!("{{{name}}}"), &format!("${{{var}}}"));
        }
        Some(cmd)
    }
}

fn missing(path: &Path, why: &str) -> ProjectError {
    ProjectError::invalid(
        path,
        format!(
            "orchestrate needs agents, but {why}: add `agents:` with `implementer`, `reviewer` \
             and `commands` (see docs/reference/workflow.md)"
        ),
    )
}

fn parse(path: &Path, agents: &Mapping) -> Result<AgentsConfig, ProjectError> {
    let bad = |what: String| ProjectError::invalid(path, what);
    for key in agents.keys() {
        let k = key.as_str().unwrap_or("");
        if !matches!(
            k,
            "implementer" | "reviewer" | "commands" | "timeout_seconds"
        ) {
            return Err(bad(format!(
                "unknown key `agents.{k}` (expected implementer, reviewer, commands, timeout_seconds)"
            )));
        }
    }
    let names = |key: &str| -> Result<Vec<String>, ProjectError> {
        let list: Vec<String> = match agents.get(key) {
            Some(Value::String(s)) => vec![s.trim().to_owned()],
            Some(Value::Sequence(seq)) => seq
                .iter()
                .map(|v| v.as_str().map(|s| s.trim().to_owned()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(format!("`agents.{key}` must be a list of agent names")))?,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(bad(format!(
                    "`agents.{key}` must be an agent name or a list"
                )));
            }
        };
        if list.is_empty() || list.iter().any(String::is_empty) {
            return Err(bad(format!("`agents.{key}` must name at least one agent")));
        }
        Ok(list)
    };
    let implementers = names("implementer")?;
    let reviewers = names("reviewer")?;
    let mut commands = BTreeMap::new();
    match agents.get("commands") {
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let (Some(name), Some(cmd)) = (k.as_str(), v.as_str()) else {
                    return Err(bad(
                        "`agents.commands` maps agent names to command strings".into()
                    ));
                };
                if cmd.trim().is_empty() {
                    return Err(bad(format!("`agents.commands.{name}` is empty")));
                }
                commands.insert(name.to_owned(), cmd.to_owned());
            }
        }
        _ => {
            return Err(bad(
                "`agents.commands` must map agent names to commands".into()
            ));
        }
    }
    for name in implementers.iter().chain(&reviewers) {
        if !commands.contains_key(name) {
            return Err(bad(format!(
                "agent `{name}` has no entry under `agents.commands`"
            )));
        }
    }
    let timeout_seconds = match agents.get("timeout_seconds") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("`agents.timeout_seconds` must be a positive number".into()))?,
        ),
    };
    Ok(AgentsConfig {
        path: path.to_path_buf(),
        implementers,
        reviewers,
        commands,
        timeout_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<AgentsConfig, ProjectError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_RELATIVE);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        AgentsConfig::load(dir.path())
    }

    #[test]
    fn reads_roles_fallbacks_and_templates() {
        let c = load(
            "project:\n  uuid: 5b0e8a52-3c2f-4d8e-9a61-2f4c1d7e9b30\nagents:\n  implementer: [claude, codex]\n  \
             reviewer: codex\n  commands:\n    claude: claude -p \"do {wp_id} of {feature}\"\n    codex: codex {wp_file}\n",
        )
        .unwrap();
        assert_eq!(c.implementers, vec!["claude", "codex"]);
        assert_eq!(c.reviewers, vec!["codex"]);
        assert_eq!(
            c.command("claude").unwrap(),
            "claude -p \"do ${SPEC_KITTY_WP_ID} of ${SPEC_KITTY_FEATURE}\""
        );
    }

    #[test]
    fn an_agent_without_a_configured_timeout_gets_the_default_one() {
        let base = "agents:\n  implementer: a\n  reviewer: a\n  commands:\n    a: run\n";
        let c = load(base).unwrap();
        assert_eq!(c.timeout_seconds, None);
        assert_eq!(c.timeout_seconds(), DEFAULT_TIMEOUT_SECONDS);
        let c = load(&format!("{base}  timeout_seconds: 5\n")).unwrap();
        assert_eq!(c.timeout_seconds(), 5);
    }

    #[test]
    fn explains_what_is_missing() {
        let err = load("vcs: git\n").unwrap_err().to_string();
        assert!(err.contains("no `agents:` section"), "{err}");
        let err = load("agents:\n  implementer: a\n  reviewer: b\n  commands:\n    a: run\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("agent `b` has no entry"), "{err}");
        let err = load("agents:\n  implementors: a\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("agents.implementors"), "{err}");
    }
}
