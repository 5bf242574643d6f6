//! Shared by the `dashboard*` tests: a browser-like HTTP session (cookies by hand, no
//! redirects followed) and events that tell a small story.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{Value, json};

use crate::server_common::*;

/// An HTTP client that does not follow redirects and keeps one session cookie.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Browser {
            http,
            base: base.to_owned(),
            cookie: None,
        }
    }

    /// GET `path` as a browser (Accept: text/html) with the session cookie.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Accept", "text/html");
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c.as_str());
        }
        req.send().await.expect("GET")
    }

    pub async fn text(&self, path: &str) -> (u16, String) {
        let res = self.get(path).await;
        let status = res.status().as_u16();
        (status, res.text().await.expect("body"))
    }

    pub async fn json(&self, path: &str) -> (u16, Value) {
        let res = self.get(path).await;
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The login form's CSRF token and cookie.
    pub async fn login_form(&self) -> (String, String) {
        let res = self.get("/login").await;
        assert_eq!(res.status(), 200);
        let cookie = set_cookie(&res, "sk_login_csrf").expect("login csrf cookie");
        let body = res.text().await.expect("body");
        (hidden(&body, "csrf").expect("csrf field"), cookie)
    }

    /// Submits the login form; returns the response.
    pub async fn submit_login(&self, username: &str, password: &str) -> reqwest::Response {
        let (csrf, cookie) = self.login_form().await;
        self.http
            .post(format!("{}/login", self.base))
            .header("Cookie", format!("sk_login_csrf={cookie}"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .expect("POST /login")
    }

    /// Logs in through the form and keeps the session cookie.
    pub async fn login(&mut self, username: &str) {
        let res = self.submit_login(username, PASSWORD).await;
        assert_eq!(res.status(), 303, "login redirects");
        let token = set_cookie(&res, "sk_session").expect("session cookie");
        self.cookie = Some(format!("sk_session={token}"));
    }
}

/// The value of cookie `name` set by a response.
pub fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
}

/// The whole `Set-Cookie` header of cookie `name`.
pub fn set_cookie_header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of hidden input `name` in a page.
pub fn hidden(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &body[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// A WPCreated of `feature` with `title`.
pub fn created(team: &str, feature: &str, wp: &str, title: &str, lamport: u64) -> Value {
    let mut e = created_event(team, wp, lamport);
    e["payload"]["feature_slug"] = json!(feature);
    e["payload"]["title"] = json!(title);
    e
}

/// A WPStatusChanged of `feature` by `actor`.
pub fn moved(
    team: &str,
    feature: &str,
    wp: &str,
    from: &str,
    to: &str,
    actor: &str,
    lamport: u64,
) -> Value {
    let mut e = status_event(
        team,
        wp,
        spec_kitty::event::Lane::Planned,
        spec_kitty::event::Lane::Doing,
        lamport,
    );
    e["payload"]["feature_slug"] = json!(feature);
    e["payload"]["previous_status"] = json!(from);
    e["payload"]["new_status"] = json!(to);
    e["payload"]["changed_by"] = json!(actor);
    e
}

/// The same envelope with another type and payload (ids and clocks kept valid).
pub fn with_payload(mut e: Value, event_type: &str, aggregate_type: &str, payload: Value) -> Value {
    e["event_type"] = json!(event_type);
    e["aggregate_type"] = json!(aggregate_type);
    e["payload"] = payload;
    e
}

/// Uploads events through the batch API and asserts every one is stored.
pub async fn upload_ok(server: &TestServer, access: &str, events: &[Value]) {
    let (status, body) = upload(&client(), server, access, events).await;
    assert_eq!(status, 200, "{body}");
    assert!(statuses(&body).iter().all(|s| s == "success"), "{body}");
}

/// The story most tests start from: feature 001-demo with WP01 (doing, moved by claude) and
/// WP02 (planned), feature 002-other with WP01 (done).
pub fn story(team: &str) -> Vec<Value> {
    vec![
        created(team, "001-demo", "WP01", "Parse the invoice", 1),
        created(team, "001-demo", "WP02", "Export to CSV", 2),
        created(team, "002-other", "WP01", "Other feature's first", 3),
        moved(team, "001-demo", "WP01", "planned", "doing", "claude", 4),
        moved(team, "002-other", "WP01", "planned", "done", "robin", 5),
    ]
}

/// A server on a port chosen once, so that it can be restarted where the browser's page
/// reconnects. Killed when dropped.
pub struct FixedServer {
    child: Option<std::process::Child>,
    pub url: String,
    pub port: u16,
    pub dir: std::path::PathBuf,
}

impl FixedServer {
    /// Starts a server on the database in `dir`, on `port` (0: pick a free one).
    pub fn start(dir: &std::path::Path, port: u16) -> FixedServer {
        use std::io::BufRead;
        let home = dir.join("home");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spec-kitty-server"))
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env_remove("SPEC_KITTY_SERVER_DB")
            .env_remove("SPEC_KITTY_SERVER_JWT_SECRET")
            .env("SPEC_KITTY_SERVER_LOG", "info")
            .arg("--db")
            .arg(dir.join("server.db"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start spec-kitty-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let url = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("server printed its URL within 30 s");
            if let Some(u) = line.strip_prefix("listening on ") {
                break u.to_owned();
            }
        };
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        FixedServer {
            child: Some(child),
            url,
            port,
            dir: dir.to_owned(),
        }
    }

    /// Stops with SIGTERM (bounded wait), then starts again on the same port and database.
    pub fn restart(mut self) -> FixedServer {
        self.stop();
        // The port may linger for a moment after the process exits.
        for _ in 0..50 {
            if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        FixedServer::start(&self.dir, self.port)
    }

    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for FixedServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An access token for `username` from the server at `url`.
pub async fn access_at(url: &str, username: &str) -> String {
    let res = client()
        .post(format!("{url}/api/v1/token/"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("login request");
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("json");
    v["access"].as_str().expect("access").to_owned()
}

/// Uploads events to the server at `url`, asserting every one is stored.
pub async fn upload_ok_to(url: &str, access: &str, events: &[Value]) {
    let (status, body) = upload_to(&client(), url, access, events).await;
    assert_eq!(status, 200, "{body}");
    assert!(statuses(&body).iter().all(|s| s == "success"), "{body}");
}
