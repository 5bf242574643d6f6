//! Features: `kitty-specs/<NNN-slug>/` with its `meta.json` and work package files, and the
//! project that holds them.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::graph;
use super::{ProjectError, WorkPackage};
use crate::event::{is_feature_slug, is_wp_id};

/// The directory, relative to the main checkout, that holds one directory per feature.
pub const SPECS_DIR: &str = "kitty-specs";

/// The target branch of a feature whose meta.json does not name one.
pub const DEFAULT_TARGET_BRANCH: &str = "main";

/// A project: the checkout whose `kitty-specs/` holds the features. Commands running in a WP
/// worktree read the main checkout's specs, so every worktree sees the same features.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
}

/// One feature, loaded and validated: its metadata and its work packages in id order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Feature {
    pub slug: String,
    /// Three digits, e.g. `"001"`.
    pub number: String,
    pub target_branch: String,
    pub created_at: Option<String>,
    pub friendly_name: Option<String>,
    pub dir: PathBuf,
    pub work_packages: Vec<WorkPackage>,
}

impl Project {
    pub fn new(root: impl Into<PathBuf>) -> Project {
        Project { root: root.into() }
    }

    pub fn specs_dir(&self) -> PathBuf {
        self.root.join(SPECS_DIR)
    }

    /// The slugs of every feature directory (`NNN-slug`), sorted.
    pub fn feature_slugs(&self) -> Result<Vec<String>, ProjectError> {
        let dir = self.specs_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProjectError::NoSpecs { path: dir });
            }
            Err(e) => return Err(ProjectError::io("read", dir, e)),
        };
        let mut slugs: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_feature_slug(n))
            .collect();
        slugs.sort();
        Ok(slugs)
    }

    /// Picks the feature a command is about: `explicit` if given; else the feature the current
    /// branch names (`<feature>-WPnn`); else the only feature of the project.
    pub fn resolve_slug(
        &self,
        explicit: Option<&str>,
        branch: Option<&str>,
    ) -> Result<String, ProjectError> {
        let slugs = self.feature_slugs()?;
        if let Some(given) = explicit {
            if !is_feature_slug(given) {
                return Err(ProjectError::BadFeatureSlug {
                    given: given.to_owned(),
                });
            }
            if slugs.iter().any(|s| s == given) {
                return Ok(given.to_owned());
            }
            return Err(self.unknown_feature(given, &slugs));
        }
        if let Some((feature, _)) = branch.and_then(parse_wp_branch)
            && slugs.iter().any(|s| s == feature)
        {
            return Ok(feature.to_owned());
        }
        match slugs.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ProjectError::NoSpecs {
                path: self.specs_dir(),
            }),
            _ => Err(ProjectError::AmbiguousFeature {
                known: slugs.join(", "),
            }),
        }
    }

    fn unknown_feature(&self, slug: &str, slugs: &[String]) -> ProjectError {
        ProjectError::UnknownFeature {
            slug: slug.to_owned(),
            dir: self.specs_dir(),
            known: if slugs.is_empty() {
                "(none)".into()
            } else {
                slugs.join(", ")
            },
        }
    }

    /// Loads and validates feature `slug`: meta.json, every work package file, dependencies.
    pub fn load_feature(&self, slug: &str) -> Result<Feature, ProjectError> {
        if !is_feature_slug(slug) {
            return Err(ProjectError::BadFeatureSlug {
                given: slug.to_owned(),
            });
        }
        let dir = self.specs_dir().join(slug);
        if !dir.is_dir() {
            let slugs = self.feature_slugs().unwrap_or_default();
            return Err(self.unknown_feature(slug, &slugs));
        }
        let mut feature = read_meta(&dir, slug)?;
        feature.work_packages = read_work_packages(&dir)?;
        graph::validate(&feature)?;
        Ok(feature)
    }

    /// Whether feature `slug` has a meta.json and a file for work package `wp`, without
    /// parsing anything (the cheap check a git hook needs on every commit).
    pub fn has_work_package(&self, slug: &str, wp: &str) -> bool {
        let dir = self.specs_dir().join(slug);
        if !is_feature_slug(slug) || !dir.join("meta.json").is_file() {
            return false;
        }
        std::fs::read_dir(dir.join("tasks")).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with(wp) && name.ends_with(".md")
            })
        })
    }

    /// Resolves and loads in one step (see [`Project::resolve_slug`]).
    pub fn feature(
        &self,
        explicit: Option<&str>,
        branch: Option<&str>,
    ) -> Result<Feature, ProjectError> {
        let slug = self.resolve_slug(explicit, branch)?;
        self.load_feature(&slug)
    }
}

