//! The dependency graph of a feature's work packages: validation (unknown ids, cycles) and
//! ordering.

use std::collections::BTreeMap;

use super::{Feature, ProjectError};

/// Checks that every dependency names a work package of the feature and that there is no
/// cycle. Errors name the file to fix.
pub fn validate(feature: &Feature) -> Result<(), ProjectError> {
    for wp in &feature.work_packages {
        for dep in &wp.dependencies {
            if !feature.work_packages.iter().any(|w| &w.id == dep) {
                return Err(ProjectError::UnknownDependency {
                    path: wp.path.clone(),
                    feature: feature.slug.clone(),
                    wp: wp.id.clone(),
                    dependency: dep.clone(),
                    known: feature.known_ids(),
                });
            }
        }
    }
    if let Some(cycle) = find_cycle(feature) {
        let files: Vec<String> = cycle[..cycle.len() - 1]
            .iter()
            .filter_map(|id| feature.work_packages.iter().find(|w| &w.id == id))
            .map(|w| w.path.display().to_string())
            .collect();
        return Err(ProjectError::DependencyCycle {
            feature: feature.slug.clone(),
            cycle: cycle.join(" → "),
            files: files.join(", "),
        });
    }
    Ok(())
}

/// The work packages in an order where every WP comes after its dependencies (ties by id).
/// Assumes a validated (acyclic) feature.
pub fn topological_order(feature: &Feature) -> Vec<String> {
    let mut remaining = dependency_map(feature);
    let mut order = Vec::with_capacity(remaining.len());
    while !remaining.is_empty() {
        let ready: Vec<&str> = remaining
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !remaining.contains_key(d)))
            .map(|(id, _)| *id)
            .collect();
        if ready.is_empty() {
            // A cycle: validate() rejects these; keep the rest in id order rather than loop.
            order.extend(remaining.keys().map(|k| (*k).to_owned()));
            break;
        }
        for id in ready {
            remaining.remove(id);
            order.push(id.to_owned());
        }
    }
    order
}

/// WP id → the ids it depends on.
fn dependency_map(feature: &Feature) -> BTreeMap<&str, Vec<&str>> {
    feature
        .work_packages
        .iter()
        .map(|w| {
            (
                w.id.as_str(),
                w.dependencies.iter().map(String::as_str).collect(),
            )
        })
        .collect()
}

/// A dependency cycle as a path that starts and ends at the same WP, if there is one.
fn find_cycle(feature: &Feature) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let deps = dependency_map(feature);
    let mut marks: BTreeMap<&str, Mark> = deps.keys().map(|k| (*k, Mark::New)).collect();
    for start in deps.keys() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative depth-first search; `path` is the chain of active nodes.
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::Active);
        while let Some((node, next)) = path.last().copied() {
            let children = deps.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(child) = children.get(next).copied() {
                if let Some(last) = path.last_mut() {
                    last.1 += 1;
                }
                match marks.get(child).copied() {
                    Some(Mark::Active) => {
                        let from = path.iter().position(|(n, _)| *n == child).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[from..].iter().map(|(n, _)| (*n).to_owned()).collect();
                        cycle.push(child.to_owned());
                        return Some(cycle);
                    }
                    Some(Mark::New) => {
                        marks.insert(child, Mark::Active);
                        path.push((child, 0));
                    }
                    _ => {}
                }
            } else {
                marks.insert(node, Mark::Done);
                path.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Lane;
    use crate::project::WorkPackage;

    fn feature(edges: &[(&str, &[&str])]) -> Feature {
        Feature {
            slug: "001-demo".into(),
            number: "001".into(),
            target_branch: "main".into(),
            created_at: None,
            friendly_name: None,
            dir: "kitty-specs/001-demo".into(),
            work_packages: edges
                .iter()
                .map(|(id, deps)| WorkPackage {
                    id: (*id).into(),
                    title: format!("{id} title"),
                    file_lane: Lane::Planned,
                    dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
                    subtasks: vec![],
                    path: format!("tasks/{id}-x.md").into(),
                })
                .collect(),
        }
    }

    #[test]
    fn orders_dependencies_first() {
        let f = feature(&[("WP01", &[]), ("WP02", &["WP03"]), ("WP03", &["WP01"])]);
        validate(&f).unwrap();
        assert_eq!(topological_order(&f), vec!["WP01", "WP03", "WP02"]);
    }

    #[test]
    fn reports_cycles_and_unknown_ids_with_files() {
        let f = feature(&[
            ("WP01", &["WP03"]),
            ("WP02", &["WP01"]),
            ("WP03", &["WP02"]),
        ]);
        let err = validate(&f).unwrap_err().to_string();
        assert!(err.contains("WP01 → WP03 → WP02 → WP01"), "{err}");
        assert!(err.contains("tasks/WP02-x.md"), "{err}");
        let f = feature(&[("WP01", &["WP09"])]);
        let err = validate(&f).unwrap_err().to_string();
        assert!(
            err.contains("tasks/WP01-x.md") && err.contains("WP09"),
            "{err}"
        );
    }
}
