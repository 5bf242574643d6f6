//! `spec-kitty-server`: the self-hostable team sync server (PROTOCOL.md).
//!
//! * [`store`]: the embedded SQLite database (events, dedup, board, accounts).
//! * [`auth`]: tokens (access, rotating refresh, ws); [`login`]: password checks, rate limited.
//! * [`batch`], [`pull`], [`ws`]: the sync endpoints; all incoming events go through [`ingest`]
//!   (parsed with bounds by [`envelope`]), which publishes new ones on the [`fanout`].
//! * [`dashboard`]: the team dashboard (HTML pages, JSON twins, login form, live board).
//! * [`admin`]: what the administration subcommands do.
//! * [`connections`]: the accept loop (plain and TLS), connection timeouts and caps;
//!   [`tls`]: the rustls (ring) acceptor.
//!
//! Depends on [`crate::event`] only. Never prints: the binary renders.

pub mod admin;
pub mod auth;
pub mod batch;
pub mod connections;
pub mod dashboard;
pub mod database;
pub mod envelope;
pub mod error;
pub mod fanout;
pub mod housekeeping;
pub mod ingest;
pub mod login;
pub mod pull;
pub mod store;
pub mod tls;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use auth::{AuthError, Keys};
use connections::{Limits, OpenConnections};
use fanout::Fanout;
use login::{HashSlots, LimiterConfig, LoginLimiter};
use store::{Database, Store, StoreError};
use tls::TlsError;

/// How long in-flight requests get to finish after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Everything `serve` can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// The SQLite file, or a PostgreSQL database shared with other replicas.
    pub database: Database,
    /// Certificate and key (PEM) to serve HTTPS; plain HTTP without.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Seconds an access token is valid.
    pub access_lifetime: u64,
    /// Seconds a refresh token is valid.
    pub refresh_lifetime: u64,
    /// Seconds a ws token is valid (it is also single use).
    pub ws_token_lifetime: u64,
    pub ws_ping_interval: Duration,
    /// Cap on a batch once decompressed (and on a plain JSON batch).
    pub max_decompressed_bytes: usize,
    /// Cap on the raw request body of a batch.
    pub max_body_bytes: usize,
    /// Failed logins per (username, client address) within `login_window` before 429; the
    /// per-user backoff starts after as many, the per-address limit is ten times as many.
    pub login_max_failures: usize,
    pub login_window: Duration,
    /// Connection timeouts and caps.
    pub connections: Limits,
    /// Test-only: how long each batch waits between being received and being stored, so that
    /// tests can act while a batch is certainly in flight ([`TEST_INGEST_DELAY_ENV`]).
    pub test_ingest_delay: Option<Duration>,
}

/// Environment variable (milliseconds) that sets [`ServerConfig::test_ingest_delay`]. For
/// tests of shutdown and disconnects; never set it in production.
pub const TEST_INGEST_DELAY_ENV: &str = "SPEC_KITTY_SERVER_TEST_INGEST_DELAY_MS";

impl ServerConfig {
    /// The defaults of `spec-kitty-server serve`.
    pub fn new(database: Database) -> ServerConfig {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8750)),
            database,
            tls: None,
            access_lifetime: 900,
            refresh_lifetime: 604_800,
            ws_token_lifetime: 60,
            ws_ping_interval: Duration::from_secs(15),
            max_decompressed_bytes: 16 << 20,
            max_body_bytes: 16 << 20,
            login_max_failures: 10,
            login_window: Duration::from_secs(300),
            connections: Limits::default(),
            test_ingest_delay: None,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ServerError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    #[diagnostic(
        code(spec_kitty_server::bind),
        help("choose another address with --bind, e.g. --bind 127.0.0.1:0")
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    #[diagnostic(
        code(spec_kitty_server::serve),
        help("see the log lines above; restart the server once the cause is fixed")
    )]
    Serve(#[source] std::io::Error),
}

/// State shared by every request handler.
pub struct AppState {
    pub store: Store,
    pub config: ServerConfig,
    pub keys: Keys,
    pub limiter: LoginLimiter,
    /// The password-hashing slots every login path verifies in.
    pub hash_slots: HashSlots,
    /// Live subscribers of each team's new events (WebSockets, the dashboard).
    pub fanout: Fanout,
    /// Batches being decompressed, validated and stored at once. Bounds memory (each may
    /// inflate to `max_decompressed_bytes`) and keeps the blocking pool from thrashing.
    pub batch_slots: tokio::sync::Semaphore,
    /// Bytes of batches being decoded, in KiB permits ([`batch::kib`]): four full-size batches,
    /// at least 64 MiB.
    pub batch_bytes: tokio::sync::Semaphore,
    /// Becomes `true` when the server shuts down, so that WebSocket connections close and do
    /// not hold up the graceful shutdown.
    pub shutdown: watch::Receiver<bool>,
}

