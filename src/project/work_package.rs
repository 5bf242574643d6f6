//! Work package files: `kitty-specs/<feature>/tasks/WPnn-<title>.md`, whose YAML frontmatter
//! carries the fields spec-kitty 2.x writes (`work_package_id`, `title`, `lane`,
//! `dependencies`, `subtasks`, and others we keep but do not need).

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::ProjectError;
use crate::event::{Lane, is_wp_id};

/// One work package as its file describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkPackage {
    pub id: String,
    pub title: String,
    /// The `lane:` of the frontmatter: only the starting point for a WP with no status events.
    pub file_lane: Lane,
    pub dependencies: Vec<String>,
    pub subtasks: Vec<String>,
    pub path: PathBuf,
}

impl WorkPackage {
    /// Reads and validates the work package file at `path`.
    pub fn load(path: &Path) -> Result<WorkPackage, ProjectError> {
        let text = std::fs::read_to_string(path).map_err(|e| ProjectError::io("read", path, e))?;
        WorkPackage::parse(path, &text)
    }

    /// Parses the frontmatter of `text` (the contents of `path`).
    pub fn parse(path: &Path, text: &str) -> Result<WorkPackage, ProjectError> {
        let yaml = frontmatter(text).ok_or_else(|| ProjectError::MissingFrontmatter {
            path: path.to_path_buf(),
        })?;
        // The YAML starts on the line after the opening `---`.
        let doc: Value =
            serde_norway::from_str(yaml).map_err(|e| ProjectError::yaml(path, 1, &e))?;
        let Value::Mapping(map) = doc else {
            return Err(ProjectError::invalid(
                path,
                "the frontmatter must be a YAML mapping",
            ));
        };
        let field = Fields { path, map: &map };
        let id = field.required_str("work_package_id")?;
        if !is_wp_id(&id) {
            return Err(field.bad("work_package_id", &id, "a WP id such as WP01"));
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !stem.starts_with(&id) {
            return Err(ProjectError::invalid(
                path,
                format!("work_package_id is {id} but the file name does not start with {id}"),
            ));
        }
        let title = field.required_str("title")?;
        let file_lane = match field.optional_str("lane")? {
            None => Lane::Planned,
            Some(s) => Lane::from_any(&s)
                .ok_or_else(|| field.bad("lane", &s, "one of planned, doing, for_review, done"))?,
        };
        let dependencies = field.id_list("dependencies", is_wp_id, "WP ids such as WP01")?;
        if dependencies.contains(&id) {
            return Err(ProjectError::invalid(
                path,
                format!("{id} depends on itself"),
            ));
        }
        let subtasks = field.id_list("subtasks", is_subtask_id, "subtask ids such as T001")?;
        Ok(WorkPackage {
            id,
            title,
            file_lane,
            dependencies,
            subtasks,
            path: path.to_path_buf(),
        })
    }
}

/// The YAML between the opening `---` line and the next `---` line, if the text starts with one.
fn frontmatter(text: &str) -> Option<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text.strip_prefix("---")?;
    let rest = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some(&rest[..offset]);
        }
        offset += line.len();
    }
    None
}

/// `T` followed by digits (spec-kitty writes `T001`).
pub fn is_subtask_id(s: &str) -> bool {
    s.len() > 1 && s.starts_with('T') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Typed access to frontmatter fields with errors that name the file and the field.
struct Fields<'a> {
    path: &'a Path,
    map: &'a Mapping,
}

impl Fields<'_> {
    fn bad(&self, key: &str, value: &str, expected: &str) -> ProjectError {
        ProjectError::invalid(
            self.path,
            format!("`{key}: {value}` is not valid: expected {expected}"),
        )
    }

    fn optional_str(&self, key: &str) -> Result<Option<String>, ProjectError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ProjectError::invalid(
                self.path,
                format!("`{key}` must be a string"),
            )),
        }
    }

    fn required_str(&self, key: &str) -> Result<String, ProjectError> {
        match self.optional_str(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ProjectError::invalid(
                self.path,
                format!("the frontmatter has no `{key}`"),
            )),
        }
    }

    /// A list of ids; absent or null is empty. A single string is accepted as a one-item list
    /// (or a comma-separated one), as hand-edited files sometimes have.
    fn id_list(
        &self,
        key: &str,
        valid: fn(&str) -> bool,
        expected: &str,
    ) -> Result<Vec<String>, ProjectError> {
        let items: Vec<String> = match self.map.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::String(s)) => s
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            Some(Value::Sequence(seq)) => {
                let mut out = Vec::new();
                for item in seq {
                    match item {
                        Value::String(s) => out.push(s.trim().to_owned()),
                        _ => {
                            return Err(ProjectError::invalid(
                                self.path,
                                format!("`{key}` must be a list of {expected}"),
                            ));
                        }
                    }
                }
                out
            }
            Some(_) => {
                return Err(ProjectError::invalid(
                    self.path,
                    format!("`{key}` must be a list of {expected}"),
                ));
            }
        };
        if let Some(bad) = items.iter().find(|i| !valid(i)) {
            return Err(self.bad(key, bad, expected));
        }
        let mut unique: Vec<String> = Vec::with_capacity(items.len());
        for i in items {
            if !unique.contains(&i) {
                unique.push(i);
            }
        }
        Ok(unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WorkPackage, ProjectError> {
        WorkPackage::parse(Path::new("tasks/WP02-thing.md"), text)
    }

    #[test]
    fn reads_spec_kitty_frontmatter() {
        let wp = parse(
            "---\nwork_package_id: WP02\ntitle: Thing\nlane: \"doing\"\ndependencies: [WP01]\n\
             subtasks:\n- T001\n- T002\nphase: Phase 1\n---\n# body\n",
        )
        .unwrap();
        assert_eq!(wp.id, "WP02");
        assert_eq!(wp.file_lane, Lane::Doing);
        assert_eq!(wp.dependencies, vec!["WP01"]);
        assert_eq!(wp.subtasks, vec!["T001", "T002"]);
    }

    #[test]
    fn malformed_yaml_reports_the_file_line() {
        let err = parse("---\nwork_package_id: WP02\ntitle: [unclosed\n---\n").unwrap_err();
        match err {
            ProjectError::Malformed { line, path, .. } => {
                assert!(line >= 3, "{line}");
                assert!(path.ends_with("WP02-thing.md"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_lane_self_dependency_and_missing_frontmatter() {
        let bad_lane = parse("---\nwork_package_id: WP02\ntitle: T\nlane: bogus\n---\n");
        assert!(bad_lane.unwrap_err().to_string().contains("lane: bogus"));
        let self_dep = parse("---\nwork_package_id: WP02\ntitle: T\ndependencies: [WP02]\n---\n");
        assert!(
            self_dep
                .unwrap_err()
                .to_string()
                .contains("depends on itself")
        );
        assert!(matches!(
            parse("# no frontmatter\n"),
            Err(ProjectError::MissingFrontmatter { .. })
        ));
        let wrong_file = parse("---\nwork_package_id: WP03\ntitle: T\n---\n");
        assert!(wrong_file.unwrap_err().to_string().contains("file name"));
    }
}
