//! The inventory of egress paths (docs/how-to/run-sync-daemon.md, "Egress paths") as a test: every place that
//! creates the HTTP client, opens a sending session or a WebSocket is listed here. A new call
//! site fails this test until it goes through `spec_kitty::sync::gate::clear_to_send` and is
//! added to the inventory (here and in docs/how-to/run-sync-daemon.md).

use std::collections::BTreeMap;
use std::path::Path;

/// (pattern, file) → occurrences allowed, and why each is allowed.
const INVENTORY: &[(&str, &str, usize, &str)] = &[
    (
        "Http::new(",
        "src/sync/session.rs",
        3,
        "auth: login, logout, the session every sender opens",
    ),
    (
        "Http::new(",
        "src/sync/status.rs",
        1,
        "sync status --check: unauthenticated probe, sends no event",
    ),
    (
        "Http::new(",
        "src/cli/demo/team.rs",
        1,
        "the demo's own in-process server on loopback",
    ),
    (
        "Session::open(",
        "src/sync/now.rs",
        1,
        "sync now: after gate::clear_to_send",
    ),
    (
        "Session::open(",
        "src/sync/status.rs",
        1,
        "sync status --check: the empty-batch probe, sends no event",
    ),
    (
        "Session::open(",
        "src/sync/daemon/egress.rs",
        1,
        "the daemon: gate::clear_to_send before every send",
    ),
    (
        "connect_async(",
        "src/sync/daemon/link.rs",
        1,
        "the daemon's WebSocket, after the gate",
    ),
    ("reqwest::", "src/sync/config.rs", 1, "URL parsing only"),
];

const PATTERNS: [&str; 4] = [
    "Http::new(",
    "Session::open(",
    "connect_async(",
    "reqwest::",
];

fn scan(dir: &Path, root: &Path, found: &mut BTreeMap<(String, String), usize>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            scan(&path, root, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        // The client itself, and the server (which never calls out).
        if rel == "src/sync/http.rs"
            || rel.starts_with("src/server/")
            || rel.starts_with("src/bin/")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for p in PATTERNS {
            let n = text.matches(p).count();
            if n > 0 {
                found.insert((p.to_owned(), rel.clone()), n);
            }
        }
    }
}

#[test]
fn every_call_site_of_the_http_client_and_the_websocket_is_in_the_egress_inventory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = BTreeMap::new();
    scan(&root.join("src"), root, &mut found);
    let allowed: BTreeMap<(String, String), usize> = INVENTORY
        .iter()
        .map(|(p, f, n, _)| ((p.to_string(), f.to_string()), *n))
        .collect();
    let mut problems = Vec::new();
    for ((p, f), n) in &found {
        match allowed.get(&(p.clone(), f.clone())) {
            Some(a) if n <= a => {}
            Some(a) => problems.push(format!("{f}: {n} × `{p}` (the inventory allows {a})")),
            None => problems.push(format!("{f}: {n} × `{p}` is not in the egress inventory")),
        }
    }
    assert!(
        problems.is_empty(),
        "new egress call sites: route them through spec_kitty::sync::gate::clear_to_send and \
         list them in tests/sync_daemon_egress.rs and docs/how-to/run-sync-daemon.md:\n{}",
        problems.join("\n")
    );
    let docs = std::fs::read_to_string(root.join("docs/how-to/run-sync-daemon.md"))
        .expect("docs/how-to/run-sync-daemon.md");
    assert!(
        docs.contains("## Egress paths"),
        "docs/how-to/run-sync-daemon.md lists the egress paths"
    );
}
