//! The server's storage: one interface ([`Store`]), two backends.
//!
//! The embedded SQLite file (`sqlite.rs`) is the default: one binary, nothing to run beside it.
//! PostgreSQL (`pg/`) is for N stateless replicas sharing one database. Every method blocks:
//! async callers run them under `tokio::task::spawn_blocking`.

mod accounts;
pub mod dashboard;
mod events;
mod ingest_tx;
pub mod pg;
mod schema;
mod sqlite;
mod sqlite_ingest;

use std::path::{Path, PathBuf};

use pg::Postgres;
use sqlite::Sqlite;

use dashboard::flow::FlowBucket;
use dashboard::{
    ActivityFilter, BoardCard, BoardFilter, BrowserSession, DashboardCounts, FeatureRow, Transition,
};

pub use accounts::{RefreshOutcome, TeamRow, UserRow, WsTokenOwner};
pub use events::{Counts, IncomingEvent, InsertOutcome, StoredEvent, WorkPackageRow, WpEffect};
pub use schema::{SCHEMA_VERSION, version_of as sqlite_schema_version};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    #[diagnostic(
        code(spec_kitty_server::store::open),
        help("check the --db path and its permissions (the directory must be writable)")
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the directory {path}: {source}")]
    #[diagnostic(
        code(spec_kitty_server::store::create_dir),
        help("create it yourself or pass another --db PATH")
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the database has schema version {found}, newer than this server understands \
         ({supported}); upgrade spec-kitty-server"
    )]
    #[diagnostic(
        code(spec_kitty_server::store::too_new),
        help("install the spec-kitty-server release that wrote this database, or a newer one")
    )]
    TooNew { found: i64, supported: i64 },
    #[error("database error: {0}")]
    #[diagnostic(
        code(spec_kitty_server::store::sqlite),
        help("check the disk and the file with `sqlite3 <db> 'PRAGMA integrity_check'`")
    )]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot set the permissions of {path}: {source}")]
    #[diagnostic(
        code(spec_kitty_server::store::permissions),
        help("make sure the server's user owns the database file and its directory")
    )]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use the PostgreSQL database {database}: {source}")]
    #[diagnostic(code(spec_kitty_server::store::postgres), help("{help}"))]
    Postgres {
        database: String,
        help: String,
        #[source]
        source: postgres::Error,
    },
    #[error("invalid PostgreSQL URL: {why}")]
    #[diagnostic(
        code(spec_kitty_server::store::database_url),
        help(
            "write it as postgres://USER:PASSWORD@HOST:PORT/DBNAME (options like \
             ?sslmode=disable after it); prefer DATABASE_URL to --database so the password \
             stays out of the process list"
        )
    )]
    DatabaseUrl { why: String },
    #[error("a database connection lock was poisoned by a crashed task")]
    #[diagnostic(
        code(spec_kitty_server::store::poisoned),
        help("restart the server; this is a bug, please report it with the log")
    )]
    Poisoned,
}

/// Environment variable of the PostgreSQL URL (the usual name, so platforms that provision a
/// database and set it need no extra step).
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// The database a command works on.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    /// The PostgreSQL URL when given, else the SQLite file.
    pub fn choose(url: Option<String>, sqlite: PathBuf) -> Result<Database, StoreError> {
        match url.filter(|u| !u.trim().is_empty()) {
            None => Ok(Database::Sqlite(sqlite)),
            Some(url) if pg::is_url(url.trim()) => Ok(Database::Postgres(url.trim().to_owned())),
            Some(_) => Err(StoreError::DatabaseUrl {
                why: "it does not start with postgres:// or postgresql:// (a SQLite file is \
                      given with --db PATH)"
                    .into(),
            }),
        }
    }
}

/// The server's database: the embedded SQLite file, or PostgreSQL for replicas. Every handler,
/// the dashboard and the admin commands go through these methods; each backend answers them
/// with its own SQL (`sqlite.rs` with accounts.rs, events.rs, dashboard/; `pg/`).
pub struct Store {
    backend: Backend,
}

enum Backend {
    Sqlite(Sqlite),
    Postgres(Postgres),
}

