//! A minimal Chrome DevTools Protocol client: starts Debian's headless `chromium` with a fresh
//! profile, attaches to its page over the WebSocket the browser opens on 127.0.0.1, and sends
//! commands one at a time. Enough to navigate, run script, press keys and take screenshots;
//! the browser process is killed when the [`Chromium`] is dropped.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The flags that work on this kind of machine (container, no GPU, no sandbox, no network
/// services of Google's).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
];

/// Finds the browser: `$CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A running headless browser and its one page.
pub struct Chromium {
    child: Child,
    socket: Socket,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts the browser (bounded: 60 s to come up) and attaches to its page.
    pub async fn launch(binary: &Path) -> Chromium {
        let profile = tempfile::tempdir().expect("profile dir");
        let home = profile.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        // A process group of its own: a terminal's Ctrl-C goes to the test, not the browser.
        let mut command = Command::new(binary);
        command.process_group(0);
        let mut child = command
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let port_file = profile.path().join("DevToolsActivePort");
        let mut port = None;
        for _ in 0..600 {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Some(p) = text
                    .lines()
                    .next()
                    .and_then(|l| l.trim().parse::<u16>().ok())
            {
                port = Some(p);
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("chromium exited at start: {status}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let Some(port) = port else {
            let _ = child.kill();
            panic!("chromium did not open its DevTools port within 60 s");
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let mut ws_url = None;
        for _ in 0..100 {
            let list: Value = match http
                .get(format!("http://127.0.0.1:{port}/json/list"))
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            ws_url = list.as_array().and_then(|pages| {
                pages
                    .iter()
                    .find(|p| p["type"] == "page")
                    .and_then(|p| p["webSocketDebuggerUrl"].as_str().map(str::to_owned))
            });
            if ws_url.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ws_url = ws_url.expect("chromium lists its page");
        let (socket, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("attach to the page");
        let mut browser = Chromium {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        };
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await;
        browser
    }

    /// Sends a command and waits (bounded) for its answer; panics on a protocol error.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket
            .send(Message::Text(msg.into()))
            .await
            .expect("send to chromium");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next()).await;
            let Ok(Some(Ok(msg))) = next else {
                panic!("no answer from chromium to {method}");
            };
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    panic!("chromium refused {method}: {err}");
                }
                return v["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page (awaiting promises) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("script failed: {expression}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expression` every 100 ms until it is `true`; false after `timeout`.
    pub async fn wait_for(&mut self, expression: &str, timeout: Duration) -> bool {
        let tries = (timeout.as_millis() / 100).max(1);
        for _ in 0..tries {
            let ok = self
                .call(
                    "Runtime.evaluate",
                    json!({"expression": expression, "returnByValue": true}),
                )
                .await;
            if ok["result"]["value"] == Value::Bool(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Opens `url` and waits until the new document (after any redirect) has loaded.
    pub async fn navigate(&mut self, url: &str) {
        self.eval("window.__previousDocument = true").await;
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_loaded(url).await;
    }

    /// Waits until the document that replaced the current one has loaded (after a click,
    /// a key press or [`Chromium::navigate`]); call `mark_document` before the action.
    pub async fn wait_loaded(&mut self, what: &str) {
        let loaded =
            "window.__previousDocument === undefined && document.readyState === 'complete'";
        assert!(
            self.wait_for(loaded, Duration::from_secs(30)).await,
            "{what} did not load"
        );
    }

    /// Marks the current document, so that [`Chromium::wait_loaded`] sees when it is replaced.
    pub async fn mark_document(&mut self) {
        self.eval("window.__previousDocument = true").await;
    }

    /// Presses and releases a key: "Tab", "Enter", or a shifted Tab with `shift`.
    pub async fn key(&mut self, key: &str, shift: bool) {
        let (code, vk, text) = match key {
            "Tab" => ("Tab", 9, ""),
            "Enter" => ("Enter", 13, "\r"),
            "End" => ("End", 35, ""),
            other => panic!("key {other} not mapped"),
        };
        let modifiers = if shift { 8 } else { 0 };
        let mut down = json!({"type": "keyDown", "key": key, "code": code,
            "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk, "modifiers": modifiers});
        if !text.is_empty() {
            down["text"] = json!(text);
        }
        self.call("Input.dispatchKeyEvent", down).await;
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": code,
                   "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk, "modifiers": modifiers}),
        )
        .await;
    }

    /// Types text into the focused element.
    pub async fn type_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// Saves a PNG of the whole page (up to 2400 px tall).
    pub async fn screenshot(&mut self, path: &Path) {
        let height = self
            .eval("Math.min(2400, Math.max(900, document.documentElement.scrollHeight))")
            .await
            .as_f64()
            .unwrap_or(900.0);
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}}),
            )
            .await;
        let data = shot["data"].as_str().expect("screenshot data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 png");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Chromium {
    /// Asks the browser to quit (it ends its renderers and helpers itself) and waits for it,
    /// bounded; killed if it does not exit in time.
    pub async fn close(mut self) {
        self.next_id += 1;
        let msg = json!({"id": self.next_id, "method": "Browser.close", "params": {}}).to_string();
        let _ = self.socket.send(Message::Text(msg.into())).await;
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Chromium {
    // Only the browser's own pid is signalled: never a process group. (procps' `kill -KILL
    // -<pgid>` turned into kill(-1) on this machine and took every process with it.) The
    // renderers and helpers exit when the browser process is gone.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
