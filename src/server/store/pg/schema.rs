//! The PostgreSQL schema and its migrations.
//!
//! The same tables as the SQLite schema (`store/schema.rs`) at its current version, in
//! PostgreSQL's types. Migrations are numbered by the row in `spec_kitty_schema`; each one runs
//! in its own transaction under a transaction-scoped advisory lock, re-reading the version after
//! taking the lock, so N replicas starting at once apply every migration exactly once (the
//! others wait for the lock, then find nothing left to do). `spec_kitty_migrations` records who
//! applied each one and when, which `db check` shows and the tests count.

use postgres::Client;

use super::super::StoreError;
use super::{PgError, Postgres};

/// The advisory lock key of migrations: any constant that no other program on the database
/// is likely to use ("spec-kit" in ASCII).
const MIGRATION_LOCK: i64 = 0x7370_6563_2d6b_6974;

/// Every migration, in order. Never edit one that has shipped; append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the SQLite schema at version 6, in one step (no PostgreSQL installation predates it).
    // Every text column compares bytewise (COLLATE "C"), as SQLite does: the board's order key
    // `(lamport_clock, node_id)` must agree with event::lane::supersedes, and listings must
    // come out in the same order from either backend.
    r#"
    CREATE TABLE teams (
        slug        TEXT COLLATE "C" PRIMARY KEY,
        created_at  BIGINT NOT NULL
    );
    CREATE TABLE users (
        username       TEXT COLLATE "C" PRIMARY KEY,
        team_slug      TEXT COLLATE "C" NOT NULL REFERENCES teams(slug),
        password_hash  TEXT COLLATE "C" NOT NULL,
        disabled       BOOLEAN NOT NULL DEFAULT FALSE,
        created_at     BIGINT NOT NULL
    );
    CREATE TABLE sessions (
        family_id   TEXT COLLATE "C" PRIMARY KEY,
        username    TEXT COLLATE "C" NOT NULL REFERENCES users(username),
        created_at  BIGINT NOT NULL,
        revoked     BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE refresh_tokens (
        token_hash  TEXT COLLATE "C" PRIMARY KEY,
        family_id   TEXT COLLATE "C" NOT NULL REFERENCES sessions(family_id),
        expires_at  BIGINT NOT NULL,
        rotated     BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
    CREATE TABLE ws_tokens (
        token_hash  TEXT COLLATE "C" PRIMARY KEY,
        username    TEXT COLLATE "C" NOT NULL,
        team_slug   TEXT COLLATE "C" NOT NULL,
        expires_at  BIGINT NOT NULL,
        family_id   TEXT COLLATE "C"
    );
    -- seq is the server order and the pull cursor. A sequence alone would not do: two
    -- replicas' transactions may commit out of the order their values were drawn in, and a
    -- pull between the two commits would step over the later-committing event for good. So
    -- a batch takes its team's advisory lock before drawing seq values (store/postgres/events):
    -- within a team, seq order is commit order.
    CREATE TABLE events (
        seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id       TEXT COLLATE "C" NOT NULL UNIQUE,
        team_slug      TEXT COLLATE "C" NOT NULL,
        event_type     TEXT COLLATE "C" NOT NULL,
        lamport_clock  BIGINT NOT NULL,
        node_id        TEXT COLLATE "C" NOT NULL,
        project_uuid   TEXT COLLATE "C" NOT NULL,
        feature_slug   TEXT COLLATE "C",
        wp_id          TEXT COLLATE "C",
        received_at    BIGINT NOT NULL,
        envelope       TEXT COLLATE "C" NOT NULL,
        actor          TEXT COLLATE "C"
    );
    CREATE INDEX events_team_seq ON events(team_slug, seq);
    CREATE INDEX events_team_type_seq ON events(team_slug, event_type, seq);
    CREATE INDEX events_team_wp_type_seq ON events(team_slug, wp_id, event_type, seq);
    CREATE INDEX events_team_feature_type_seq ON events(team_slug, feature_slug, event_type, seq);
    CREATE INDEX events_team_actor_type_seq ON events(team_slug, actor, event_type, seq);
    CREATE INDEX events_team_feature_wp_type_seq
        ON events(team_slug, feature_slug, wp_id, event_type, seq);
    CREATE INDEX events_team_wp_actor_type_seq ON events(team_slug, wp_id, actor, event_type, seq);
    CREATE INDEX events_team_feature_actor_type_seq
        ON events(team_slug, feature_slug, actor, event_type, seq);
    CREATE TABLE work_packages (
        team_slug      TEXT COLLATE "C" NOT NULL,
        project_uuid   TEXT COLLATE "C" NOT NULL,
        feature_slug   TEXT COLLATE "C" NOT NULL,
        wp_id          TEXT COLLATE "C" NOT NULL,
        lane           TEXT COLLATE "C" NOT NULL,
        lamport_clock  BIGINT NOT NULL,
        node_id        TEXT COLLATE "C" NOT NULL,
        updated_seq    BIGINT NOT NULL,
        title          TEXT COLLATE "C",
        last_actor     TEXT COLLATE "C",
        lane_since_ms  BIGINT,
        PRIMARY KEY (team_slug, project_uuid, feature_slug, wp_id)
    );
    CREATE TABLE dashboard_teams (
        team_slug  TEXT COLLATE "C" PRIMARY KEY,
        events     BIGINT NOT NULL
    );
    CREATE TABLE dashboard_features (
        team_slug     TEXT COLLATE "C" NOT NULL,
        project_uuid  TEXT COLLATE "C" NOT NULL,
        feature_slug  TEXT COLLATE "C" NOT NULL,
        project_slug  TEXT COLLATE "C",
        last_seq      BIGINT NOT NULL,
        last_at_ms    BIGINT,
        PRIMARY KEY (team_slug, project_uuid, feature_slug)
    );
    CREATE TABLE dashboard_transitions (
        team_slug     TEXT COLLATE "C" NOT NULL,
        project_uuid  TEXT COLLATE "C" NOT NULL,
        feature_slug  TEXT COLLATE "C" NOT NULL,
        seq           BIGINT NOT NULL,
        wp_id         TEXT COLLATE "C" NOT NULL,
        at_ms         BIGINT NOT NULL,
        lane          TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (team_slug, project_uuid, feature_slug, seq)
    );
    CREATE INDEX dashboard_transitions_wp_time
        ON dashboard_transitions(team_slug, project_uuid, feature_slug, wp_id, at_ms, seq);
    CREATE TABLE dashboard_flow (
        team_slug     TEXT COLLATE "C" NOT NULL,
        project_uuid  TEXT COLLATE "C" NOT NULL,
        feature_slug  TEXT COLLATE "C" NOT NULL,
        width_ms      BIGINT NOT NULL,
        bucket        BIGINT NOT NULL,
        planned       BIGINT NOT NULL,
        doing         BIGINT NOT NULL,
        for_review    BIGINT NOT NULL,
        done          BIGINT NOT NULL,
        PRIMARY KEY (team_slug, project_uuid, feature_slug, width_ms, bucket)
    );
    CREATE TABLE dashboard_sessions (
        token_hash  TEXT COLLATE "C" PRIMARY KEY,
        username    TEXT COLLATE "C" NOT NULL REFERENCES users(username),
        csrf        TEXT COLLATE "C" NOT NULL,
        expires_at  BIGINT NOT NULL
    );
    -- The login limiter's failures, shared by every replica so that N replicas do not give
    -- an attacker N budgets (server/login.rs keeps the same counts in memory on SQLite).
    CREATE TABLE login_failures (
        username    TEXT COLLATE "C" NOT NULL,
        address     TEXT COLLATE "C" NOT NULL,
        at_ms       BIGINT NOT NULL
    );
    CREATE INDEX login_failures_user_time ON login_failures(username, at_ms);
    CREATE INDEX login_failures_address_time ON login_failures(address, at_ms);
    -- Secrets every replica must share: the JWT signing secret (SQLite keeps it in a file
    -- beside the database instead). Only the server reads it; the database is private.
    CREATE TABLE server_secrets (
        name   TEXT COLLATE "C" PRIMARY KEY,
        value  TEXT COLLATE "C" NOT NULL
    );
    "#,
];

/// The schema version this server writes on PostgreSQL.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// One applied migration, as `spec_kitty_migrations` remembers it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppliedMigration {
    pub version: i64,
    pub applied_at: i64,
    pub applied_by: String,
}

