//! Teams, users, login sessions, refresh tokens and WebSocket tokens on PostgreSQL: the same
//! answers as the SQLite queries in `store/accounts.rs`, made safe for replicas.
//!
//! Where SQLite relies on its single writer, these rely on row locks: `rotate_refresh` locks
//! the presented token's row (`FOR UPDATE`), so two replicas rotating the same token serialise
//! and the second sees it rotated (reuse, the session revoked); `consume_ws_token` is one
//! `DELETE … RETURNING`, so a ws token is accepted once by whichever replica gets it first.

use super::super::{RefreshOutcome, StoreError, TeamRow, UserRow, WsTokenOwner, unix_now};
use super::Postgres;

impl Postgres {
    /// Creates the user (and its team when new). Fails if the username is taken.
    pub fn add_user(
        &self,
        username: &str,
        team_slug: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        self.with(|db, client| {
            let e = |x| db.error(x);
            let mut tx = client.transaction().map_err(e)?;
            let now = unix_now();
            tx.execute(
                "INSERT INTO teams (slug, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&team_slug, &now],
            )
            .map_err(e)?;
            let n = tx
                .execute(
                    "INSERT INTO users (username, team_slug, password_hash, created_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&username, &team_slug, &password_hash, &now],
                )
                .map_err(e)?;
            // A taken name leaves no trace: not even the team it named (dropping `tx` rolls
            // back).
            if n == 1 {
                tx.commit().map_err(e)?;
            }
            Ok(n == 1)
        })
    }

