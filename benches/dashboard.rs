//! Dashboard benchmark: server time of the board and the activity feed of a team with 10,000
//! work packages and 1,000,000 events, and the browser's time to first render of the board.
//!
//! Plain harness: `cargo bench --bench dashboard`. The database is seeded directly through the
//! server's store (the same insert path as a batch, projections included) in a temporary
//! directory, then the real `spec-kitty-server` binary serves it on 127.0.0.1 and each page is
//! fetched 20 times; the figures are request round trips on loopback (so they include
//! rendering and transfer). `BENCH_EVENTS` / `BENCH_WPS` change the size. When `chromium` is
//! installed, the board is also opened in headless chromium and its first contentful paint read.

#[path = "../tests/dashboard_browser/cdp.rs"]
mod cdp;
#[path = "../tests/dashboard_support/mod.rs"]
mod dashboard_support;
#[path = "../tests/server_common/mod.rs"]
mod server_common;

use std::time::{Duration, Instant};

use dashboard_support::{Browser, FixedServer};
use spec_kitty::event::Lane;
use spec_kitty::server::auth::hash_password;
use spec_kitty::server::store::dashboard::EventFacts;
use spec_kitty::server::store::{IncomingEvent, Store, WpEffect};

const TEAM: &str = "acme";
const LANES: [Lane; 4] = [Lane::Planned, Lane::Doing, Lane::ForReview, Lane::Done];
const ACTORS: [&str; 5] = ["claude", "codex", "robin", "alice", "gemini"];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Event `i` of the seeded history: first every work package is created, then status changes
/// walk them through the lanes, with a history note every tenth event.
fn event(i: usize, wps: usize, t0_ms: i64) -> IncomingEvent {
    let wp = i % wps;
    let (feature, wp_id) = (
        format!("{:03}-feature-{}", wp / 100, wp / 100),
        format!("WP{:02}", wp % 100),
    );
    let at_ms = t0_ms + i as i64 * 1000;
    let ts = chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false))
        .unwrap_or_default();
    let actor = ACTORS[i % ACTORS.len()];
    let id = ulid::Ulid::new().to_string();
    let (event_type, payload, effect) = if i < wps {
        (
            "WPCreated",
            format!(
                r#"{{"wp_id":"{wp_id}","title":"Work package {wp}","feature_slug":"{feature}","dependencies":[]}}"#
            ),
            WpEffect::Created {
                feature_slug: feature.clone(),
            },
        )
    } else if i.is_multiple_of(10) {
        (
            "HistoryAdded",
            format!(
                r#"{{"wp_id":"{wp_id}","entry_type":"note","entry_content":"note {i}","author":"{actor}","feature_slug":"{feature}"}}"#
            ),
            WpEffect::None,
        )
    } else {
        let round = i / wps;
        let (from, to) = (LANES[(round + 3) % 4], LANES[round % 4]);
        (
            "WPStatusChanged",
            format!(
                r#"{{"wp_id":"{wp_id}","previous_status":"{from}","new_status":"{to}","changed_by":"{actor}","feature_slug":"{feature}"}}"#
            ),
            WpEffect::Moved {
                feature_slug: Some(feature.clone()),
                lane: to,
            },
        )
    };
    let aggregate = "WorkPackage";
    let envelope = format!(
        r#"{{"event_id":"{id}","event_type":"{event_type}","aggregate_id":"{wp_id}","aggregate_type":"{aggregate}","payload":{payload},"node_id":"0123456789ab","lamport_clock":{},"causation_id":null,"correlation_id":"{id}","timestamp":"{ts}","project_uuid":"5d6f2c1e-8b9a-4c3d-9e7f-1a2b3c4d5e6f","project_slug":"demo","team_slug":"{TEAM}","schema_version":"1.0.0","git_branch":"main","head_commit_sha":null,"repo_slug":null}}"#,
        i + 1
    );
    IncomingEvent {
        event_id: id,
        event_type: event_type.to_owned(),
        lamport_clock: i as i64 + 1,
        node_id: "0123456789ab".into(),
        project_uuid: "5d6f2c1e-8b9a-4c3d-9e7f-1a2b3c4d5e6f".into(),
        feature_slug: Some(feature),
        wp_id: Some(wp_id),
        effect,
        facts: EventFacts {
            actor: (event_type != "WPCreated").then(|| actor.to_owned()),
            title: (event_type == "WPCreated").then(|| format!("Work package {wp}")),
            at_ms: Some(at_ms),
            project_slug: Some("demo".into()),
        },
        envelope,
    }
}

