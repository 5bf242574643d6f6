//! The dashboard in a real headless browser (Debian's `chromium`, driven over the DevTools
//! protocol): log in through the form, reach the board with the keyboard only, watch a card
//! change columns when an event is uploaded — also across a server restart — and scroll the
//! activity feed. Screenshots of every page are saved under the target directory; with
//! `SPEC_KITTY_UPDATE_SCREENSHOTS=1` they also replace `docs/images/dashboard-*.png`.
//!
//! Without chromium this test fails (it does not skip): CI installs it in `.ci/run`.

mod dashboard_browser {
    pub mod cdp;
}
mod dashboard_support;
mod server_common;

use std::path::PathBuf;
use std::time::Duration;

use dashboard_browser::cdp::{Chromium, find_chromium};
use dashboard_support::*;
use serde_json::{Value, json};
use server_common::admin;

const TEAM: &str = "acme";

/// An event dated `hours_ago` before now.
fn at(mut e: Value, hours_ago: f64) -> Value {
    let t = chrono::Utc::now() - chrono::Duration::milliseconds((hours_ago * 3_600_000.0) as i64);
    e["timestamp"] = json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false));
    e
}

/// A week of a small team's work on two features, for pages worth looking at.
fn demo_story() -> Vec<Value> {
    let f1 = "007-invoice-export";
    let f2 = "008-audit-log";
    let mut events = Vec::new();
    let mut clock = 0;
    let mut next = || {
        clock += 1;
        clock
    };
    let titles1 = [
        "Invoice data model",
        "CSV writer",
        "PDF rendering",
        "Export command",
        "Docs for export",
    ];
    for (i, title) in titles1.iter().enumerate() {
        events.push(at(
            created(TEAM, f1, &format!("WP0{}", i + 1), title, next()),
            120.0,
        ));
    }
    let titles2 = ["Audit event schema", "Append-only store", "Audit viewer"];
    for (i, title) in titles2.iter().enumerate() {
        events.push(at(
            created(TEAM, f2, &format!("WP0{}", i + 1), title, next()),
            70.0,
        ));
    }
    let moves: &[(&str, &str, &str, &str, &str, f64)] = &[
        (f1, "WP01", "planned", "doing", "claude", 110.0),
        (f1, "WP02", "planned", "doing", "codex", 100.0),
        (f1, "WP01", "doing", "for_review", "claude", 90.0),
        (f1, "WP01", "for_review", "done", "robin", 80.0),
        (f1, "WP03", "planned", "doing", "claude", 60.0),
        (f1, "WP02", "doing", "for_review", "codex", 40.0),
        (f2, "WP01", "planned", "doing", "claude", 30.0),
        (f1, "WP02", "for_review", "done", "robin", 20.0),
        (f2, "WP01", "doing", "for_review", "claude", 6.0),
        (f1, "WP03", "doing", "for_review", "claude", 0.5),
    ];
    for (f, wp, from, to, who, ago) in moves {
        events.push(at(moved(TEAM, f, wp, from, to, who, next()), *ago));
    }
    let note = with_payload(
        created(TEAM, f1, "WP03", "x", next()),
        "HistoryAdded",
        "WorkPackage",
        json!({"wp_id": "WP03", "entry_type": "review", "feature_slug": f1,
               "entry_content": "Fonts embed correctly; page breaks need a second look", "author": "robin"}),
    );
    events.push(at(note, 0.3));
    let assigned = with_payload(
        created(TEAM, f1, "WP03", "x", next()),
        "WPAssigned",
        "WorkPackage",
        json!({"wp_id": "WP03", "agent_id": "robin", "phase": "review", "retry_count": 0, "feature_slug": f1}),
    );
    events.push(at(assigned, 0.2));
    events
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard-screenshots")
        .join(format!("dashboard-{name}.png"))
}

async fn shoot(browser: &mut Chromium, name: &str) {
    let path = screenshot_path(name);
    browser.screenshot(&path).await;
    if std::env::var_os("SPEC_KITTY_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/images");
        std::fs::create_dir_all(&docs).expect("docs/images");
        std::fs::copy(&path, docs.join(format!("dashboard-{name}.png"))).expect("copy screenshot");
    }
}

