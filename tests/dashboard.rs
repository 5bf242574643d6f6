//! The team dashboard over real HTTP against a real `spec-kitty-server`: login, every page and
//! its JSON twin, filters, cursor pagination, live updates, team isolation, escaping.

mod dashboard_support;
mod server_common;

use std::collections::HashSet;
use std::time::Duration;

use dashboard_support::*;
use serde_json::{Value, json};
use server_common::*;

async fn server_with_story() -> (TestServer, String) {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let access = access(&server, "alice").await;
    upload_ok(&server, &access, &story("acme")).await;
    (server, access)
}

#[tokio::test]
async fn given_a_logged_in_browser_every_page_and_json_twin_shows_the_team_state() {
    let (server, _) = server_with_story().await;
    let mut b = Browser::new(&server.url);

    let res = b.get("/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login");
    b.login("alice").await;
    let res = b.get("/").await;
    assert_eq!(res.headers()["location"], "/a/acme/dashboards/");

    let (status, html) = b.text("/a/acme/dashboards/").await;
    assert_eq!(status, 200);
    assert!(html.contains("Work packages per lane"), "{html}");
    assert!(html.contains("claude</strong> moved"), "{html}");
    let (_, overview) = b.json("/a/acme/dashboards/?format=json").await;
    assert_eq!(
        overview["counts"],
        json!({"projects": 1, "features": 2, "work_packages": 3, "events": 5})
    );
    assert_eq!(
        overview["lanes"],
        json!({"planned": 1, "doing": 1, "for_review": 0, "done": 1})
    );
    assert_eq!(overview["features"][0]["feature_slug"], "001-demo");
    assert_eq!(overview["features"][0]["total"], 2);
    assert_eq!(overview["features"][1]["lanes"], json!([0, 0, 0, 1]));
    assert_eq!(overview["recent"].as_array().map(Vec::len), Some(5));

    let (status, html) = b.text("/a/acme/dashboards/board").await;
    assert_eq!(status, 200);
    let doing = &html[html.find("data-lane=\"doing\"").expect("doing column")..];
    let doing = &doing[..doing.find("</section>").expect("end of column")];
    assert!(
        doing.contains("Parse the invoice") && doing.contains("claude"),
        "{doing}"
    );
    let (_, board) = b.json("/a/acme/dashboards/board?format=json").await;
    let lanes: Vec<(String, u64)> = board["lanes"]
        .as_array()
        .expect("lanes")
        .iter()
        .map(|c| {
            (
                c["lane"].as_str().unwrap_or("").to_owned(),
                c["count"].as_u64().unwrap_or(9),
            )
        })
        .collect();
    assert_eq!(
        lanes,
        [
            ("planned".into(), 1),
            ("doing".into(), 1),
            ("for_review".into(), 0),
            ("done".into(), 1)
        ]
    );
    let card = &board["lanes"][1]["cards"][0];
    assert_eq!(card["title"], "Parse the invoice");
    assert_eq!(card["last_actor"], "claude");
    assert_eq!(card["project_slug"], "demo");
    assert!(card["lane_since_ms"].as_i64().is_some());

    let (status, html) = b.text("/a/acme/dashboards/activity").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("moved <a href=\"/a/acme/dashboards/features/001-demo/WP01\">WP01</a>"),
        "{html}"
    );
    let (_, activity) = b.json("/a/acme/dashboards/activity?format=json").await;
    assert_eq!(
        activity["events"][0]["sentence"],
        "robin moved WP01 planned → done in 002-other"
    );
    assert_eq!(activity["next"], Value::Null);

    let (status, html) = b.text("/a/acme/dashboards/features/001-demo/WP01").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Time in each lane") && html.contains("Parse the invoice"),
        "{html}"
    );
    let (_, wp) = b
        .json("/a/acme/dashboards/features/001-demo/WP01?format=json")
        .await;
    let types: Vec<&str> = wp["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(
        types,
        ["WPCreated", "WPStatusChanged"],
        "only 001-demo's WP01"
    );
    assert_eq!(wp["card"]["lane"], "doing");
    assert!(wp["time_in_lane_ms"]["doing"].as_i64().is_some());

    let (status, html) = b.text("/a/acme/dashboards/features/001-demo/flow").await;
    assert_eq!(status, 200);
    assert!(html.contains("<svg") && html.contains("<polygon"), "{html}");
    let (_, flow) = b
        .json("/a/acme/dashboards/features/001-demo/flow?format=json")
        .await;
    let last = flow["points"]
        .as_array()
        .and_then(|p| p.last())
        .expect("points");
    assert_eq!(last["lanes"], json!([1, 1, 0, 0]));
    let res = b.get("/a/acme/dashboards/features/001-demo/flow.svg").await;
    assert_eq!(res.headers()["content-type"], "image/svg+xml");

    for asset in [
        "/static/dashboard/dashboard.css",
        "/static/dashboard/dashboard.js",
    ] {
        assert_eq!(b.get(asset).await.status(), 200, "{asset} is embedded");
    }
    assert_eq!(
        b.get("/a/acme/dashboards/features/001-demo/WP09")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn given_a_session_cookie_it_is_http_only_lax_and_logout_ends_it() {
    let (server, _) = server_with_story().await;
    let b = Browser::new(&server.url);
    let res = b.submit_login("alice", PASSWORD).await;
    assert_eq!(res.status(), 303);
    let header = set_cookie_header(&res, "sk_session").expect("cookie");
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Lax"),
        "{header}"
    );
    assert!(
        !header.contains("Secure"),
        "plain HTTP: no Secure flag: {header}"
    );
    let token = set_cookie(&res, "sk_session").expect("cookie");
    let mut b = b;
    b.cookie = Some(format!("sk_session={token}"));
    let (_, html) = b.text("/a/acme/dashboards/").await;
    let csrf = hidden(&html, "csrf").expect("logout form carries a csrf token");

    // A logout without the token (a cross-site form) is refused and the session survives.
    let res = b
        .http
        .post(format!("{}/logout", server.url))
        .header("Cookie", b.cookie.clone().unwrap_or_default())
        .form(&[("csrf", "forged")])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 403);
    assert_eq!(b.get("/a/acme/dashboards/").await.status(), 200);

    let res = b
        .http
        .post(format!("{}/logout", server.url))
        .header("Cookie", b.cookie.clone().unwrap_or_default())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 303);
    let res = b.get("/a/acme/dashboards/board").await;
    assert_eq!(res.status(), 303, "the old cookie no longer works");
    assert_eq!(
        res.headers()["location"],
        "/login?next=%2Fa%2Facme%2Fdashboards%2Fboard"
    );
    let (status, _) = b.json("/a/acme/dashboards/?format=json").await;
    assert_eq!(
        status, 401,
        "JSON twins answer 401, not a redirect to the form"
    );
}