/// Calls the same method on whichever backend this store is.
macro_rules! on_backend {
    ($self:ident, $b:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($b) => $call,
            Backend::Postgres($b) => $call,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Sqlite(Sqlite::open(path)?),
        })
    }

    /// Connects to the PostgreSQL database at `url` and migrates it (under the migration
    /// lock, so replicas starting at once migrate it once).
    pub fn connect_postgres(url: &str) -> Result<Store, StoreError> {
        let pg = Postgres::connect(url)?;
        pg.migrate()?;
        Ok(Store {
            backend: Backend::Postgres(pg),
        })
    }

    /// Opens `db`, migrating it: the SQLite file (created when missing) or PostgreSQL.
    pub fn open_database(db: &Database) -> Result<Store, StoreError> {
        match db {
            Database::Sqlite(path) => Store::open(path),
            Database::Postgres(url) => Store::connect_postgres(url),
        }
    }

    /// The JWT signing secret kept in the database for every replica to share, keeping
    /// `candidate` when there is none yet. `None` on SQLite, whose secret is a file beside the
    /// database (server/auth.rs).
    pub fn shared_jwt_secret(&self, candidate: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(p) => p.shared_jwt_secret(candidate).map(Some),
        }
    }

    /// The database as it may be shown: the SQLite file's path, or the PostgreSQL URL without
    /// its password.
    pub fn shown(&self) -> String {
        match &self.backend {
            Backend::Sqlite(s) => std::path::absolute(s.path())
                .unwrap_or_else(|_| s.path().to_owned())
                .display()
                .to_string(),
            Backend::Postgres(p) => p.shown().to_owned(),
        }
    }

    /// Creates the user (and its team when new). Fails if the username is taken.
    pub fn add_user(
        &self,
        username: &str,
        team_slug: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        on_backend!(self, b => b.add_user(username, team_slug, password_hash))
    }

    /// Every user, sorted by name.
    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        on_backend!(self, b => b.list_users())
    }

    /// One user by name.
    pub fn find_user(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        on_backend!(self, b => b.find_user(username))
    }

    /// Whether the user is disabled; `None` when there is no such user.
    pub fn user_disabled(&self, username: &str) -> Result<Option<bool>, StoreError> {
        on_backend!(self, b => b.user_disabled(username))
    }

    /// Disables a user and revokes all its sessions. Returns false for an unknown user.
    pub fn disable_user(&self, username: &str) -> Result<bool, StoreError> {
        on_backend!(self, b => b.disable_user(username))
    }

    /// Every team with its user and event counts.
    pub fn list_teams(&self) -> Result<Vec<TeamRow>, StoreError> {
        on_backend!(self, b => b.list_teams())
    }

    /// Starts a session (one login) with its first refresh token.
    pub fn create_session(
        &self,
        family_id: &str,
        username: &str,
        refresh_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self, b => b.create_session(family_id, username, refresh_hash, expires_at))
    }

    /// Rotates a refresh token: the presented one is marked rotated and `new_hash` joins its
    /// family; two concurrent refreshes with one token, on any replicas, cannot both succeed.
    pub fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        on_backend!(self, b => b.rotate_refresh(old_hash, new_hash, new_expires_at))
    }

    /// Revokes the session a refresh token belongs to and returns its id. Unknown tokens are
    /// ignored (`None`): logging out twice is not an error.
    pub fn revoke_session(&self, refresh_hash: &str) -> Result<Option<String>, StoreError> {
        on_backend!(self, b => b.revoke_session(refresh_hash))
    }

    /// Stores a single-use WebSocket token.
    pub fn add_ws_token(
        &self,
        token_hash: &str,
        owner: &WsTokenOwner,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self, b => b.add_ws_token(token_hash, owner, expires_at))
    }

    /// Consumes a WebSocket token: it is deleted whether or not it is still valid, so it can
    /// never be used twice.
    pub fn consume_ws_token(&self, token_hash: &str) -> Result<Option<WsTokenOwner>, StoreError> {
        on_backend!(self, b => b.consume_ws_token(token_hash))
    }

    /// Of `users` and `sessions`, those that no longer grant access: users disabled or
    /// deleted, sessions revoked.
    pub fn revoked(
        &self,
        users: &[String],
        sessions: &[String],
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        on_backend!(self, b => b.revoked(users, sessions))
    }

    /// Deletes up to `batch` expired ws tokens, up to `batch` expired refresh tokens, and up
    /// to `batch` sessions that have no refresh token left; returns the rows deleted.
    pub fn prune_expired(&self, now: i64, batch: usize) -> Result<usize, StoreError> {
        on_backend!(self, b => b.prune_expired(now, batch))
    }

    /// Stores a batch for `team_slug` in one transaction: either every new event of the batch
    /// is stored and the board updated, or nothing is.
    pub fn insert_events(
        &self,
        team_slug: &str,
        events: &[IncomingEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        on_backend!(self, b => b.insert_events(team_slug, events))
    }

    /// Up to `limit` events of the team after sequence `after`, in server order, holding at
    /// most `max_bytes` of envelopes (but always at least one event), and whether more follow.
    pub fn events_after(
        &self,
        team_slug: &str,
        after: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<(Vec<StoredEvent>, bool), StoreError> {
        on_backend!(self, b => b.events_after(team_slug, after, limit, max_bytes))
    }

    /// The activity feed: up to `limit` events of the team, newest first, older than `before`.
    pub fn activity(
        &self,
        team_slug: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        on_backend!(self, b => b.activity(team_slug, before, limit))
    }

    /// The team's board: every work package with its current lane.
    pub fn work_packages(&self, team_slug: &str) -> Result<Vec<WorkPackageRow>, StoreError> {
        on_backend!(self, b => b.work_packages(team_slug))
    }

    /// Counts of features, work packages and events of the team.
    pub fn counts(&self, team_slug: &str) -> Result<Counts, StoreError> {
        on_backend!(self, b => b.counts(team_slug))
    }

    /// Counts of projects, features, work packages and events of the team.
    pub fn dashboard_counts(&self, team_slug: &str) -> Result<DashboardCounts, StoreError> {
        on_backend!(self, b => b.dashboard_counts(team_slug))
    }

    /// The board's cards, by feature then work package.
    pub fn board(
        &self,
        team_slug: &str,
        filter: &BoardFilter,
    ) -> Result<Vec<BoardCard>, StoreError> {
        on_backend!(self, b => b.board(team_slug, filter))
    }

    /// Every feature of the team with its work packages per lane and its last activity.
    pub fn features(&self, team_slug: &str) -> Result<Vec<FeatureRow>, StoreError> {
        on_backend!(self, b => b.features(team_slug))
    }

    /// The activity feed: up to `limit` events of the team older than `before` (a `seq`),
    /// newest first, matching every filter given.
    pub fn dashboard_activity(
        &self,
        team_slug: &str,
        filter: &ActivityFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        on_backend!(self, b => b.dashboard_activity(team_slug, filter, before, limit))
    }

    /// The events of one work package (at most `limit`, oldest first by server order): the
    /// ones filed under `feature_slug` and the ones that name no feature, never those of the
    /// same id in the team's other features.
    pub fn work_package_events(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        wp_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        on_backend!(self, b => b.work_package_events(team_slug, project_uuid, feature_slug, wp_id, limit))
    }

    /// The board's card of one work package, by its whole key.
    pub fn board_card(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        wp_id: &str,
    ) -> Result<Option<BoardCard>, StoreError> {
        on_backend!(self, b => b.board_card(team_slug, project_uuid, feature_slug, wp_id))
    }

    /// The lanes entered by the work packages of one feature, in server order (at most
    /// `limit`).
    pub fn feature_transitions(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        on_backend!(self, b => b.feature_transitions(team_slug, project_uuid, feature_slug, limit))
    }

    /// The projects that have `feature_slug` (usually one), with their slug.
    pub fn feature_projects(
        &self,
        team_slug: &str,
        feature_slug: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        on_backend!(self, b => b.feature_projects(team_slug, feature_slug))
    }

    /// Records a new browser session (and forgets expired ones).
    pub fn create_browser_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self, b => b.create_browser_session(token_hash, username, csrf, expires_at))
    }

    /// The live session with this token hash, if any.
    pub fn browser_session(&self, token_hash: &str) -> Result<Option<BrowserSession>, StoreError> {
        on_backend!(self, b => b.browser_session(token_hash))
    }

    /// Ends a browser session (logout). Unknown tokens are fine.
    pub fn end_browser_session(&self, token_hash: &str) -> Result<(), StoreError> {
        on_backend!(self, b => b.end_browser_session(token_hash))
    }

    /// The cumulative flow of one feature from its buckets of `width_ms` (one of
    /// [`WIDTHS_MS`]).
    pub fn feature_flow_buckets(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        width_ms: i64,
    ) -> Result<Vec<FlowBucket>, StoreError> {
        on_backend!(self, b => b.feature_flow_buckets(team_slug, project_uuid, feature_slug, width_ms))
    }

    /// The cumulative flow of one feature at the finest bucket width that gives at most
    /// `columns` buckets from its first transition to `now_ms`, and that width.
    pub fn feature_flow(
        &self,
        team_slug: &str,
        project_uuid: &str,
        feature_slug: &str,
        columns: i64,
        now_ms: i64,
    ) -> Result<(i64, Vec<FlowBucket>), StoreError> {
        on_backend!(self, b => b.feature_flow(team_slug, project_uuid, feature_slug, columns, now_ms))
    }
}

/// Seconds since the Unix epoch, the unit of every timestamp in the database.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
