//! The attacks of issue 12 against the real `spec-kitty-server` binary (release) on
//! 127.0.0.1: for each, the server's peak RSS (`VmHWM`, a fresh server per attack) and the
//! latency of normal requests made while the attack runs.
//!
//! Plain harness: `cargo bench --bench server_hostile`. Runs in well under a minute.

#[path = "../tests/server_common/mod.rs"]
mod server_common;

use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_common::*;
use spec_kitty::event::Lane;

/// Normal requests (`GET /api/v1/sync/health/`, or a one-event batch when `token` is given)
/// every 10 ms until `stop`; returns their latencies.
fn probe(
    url: String,
    token: Option<String>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Duration>> {
    tokio::spawn(async move {
        let c = client();
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) && samples.len() < 10_000 {
            let start = Instant::now();
            let ok = match &token {
                None => c
                    .get(format!("{url}/api/v1/sync/health/"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200),
                Some(t) => upload_to(&c, &url, t, &many_events("acme", 1)).await.0 == 200,
            };
            if ok {
                samples.push(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        samples
    })
}

fn report(name: &str, server: &TestServer, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |p: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * p).round() as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{name:<44} peak RSS {:>5} MiB | normal requests during: {:>4} served, p50 {:>6.1} ms, p99 {:>6.1} ms",
        server.peak_rss_mib(),
        samples.len(),
        pick(0.5),
        pick(0.99)
    );
}

async fn login_burst() {
    let server = TestServer::start(&["--max-connections-per-address", "2000"]);
    server.add_user("dave", "acme");
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probe(server.url.clone(), None, stop.clone());
    let c = client();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (c, url) = (c.clone(), server.url.clone());
            tokio::spawn(async move {
                c.post(format!("{url}/api/v1/token/"))
                    .json(&json!({"username": "dave", "password": "wrong password"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    let mut hashed = 0;
    for t in tasks {
        if matches!(t.await, Ok(Ok(401))) {
            hashed += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let samples = probe.await.expect("probe");
    report(
        &format!("1000 concurrent bad logins ({hashed} hashed)"),
        &server,
        samples,
    );
}

async fn silent_connections() {
    let server = TestServer::start(&["--header-timeout", "5"]);
    let stop = Arc::new(AtomicBool::new(false));
    let silent: Vec<StdTcpStream> = (0..1000)
        .filter_map(|_| StdTcpStream::connect(server.addr()).ok())
        .collect();
    let probe = probe(server.url.clone(), None, stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let samples = probe.await.expect("probe");
    report("1000 silent connections", &server, samples);
    drop(silent);
}

async fn parse_bombs() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let zeros = vec!["0"; (16 << 20) / 2 - 64].join(",");
    let bomb = gzip(format!("{{\"events\":[{{\"payload\":[{zeros}]}}]}}").as_bytes());
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probe(server.url.clone(), Some(token.clone()), stop.clone());
    let c = client();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (c, url, token, body) =
                (c.clone(), server.url.clone(), token.clone(), bomb.clone());
            tokio::spawn(async move {
                batch_request(&c, &url, &token, body, true)
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    stop.store(true, Ordering::Relaxed);
    let samples = probe.await.expect("probe");
    report("8 concurrent 16 MiB [0,0,…] batches", &server, samples);
}

async fn big_pulls() {
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let token = access(&server, "alice").await;
    let c = client();
    for _ in 0..6 {
        let batch: Vec<Value> = (0..10)
            .map(|_| {
                let mut e = status_event("acme", "WP01", Lane::Planned, Lane::Doing, 1);
                let id = spec_kitty::event::new_ulid();
                e["event_id"] = json!(id);
                e["correlation_id"] = json!(id);
                e["payload"]["note"] = json!("x".repeat(900_000));
                e
            })
            .collect();
        assert_eq!(upload(&c, &server, &token, &batch).await.0, 200);
    }
    let base = server.peak_rss_mib();
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probe(server.url.clone(), Some(token.clone()), stop.clone());
    let pulls: Vec<_> = (0..6)
        .map(|_| {
            let (c, token, url) = (c.clone(), token.clone(), server.url.clone());
            tokio::spawn(async move {
                let mut after = String::new();
                for _ in 0..1000 {
                    let Ok(res) = c
                        .get(format!("{url}/api/v1/events/?limit=1000&after={after}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    else {
                        return;
                    };
                    let Ok(page) = res.json::<Value>().await else {
                        return;
                    };
                    match page["next"].as_str() {
                        Some(next) => after = next.to_owned(),
                        None => return,
                    }
                }
            })
        })
        .collect();
    for p in pulls {
        let _ = p.await;
    }
    stop.store(true, Ordering::Relaxed);
    let samples = probe.await.expect("probe");
    report(
        &format!("6 concurrent pulls of 54 MB (peak {base} MiB before)"),
        &server,
        samples,
    );
}

#[tokio::main]
async fn main() {
    println!("spec-kitty-server under hostile load (release binary, 127.0.0.1)");
    login_burst().await;
    silent_connections().await;
    parse_bombs().await;
    big_pulls().await;
}
