//! A fault-injecting proxy between `sync now` and the real server: dropped connections, a
//! delay, 500, 429 and 413 answers. None of them may lose, duplicate or charge an event.

mod common;
mod server_common;
mod sync_common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use server_common::TestServer;
use sync_common::*;

/// What the proxy does with one batch upload.
#[derive(Debug, Clone)]
enum Fault {
    /// Read the request, then close the connection without answering.
    Drop,
    /// Answer this status without forwarding.
    Status(u16),
    /// Wait, then forward.
    Delay(Duration),
    /// Forward, let the server answer, then hold the answer (never relay it) and signal the
    /// test, which kills the client: the server has stored the batch, the client never heard.
    HoldAnswer(std::sync::mpsc::Sender<()>),
    Pass,
}

/// A proxy on 127.0.0.1 that forwards each request on its own connection to `upstream`, and
/// applies `faults` (in order, then `Pass`) to the batch uploads it sees.
struct Proxy {
    url: String,
    batches_seen: Arc<AtomicUsize>,
}

fn read_request(stream: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    stream.read_exact(&mut body).ok()?;
    Some((head, body))
}

impl Proxy {
    fn start(upstream: String, faults: Vec<Fault>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let faults = Arc::new(Mutex::new(faults.into_iter()));
        let seen = Arc::new(AtomicUsize::new(0));
        let batches_seen = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let faults = faults.clone();
                let seen = seen.clone();
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    let mut reader = BufReader::new(conn);
                    let Some((head, body)) = read_request(&mut reader) else {
                        return;
                    };
                    let mut client = reader.into_inner();
                    let fault =
                        if head.starts_with("POST /api/v1/events/batch/") && !body.is_empty() {
                            seen.fetch_add(1, Ordering::SeqCst);
                            faults.lock().unwrap().next().unwrap_or(Fault::Pass)
                        } else {
                            Fault::Pass
                        };
                    match fault {
                        Fault::Drop => {}
                        Fault::Status(code) => {
                            let extra = if code == 429 {
                                "Retry-After: 1\r\n"
                            } else {
                                ""
                            };
                            let _ = write!(
                                client,
                                "HTTP/1.1 {code} Fault\r\n{extra}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                            );
                        }
                        Fault::Delay(d) => {
                            std::thread::sleep(d);
                            forward(&upstream, &head, &body, &mut client);
                        }
                        Fault::HoldAnswer(answered) => {
                            let answer = exchange(&upstream, &head, &body);
                            // Signal only a stored batch; otherwise the test times out waiting.
                            if answer.starts_with(b"HTTP/1.1 200") {
                                let _ = answered.send(());
                            }
                            // Hold the connection until the killed client's end closes (the
                            // read timeout bounds it).
                            let mut sink = [0u8; 1024];
                            while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
                        }
                        Fault::Pass => forward(&upstream, &head, &body, &mut client),
                    }
                });
            }
        });
        Proxy { url, batches_seen }
    }
}

/// Sends one request upstream with `Connection: close` and relays the whole answer.
fn forward(upstream: &str, head: &str, body: &[u8], client: &mut TcpStream) {
    let answer = exchange(upstream, head, body);
    let _ = client.write_all(&answer);
}

/// Sends one request upstream with `Connection: close` and returns the whole answer (empty
/// when the server cannot be reached).
fn exchange(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let Ok(mut up) = TcpStream::connect(upstream.trim_start_matches("http://")) else {
        return Vec::new();
    };
    let mut lines = head.splitn(2, "\r\n");
    let request_line = lines.next().unwrap_or("");
    let rest: String = lines
        .next()
        .unwrap_or("")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let rest = rest.trim_end_matches("\r\n");
    let _ = write!(up, "{request_line}\r\nConnection: close\r\n{rest}\r\n\r\n");
    let _ = up.write_all(body);
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    answer
}

#[test]
fn dropped_connections_delays_500_429_and_413_lose_nothing_and_charge_nothing() {
    if common::rerun_hermetic(
        "dropped_connections_delays_500_429_and_413_lose_nothing_and_charge_nothing",
    ) {
        return;
    }
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let proxy = Proxy::start(
        server.url.clone(),
        vec![
            Fault::Drop,
            Fault::Status(500),
            Fault::Status(429),
            Fault::Status(413),
            Fault::Delay(Duration::from_millis(1500)),
            Fault::Drop,
        ],
    );
    let repo = repo_for(&server);
    let ids = append_n(&repo.root, 1500, |_| "local");
    point_at(&repo, &proxy.url);
    login(&repo, "alice");

    let (code, v) = sync_json_checked(&repo, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["pushed"]["settled"], 1500, "{v}");
    assert!(
        v["pushed"]["rejected"].as_array().unwrap().is_empty(),
        "{v}"
    );
    assert!(
        v["pushed"]["transient_faults"].as_u64().unwrap() >= 5,
        "{v}"
    );
    assert!(proxy.batches_seen.load(Ordering::SeqCst) >= 7);
    assert_eq!(pending(&repo), 0);
    let status = status_json(&repo);
    assert_eq!(status["rejected"], 0, "no retry count was raised: {status}");
    let on_server = server_ids(&server, "alice");
    assert_eq!(on_server.len(), 1500, "each event exactly once");
    assert_eq!(
        on_server.into_iter().collect::<HashSet<_>>(),
        ids.into_iter().collect::<HashSet<_>>()
    );
}

#[test]
fn a_crash_between_the_servers_answer_and_the_ref_update_is_healed_by_duplicates() {
    if common::rerun_hermetic(
        "a_crash_between_the_servers_answer_and_the_ref_update_is_healed_by_duplicates",
    ) {
        return;
    }
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let (answered, on_answer) = std::sync::mpsc::channel();
    let proxy = Proxy::start(server.url.clone(), vec![Fault::HoldAnswer(answered)]);
    let repo = repo_for(&server);
    let ids = append_n(&repo.root, 1500, |_| "local");
    point_at(&repo, &proxy.url);
    login(&repo, "alice");

    let mut client = repo
        .env(std::process::Command::new(common::BIN).current_dir(&repo.root))
        .args(["sync", "now", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn sync now");
    let held = on_answer.recv_timeout(Duration::from_secs(120));
    // Child::kill is SIGKILL: the client dies waiting for the answer the proxy holds.
    let _ = client.kill();
    let _ = client.wait();
    assert!(held.is_ok(), "the first batch never reached the server");
    let first_batch = server_ids(&server, "alice");
    assert_eq!(first_batch.len(), 1000, "the server stored the first batch");
    assert_eq!(pending(&repo), 1500, "the sync-state ref did not move");

    let (code, v) = sync_json_checked(&repo, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["pending_before"], 1500, "{v}");
    assert_eq!(v["pushed"]["settled"], 1500, "each event settled once: {v}");
    assert_eq!(
        v["pushed"]["duplicates"], 1000,
        "the held batch came back duplicate: {v}"
    );
    assert_eq!(v["pending_after"], 0, "{v}");
    assert_eq!(pending(&repo), 0);
    let status = status_json(&repo);
    assert_eq!(status["last_sync"]["acknowledged"], 1500, "{status}");
    let on_server = server_ids(&server, "alice");
    assert_eq!(on_server.len(), 1500, "each event exactly once");
    assert_eq!(
        on_server.into_iter().collect::<HashSet<_>>(),
        ids.into_iter().collect::<HashSet<_>>()
    );
}