#[tokio::test]
async fn given_a_login_without_its_csrf_cookie_or_from_another_origin_it_is_refused() {
    let (server, _) = server_with_story().await;
    let b = Browser::new(&server.url);
    let (csrf, cookie) = b.login_form().await;
    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("csrf", csrf.as_str()),
    ];
    let post = || b.http.post(format!("{}/login", server.url)).form(&form);

    let res = post().send().await.expect("POST");
    assert_eq!(res.status(), 403, "no double-submit cookie");
    let res = post()
        .header("Cookie", "sk_login_csrf=another")
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 403, "cookie and field differ");
    let res = post()
        .header("Cookie", format!("sk_login_csrf={cookie}"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 403, "another origin");
    let res = post()
        .header("Cookie", format!("sk_login_csrf={cookie}"))
        .header("Origin", &server.url)
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 303, "same origin, matching token");
}

#[tokio::test]
async fn given_repeated_wrong_passwords_the_form_is_rate_limited_like_the_api() {
    let server = TestServer::start(&["--login-max-failures", "3"]);
    server.add_user("alice", "acme");
    let b = Browser::new(&server.url);
    for _ in 0..3 {
        let res = b.submit_login("alice", "wrong password").await;
        assert_eq!(res.status(), 401);
        assert!(
            res.text()
                .await
                .unwrap_or_default()
                .contains("Invalid username or password")
        );
    }
    let res = b.submit_login("alice", PASSWORD).await;
    assert_eq!(
        res.status(),
        429,
        "the right password is refused while limited"
    );
    assert!(res.headers().contains_key("retry-after"));
    // The API shares the limiter.
    let res = client()
        .post(format!("{}/api/v1/token/", server.url))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn given_a_user_of_another_team_every_page_and_json_of_acme_is_not_found() {
    let (server, _) = server_with_story().await;
    server.add_user("bob", "beta");
    let mut b = Browser::new(&server.url);
    b.login("bob").await;
    let bob_token = access(&server, "bob").await;
    let alice_token = access(&server, "alice").await;
    let pages = [
        "/a/acme/dashboards/",
        "/a/acme/dashboards/board",
        "/a/acme/dashboards/activity",
        "/a/acme/dashboards/live",
        "/a/acme/dashboards/features/001-demo/WP01",
        "/a/acme/dashboards/features/001-demo/flow",
        "/a/acme/dashboards/features/001-demo/flow.svg",
    ];
    for page in pages {
        // The page, its JSON twin and its fragment (board, activity) — exactly like a team
        // that does not exist, so nothing tells bob that acme is there.
        for suffix in ["", "?format=json", "?fragment=1", "?format=json&before=5"] {
            let (status, body) = b.text(&format!("{page}{suffix}")).await;
            assert_eq!(status, 404, "{page}{suffix} as bob's browser");
            let nowhere = page.replace("/a/acme/", "/a/no-such-team/");
            assert_eq!(
                b.text(&format!("{nowhere}{suffix}")).await,
                (404, body),
                "{page}{suffix} answers like a team that does not exist"
            );
        }
        for suffix in ["", "?format=json"] {
            let url = format!("{}{page}{suffix}", server.url);
            let res = client()
                .get(&url)
                .bearer_auth(&bob_token)
                .send()
                .await
                .expect("GET");
            assert_eq!(res.status(), 404, "{page} with bob's token");
        }
    }
    let (_, own) = b.json("/a/beta/dashboards/board?format=json").await;
    assert_eq!(own["lanes"][0]["count"], 0, "bob's own board is empty");
    let res = client()
        .get(format!(
            "{}/a/acme/dashboards/board?format=json",
            server.url
        ))
        .bearer_auth(&alice_token)
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 200, "scripts use bearer tokens");
    let res = client()
        .get(format!(
            "{}/a/acme/dashboards/board?format=json",
            server.url
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 401, "a script without credentials");
}

#[tokio::test]
async fn given_markup_in_event_payloads_every_page_renders_it_as_text() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let access = access(&server, "alice").await;
    let evil = "<script>alert(1)</script>";
    let wp = created("acme", "001-demo", "WP01", evil, 1);
    let note = with_payload(
        created("acme", "001-demo", "WP01", "x", 2),
        "HistoryAdded",
        "WorkPackage",
        json!({"wp_id": "WP01", "entry_type": "note", "entry_content": "<img src=x onerror=alert(2)>",
               "author": "<b>mallory</b>", "feature_slug": "001-demo"}),
    );
    upload_ok(&server, &access, &[wp, note]).await;
    let mut b = Browser::new(&server.url);
    b.login("alice").await;
    for page in [
        "/a/acme/dashboards/",
        "/a/acme/dashboards/board",
        "/a/acme/dashboards/activity",
        "/a/acme/dashboards/features/001-demo/WP01",
    ] {
        let res = b.get(page).await;
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        let html = res.text().await.expect("body");
        assert!(!html.contains("<script>alert"), "{page}: {html}");
        assert!(!html.contains("<img src=x"), "{page}: {html}");
        assert!(!html.contains("<b>mallory"), "{page}: {html}");
    }
    let (_, html) = b.text("/a/acme/dashboards/board").await;
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    let (_, html) = b.text("/a/acme/dashboards/activity").await;
    assert!(
        html.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{html}"
    );
}

