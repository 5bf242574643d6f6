//! The one accept loop, for plain HTTP and TLS alike, and the limits every connection lives
//! under.
//!
//! `axum::serve` has no header-read timer and no cap on connections: a stranger holding
//! sockets open could exhaust the file descriptors. Here each connection is served by hyper
//! directly, with:
//!
//! * a **handshake and header timeout** ([`Limits::header_timeout`]): a connection that has not
//!   completed its TLS handshake, or sent a complete request head, in time is closed (this is
//!   what ends slowloris headers and silent sockets);
//! * an **idle timeout** ([`Limits::idle_timeout`]) between keep-alive requests;
//! * a **cap on open connections**, in total and per client address. At the cap, the oldest
//!   idle connection (no request in progress, no WebSocket) is shed to make room; when none is
//!   idle, the new connection is closed instead;
//! * a **64 KiB cap on a request head**, which also bounds each connection's read buffer;
//! * **backoff on accept errors** (e.g. EMFILE) instead of spinning.
//!
//! Request bodies have their own timeout where they are read ([`super::error::BODY_TIMEOUT`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use super::ClientAddr;

/// The limits of [`serve`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to complete the TLS handshake, and then to send each request head.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Open connections in total (WebSockets included).
    pub max_connections: usize,
    /// Open connections per client address.
    pub max_per_address: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
            max_per_address: 256,
        }
    }
}

/// The largest request head (line and headers) read; larger is answered 431. Also bounds
/// each connection's read buffer (hyper's default is ~400 KiB).
const MAX_HEAD_BYTES: usize = 64 << 10;

/// File descriptors kept free for the database, the log, accepting and connections being shed.
const RESERVED_FDS: usize = 64;

/// Connections asked to close (shed) that may still hold their descriptors at once; beyond it
/// new connections are refused until they are gone. Half of [`RESERVED_FDS`].
const SHED_HEADROOM: usize = 32;

/// 4096, or fewer when the process may open fewer files (the soft `RLIMIT_NOFILE`, read from
/// `/proc/self/limits`), so that the cap is reached before `accept` fails.
pub fn default_max_connections() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse::<usize>().ok())
        });
    match limit {
        Some(n) => n.saturating_sub(RESERVED_FDS).clamp(16, 4096),
        None => 4096,
    }
}

/// What the registry knows of one open connection.
struct Tracked {
    addr: IpAddr,
    opened: Instant,
    state: Arc<ConnState>,
    /// Asked to close: still holds its file descriptor, so it still counts against the caps,
    /// but it is not shed twice.
    closing: bool,
}

/// Shared between a connection's task, its requests and (after an upgrade) its WebSocket.
pub struct ConnState {
    /// Requests in progress plus open WebSockets: 0 means idle.
    active: AtomicUsize,
    /// Milliseconds since `opened` of the last request start or end.
    last_activity: AtomicU64,
    opened: Instant,
    close: Notify,
}

impl ConnState {
    fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_activity.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_activity.load(Ordering::Relaxed));
        Some(self.opened.elapsed().saturating_sub(last))
    }
}

/// Marks a connection busy while held: a request in progress or an open WebSocket. Found in
/// every request's extensions; the WebSocket endpoint keeps one for the socket's life.
#[derive(Clone)]
pub struct Busy {
    _held: Arc<BusyInner>,
}

struct BusyInner {
    state: Arc<ConnState>,
    _slot: Arc<Slot>,
}

impl Busy {
    fn new(state: &Arc<ConnState>, slot: &Arc<Slot>) -> Busy {
        state.active.fetch_add(1, Ordering::AcqRel);
        state.touch();
        Busy {
            _held: Arc::new(BusyInner {
                state: state.clone(),
                _slot: slot.clone(),
            }),
        }
    }
}

impl Drop for BusyInner {
    fn drop(&mut self) {
        self.state.touch();
        self.state.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's place in the registry; freed when the connection and every [`Busy`] of it
/// are gone (so an upgraded WebSocket keeps counting).
struct Slot {
    id: u64,
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut conns) = self.registry.conns.lock() {
            conns.remove(&self.id);
        }
    }
}