fn seed(dir: &std::path::Path, events: usize, wps: usize) -> Duration {
    let store = Store::open(&dir.join("server.db")).expect("open store");
    let hash = hash_password(server_common::PASSWORD).expect("hash");
    store.add_user("alice", TEAM, &hash).expect("add user");
    let t0 = chrono::Utc::now().timestamp_millis() - events as i64 * 1000;
    let start = Instant::now();
    let chunk = 10_000;
    for c in (0..events).step_by(chunk) {
        let batch: Vec<IncomingEvent> = (c..(c + chunk).min(events))
            .map(|i| event(i, wps, t0))
            .collect();
        store.insert_events(TEAM, &batch).expect("insert");
    }
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(b: &Browser, label: &str, path: &str) {
    let _ = b.text(path).await; // warm the page cache
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..20 {
        let start = Instant::now();
        let (status, body) = b.text(path).await;
        times.push(start.elapsed());
        assert_eq!(status, 200, "{path}");
        bytes = body.len();
    }
    times.sort();
    println!(
        "{label:<44} p50 {:>7.1} ms   p95 {:>7.1} ms   {:>6} KiB",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        bytes / 1024
    );
}

#[tokio::main]
async fn main() {
    let events = env_or("BENCH_EVENTS", 1_000_000);
    let wps = env_or("BENCH_WPS", 10_000).clamp(1, 99_900);
    let tmp = tempfile::tempdir().expect("temp dir");
    let took = seed(tmp.path(), events, wps);
    println!(
        "seeded {events} events on {wps} work packages in {:.1} s ({:.0} events/s, projections included)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
    let server = FixedServer::start(tmp.path(), 0);
    let mut b = Browser::new(&server.url);
    b.login("alice").await;
    let base = "/a/acme/dashboards/";
    measure(&b, "overview", base).await;
    measure(
        &b,
        "board, all 10,000 cards (HTML)",
        &format!("{base}board"),
    )
    .await;
    measure(
        &b,
        "board, all cards (JSON)",
        &format!("{base}board?format=json"),
    )
    .await;
    measure(
        &b,
        "board, one feature",
        &format!("{base}board?feature=042-feature-42"),
    )
    .await;
    measure(&b, "activity, newest page", &format!("{base}activity")).await;
    measure(
        &b,
        "activity, deepest page (before=100)",
        &format!("{base}activity?before=100"),
    )
    .await;
    measure(
        &b,
        "activity, filter actor, deepest",
        &format!("{base}activity?actor=robin&before=5000"),
    )
    .await;
    measure(
        &b,
        "activity, filter wp + type",
        &format!("{base}activity?wp=WP07&type=HistoryAdded"),
    )
    .await;
    // Filter pairs and triples whose second filter matches nothing: before migration 5 each
    // read every event of the first filter's value.
    for (label, query) in [
        (
            "activity, feature + type (nothing)",
            "feature=042-feature-42&type=FeatureCompleted",
        ),
        (
            "activity, type + actor (nothing)",
            "type=WPCreated&actor=robin",
        ),
        ("activity, wp + actor (nothing)", "wp=WP07&actor=nobody"),
        (
            "activity, feature + actor (nothing)",
            "feature=042-feature-42&actor=nobody",
        ),
        (
            "activity, wp + feature + actor",
            "wp=WP07&feature=042-feature-42&actor=robin",
        ),
        (
            "activity, wp + type + actor, deep",
            "wp=WP07&type=WPStatusChanged&actor=robin&before=5000",
        ),
    ] {
        measure(&b, label, &format!("{base}activity?{query}")).await;
    }
    measure(
        &b,
        "work package timeline",
        &format!("{base}features/042-feature-42/WP07"),
    )
    .await;
    measure(
        &b,
        "cumulative flow (SVG page)",
        &format!("{base}features/042-feature-42/flow"),
    )
    .await;

    match cdp::find_chromium() {
        None => println!("browser first render: skipped (chromium not installed)"),
        Some(binary) => {
            let mut browser = cdp::Chromium::launch(&binary).await;
            browser.navigate(&format!("{}/login", server.url)).await;
            browser
                .eval("document.getElementById('username').focus()")
                .await;
            browser.type_text("alice").await;
            browser.key("Tab", false).await;
            browser.type_text(server_common::PASSWORD).await;
            browser.mark_document().await;
            browser.key("Enter", false).await;
            browser.wait_loaded("overview").await;
            let mut fcp = Vec::new();
            for _ in 0..5 {
                browser
                    .navigate(&format!("{}{base}board", server.url))
                    .await;
                let v = browser
                    .eval("(performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint') || {}).startTime || -1")
                    .await;
                let load = browser
                    .eval("performance.getEntriesByType('navigation')[0].loadEventEnd")
                    .await;
                fcp.push((v.as_f64().unwrap_or(-1.0), load.as_f64().unwrap_or(-1.0)));
            }
            fcp.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (paint, load) = fcp[fcp.len() / 2];
            println!(
                "browser, board of 10,000 cards: first contentful paint {paint:.0} ms, load event {load:.0} ms (median of 5)"
            );
            browser.close().await;
        }
    }
}
