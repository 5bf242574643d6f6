//! The `db` subcommands: which database a command uses, checking it, migrating it.
//!
//! A server stores into the SQLite file of `--db` unless `--database postgres://…` (or
//! `DATABASE_URL`) names a PostgreSQL database (store/pg). `db check` answers whether the
//! database is reachable and at this server's schema version without changing anything;
//! `db migrate` applies what is missing, under an advisory lock on PostgreSQL so that replicas
//! starting at once, or an operator running it beside them, migrate exactly once.

use std::path::PathBuf;

use super::admin::AdminError;
use super::store::pg::{AppliedMigration, PgStatus, Postgres};
use super::store::{Database, SCHEMA_VERSION, Store, sqlite_schema_version};

/// What `db check` found.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum DbStatus {
    Sqlite {
        path: PathBuf,
        schema_version: i64,
        supported_version: i64,
    },
    Postgres(PgStatus),
}

impl DbStatus {
    /// The schema version found and the one this server writes.
    pub fn versions(&self) -> (i64, i64) {
        match self {
            DbStatus::Sqlite {
                schema_version,
                supported_version,
                ..
            } => (*schema_version, *supported_version),
            DbStatus::Postgres(s) => (s.schema_version, s.supported_version),
        }
    }

    /// The database as it may be shown (never with a password).
    pub fn shown(&self) -> String {
        match self {
            DbStatus::Sqlite { path, .. } => path.display().to_string(),
            DbStatus::Postgres(s) => s.database.clone(),
        }
    }

    pub fn migrations(&self) -> &[AppliedMigration] {
        match self {
            DbStatus::Sqlite { .. } => &[],
            DbStatus::Postgres(s) => &s.migrations,
        }
    }
}

/// Connects and reads the schema version; changes nothing.
pub fn check(db: &Database) -> Result<DbStatus, AdminError> {
    match db {
        Database::Sqlite(path) => {
            if !path.exists() {
                return Err(AdminError::NoDatabase(path.clone()));
            }
            Ok(DbStatus::Sqlite {
                path: path.clone(),
                schema_version: sqlite_schema_version(path)?,
                supported_version: SCHEMA_VERSION,
            })
        }
        Database::Postgres(url) => Ok(DbStatus::Postgres(Postgres::connect(url)?.status()?)),
    }
}

/// What `db migrate` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Migrated {
    /// The versions this run applied (empty: the database was current).
    pub applied: Vec<i64>,
    pub status: DbStatus,
}

/// Applies the migrations not yet applied, creating a SQLite file when there is none.
pub fn migrate(db: &Database) -> Result<Migrated, AdminError> {
    match db {
        Database::Sqlite(path) => {
            let before = if path.exists() {
                sqlite_schema_version(path)?
            } else {
                0
            };
            Store::open(path)?;
            Ok(Migrated {
                applied: (before + 1..=SCHEMA_VERSION).collect(),
                status: check(db)?,
            })
        }
        Database::Postgres(url) => {
            let pg = Postgres::connect(url)?;
            let applied = pg.migrate()?;
            Ok(Migrated {
                applied,
                status: DbStatus::Postgres(pg.status()?),
            })
        }
    }
}
