//! Batch ingest benchmark of the real `spec-kitty-server` binary on 127.0.0.1.
//!
//! Plain harness (no criterion): `cargo bench --bench server_ingest`. Measures throughput of
//! 1000-event gzip batches from 1 and from 8 concurrent clients, the p50/p99 latency of one
//! batch, and the server's peak RSS. Bodies are prepared before timing starts, so the figures
//! are the server's, not the client's. `BENCH_BATCHES` overrides the number of batches per run.

#[path = "../tests/server_common/mod.rs"]
mod server_common;

use std::time::{Duration, Instant};

use serde_json::json;
use server_common::*;

const EVENTS_PER_BATCH: usize = 1000;

fn bodies(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let events = many_events("acme", EVENTS_PER_BATCH);
            gzip(&serde_json::to_vec(&json!({ "events": events })).expect("json"))
        })
        .collect()
}

async fn post(c: &reqwest::Client, url: &str, token: &str, body: Vec<u8>) -> Duration {
    let start = Instant::now();
    let res = batch_request(c, url, token, body, true)
        .send()
        .await
        .expect("batch request");
    assert_eq!(res.status(), 200);
    let _ = res.bytes().await.expect("response body");
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() {
    let batches: usize = std::env::var("BENCH_BATCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let server = TestServer::start(&[]);
    server.add_user("bench", "acme");
    let token = access(&server, "bench").await;
    let c = client();

    // Warm-up (also creates the database pages).
    for body in bodies(3) {
        post(&c, &server.url, &token, body).await;
    }

    // One client, sequential.
    let prepared = bodies(batches);
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(batches);
    for body in prepared {
        latencies.push(post(&c, &server.url, &token, body).await);
    }
    let one = (batches * EVENTS_PER_BATCH) as f64 / start.elapsed().as_secs_f64();
    latencies.sort();

    // Eight clients, concurrently.
    let per_client = batches.div_ceil(8);
    let prepared: Vec<Vec<Vec<u8>>> = (0..8).map(|_| bodies(per_client)).collect();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for bodies in prepared {
        let (url, token) = (server.url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            for body in bodies {
                post(&c, &url, &token, body).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let eight = (8 * per_client * EVENTS_PER_BATCH) as f64 / start.elapsed().as_secs_f64();

    let rss = server.pid().and_then(peak_rss_kib);
    println!("| measure | value |");
    println!("|---|---|");
    println!("| batches per run | {batches} x {EVENTS_PER_BATCH} events |");
    println!("| throughput, 1 client | {one:.0} events/s |");
    println!("| throughput, 8 clients | {eight:.0} events/s |");
    println!(
        "| latency of one 1000-event batch, p50 | {:.1} ms |",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3
    );
    println!(
        "| latency of one 1000-event batch, p99 | {:.1} ms |",
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    match rss {
        Some(kib) => println!(
            "| server peak RSS (VmHWM) | {:.1} MiB |",
            kib as f64 / 1024.0
        ),
        None => println!("| server peak RSS (VmHWM) | unavailable |"),
    }
}
