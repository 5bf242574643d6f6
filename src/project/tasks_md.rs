//! Subtask checkboxes in a feature's `tasks.md`: `- [ ] T001 …` (pending) and `- [x] T001 …`
//! (done). Editing changes only the box character of the matching lines; every other byte of
//! the file stays as it was.

use std::path::Path;

use super::{Feature, ProjectError};
use crate::event::is_wp_id;

/// The state of a subtask checkbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubtaskStatus {
    Pending,
    Done,
}

impl SubtaskStatus {
    pub fn parse(s: &str) -> Option<SubtaskStatus> {
        match s {
            "done" | "complete" | "completed" => Some(SubtaskStatus::Done),
            "pending" | "todo" | "planned" => Some(SubtaskStatus::Pending),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SubtaskStatus::Pending => "pending",
            SubtaskStatus::Done => "done",
        }
    }
}

/// One checkbox line found in tasks.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkbox {
    pub subtask: String,
    pub status: SubtaskStatus,
    /// Byte offset of the box character (` `, `x` or `X`).
    box_at: usize,
    /// The WP whose section (a heading naming `WPnn`) the line is in, if any.
    pub section_wp: Option<String>,
}

/// The checkbox lines of a tasks.md text.
pub fn checkboxes(text: &str) -> Vec<Checkbox> {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut section: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            section = trimmed
                .split(|c: char| !c.is_ascii_alphanumeric())
                .find(|w| is_wp_id(w))
                .map(str::to_owned);
        } else if let Some(cb) = parse_checkbox(trimmed) {
            let indent = line.len() - trimmed.len();
            out.push(Checkbox {
                subtask: cb.0,
                status: cb.1,
                box_at: offset + indent + 3,
                section_wp: section.clone(),
            });
        }
        offset += line.len();
    }
    out
}

/// `- [ ] T001 …` → (T001, Pending).
fn parse_checkbox(line: &str) -> Option<(String, SubtaskStatus)> {
    let rest = line
        .strip_prefix("- [")
        .or_else(|| line.strip_prefix("* ["))?;
    let mut chars = rest.chars();
    let status = match chars.next()? {
        ' ' => SubtaskStatus::Pending,
        'x' | 'X' => SubtaskStatus::Done,
        _ => return None,
    };
    let rest = chars.as_str().strip_prefix("] ")?;
    let id: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    super::work_package::is_subtask_id(&id).then_some((id, status))
}

/// Sets the checkbox of every subtask in `changes` in `text`; returns the new text.
pub fn set_status(text: &str, boxes: &[Checkbox], subtask: &str, status: SubtaskStatus) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for cb in boxes.iter().filter(|c| c.subtask == subtask) {
        bytes[cb.box_at] = match status {
            SubtaskStatus::Done => b'x',
            SubtaskStatus::Pending => b' ',
        };
    }
    // Only an ASCII byte was replaced by another ASCII byte.
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned())
}

/// Reads the tasks.md of `feature`.
pub fn read(feature: &Feature) -> Result<String, ProjectError> {
    let path = feature.tasks_md_path();
    std::fs::read_to_string(&path).map_err(|e| ProjectError::io("read", path, e))
}

/// Writes `text` to `path` atomically (a temporary file renamed over it).
pub fn write(path: &Path, text: &str) -> Result<(), ProjectError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| ProjectError::io("write", path, e))?;
    std::fs::write(tmp.path(), text).map_err(|e| ProjectError::io("write", path, e))?;
    tmp.persist(path)
        .map_err(|e| ProjectError::io("replace", path, e.error))?;
    Ok(())
}

/// The work package that owns `subtask`: the WP file listing it under `subtasks:`, else the
/// `WPnn` heading its checkbox line is under.
pub fn owner<'a>(feature: &'a Feature, boxes: &[Checkbox], subtask: &str) -> Option<&'a str> {
    if let Some(wp) = feature
        .work_packages
        .iter()
        .find(|w| w.subtasks.iter().any(|s| s == subtask))
    {
        return Some(&wp.id);
    }
    let section = boxes
        .iter()
        .find(|c| c.subtask == subtask)?
        .section_wp
        .as_deref()?;
    feature
        .work_packages
        .iter()
        .find(|w| w.id == section)
        .map(|w| w.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# Tasks\n\n## Work Package WP01: Model\n\n- [ ] T001 Parse meta\n- [x] T002 Parse WPs\n\n## WP02 – Board\n  - [ ] T003 Render\n";

    #[test]
    fn finds_boxes_with_sections() {
        let boxes = checkboxes(TEXT);
        assert_eq!(boxes.len(), 3);
        assert_eq!(boxes[1].status, SubtaskStatus::Done);
        assert_eq!(boxes[2].section_wp.as_deref(), Some("WP02"));
    }

    #[test]
    fn toggles_only_the_box() {
        let boxes = checkboxes(TEXT);
        let done = set_status(TEXT, &boxes, "T003", SubtaskStatus::Done);
        assert!(done.contains("  - [x] T003 Render\n"));
        let undone = set_status(&done, &checkboxes(&done), "T002", SubtaskStatus::Pending);
        assert!(undone.contains("- [ ] T002 Parse WPs"));
        assert_eq!(undone.len(), TEXT.len());
    }
}