#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Tracked>>,
}

impl Registry {
    /// Registers a connection from `addr`, shedding the oldest idle one when a cap is
    /// reached; `None` when the cap is reached and nothing is idle.
    fn admit(
        self: &Arc<Self>,
        addr: IpAddr,
        limits: &Limits,
    ) -> Option<(Arc<Slot>, Arc<ConnState>)> {
        let mut conns = self.conns.lock().ok()?;
        let from_addr = conns.values().filter(|c| c.addr == addr).count();
        let closing = |addr: Option<IpAddr>| {
            conns
                .values()
                .filter(|c| c.closing && addr.is_none_or(|a| a == c.addr))
                .count()
        };
        // A shed connection keeps its descriptor until its task has closed it: count those,
        // and never have more than SHED_HEADROOM of them, so descriptors stay bounded.
        let over_addr = from_addr - closing(Some(addr)) >= limits.max_per_address;
        let over_total = conns.len() - closing(None) >= limits.max_connections;
        if over_addr || over_total {
            if closing(None) >= SHED_HEADROOM {
                return None;
            }
            let id = oldest_idle(&conns, over_addr.then_some(addr))?;
            if let Some(old) = conns.get_mut(&id) {
                old.closing = true;
                old.state.close.notify_one();
                tracing::debug!(addr = %old.addr, "shedding an idle connection at the cap");
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let opened = Instant::now();
        let state = Arc::new(ConnState {
            active: AtomicUsize::new(0),
            last_activity: AtomicU64::new(0),
            opened,
            close: Notify::new(),
        });
        conns.insert(
            id,
            Tracked {
                addr,
                opened,
                state: state.clone(),
                closing: false,
            },
        );
        let slot = Arc::new(Slot {
            id,
            registry: self.clone(),
        });
        Some((slot, state))
    }
}

impl Registry {
    /// Connections asked to close that still hold their descriptors.
    fn closing(&self) -> usize {
        self.conns
            .lock()
            .map_or(0, |c| c.values().filter(|t| t.closing).count())
    }
}

fn oldest_idle(conns: &HashMap<u64, Tracked>, addr: Option<IpAddr>) -> Option<u64> {
    conns
        .iter()
        .filter(|(_, c)| !c.closing && addr.is_none_or(|a| a == c.addr))
        .filter(|(_, c)| c.state.idle_for().is_some())
        .min_by_key(|(_, c)| c.opened)
        .map(|(id, _)| *id)
}

/// Counts open connections, so that shutdown can wait for them.
#[derive(Clone, Default)]
pub struct OpenConnections {
    registry: Arc<Registry>,
}

impl OpenConnections {
    /// Open connections (WebSockets included).
    pub fn len(&self) -> usize {
        self.registry.conns.lock().map_or(0, |c| c.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Accepts connections until `shutdown` becomes true, serving each with `app` under
/// `limits`; then asks every connection to finish its request and close.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    open: OpenConnections,
    mut shutdown: watch::Receiver<bool>,
) {
    let registry = open.registry.clone();
    let mut backoff = Duration::from_millis(10);
    loop {
        // While many shed connections are still closing, wait for them (briefly) before
        // accepting more: new clients queue in the kernel's backlog instead of being refused.
        for _ in 0..200 {
            if registry.closing() < SHED_HEADROOM {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            _ = stopping(&mut shutdown) => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(10);
                pair
            }
            Err(e) => {
                // Typically EMFILE: wait (longer each time) instead of spinning.
                tracing::warn!(error = %e, "accept failed; backing off {} ms", backoff.as_millis());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Some((slot, state)) = registry.admit(peer.ip(), &limits) else {
            tracing::debug!(%peer, "connection refused: at the connection cap, none idle");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            app: app.clone(),
            peer,
            slot,
            state,
            limits: limits.clone(),
            shutdown: shutdown.clone(),
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => conn.serve(stream).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(conn.limits.header_timeout, handshake).await {
                        Ok(Ok(io)) => conn.serve(io).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Resolves once `shutdown` is true (never, if its sender is gone without saying so).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    loop {
        let stop = *shutdown.borrow_and_update();
        if stop {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

struct Conn {
    app: Router,
    peer: SocketAddr,
    slot: Arc<Slot>,
    state: Arc<ConnState>,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
}

impl Conn {
    async fn serve<I>(mut self, io: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (app, peer, slot, state) = (
            self.app.clone(),
            self.peer,
            self.slot.clone(),
            self.state.clone(),
        );
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let busy = Busy::new(&state, &slot);
            req.extensions_mut().insert(ConnectInfo(ClientAddr(peer)));
            req.extensions_mut().insert(busy.clone());
            let mut app = app.clone();
            async move {
                let response = app.call(req.map(Body::new)).await;
                drop(busy);
                response
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn.with_upgrades());
        let mut tick = tokio::time::interval(Duration::from_secs(1).min(self.limits.idle_timeout));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, peer = %self.peer, "connection ended with an error");
                    }
                    return;
                }
                _ = self.state.close.notified(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = stopping(&mut self.shutdown), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = tick.tick(), if !closing => {
                    if self.state.idle_for().is_some_and(|d| d >= self.limits.idle_timeout) {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize) -> Limits {
        Limits {
            max_connections: total,
            max_per_address: per_address,
            ..Limits::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_is_shed_and_busy_ones_never() {
        let registry = Arc::new(Registry::default());
        let l = limits(3, 10);
        let (s1, c1) = registry.admit(ip("10.0.0.1"), &l).expect("first");
        let (s2, c2) = registry.admit(ip("10.0.0.2"), &l).expect("second");
        let (s3, c3) = registry.admit(ip("10.0.0.3"), &l).expect("third");
        let busy = Busy::new(&c1, &s1);
        // Full: the oldest idle one (the second: the first is busy) is asked to close.
        let (s4, _) = registry
            .admit(ip("10.0.0.4"), &l)
            .expect("admitted by shedding");
        let closing: Vec<bool> = [&c1, &c2, &c3]
            .iter()
            .map(|c| {
                let conns = registry.conns.lock().expect("lock");
                conns
                    .values()
                    .any(|t| Arc::ptr_eq(&t.state, c) && t.closing)
            })
            .collect();
        assert_eq!(closing, [false, true, false]);
        // Until the shed one is gone it still counts; once gone, its place is free.
        drop(s2);
        assert_eq!(
            OpenConnections {
                registry: registry.clone()
            }
            .len(),
            3
        );
        // Everything busy: a new connection is refused rather than exceeding the cap.
        let _b3 = Busy::new(&c3, &s3);
        assert_eq!(registry.conns.lock().expect("lock").len(), 3);
        let busy4 = registry
            .conns
            .lock()
            .expect("lock")
            .values()
            .find(|t| t.addr == ip("10.0.0.4"))
            .map(|t| t.state.clone())
            .expect("fourth");
        let _b4 = Busy::new(&busy4, &s4);
        assert!(registry.admit(ip("10.0.0.5"), &l).is_none());
        drop(busy);
    }

    #[test]
    fn one_address_cannot_take_more_than_its_share() {
        let registry = Arc::new(Registry::default());
        let l = limits(100, 2);
        let held: Vec<_> = (0..2)
            .map(|_| registry.admit(ip("10.0.0.1"), &l).expect("under the cap"))
            .collect();
        let busy: Vec<Busy> = held.iter().map(|(s, c)| Busy::new(c, s)).collect();
        assert!(
            registry.admit(ip("10.0.0.1"), &l).is_none(),
            "both busy: refused"
        );
        assert!(
            registry.admit(ip("10.0.0.2"), &l).is_some(),
            "others unaffected"
        );
        drop(busy);
    }
}
