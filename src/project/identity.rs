//! Project identity: `project.uuid` / `project.slug` in `.kittify/config.yaml`.
//!
//! The file may hold keys written by other tools, and comments; we never rewrite it wholesale.
//! When the identity is missing we insert the lines we need as text and re-read the result, so
//! everything else stays byte-for-byte as it was.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use miette::Diagnostic;

use super::lock::{FileLock, LockError};

/// Where the identity lives, relative to a worktree root.
pub const CONFIG_RELATIVE: &str = ".kittify/config.yaml";

/// The identity every event of the project carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectIdentity {
    pub uuid: String,
    pub slug: Option<String>,
    pub config_path: PathBuf,
    /// Whether this call created the identity.
    pub created: bool,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum IdentityError {
    #[error("{}:{line}:{column}: malformed YAML: {message}", path.display())]
    #[diagnostic(
        code(spec_kitty::project::malformed_config),
        help(
            "fix the YAML at that line (the file was left untouched); to start over, move it \
             away and run `spec-kitty init`"
        )
    )]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{}: {what}", path.display())]
    #[diagnostic(
        code(spec_kitty::project::invalid_identity),
        help(
            "set `project.uuid` to a UUID (e.g. from `uuidgen`), or remove the key and let spec-kitty create one"
        )
    )]
    Invalid { path: PathBuf, what: String },

    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(
        code(spec_kitty::project::io),
        help("check the permissions of the file and its directory")
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{}: `project` is written in flow style, so spec-kitty cannot add `uuid` to it without rewriting your file", path.display())]
    #[diagnostic(
        code(spec_kitty::project::flow_style),
        help("add `uuid: <a UUID>` to the `project` mapping yourself, e.g. with `uuidgen`")
    )]
    FlowStyle { path: PathBuf },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
}

/// Reads the project identity, creating it in `create_root` if no config has one.
///
/// Looks in `worktree_root` first (the worktree the command runs in), then in `main_root` (the
/// main checkout), so a WP worktree created before the identity existed still finds it.
pub fn load_or_create(
    worktree_root: &Path,
    main_root: &Path,
    default_slug: Option<&str>,
) -> Result<ProjectIdentity, IdentityError> {
    for root in [worktree_root, main_root] {
        let path = root.join(CONFIG_RELATIVE);
        if let Some(id) = read(&path)? {
            return Ok(id);
        }
    }
    create(&main_root.join(CONFIG_RELATIVE), default_slug)
}

/// Reads the identity from `path`; `Ok(None)` when the file or `project.uuid` is absent.
pub fn read(path: &Path) -> Result<Option<ProjectIdentity>, IdentityError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(IdentityError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse(path, &text)
}

fn parse(path: &Path, text: &str) -> Result<Option<ProjectIdentity>, IdentityError> {
    let doc: serde_norway::Value = if text.trim().is_empty() {
        serde_norway::Value::Null
    } else {
        serde_norway::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            IdentityError::Malformed {
                path: path.to_path_buf(),
                line,
                column,
                message: e.to_string(),
            }
        })?
    };
    let invalid = |what: &str| IdentityError::Invalid {
        path: path.to_path_buf(),
        what: what.to_owned(),
    };
    let project = match &doc {
        serde_norway::Value::Null => return Ok(None),
        serde_norway::Value::Mapping(m) => m.get("project"),
        _ => return Err(invalid("the file must be a YAML mapping")),
    };
    let Some(project) = project else {
        return Ok(None);
    };
    if project.is_null() {
        return Ok(None);
    }
    let Some(project) = project.as_mapping() else {
        return Err(invalid("`project` must be a mapping"));
    };
    let uuid = match project.get("uuid") {
        None | Some(serde_norway::Value::Null) => return Ok(None),
        Some(v) => v
            .as_str()
            .filter(|s| uuid::Uuid::parse_str(s).is_ok())
            .ok_or_else(|| invalid("`project.uuid` is not a UUID"))?,
    };
    let slug = match project.get("slug") {
        None | Some(serde_norway::Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| invalid("`project.slug` must be a string"))?
                .to_owned(),
        ),
    };
    Ok(Some(ProjectIdentity {
        uuid: uuid.to_ascii_lowercase(),
        slug,
        config_path: path.to_path_buf(),
        created: false,
    }))
}