/// The address of the client of a request, for rate limiting (a request extension set by
/// [`connections::serve`]; extract it as `ConnectInfo<ClientAddr>`).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// A server bound to its address, ready to run.
pub struct Server {
    state: Arc<AppState>,
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    local_addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
}

/// Opens (and migrates) the database and loads the token signing keys.
fn open_store(database: &Database) -> Result<(Store, Keys), ServerError> {
    let store = Store::open_database(database)?;
    let keys = match database {
        Database::Sqlite(path) => Keys::load_or_create(path)?,
        // Every replica must sign and check with one secret: it lives in the database.
        Database::Postgres(_) => Keys::load_or_shared(|candidate| {
            Ok(store.shared_jwt_secret(candidate)?.unwrap_or_default())
        })?,
    };
    Ok((store, keys))
}

impl Server {
    /// Opens (and migrates) the database, loads the signing secret and binds the address.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        // Blocking (file I/O, or the PostgreSQL driver's own runtime, which may not start
        // inside ours): on a blocking thread.
        let database = config.database.clone();
        let (store, keys) = tokio::task::spawn_blocking(move || open_store(&database))
            .await
            .map_err(|_| StoreError::Poisoned)??;
        let acceptor = match &config.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        let bind_err = |source| ServerError::Bind {
            addr: config.bind,
            source,
        };
        let tcp = TcpListener::bind(config.bind).await.map_err(bind_err)?;
        let local_addr = tcp.local_addr().map_err(bind_err)?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let config_for_budget = config.max_decompressed_bytes;
        let limiter = LoginLimiter::new(LimiterConfig {
            max_failures: config.login_max_failures,
            window: config.login_window,
            max_keys: login::MAX_KEYS,
        });
        let state = Arc::new(AppState {
            store,
            config,
            keys,
            limiter,
            hash_slots: HashSlots::per_core(),
            fanout: Fanout::default(),
            batch_slots: tokio::sync::Semaphore::new(batch_slots()),
            batch_bytes: tokio::sync::Semaphore::new(batch_budget_kib(config_for_budget)),
            shutdown,
        });
        Ok(Server {
            state,
            tcp,
            tls: acceptor,
            local_addr,
            shutdown_tx,
        })
    }

    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL clients use, e.g. `http://127.0.0.1:8750`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The database as it may be shown: the SQLite file's absolute path, or the PostgreSQL URL
    /// without its password.
    pub fn database(&self) -> String {
        self.state.store.shown()
    }

    /// Serves until `shutdown` resolves, then stops accepting, closes WebSockets and waits for
    /// in-flight requests (a batch being stored finishes and is answered), at most
    /// [`SHUTDOWN_GRACE`].
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let app = router(self.state.clone());
        tokio::spawn(housekeeping::run(self.state.clone()));
        let tx = self.shutdown_tx;
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = tx.send(true);
            // Kept alive until the process ends, so receivers never see a closed channel.
            std::future::pending::<()>().await;
        });
        let open = OpenConnections::default();
        let stopping = self.state.shutdown.clone();
        let limits = self.state.config.connections.clone();
        connections::serve(self.tcp, self.tls, app, limits, open.clone(), stopping).await;
        // A client that never finishes its request must not keep the server alive forever.
        // Requests cut off here lose nothing: a batch is stored in one transaction or not at all.
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !open.is_empty() {
            if Instant::now() >= deadline {
                tracing::warn!("shutdown grace period over; closing the remaining connections");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// The batch byte budget in KiB: four batches of the largest size, at least 64 MiB.
fn batch_budget_kib(max_decompressed: usize) -> usize {
    batch::kib(max_decompressed.saturating_mul(4).max(64 << 20)) as usize
}

/// Two concurrent batches per core: one decoding while the other waits for the writer.
fn batch_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

/// The API routes (PROTOCOL.md) and the dashboard.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/token/", post(auth::login))
        .route("/api/v1/token/refresh/", post(auth::refresh))
        .route("/api/v1/ws-token/", post(auth::ws_token))
        .route("/api/v1/logout/", post(auth::logout))
        .route("/api/v1/events/batch/", post(batch::upload))
        .route("/api/v1/events/", get(pull::pull))
        .route("/api/v1/sync/health/", get(health))
        .route("/ws/v1/events/", get(ws::upgrade))
        .merge(dashboard::router())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// `GET /api/v1/sync/health/`
async fn health(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "limits": {
            "max_events_per_batch": batch::MAX_EVENTS_PER_BATCH,
            "max_decompressed_bytes_per_batch": state.config.max_decompressed_bytes,
        }
    }))
}

/// Gives every request an id, logged on every line of its span (method and path only: query
/// strings may carry a ws token) and returned as `x-request-id`.
async fn request_id(req: Request, next: Next) -> Response {
    let id = ulid::Ulid::new().to_string();
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %req.method(),
        path = %req.uri().path()
    );
    let start = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = start.elapsed().as_millis() as u64,
            "done"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}
