//! The database schema and its migrations.
//!
//! Migrations are numbered by `PRAGMA user_version`: migration `i` (0-based) brings a database
//! from version `i` to `i + 1`. They only ever get appended, so a database written by an older
//! server is upgraded in place on start, and one written by a newer server is refused rather
//! than misread.

use rusqlite::Connection;

use super::StoreError;

/// Every migration, in order. Never edit one that has shipped; append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, sessions, events and the materialised board.
    r#"
    CREATE TABLE teams (
        slug        TEXT PRIMARY KEY,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE users (
        username       TEXT PRIMARY KEY,
        team_slug      TEXT NOT NULL REFERENCES teams(slug),
        password_hash  TEXT NOT NULL,
        disabled       INTEGER NOT NULL DEFAULT 0,
        created_at     INTEGER NOT NULL
    );
    -- A session is one login: the family of refresh tokens produced by rotating it.
    CREATE TABLE sessions (
        family_id   TEXT PRIMARY KEY,
        username    TEXT NOT NULL REFERENCES users(username),
        created_at  INTEGER NOT NULL,
        revoked     INTEGER NOT NULL DEFAULT 0
    );
    -- Only hashes of tokens are stored, so a copy of the database cannot be replayed.
    CREATE TABLE refresh_tokens (
        token_hash  TEXT PRIMARY KEY,
        family_id   TEXT NOT NULL REFERENCES sessions(family_id),
        expires_at  INTEGER NOT NULL,
        rotated     INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
    CREATE TABLE ws_tokens (
        token_hash  TEXT PRIMARY KEY,
        username    TEXT NOT NULL,
        team_slug   TEXT NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    -- seq is the server order and the pull cursor; event_id is unique across all teams.
    CREATE TABLE events (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id       TEXT NOT NULL UNIQUE,
        team_slug      TEXT NOT NULL,
        event_type     TEXT NOT NULL,
        lamport_clock  INTEGER NOT NULL,
        node_id        TEXT NOT NULL,
        project_uuid   TEXT NOT NULL,
        feature_slug   TEXT,
        wp_id          TEXT,
        received_at    INTEGER NOT NULL,
        envelope       TEXT NOT NULL
    );
    CREATE INDEX events_team_seq ON events(team_slug, seq);
    -- The board: the current lane of every work package, by (lamport_clock, node_id) order.
    CREATE TABLE work_packages (
        team_slug      TEXT NOT NULL,
        project_uuid   TEXT NOT NULL,
        feature_slug   TEXT NOT NULL,
        wp_id          TEXT NOT NULL,
        lane           TEXT NOT NULL,
        lamport_clock  INTEGER NOT NULL,
        node_id        TEXT NOT NULL,
        updated_seq    INTEGER NOT NULL,
        PRIMARY KEY (team_slug, project_uuid, feature_slug, wp_id)
    ) WITHOUT ROWID;
    "#,
    // 2: a ws token remembers the login session it was made under, so that revoking the
    // session closes the WebSocket opened with it.
    r#"
    ALTER TABLE ws_tokens ADD COLUMN family_id TEXT;
    "#,
    // 3: the dashboard's projections (see store/dashboard).
    super::dashboard::MIGRATION,
    // 4: the activity feed filtered by work package and event type together: one bounded
    // range from the seq cursor instead of every event of that work package (issue 9).
    r#"
    CREATE INDEX events_team_wp_type_seq ON events(team_slug, wp_id, event_type, seq);
    "#,
    // 5: one index per set of activity filters, each ending in (event_type, seq), so every
    // combination of filters is a bounded range from the cursor (issue 9).
    super::dashboard::ACTIVITY_INDEXES,
    // 6: lanes entered and left per time bucket, so the cumulative-flow chart reads a few
    // hundred buckets instead of every lane change of the feature (issue 9).
    super::dashboard::flow::MIGRATION,
];

/// The schema version this server writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`], each migration in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema version of the database file at `path`, read without migrating or creating it.
pub fn version_of(path: &std::path::Path) -> Result<i64, StoreError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}
