//! The documentation's links hold: every relative link and `#anchor` in docs/**/*.md and
//! README.md resolves (anchors by GitHub's heading slug rules), no link leaves the repository,
//! every page under docs/ is listed in a toc.yml, and no toc.yml names a missing page.
//! Reads files only: no network.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` whose name ends with `suffix`, sorted.
fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read a docs directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn pages() -> Vec<PathBuf> {
    let mut pages = files_under(&root().join("docs"), ".md");
    pages.push(root().join("README.md"));
    pages
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Lexically resolves `..` and `.`; `None` when the path climbs above its start.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

/// The lines of a Markdown text outside fenced code blocks, with their line numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        match fence {
            Some(f) if t.starts_with(f) => fence = None,
            Some(_) => {}
            None if t.starts_with("```") => fence = Some("```"),
            None if t.starts_with("~~~") => fence = Some("~~~"),
            None => out.push((i + 1, line)),
        }
    }
    out
}

/// A line with its inline code spans blanked out, so `[x](y)` inside backticks is no link.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        } else {
            out.push_str(&" ".repeat(part.len() + 2));
        }
    }
    out
}

/// The targets of the inline links and images of one line: `[text](target)`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = line[i..].find("](") {
        let start = i + at + 2;
        let mut depth = 0usize;
        let mut end = start;
        while end < bytes.len() {
            match bytes[end] {
                b'(' => depth += 1,
                b')' if depth == 0 => break,
                b')' => depth -= 1,
                _ => {}
            }
            end += 1;
        }
        let target = line[start..end].trim();
        // `[text](target "title")`
        let target = target.split_whitespace().next().unwrap_or("");
        let target = target.trim_start_matches('<').trim_end_matches('>');
        if !target.is_empty() {
            out.push(target.to_owned());
        }
        i = end.min(line.len());
        if i == start {
            i += 1;
        }
    }
    out
}

/// The text of a heading as GitHub renders it for its slug: code spans keep their text, links
/// keep their text, emphasis markers go.
fn heading_text(raw: &str) -> String {
    let mut text = String::new();
    let mut rest = raw;
    while let Some(open) = rest.find('[') {
        match rest[open..].find("](") {
            Some(mid) => {
                let close = rest[open + mid..].find(')').map(|c| open + mid + c);
                let Some(close) = close else { break };
                text.push_str(&rest[..open]);
                text.push_str(&rest[open + 1..open + mid]);
                rest = &rest[close + 1..];
            }
            None => break,
        }
    }
    text.push_str(rest);
    text.replace('`', "")
}

/// GitHub's anchor for a heading: lowercase; letters, digits, `-`, `_` kept; spaces become
/// `-`; everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor a page offers, with GitHub's `-1`, `-2` suffixes for repeated headings.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let t = line.trim_start();
        let level = t.chars().take_while(|c| *c == '#').count();
        if level == 0 || level > 6 || !t[level..].starts_with(' ') {
            continue;
        }
        let base = slug(&heading_text(t[level..].trim().trim_end_matches('#')));
        let n = seen.entry(base.clone()).or_default();
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// Every problem with the links of every page.
fn link_problems() -> Vec<String> {
    let root = root();
    let mut problems = Vec::new();
    let mut anchor_cache: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("read a page");
        let dir = page.parent().expect("a page has a directory");
        for (line_no, line) in prose_lines(&text) {
            for target in link_targets(line) {
                let at = format!("{}:{line_no}: link {target:?}", rel(&page));
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let file = if path.is_empty() {
                    page.clone()
                } else if path.starts_with('/') {
                    problems.push(format!("{at}: absolute paths do not work on GitHub"));
                    continue;
                } else {
                    match normalise(&dir.join(path)) {
                        Some(f) if f.starts_with(&root) => f,
                        _ => {
                            problems.push(format!("{at}: points outside the repository"));
                            continue;
                        }
                    }
                };
                if !file.exists() {
                    problems.push(format!("{at}: {} does not exist", rel(&file)));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                if !file.to_string_lossy().ends_with(".md") {
                    continue;
                }
                let known = anchor_cache.entry(file.clone()).or_insert_with(|| {
                    anchors(&std::fs::read_to_string(&file).expect("read a linked page"))
                });
                if !known.contains(anchor) {
                    problems.push(format!(
                        "{at}: {} has no heading with the anchor #{anchor}",
                        rel(&file)
                    ));
                }
            }
        }
    }
    problems
}