#[tokio::test]
async fn given_many_events_the_activity_feed_pages_by_cursor_without_gaps_and_filters() {
    let (server, access) = server_with_story().await;
    let bulk: Vec<Value> = many_events("acme", 120)
        .into_iter()
        .map(|mut e| {
            e["payload"]["changed_by"] = json!("bot");
            e
        })
        .collect();
    upload_ok(&server, &access, &bulk).await;
    let unknown = with_payload(
        created("acme", "001-demo", "WP01", "x", 500),
        "MissionDossierArtifactIndexed",
        "MissionDossier",
        json!({"artifact": "spec.md"}),
    );
    let unknown = {
        let mut u = unknown;
        u["aggregate_id"] = json!("dossier-7");
        u
    };
    upload_ok(&server, &access, &[unknown]).await;
    let mut b = Browser::new(&server.url);
    b.login("alice").await;

    let mut seen = HashSet::new();
    let mut path = "/a/acme/dashboards/activity?format=json".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = b.json(&path).await;
        assert_eq!(status, 200);
        let seqs: Vec<i64> = page["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["seq"].as_i64())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first");
        assert!(seqs.len() <= 50);
        for s in seqs {
            assert!(seen.insert(s), "seq {s} twice");
        }
        pages += 1;
        match page["next"].as_str() {
            Some(n) => path = format!("/a/acme/dashboards/activity?format=json&before={n}"),
            None => break,
        }
        assert!(pages < 10, "pagination ends");
    }
    assert_eq!((seen.len(), pages), (126, 3));

    let (_, first) = b.json("/a/acme/dashboards/activity?format=json").await;
    assert_eq!(
        first["events"][0]["sentence"],
        "MissionDossierArtifactIndexed on MissionDossier “dossier-7”"
    );

    let filtered = |q: &str| format!("/a/acme/dashboards/activity?format=json&{q}");
    let count = |v: &Value| v["events"].as_array().map_or(0, Vec::len);
    let (_, created_only) = b.json(&filtered("type=WPCreated")).await;
    assert_eq!(count(&created_only), 3);
    let (_, robin) = b.json(&filtered("actor=robin")).await;
    assert_eq!(count(&robin), 1);
    let (_, other) = b.json(&filtered("feature=002-other")).await;
    assert_eq!(count(&other), 2);
    let (_, wp02) = b.json(&filtered("wp=WP02")).await;
    assert_eq!(count(&wp02), 1);
    let (_, both) = b.json(&filtered("wp=WP01&actor=bot")).await;
    assert_eq!(count(&both), 50);
    assert!(both["next"].is_string());

    // The HTML page's "older" link keeps the filters; the fragment is what infinite scroll
    // appends.
    let (_, html) = b.text("/a/acme/dashboards/activity?actor=bot").await;
    let more = hidden_href(&html).expect("older link");
    assert!(
        more.contains("actor=bot") && more.contains("before="),
        "{more}"
    );
    let (status, fragment) = b.text(&format!("{more}&fragment=1")).await;
    assert_eq!(status, 200);
    assert!(
        fragment.starts_with("<li") && !fragment.contains("<html"),
        "{fragment}"
    );
    assert_eq!(fragment.matches("<li").count(), 50);
    assert_eq!(
        b.get("/a/acme/dashboards/activity?before=abc")
            .await
            .status(),
        400
    );
}