/// Adds an identity to `path` (creating the file if needed), atomically and under a lock file
/// so that concurrent first uses agree on one UUID.
fn create(path: &Path, default_slug: Option<&str>) -> Result<ProjectIdentity, IdentityError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|source| IdentityError::Io {
        action: "create the directory of",
        path: path.to_path_buf(),
        source,
    })?;
    let _lock = FileLock::acquire(&path.with_extension("yaml.lock"))?;
    // Another process may have created it while we waited for the lock.
    let existing = match fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(IdentityError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if let Some(text) = &existing
        && let Some(id) = parse(path, text)?
    {
        return Ok(id);
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let new_text = insert_identity(path, existing.as_deref().unwrap_or(""), &uuid, default_slug)?;
    // Never write something we cannot read back.
    let Some(mut id) = parse(path, &new_text)? else {
        return Err(IdentityError::Invalid {
            path: path.to_path_buf(),
            what: "could not add `project.uuid` to this file".into(),
        });
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|source| IdentityError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })?;
    tmp.write_all(new_text.as_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|source| IdentityError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })?;
    tmp.persist(path).map_err(|e| IdentityError::Io {
        action: "replace",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    id.created = true;
    Ok(id)
}

/// Inserts `uuid` (and a slug if none) under `project:`, as text.
fn insert_identity(
    path: &Path,
    text: &str,
    uuid: &str,
    default_slug: Option<&str>,
) -> Result<String, IdentityError> {
    let slug_line = |indent: &str, has_slug: bool| match default_slug {
        Some(s) if !has_slug => format!("{indent}slug: {s}\n"),
        _ => String::new(),
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let project_at = lines.iter().position(|l| {
        let t = l.trim_end();
        t == "project:"
            || (t.starts_with("project:") && t["project:".len()..].trim().is_empty())
            || (t.starts_with("project:") && t["project:".len()..].trim_start().starts_with('#'))
    });
    if let Some(i) = project_at {
        // Keep the indentation of the block's existing children.
        let indent = lines[i + 1..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .map(|l| &l[..l.len() - l.trim_start().len()])
            .filter(|ind| !ind.is_empty())
            .unwrap_or("  ");
        let has_slug = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.starts_with(' ') || l.starts_with('\t'))
            .any(|l| l.trim_start().starts_with("slug:"));
        let mut out = String::new();
        for (j, l) in lines.iter().enumerate() {
            out.push_str(l);
            if j == i {
                if !l.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&format!("{indent}uuid: {uuid}\n"));
                out.push_str(&slug_line(indent, has_slug));
            }
        }
        return Ok(out);
    }
    if lines.iter().any(|l| l.starts_with("project:")) {
        return Err(IdentityError::FlowStyle {
            path: path.to_path_buf(),
        });
    }
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!(
        "project:\n  uuid: {uuid}\n{}",
        slug_line("  ", false)
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_under_existing_project_block_and_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_RELATIVE);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let original =
            "# written by another tool\nagents:\n  claude: run\nproject:\n    name: x\nvcs: git\n";
        fs::write(&path, original).unwrap();
        let id = load_or_create(dir.path(), dir.path(), Some("demo")).unwrap();
        assert!(id.created);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(
            "# written by another tool\nagents:\n  claude: run\nproject:\n    uuid: "
        ));
        assert!(text.contains("    name: x\nvcs: git\n"));
        let again = load_or_create(dir.path(), dir.path(), None).unwrap();
        assert_eq!(again.uuid, id.uuid);
        assert!(!again.created);
    }

    #[test]
    fn malformed_yaml_names_the_line_and_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_RELATIVE);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bad = "project:\n  uuid: [unclosed\nother: 1\n";
        fs::write(&path, bad).unwrap();
        let err = load_or_create(dir.path(), dir.path(), None).unwrap_err();
        match err {
            IdentityError::Malformed { line, .. } => assert!(line >= 2, "{line}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), bad);
    }
}
