//! The demo's team server: a real `spec-kitty-server` (the same code the binary runs) on
//! 127.0.0.1 with an ephemeral port and its database in the demo's temp dir, run on a thread
//! of this process so that it can never outlive the demo (Ctrl-C included).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};

use crate::server::{Server, ServerConfig, admin};
use crate::store::EventLog;
use crate::sync::http::{Http, Reply};

/// The demo users' password (throwaway, like everything in the demo).
pub const PASSWORD: &str = "demo password 1234";

pub struct TeamServer {
    pub url: String,
    pub db: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TeamServer {
    /// Starts the server and waits until it listens.
    pub fn start(dir: &Path) -> miette::Result<TeamServer> {
        let db = dir.join("server.db");
        let mut config = ServerConfig::new(db.clone());
        config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let (url_tx, url_rx) = std::sync::mpsc::channel::<Result<String, String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = url_tx.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                match Server::bind(config).await {
                    Ok(server) => {
                        let _ = url_tx.send(Ok(server.url()));
                        let _ = server
                            .run(async move {
                                let _ = stop_rx.await;
                            })
                            .await;
                    }
                    Err(e) => {
                        let _ = url_tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        let url = url_rx
            .recv_timeout(Duration::from_secs(30))
            .into_diagnostic()
            .wrap_err("the demo's server did not start")?
            .map_err(|e| miette::miette!("the demo's server did not start: {e}"))?;
        Ok(TeamServer {
            url,
            db,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn add_user(&self, username: &str, team: &str) -> miette::Result<()> {
        admin::add_user(&self.db, username, team, PASSWORD)
            .map_err(|e| miette::miette!("cannot create the demo user {username}: {e}"))
    }

    /// Every event id the server holds for the demo team, through the real pull API.
    pub fn event_ids(&self, _team: &str) -> miette::Result<HashSet<String>> {
        let http = Http::new(&self.url, Duration::from_secs(30))?;
        let tokens = match http.login("alice", PASSWORD) {
            Reply::Ok(t) => t,
            _ => miette::bail!("cannot log in to the demo's server"),
        };
        let mut ids = HashSet::new();
        let mut after: Option<String> = None;
        for _ in 0..1000 {
            let page = match http.pull(&tokens.access, after.as_deref(), 1000) {
                Reply::Ok(p) => p,
                _ => miette::bail!("cannot pull from the demo's server"),
            };
            for e in &page.events {
                if let Some(id) = e["event_id"].as_str() {
                    ids.insert(id.to_owned());
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        Ok(ids)
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TeamServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The ids of every event this clone recorded (its own chain).
pub fn local_event_ids(repo: &Path) -> miette::Result<HashSet<String>> {
    let log = EventLog::discover(repo)?;
    Ok(log
        .chain_events(log.node_id())?
        .into_iter()
        .map(|s| s.event.event_id)
        .collect())
}