impl Feature {
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join("meta.json")
    }

    pub fn tasks_md_path(&self) -> PathBuf {
        self.dir.join("tasks.md")
    }

    /// The work package `id` (accepts `wp01` and `WP1` spellings), or an error listing the
    /// known ones.
    pub fn work_package(&self, id: &str) -> Result<&WorkPackage, ProjectError> {
        let id = normalize_wp_id(id)?;
        self.work_packages
            .iter()
            .find(|w| w.id == id)
            .ok_or_else(|| ProjectError::UnknownWorkPackage {
                feature: self.slug.clone(),
                wp: id,
                dir: self.dir.join("tasks"),
                known: self.known_ids(),
            })
    }

    /// The work packages that list `id` among their dependencies.
    pub fn dependents(&self, id: &str) -> Vec<&WorkPackage> {
        self.work_packages
            .iter()
            .filter(|w| w.dependencies.iter().any(|d| d == id))
            .collect()
    }

    /// The branch (and worktree directory name) of work package `wp`: `<feature>-<wp>`.
    pub fn wp_branch(&self, wp: &str) -> String {
        format!("{}-{wp}", self.slug)
    }

    pub fn known_ids(&self) -> String {
        let ids: Vec<&str> = self.work_packages.iter().map(|w| w.id.as_str()).collect();
        if ids.is_empty() {
            "(none)".into()
        } else {
            ids.join(", ")
        }
    }
}

/// `WP01` from `WP01`, `wp01`, `WP1`; an error for anything else.
pub fn normalize_wp_id(given: &str) -> Result<String, ProjectError> {
    let upper = given.trim().to_ascii_uppercase();
    if is_wp_id(&upper) {
        return Ok(upper);
    }
    if let Some(digits) = upper.strip_prefix("WP")
        && digits.len() == 1
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Ok(format!("WP0{digits}"));
    }
    Err(ProjectError::BadWpId {
        given: given.to_owned(),
    })
}

/// Splits a WP branch name `<feature>-WPnn` into (feature slug, WP id).
pub fn parse_wp_branch(branch: &str) -> Option<(&str, &str)> {
    let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    let (feature, wp) = branch.rsplit_once('-')?;
    (is_feature_slug(feature) && is_wp_id(wp)).then_some((feature, wp))
}

fn read_meta(dir: &Path, slug: &str) -> Result<Feature, ProjectError> {
    let path = dir.join("meta.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProjectError::MissingMeta { path });
        }
        Err(e) => return Err(ProjectError::io("read", path, e)),
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| ProjectError::Malformed {
        path: path.clone(),
        what: "JSON",
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let Value::Object(meta) = value else {
        return Err(ProjectError::invalid(
            &path,
            "meta.json must be a JSON object",
        ));
    };
    let string = |key: &str| meta.get(key).and_then(Value::as_str).map(str::trim);
    let number = match meta.get("feature_number") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => format!("{:03}", n.as_u64().unwrap_or(u64::MAX)),
        None => slug[..3].to_owned(),
        Some(_) => {
            return Err(ProjectError::invalid(
                &path,
                "`feature_number` must be a string like \"001\"",
            ));
        }
    };
    if number != slug[..3] {
        return Err(ProjectError::invalid(
            &path,
            format!("feature_number is {number:?} but the directory is {slug}"),
        ));
    }
    if let Some(s) = string("slug")
        && s != slug
        && format!("{number}-{s}") != slug
    {
        return Err(ProjectError::invalid(
            &path,
            format!("slug is {s:?} but the directory is {slug}"),
        ));
    }
    let target_branch = match meta.get("target_branch") {
        None | Some(Value::Null) => DEFAULT_TARGET_BRANCH.to_owned(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(_) => {
            return Err(ProjectError::invalid(
                &path,
                "`target_branch` must be a branch name",
            ));
        }
    };
    Ok(Feature {
        slug: slug.to_owned(),
        number,
        target_branch,
        created_at: string("created_at").map(str::to_owned),
        friendly_name: string("friendly_name").map(str::to_owned),
        dir: dir.to_path_buf(),
        work_packages: Vec::new(),
    })
}

fn read_work_packages(dir: &Path) -> Result<Vec<WorkPackage>, ProjectError> {
    let tasks = dir.join("tasks");
    let entries = match std::fs::read_dir(&tasks) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ProjectError::io("read", tasks, e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            name.starts_with("WP") && name.ends_with(".md") && p.is_file()
        })
        .collect();
    paths.sort();
    let mut wps: Vec<WorkPackage> = Vec::with_capacity(paths.len());
    for path in paths {
        let wp = WorkPackage::load(&path)?;
        if let Some(first) = wps.iter().find(|w| w.id == wp.id) {
            return Err(ProjectError::DuplicateWorkPackage {
                wp: wp.id,
                first: first.path.clone(),
                second: path,
            });
        }
        wps.push(wp);
    }
    wps.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(wps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wp_branches_and_ids() {
        assert_eq!(
            parse_wp_branch("001-checkout-flow-WP03"),
            Some(("001-checkout-flow", "WP03"))
        );
        assert_eq!(parse_wp_branch("main"), None);
        assert_eq!(parse_wp_branch("feature-WP01"), None);
        assert_eq!(normalize_wp_id("wp1").unwrap(), "WP01");
        assert_eq!(normalize_wp_id("WP07").unwrap(), "WP07");
        assert!(normalize_wp_id("WPX").is_err());
    }
}
