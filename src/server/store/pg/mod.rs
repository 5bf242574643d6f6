//! The server's storage on PostgreSQL, for N stateless replicas sharing one database.
//!
//! The embedded SQLite file (`store/mod.rs`) stays the default; this is the backend of
//! `--database postgres://…`. Like the SQLite store every method blocks, and async callers run
//! them under `tokio::task::spawn_blocking`; the `postgres` crate drives each connection on its
//! own small runtime, which is allowed on a blocking thread.
//!
//! What this module owns: the connection settings (never shown with their password), a small
//! pool of connections, and turning the driver's errors into ones that name the fix.

mod accounts;
mod dashboard;
mod events;
mod ingest;
pub mod schema;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use postgres::{Client, NoTls, Statement};

use super::StoreError;

pub use postgres::Error as PgError;
pub use schema::{AppliedMigration, PG_SCHEMA_VERSION};

/// Connections kept open for reuse; more may be opened under load and are then closed.
const POOL: usize = 8;

/// How long a connection attempt may take before it counts as unreachable. Without one, a
/// firewall that drops packets would hang a replica's start for the OS's TCP timeout (minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Is `s` a PostgreSQL connection URL (rather than a SQLite path)?
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// A PostgreSQL database: where it is, and the connections open to it.
pub struct Postgres {
    config: postgres::Config,
    shown: String,
    pool: Mutex<Vec<PgConn>>,
}

/// A pooled connection with the statements prepared on it (PostgreSQL keeps a prepared
/// statement per connection; preparing once saves a round trip per statement run).
pub(crate) struct PgConn {
    pub client: Client,
    pub statements: HashMap<&'static str, Statement>,
}

/// What `db check` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PgStatus {
    /// The database, without its password.
    pub database: String,
    /// `SHOW server_version`.
    pub server_version: String,
    /// The schema version found (0: never migrated).
    pub schema_version: i64,
    /// The schema version this server writes.
    pub supported_version: i64,
    pub migrations: Vec<AppliedMigration>,
}

impl Postgres {
    /// Parses `url` (`postgres://user:password@host:port/dbname?sslmode=…`) and opens one
    /// connection to prove that it works. Does not migrate.
    pub fn connect(url: &str) -> Result<Postgres, StoreError> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| StoreError::DatabaseUrl { why: e.to_string() })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("spec-kitty-server");
        }
        let db = Postgres {
            shown: redacted(&config),
            config,
            pool: Mutex::new(Vec::new()),
        };
        let first = db.open()?;
        db.give_back(first);
        Ok(db)
    }

    /// The database as it may be shown: user, hosts, port and name, never the password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Applies the migrations not yet applied (see `schema`); returns the versions this call
    /// applied.
    pub fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        self.with(schema::migrate)
    }

    /// Connectivity, server version and schema version.
    pub fn status(&self) -> Result<PgStatus, StoreError> {
        self.with(|db, client| {
            let server_version: String = client
                .query_one("SHOW server_version", &[])
                .map_err(|e| db.error(e))?
                .get(0);
            Ok(PgStatus {
                database: db.shown.clone(),
                server_version,
                schema_version: schema::version(db, client)?,
                supported_version: PG_SCHEMA_VERSION,
                migrations: schema::history(db, client)?,
            })
        })
    }

    /// Runs `f` on a pooled connection. A connection the driver reports closed is dropped
    /// rather than returned, so a restarted PostgreSQL costs one failed call, not a poisoned
    /// pool.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Postgres, &mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_conn(|db, conn| f(db, &mut conn.client))
    }

    /// [`Postgres::with`], with the connection's prepared statements.
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&Postgres, &mut PgConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.pool.lock().map_err(|_| StoreError::Poisoned)?.pop();
        let mut conn = match pooled {
            Some(c) if !c.client.is_closed() => c,
            _ => self.open()?,
        };
        let result = f(self, &mut conn);
        self.give_back(conn);
        result
    }

    fn open(&self) -> Result<PgConn, StoreError> {
        let client = self.config.connect(NoTls).map_err(|e| self.error(e))?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
        })
    }

    fn give_back(&self, client: PgConn) {
        if client.client.is_closed() {
            return;
        }
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < POOL
        {
            pool.push(client);
        }
    }

    /// The driver's error, with the database named and a help line for its likely cause.
    pub(crate) fn error(&self, source: PgError) -> StoreError {
        let help = help_for(&source);
        StoreError::Postgres {
            database: self.shown.clone(),
            help,
            source,
        }
    }
}

impl Drop for Postgres {
    /// Each connection owns a small runtime of the driver, and a runtime may not be dropped on
    /// an async thread (the server's store is dropped at the end of `serve`, inside tokio): so
    /// the pool is closed on a thread of its own.
    fn drop(&mut self) {
        let pool = std::mem::take(self.pool.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !pool.is_empty() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

/// A help line for the usual failures: unreachable, refused login, missing database.
fn help_for(e: &PgError) -> String {
    use postgres::error::SqlState;
    let fix = "then check with `spec-kitty-server db check`";
    match e.code() {
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            format!(
                "PostgreSQL refused the login: check the user and password in the URL (or DATABASE_URL) and pg_hba.conf; {fix}"
            )
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => {
            format!(
                "the database does not exist: create it with `createdb NAME` (or `CREATE DATABASE`); {fix}"
            )
        }
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
            format!(
                "the user lacks a privilege: grant it CREATE on the database's schema, or run `spec-kitty-server db migrate` as its owner; {fix}"
            )
        }
        Some(_) => format!("PostgreSQL answered with an error; see its log for details; {fix}"),
        None => format!(
            "is PostgreSQL running and reachable at this host and port? (`pg_isready -h HOST -p PORT`); {fix}"
        ),
    }
}

/// `postgres://user@host:port/dbname` from the parsed settings: the password never leaves.
fn redacted(config: &postgres::Config) -> String {
    use postgres::config::Host;
    let user = config.get_user().unwrap_or("");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    let mut shown = String::from("postgres://");
    if !user.is_empty() {
        shown.push_str(user);
        shown.push('@');
    }
    shown.push_str(&hosts.join(","));
    if !ports.is_empty() {
        shown.push(':');
        shown.push_str(&ports.join(","));
    }
    shown.push('/');
    shown.push_str(config.get_dbname().unwrap_or(user));
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_has_no_password() {
        let config =
            postgres::Config::from_str("postgres://kitty:s3cret-pw@db.example:5433/teams").unwrap();
        let shown = redacted(&config);
        assert_eq!(shown, "postgres://kitty@db.example:5433/teams");
        let config = postgres::Config::from_str("host=/run/pg user=u password=pw").unwrap();
        assert!(!redacted(&config).contains("pw"), "{}", redacted(&config));
    }

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("postgres://h/db"));
        assert!(is_url("postgresql://h/db"));
        assert!(!is_url("/var/lib/spec-kitty/server.db"));
        assert!(!is_url("postgres.db"));
    }

    #[test]
    fn a_malformed_url_is_refused_without_echoing_it() {
        let Err(e) = Postgres::connect("postgres://u:hunter2@host:notaport/db") else {
            panic!("accepted a bad port");
        };
        let text = format!("{e} {e:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(matches!(e, StoreError::DatabaseUrl { .. }), "{e:?}");
    }
}