#[derive(Deserialize)]
struct Toc {
    title: String,
    items: Vec<TocItem>,
}

#[derive(Deserialize)]
struct TocItem {
    title: String,
    href: String,
}

/// Pages reached from docs/toc.yml, toc files visited, and problems found on the way.
fn walk_tocs() -> (BTreeSet<PathBuf>, BTreeSet<PathBuf>, Vec<String>) {
    let mut pages = BTreeSet::new();
    let mut tocs = BTreeSet::new();
    let mut problems = Vec::new();
    let mut stack = vec![root().join("docs/toc.yml")];
    while let Some(toc_path) = stack.pop() {
        if !tocs.insert(toc_path.clone()) {
            problems.push(format!("{} is listed twice", rel(&toc_path)));
            continue;
        }
        let text = match std::fs::read_to_string(&toc_path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{}: {e}", rel(&toc_path)));
                continue;
            }
        };
        let toc: Toc = match serde_norway::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{}: not a toc (title, items): {e}", rel(&toc_path)));
                continue;
            }
        };
        if toc.title.trim().is_empty() {
            problems.push(format!("{}: empty title", rel(&toc_path)));
        }
        let dir = toc_path.parent().expect("a toc has a directory");
        for item in toc.items {
            let target = dir.join(&item.href);
            if item.title.trim().is_empty() {
                problems.push(format!("{}: {} has no title", rel(&toc_path), item.href));
            }
            if !target.is_file() {
                problems.push(format!(
                    "{}: names {}, which does not exist",
                    rel(&toc_path),
                    item.href
                ));
            } else if item.href.ends_with(".yml") {
                stack.push(target);
            } else if !pages.insert(target.clone()) {
                problems.push(format!("{}: {} is listed twice", rel(&toc_path), item.href));
            }
        }
    }
    (pages, tocs, problems)
}

#[test]
fn every_relative_link_and_anchor_resolves_inside_the_repository() {
    let problems = link_problems();
    assert!(
        problems.is_empty(),
        "{} broken links:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_page_is_in_a_toc_and_every_toc_entry_exists() {
    let (listed, tocs, mut problems) = walk_tocs();
    for page in files_under(&root().join("docs"), ".md") {
        if !listed.contains(&page) {
            problems.push(format!("{} is in no toc.yml", rel(&page)));
        }
    }
    for toc in files_under(&root().join("docs"), "toc.yml") {
        if !tocs.contains(&toc) {
            problems.push(format!("{} is not reached from docs/toc.yml", rel(&toc)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn slugs_and_link_parsing_follow_github() {
    assert_eq!(
        slug(&heading_text("Team server (`benches/server_ingest.rs`)")),
        "team-server-benchesserver_ingestrs"
    );
    assert_eq!(
        slug(&heading_text("`spec-kitty sync now`")),
        "spec-kitty-sync-now"
    );
    assert_eq!(
        slug("Step 0: Start a server — locally"),
        "step-0-start-a-server--locally"
    );
    let a = anchors("# A\n## A\n```\n## not a heading\n```\n## B (c)\n");
    assert_eq!(
        a,
        ["a", "a-1", "b-c"].into_iter().map(String::from).collect()
    );
    assert_eq!(
        link_targets("see [a](x.md#y) and `[b](no.md)` and ![i](img.png \"t\")"),
        vec!["x.md#y".to_owned(), "img.png".to_owned()]
    );
    assert!(normalise(Path::new("a/../../b")).is_none());
}