/// The `href` of the "Older events" link, unescaped.
fn hidden_href(html: &str) -> Option<String> {
    let at = html.find("id=\"more\"")?;
    let rest = &html[at..];
    let start = rest.find("href=\"")? + 6;
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].replace("&amp;", "&"))
}

#[tokio::test]
async fn given_filters_in_the_url_the_board_shows_only_matching_cards() {
    let (server, _) = server_with_story().await;
    let mut b = Browser::new(&server.url);
    b.login("alice").await;
    let cards = |v: &Value| -> Vec<String> {
        v["lanes"]
            .as_array()
            .expect("lanes")
            .iter()
            .flat_map(|c| c["cards"].as_array().cloned().unwrap_or_default())
            .map(|c| {
                format!(
                    "{}/{}",
                    c["feature_slug"].as_str().unwrap_or(""),
                    c["wp_id"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let (_, v) = b
        .json("/a/acme/dashboards/board?format=json&feature=002-other")
        .await;
    assert_eq!(cards(&v), ["002-other/WP01"]);
    let (_, v) = b
        .json("/a/acme/dashboards/board?format=json&lane=planned")
        .await;
    assert_eq!(cards(&v), ["001-demo/WP02"]);
    let (_, v) = b
        .json(&format!(
            "/a/acme/dashboards/board?format=json&project={PROJECT}&feature=001-demo"
        ))
        .await;
    assert_eq!(
        cards(&v),
        ["001-demo/WP02", "001-demo/WP01"],
        "planned, then doing"
    );
    let (_, v) = b
        .json("/a/acme/dashboards/board?format=json&project=nope")
        .await;
    assert!(cards(&v).is_empty());
    let (_, html) = b.text("/a/acme/dashboards/board?feature=002-other").await;
    assert!(
        html.contains("<option value=\"002-other\" selected>"),
        "the menu shows the filter"
    );
    assert!(
        html.contains("board?feature=002-other&amp;fragment=1"),
        "the live fragment keeps it"
    );
}

#[tokio::test]
async fn given_an_open_live_stream_a_new_event_is_announced() {
    let (server, access) = server_with_story().await;
    let mut b = Browser::new(&server.url);
    b.login("alice").await;
    let mut res = b
        .http
        .get(format!("{}/a/acme/dashboards/live", server.url))
        .header("Cookie", b.cookie.clone().unwrap_or_default())
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("GET live");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let read_until = |needle: &'static str| needle;
    for _ in 0..50 {
        if text.contains(read_until("event: hello")) {
            break;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk()).await;
        let Ok(Ok(Some(chunk))) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: hello"), "{text}");
    // Outlast the server's revocation check (every 0.5 s): the stream must stay open.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    upload_ok(
        &server,
        &access,
        &[moved(
            "acme", "001-demo", "WP02", "planned", "doing", "claude", 9,
        )],
    )
    .await;
    for _ in 0..50 {
        if text.contains("event: change") {
            break;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk()).await;
        let Ok(Ok(Some(chunk))) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: change"), "{text}");
    assert!(text.contains("\"events\":1"), "one new event: {text}");
}

#[tokio::test]
async fn given_https_the_session_cookie_is_secure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = server_common::SelfSigned::new(dir.path());
    let server = tls.serve();
    server.add_user("alice", "acme");
    let mut b = Browser::new(&server.url);
    b.http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(tls.cert_pem.as_bytes()).expect("pem"))
        .build()
        .expect("client");
    let res = b.submit_login("alice", PASSWORD).await;
    assert_eq!(res.status(), 303);
    let header = set_cookie_header(&res, "sk_session").expect("cookie");
    assert!(
        header.contains("; Secure") && header.contains("HttpOnly"),
        "{header}"
    );
}

#[tokio::test]
async fn given_a_long_history_the_flow_chart_is_drawn_per_bucket_and_ends_at_the_board() {
    let (server, access) = server_with_story().await;
    // 10 work packages, then 730 lane changes a minute apart ending now: more than the chart
    // draws one by one, over more minutes than it has pixel columns, so it is drawn per hour.
    let lanes = ["planned", "doing", "for_review", "done"];
    let start = chrono::Utc::now() - chrono::Duration::minutes(740);
    let at = |minute: i64| {
        (start + chrono::Duration::minutes(minute))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut events: Vec<Value> = (0..10)
        .map(|w| {
            let mut e = created("acme", "002-long", &format!("WP{w:02}"), "x", 1000 + w);
            e["timestamp"] = json!(at(0));
            e
        })
        .collect();
    for i in 0..730u64 {
        let (wp, round) = (i % 10, i / 10);
        let (from, to) = (lanes[(round as usize) % 4], lanes[(round as usize + 1) % 4]);
        let mut e = moved(
            "acme",
            "002-long",
            &format!("WP{wp:02}"),
            from,
            to,
            "bot",
            2000 + i,
        );
        e["timestamp"] = json!(at(i as i64 + 1));
        events.push(e);
    }
    for chunk in events.chunks(500) {
        upload_ok(&server, &access, chunk).await;
    }
    let mut b = Browser::new(&server.url);
    b.login("alice").await;
    let (status, flow) = b
        .json("/a/acme/dashboards/features/002-long/flow?format=json")
        .await;
    assert_eq!(status, 200);
    assert_eq!(flow["bucket_ms"], 3_600_000, "drawn per hour");
    let points = flow["points"].as_array().expect("points");
    assert!(points.len() <= 14, "{} hourly points", points.len());
    let (_, board) = b
        .json("/a/acme/dashboards/board?format=json&feature=002-long")
        .await;
    let on_board: Vec<u64> = board["lanes"]
        .as_array()
        .expect("lanes")
        .iter()
        .map(|l| l["count"].as_u64().unwrap_or(99))
        .collect();
    assert_eq!(
        points.last().map(|p| p["lanes"].clone()),
        Some(json!(on_board)),
        "the last bucket is the board now"
    );
    let (status, html) = b.text("/a/acme/dashboards/features/002-long/flow").await;
    assert_eq!(status, 200);
    assert!(html.contains("Drawn per hour"), "{html}");
}