    /// Every user, sorted by name.
    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.with(|db, client| {
            let rows = client
                .query(
                    "SELECT username, team_slug, disabled, created_at, password_hash
                     FROM users ORDER BY username",
                    &[],
                )
                .map_err(|x| db.error(x))?;
            Ok(rows.iter().map(user_row).collect())
        })
    }

    /// One user by name.
    pub fn find_user(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        self.with(|db, client| {
            let row = client
                .query_opt(
                    "SELECT username, team_slug, disabled, created_at, password_hash
                     FROM users WHERE username = $1",
                    &[&username],
                )
                .map_err(|x| db.error(x))?;
            Ok(row.as_ref().map(user_row))
        })
    }

    /// Whether the user is disabled; `None` when there is no such user.
    pub fn user_disabled(&self, username: &str) -> Result<Option<bool>, StoreError> {
        self.with(|db, client| {
            let row = client
                .query_opt(
                    "SELECT disabled FROM users WHERE username = $1",
                    &[&username],
                )
                .map_err(|x| db.error(x))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Disables a user and revokes all its sessions. Returns false for an unknown user.
    pub fn disable_user(&self, username: &str) -> Result<bool, StoreError> {
        self.with(|db, client| {
            let e = |x| db.error(x);
            let mut tx = client.transaction().map_err(e)?;
            let n = tx
                .execute(
                    "UPDATE users SET disabled = TRUE WHERE username = $1",
                    &[&username],
                )
                .map_err(e)?;
            tx.execute(
                "UPDATE sessions SET revoked = TRUE WHERE username = $1",
                &[&username],
            )
            .map_err(e)?;
            tx.execute("DELETE FROM ws_tokens WHERE username = $1", &[&username])
                .map_err(e)?;
            tx.commit().map_err(e)?;
            Ok(n == 1)
        })
    }

    /// Every team with its user and event counts.
    pub fn list_teams(&self) -> Result<Vec<TeamRow>, StoreError> {
        self.with(|db, client| {
            let rows = client
                .query(
                    "SELECT t.slug, t.created_at,
                            (SELECT count(*) FROM users u WHERE u.team_slug = t.slug),
                            coalesce((SELECT d.events FROM dashboard_teams d
                                      WHERE d.team_slug = t.slug), 0)
                     FROM teams t ORDER BY t.slug",
                    &[],
                )
                .map_err(|x| db.error(x))?;
            Ok(rows
                .iter()
                .map(|r| TeamRow {
                    slug: r.get(0),
                    created_at: r.get(1),
                    users: r.get(2),
                    events: r.get(3),
                })
                .collect())
        })
    }

    /// Starts a session (one login) with its first refresh token.
    pub fn create_session(
        &self,
        family_id: &str,
        username: &str,
        refresh_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.with(|db, client| {
            let e = |x| db.error(x);
            let mut tx = client.transaction().map_err(e)?;
            tx.execute(
                "INSERT INTO sessions (family_id, username, created_at) VALUES ($1, $2, $3)",
                &[&family_id, &username, &unix_now()],
            )
            .map_err(e)?;
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES ($1, $2, $3)",
                &[&refresh_hash, &family_id, &expires_at],
            )
            .map_err(e)?;
            tx.commit().map_err(e)?;
            Ok(())
        })
    }

    /// Rotates a refresh token: the presented one is marked rotated and `new_hash` joins its
    /// family. The token's row is locked first, so concurrent refreshes with one token, on any
    /// replicas, cannot both succeed: the later one finds it rotated and revokes the session.
    pub fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        self.with(|db, client| {
            let e = |x| db.error(x);
            let mut tx = client.transaction().map_err(e)?;
            let found = tx
                .query_opt(
                    "SELECT r.family_id, r.expires_at, r.rotated, s.revoked, u.username,
                            u.team_slug, u.disabled
                     FROM refresh_tokens r
                     JOIN sessions s ON s.family_id = r.family_id
                     JOIN users u ON u.username = s.username
                     WHERE r.token_hash = $1
                     FOR UPDATE OF r",
                    &[&old_hash],
                )
                .map_err(e)?;
            let Some(row) = found else {
                return Ok(RefreshOutcome::Invalid);
            };
            let family: String = row.get(0);
            let expires_at: i64 = row.get(1);
            let (rotated, revoked, disabled): (bool, bool, bool) =
                (row.get(2), row.get(3), row.get(6));
            if revoked || disabled || expires_at <= unix_now() {
                return Ok(RefreshOutcome::Invalid);
            }
            if rotated {
                tx.execute(
                    "UPDATE sessions SET revoked = TRUE WHERE family_id = $1",
                    &[&family],
                )
                .map_err(e)?;
                tx.commit().map_err(e)?;
                return Ok(RefreshOutcome::ReuseDetected);
            }
            tx.execute(
                "UPDATE refresh_tokens SET rotated = TRUE WHERE token_hash = $1",
                &[&old_hash],
            )
            .map_err(e)?;
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES ($1, $2, $3)",
                &[&new_hash, &family, &new_expires_at],
            )
            .map_err(e)?;
            tx.commit().map_err(e)?;
            Ok(RefreshOutcome::Rotated {
                username: row.get(4),
                team_slug: row.get(5),
                family_id: family,
            })
        })
    }

    /// Revokes the session a refresh token belongs to and returns its id. Unknown tokens are
    /// ignored (`None`): logging out twice is not an error.
    pub fn revoke_session(&self, refresh_hash: &str) -> Result<Option<String>, StoreError> {
        self.with(|db, client| {
            let row = client
                .query_opt(
                    "UPDATE sessions SET revoked = TRUE WHERE family_id =
                       (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)
                     RETURNING family_id",
                    &[&refresh_hash],
                )
                .map_err(|x| db.error(x))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Stores a single-use WebSocket token.
    pub fn add_ws_token(
        &self,
        token_hash: &str,
        owner: &WsTokenOwner,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.with(|db, client| {
            client
                .execute(
                    "INSERT INTO ws_tokens (token_hash, username, team_slug, expires_at, family_id)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &token_hash,
                        &owner.username,
                        &owner.team_slug,
                        &expires_at,
                        &owner.session,
                    ],
                )
                .map_err(|x| db.error(x))?;
            Ok(())
        })
    }

    /// Consumes a WebSocket token: it is deleted whether or not it is still valid, so it can
    /// never be used twice, on any replica.
    pub fn consume_ws_token(&self, token_hash: &str) -> Result<Option<WsTokenOwner>, StoreError> {
        self.with(|db, client| {
            let row = client
                .query_opt(
                    "DELETE FROM ws_tokens WHERE token_hash = $1
                     RETURNING username, team_slug, expires_at, family_id",
                    &[&token_hash],
                )
                .map_err(|x| db.error(x))?;
            Ok(row
                .filter(|r| r.get::<_, i64>(2) > unix_now())
                .map(|r| WsTokenOwner {
                    username: r.get(0),
                    team_slug: r.get(1),
                    session: r.get(3),
                }))
        })
    }

    /// Of `users` and `sessions`, those that no longer grant access: users disabled or
    /// deleted, sessions revoked. One query per list.
    pub fn revoked(
        &self,
        users: &[String],
        sessions: &[String],
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        self.with(|db, client| {
            let e = |x| db.error(x);
            let active: std::collections::HashSet<String> = client
                .query(
                    "SELECT username FROM users WHERE username = ANY($1) AND NOT disabled",
                    &[&users],
                )
                .map_err(e)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let live: std::collections::HashSet<String> = client
                .query(
                    "SELECT family_id FROM sessions WHERE family_id = ANY($1) AND NOT revoked",
                    &[&sessions],
                )
                .map_err(e)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            Ok((
                users
                    .iter()
                    .filter(|u| !active.contains(*u))
                    .cloned()
                    .collect(),
                sessions
                    .iter()
                    .filter(|s| !live.contains(*s))
                    .cloned()
                    .collect(),
            ))
        })
    }

    /// Deletes up to `batch` expired ws tokens, up to `batch` expired refresh tokens, and up
    /// to `batch` sessions that have no refresh token left; returns the rows deleted.
    pub fn prune_expired(&self, now: i64, batch: usize) -> Result<usize, StoreError> {
        let batch = batch as i64;
        self.with(|db, client| {
            let e = |x| db.error(x);
            let mut tx = client.transaction().map_err(e)?;
            let mut n = tx
                .execute(
                    "DELETE FROM ws_tokens WHERE token_hash IN
                       (SELECT token_hash FROM ws_tokens WHERE expires_at <= $1 LIMIT $2)",
                    &[&now, &batch],
                )
                .map_err(e)?;
            n += tx
                .execute(
                    "DELETE FROM refresh_tokens WHERE token_hash IN
                       (SELECT token_hash FROM refresh_tokens WHERE expires_at <= $1 LIMIT $2)",
                    &[&now, &batch],
                )
                .map_err(e)?;
            n += tx
                .execute(
                    "DELETE FROM sessions WHERE family_id IN
                       (SELECT s.family_id FROM sessions s WHERE NOT EXISTS
                          (SELECT 1 FROM refresh_tokens r WHERE r.family_id = s.family_id)
                        LIMIT $1)",
                    &[&batch],
                )
                .map_err(e)?;
            tx.commit().map_err(e)?;
            Ok(n as usize)
        })
    }
}

impl Postgres {
    /// The JWT signing secret every replica shares: `candidate` is kept when there is none
    /// yet (the first replica to start wins; the others read its secret).
    pub fn shared_jwt_secret(&self, candidate: &str) -> Result<Vec<u8>, StoreError> {
        self.with(|db, client| {
            let e = |x| db.error(x);
            client
                .execute(
                    "INSERT INTO server_secrets (name, value) VALUES ('jwt', $1)
                     ON CONFLICT DO NOTHING",
                    &[&candidate],
                )
                .map_err(e)?;
            let row = client
                .query_one("SELECT value FROM server_secrets WHERE name = 'jwt'", &[])
                .map_err(e)?;
            Ok(row.get::<_, String>(0).into_bytes())
        })
    }
}

fn user_row(r: &postgres::Row) -> UserRow {
    UserRow {
        username: r.get(0),
        team_slug: r.get(1),
        disabled: r.get(2),
        created_at: r.get(3),
        password_hash: r.get(4),
    }
}