/// Brings the database to [`PG_SCHEMA_VERSION`]; returns the versions this call applied (empty
/// when another replica, or an earlier start, had done it).
pub fn migrate(db: &Postgres, client: &mut Client) -> Result<Vec<i64>, StoreError> {
    let err = |source| db.error(source);
    let mut applied = Vec::new();
    loop {
        let mut tx = client.transaction().map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS spec_kitty_schema (version BIGINT NOT NULL);
             CREATE TABLE IF NOT EXISTS spec_kitty_migrations (
                 version     BIGINT PRIMARY KEY,
                 applied_at  BIGINT NOT NULL,
                 applied_by  TEXT NOT NULL
             );",
        )
        .map_err(err)?;
        let found = version_in(&mut tx).map_err(err)?;
        if found > PG_SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found,
                supported: PG_SCHEMA_VERSION,
            });
        }
        let Some(sql) = MIGRATIONS.get(found as usize) else {
            tx.commit().map_err(err)?;
            return Ok(applied);
        };
        tx.batch_execute(sql).map_err(err)?;
        let next = found + 1;
        tx.execute("DELETE FROM spec_kitty_schema", &[])
            .map_err(err)?;
        tx.execute(
            "INSERT INTO spec_kitty_schema (version) VALUES ($1)",
            &[&next],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO spec_kitty_migrations (version, applied_at, applied_by) \
             VALUES ($1, $2, $3)",
            &[&next, &super::super::unix_now(), &applied_by()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        applied.push(next);
    }
}

/// The schema version of the database, 0 when it has never been migrated.
pub fn version(db: &Postgres, client: &mut Client) -> Result<i64, StoreError> {
    let mut tx = client.transaction().map_err(|e| db.error(e))?;
    let v = version_in(&mut tx).map_err(|e| db.error(e))?;
    tx.commit().map_err(|e| db.error(e))?;
    Ok(v)
}

/// The migrations applied so far, oldest first (empty before the first).
pub fn history(db: &Postgres, client: &mut Client) -> Result<Vec<AppliedMigration>, StoreError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('spec_kitty_migrations') IS NOT NULL",
            &[],
        )
        .map_err(|e| db.error(e))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT version, applied_at, applied_by FROM spec_kitty_migrations ORDER BY version",
            &[],
        )
        .map_err(|e| db.error(e))?;
    Ok(rows
        .iter()
        .map(|r| AppliedMigration {
            version: r.get(0),
            applied_at: r.get(1),
            applied_by: r.get(2),
        })
        .collect())
}

fn version_in(tx: &mut postgres::Transaction<'_>) -> Result<i64, PgError> {
    let exists: bool = tx
        .query_one("SELECT to_regclass('spec_kitty_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(tx
        .query_opt("SELECT version FROM spec_kitty_schema", &[])?
        .map(|r| r.get::<_, i64>(0))
        .unwrap_or(0))
}

/// Which process applied a migration: host and pid, for the operator reading `db check`.
fn applied_by() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!(
        "spec-kitty-server {} on {host}, pid {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    )
}