/// The lane of a card on the board, as the page shows it now.
fn lane_of(feature: &str, wp: &str) -> String {
    format!(
        "(() => {{ const c = document.querySelector('[data-feature=\"{feature}\"][data-wp=\"{wp}\"]'); \
         return c ? c.closest('[data-lane]').dataset.lane : null; }})()"
    )
}

#[tokio::test]
async fn in_a_real_browser_the_board_moves_cards_live_across_a_server_restart() {
    let Some(chromium) = find_chromium() else {
        panic!(
            "chromium is not installed, so the dashboard's browser test cannot run: \
             `apt-get install -y chromium` (.ci/run installs it), or set CHROMIUM=/path/to/it"
        );
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = FixedServer::start(tmp.path(), 0);
    admin(
        tmp.path(),
        &["user", "add", "alice", "--team", TEAM, "--password-stdin"],
        server_common::PASSWORD,
    )
    .expect("user add");
    let token = access_at(&server.url, "alice").await;
    upload_ok_to(&server.url, &token, &demo_story()).await;

    let mut b = Chromium::launch(&chromium).await;
    // The viewer is in India (UTC+05:30), the server in UTC: times must follow the viewer.
    b.call(
        "Emulation.setTimezoneOverride",
        json!({"timezoneId": "Asia/Kolkata"}),
    )
    .await;

    // Log in through the form, with the keyboard.
    b.navigate(&format!("{}/a/{TEAM}/dashboards/board", server.url))
        .await;
    assert_eq!(
        b.eval("location.pathname").await,
        "/login",
        "not logged in yet"
    );
    b.eval("document.getElementById('username').focus()").await;
    b.type_text("alice").await;
    b.key("Tab", false).await;
    b.type_text(server_common::PASSWORD).await;
    b.mark_document().await;
    b.key("Enter", false).await;
    b.wait_loaded("the page after login").await;
    assert_eq!(
        b.eval("location.pathname").await,
        format!("/a/{TEAM}/dashboards/board"),
        "login returns to the page asked for"
    );

    // Keyboard only: from the overview, Tab reaches the skip link first, then the "Board" link.
    b.navigate(&format!("{}/a/{TEAM}/dashboards/", server.url))
        .await;
    shoot(&mut b, "overview").await;
    b.key("Tab", false).await;
    assert_eq!(
        b.eval("document.activeElement.textContent").await,
        "Skip to content"
    );
    let mut on_board_link = false;
    for _ in 0..10 {
        b.key("Tab", false).await;
        if b.eval("document.activeElement.textContent").await == "Board" {
            on_board_link = true;
            break;
        }
    }
    assert!(on_board_link, "Tab reaches the Board link");
    b.mark_document().await;
    b.key("Enter", false).await;
    b.wait_loaded("the board").await;
    assert_eq!(
        b.eval("location.pathname").await,
        format!("/a/{TEAM}/dashboards/board"),
        "Enter on the focused link opens the board"
    );
    let fcp = b
        .eval("(performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint') || {}).startTime || null")
        .await;
    eprintln!("board first contentful paint: {fcp} ms");

    // Live: the page subscribes, an uploaded event moves the card, no reload happens.
    assert!(
        b.wait_for(
            "document.getElementById('live-status').dataset.state === 'live'",
            Duration::from_secs(20)
        )
        .await,
        "the board goes live"
    );
    b.eval("window.__sameDocument = 42").await;
    let wp04 = lane_of("007-invoice-export", "WP04");
    assert_eq!(b.eval(&wp04).await, "planned");
    upload_ok_to(
        &server.url,
        &token,
        &[moved(
            TEAM,
            "007-invoice-export",
            "WP04",
            "planned",
            "doing",
            "codex",
            100,
        )],
    )
    .await;
    assert!(
        b.wait_for(&format!("{wp04} === 'doing'"), Duration::from_secs(20))
            .await,
        "the card moved to doing"
    );
    assert_eq!(
        b.eval("window.__sameDocument").await,
        42,
        "without a reload"
    );
    shoot(&mut b, "board").await;

    // The server restarts on the same port: the page reconnects and keeps following.
    let server = server.restart();
    let token = access_at(&server.url, "alice").await;
    assert!(
        b.wait_for(
            "document.getElementById('live-status').dataset.state === 'live'",
            Duration::from_secs(30)
        )
        .await
    );
    upload_ok_to(
        &server.url,
        &token,
        &[moved(
            TEAM,
            "007-invoice-export",
            "WP04",
            "doing",
            "for_review",
            "codex",
            101,
        )],
    )
    .await;
    assert!(
        b.wait_for(&format!("{wp04} === 'for_review'"), Duration::from_secs(30))
            .await,
        "the card moved after the restart"
    );
    assert_eq!(
        b.eval("window.__sameDocument").await,
        42,
        "still without a reload"
    );

    // Work package page and flow chart.
    b.navigate(&format!(
        "{}/a/{TEAM}/dashboards/features/007-invoice-export/WP03",
        server.url
    ))
    .await;
    assert!(
        b.eval("document.querySelector('.timeline').children.length")
            .await
            .as_u64()
            >= Some(4)
    );
    shoot(&mut b, "work-package").await;
    b.navigate(&format!(
        "{}/a/{TEAM}/dashboards/features/007-invoice-export/flow",
        server.url
    ))
    .await;
    assert_eq!(
        b.eval("document.querySelectorAll('figure svg polygon').length")
            .await,
        4
    );
    shoot(&mut b, "flow").await;

    // Activity: readable sentences, then older pages load as the list scrolls.
    b.navigate(&format!("{}/a/{TEAM}/dashboards/activity", server.url))
        .await;
    shoot(&mut b, "activity").await;
    let first = b
        .eval("document.querySelector('#feed li').textContent")
        .await;
    assert!(
        first.as_str().is_some_and(
            |t| t.contains("codex moved WP04 doing → for_review in 007-invoice-export")
        ),
        "{first}"
    );
    let shown = b
        .eval(
            "(() => { const t = document.querySelector('#feed li time[datetime]'); \
             return [t.getAttribute('datetime'), t.textContent]; })()",
        )
        .await;
    let utc = chrono::DateTime::parse_from_rfc3339(shown[0].as_str().unwrap_or_default())
        .expect("an ISO time in datetime");
    let india = chrono::FixedOffset::east_opt(5 * 3600 + 30 * 60).expect("offset");
    let local = utc.with_timezone(&india);
    let text = shown[1].as_str().unwrap_or_default();
    assert!(
        text.contains(&local.format("%H:%M").to_string())
            || text.contains(&local.format("%I:%M").to_string()),
        "{text:?} shows {local} in the viewer's zone, not {utc}"
    );
    let bulk: Vec<Value> = (0..80)
        .map(|i| {
            with_payload(
                created(TEAM, "008-audit-log", "WP02", "x", 200 + i),
                "HistoryAdded",
                "WorkPackage",
                json!({"wp_id": "WP02", "entry_type": "note", "feature_slug": "008-audit-log",
                   "entry_content": format!("progress note {i}"), "author": "claude"}),
            )
        })
        .collect();
    upload_ok_to(&server.url, &token, &bulk).await;
    b.navigate(&format!("{}/a/{TEAM}/dashboards/activity", server.url))
        .await;
    assert_eq!(
        b.eval("document.querySelectorAll('#feed li').length").await,
        50
    );
    let mut grew = false;
    for _ in 0..50 {
        b.eval("window.scrollTo(0, document.body.scrollHeight)")
            .await;
        if b.eval("document.querySelectorAll('#feed li').length")
            .await
            .as_u64()
            > Some(50)
        {
            grew = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(grew, "scrolling loads older events");
    let seqs = b
        .eval("Array.from(document.querySelectorAll('#feed li')).map(li => +li.dataset.seq)")
        .await;
    let seqs: Vec<i64> = seqs
        .as_array()
        .expect("seqs")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "no gaps or repeats: {seqs:?}"
    );
    b.close().await;
}
