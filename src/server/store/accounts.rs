//! Teams, users, login sessions, refresh tokens and WebSocket tokens.
//!
//! Tokens are stored as SHA-256 hashes only; the caller hashes before calling in.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{StoreError, sqlite::Sqlite, unix_now};

/// A user account as the administration commands list it.
#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub username: String,
    pub team_slug: String,
    pub disabled: bool,
    pub created_at: i64,
    #[serde(skip)]
    pub password_hash: String,
}

/// A team with its number of users and events.
#[derive(Debug, Clone, Serialize)]
pub struct TeamRow {
    pub slug: String,
    pub users: i64,
    pub events: i64,
    pub created_at: i64,
}

/// What presenting a refresh token leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is now rotated and the new one is stored in its family.
    Rotated {
        username: String,
        team_slug: String,
        family_id: String,
    },
    /// The token was already rotated: somebody replays an old token, so the whole session was
    /// revoked (RFC 6819 §5.2.2.3, refresh token rotation with reuse detection).
    ReuseDetected,
    /// Unknown, expired, revoked, or its user is disabled.
    Invalid,
}

/// Who a consumed WebSocket token belonged to.
#[derive(Debug, Clone)]
pub struct WsTokenOwner {
    pub username: String,
    pub team_slug: String,
    /// The login session the token was made under (none for tokens from older servers).
    pub session: Option<String>,
}

impl Sqlite {
    /// Creates the user (and its team when new). Fails if the username is taken.
    pub fn add_user(
        &self,
        username: &str,
        team_slug: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let now = unix_now();
            tx.execute(
                "INSERT INTO teams (slug, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![team_slug, now],
            )?;
            let n = tx.execute(
                "INSERT INTO users (username, team_slug, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![username, team_slug, password_hash, now],
            )?;
            // A taken name leaves no trace: not even the team it named (dropping `tx` rolls
            // back).
            if n == 1 {
                tx.commit()?;
            }
            Ok(n == 1)
        })
    }

    /// Every user, sorted by name.
    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT username, team_slug, disabled, created_at, password_hash
                 FROM users ORDER BY username",
            )?;
            let rows = stmt.query_map([], user_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// One user by name.
    pub fn find_user(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT username, team_slug, disabled, created_at, password_hash
                     FROM users WHERE username = ?1",
                    [username],
                    user_row,
                )
                .optional()?)
        })
    }

    /// Whether the user is disabled; `None` when there is no such user.
    pub fn user_disabled(&self, username: &str) -> Result<Option<bool>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT disabled FROM users WHERE username = ?1")?;
            Ok(stmt.query_row([username], |r| r.get(0)).optional()?)
        })
    }

    /// Disables a user and revokes all its sessions. Returns false for an unknown user.
    pub fn disable_user(&self, username: &str) -> Result<bool, StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "UPDATE users SET disabled = 1 WHERE username = ?1",
                [username],
            )?;
            tx.execute(
                "UPDATE sessions SET revoked = 1 WHERE username = ?1",
                [username],
            )?;
            tx.execute("DELETE FROM ws_tokens WHERE username = ?1", [username])?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    /// Every team with its user and event counts.
    pub fn list_teams(&self) -> Result<Vec<TeamRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT t.slug, t.created_at,
                        (SELECT count(*) FROM users u WHERE u.team_slug = t.slug),
                        (SELECT count(*) FROM events e WHERE e.team_slug = t.slug)
                 FROM teams t ORDER BY t.slug",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(TeamRow {
                    slug: r.get(0)?,
                    created_at: r.get(1)?,
                    users: r.get(2)?,
                    events: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
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
        self.write(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO sessions (family_id, username, created_at) VALUES (?1, ?2, ?3)",
                params![family_id, username, unix_now()],
            )?;
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES (?1, ?2, ?3)",
                params![refresh_hash, family_id, expires_at],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Rotates a refresh token: the presented one is marked rotated and `new_hash` joins its
    /// family, all in one transaction so two concurrent refreshes cannot both succeed.
    pub fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let found = tx
                .query_row(
                    "SELECT r.family_id, r.expires_at, r.rotated, s.revoked, u.username,
                            u.team_slug, u.disabled
                     FROM refresh_tokens r
                     JOIN sessions s ON s.family_id = r.family_id
                     JOIN users u ON u.username = s.username
                     WHERE r.token_hash = ?1",
                    [old_hash],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, bool>(2)?,
                            r.get::<_, bool>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, bool>(6)?,
                        ))
                    },
                )
                .optional()?;
            let Some((family, expires_at, rotated, revoked, username, team_slug, disabled)) = found
            else {
                return Ok(RefreshOutcome::Invalid);
            };
            if revoked || disabled || expires_at <= unix_now() {
                return Ok(RefreshOutcome::Invalid);
            }
            if rotated {
                tx.execute(
                    "UPDATE sessions SET revoked = 1 WHERE family_id = ?1",
                    [&family],
                )?;
                tx.commit()?;
                return Ok(RefreshOutcome::ReuseDetected);
            }
            tx.execute(
                "UPDATE refresh_tokens SET rotated = 1 WHERE token_hash = ?1",
                [old_hash],
            )?;
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES (?1, ?2, ?3)",
                params![new_hash, &family, new_expires_at],
            )?;
            tx.commit()?;
            Ok(RefreshOutcome::Rotated {
                username,
                team_slug,
                family_id: family,
            })
        })
    }

    /// Revokes the session a refresh token belongs to and returns its id. Unknown tokens are
    /// ignored (`None`): logging out twice is not an error.
    pub fn revoke_session(&self, refresh_hash: &str) -> Result<Option<String>, StoreError> {
        self.write(|conn| {
            Ok(conn
                .query_row(
                    "UPDATE sessions SET revoked = 1 WHERE family_id =
                       (SELECT family_id FROM refresh_tokens WHERE token_hash = ?1)
                     RETURNING family_id",
                    [refresh_hash],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// Stores a single-use WebSocket token.
    pub fn add_ws_token(
        &self,
        token_hash: &str,
        owner: &WsTokenOwner,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "INSERT INTO ws_tokens (token_hash, username, team_slug, expires_at, family_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    token_hash,
                    owner.username,
                    owner.team_slug,
                    expires_at,
                    owner.session
                ],
            )?;
            Ok(())
        })
    }

    /// Consumes a WebSocket token: it is deleted whether or not it is still valid, so it can
    /// never be used twice.
    pub fn consume_ws_token(&self, token_hash: &str) -> Result<Option<WsTokenOwner>, StoreError> {
        self.write(|conn| {
            let found = conn
                .query_row(
                    "DELETE FROM ws_tokens WHERE token_hash = ?1
                     RETURNING username, team_slug, expires_at, family_id",
                    [token_hash],
                    |r| {
                        Ok((
                            WsTokenOwner {
                                username: r.get(0)?,
                                team_slug: r.get(1)?,
                                session: r.get(3)?,
                            },
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()?;
            Ok(found
                .filter(|(_, exp)| *exp > unix_now())
                .map(|(owner, _)| owner))
        })
    }
}

impl Sqlite {
    /// Of `users` and `sessions`, those that no longer grant access: users disabled or
    /// deleted, sessions revoked. Reads one row per name.
    pub fn revoked(
        &self,
        users: &[String],
        sessions: &[String],
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        self.read(|conn| {
            let mut user = conn.prepare_cached("SELECT disabled FROM users WHERE username = ?1")?;
            let mut gone_users = Vec::new();
            for name in users {
                let disabled: Option<bool> = user.query_row([name], |r| r.get(0)).optional()?;
                if disabled != Some(false) {
                    gone_users.push(name.clone());
                }
            }
            let mut session =
                conn.prepare_cached("SELECT revoked FROM sessions WHERE family_id = ?1")?;
            let mut gone_sessions = Vec::new();
            for id in sessions {
                let revoked: Option<bool> = session.query_row([id], |r| r.get(0)).optional()?;
                if revoked != Some(false) {
                    gone_sessions.push(id.clone());
                }
            }
            Ok((gone_users, gone_sessions))
        })
    }

    /// Deletes up to `batch` expired ws tokens, up to `batch` expired refresh tokens, and up
    /// to `batch` sessions that have no refresh token left; returns the rows deleted.
    pub fn prune_expired(&self, now: i64, batch: usize) -> Result<usize, StoreError> {
        let batch = batch as i64;
        self.write(|conn| {
            let tx = conn.transaction()?;
            let mut n = tx.execute(
                "DELETE FROM ws_tokens WHERE token_hash IN
                   (SELECT token_hash FROM ws_tokens WHERE expires_at <= ?1 LIMIT ?2)",
                params![now, batch],
            )?;
            n += tx.execute(
                "DELETE FROM refresh_tokens WHERE token_hash IN
                   (SELECT token_hash FROM refresh_tokens WHERE expires_at <= ?1 LIMIT ?2)",
                params![now, batch],
            )?;
            n += tx.execute(
                "DELETE FROM sessions WHERE family_id IN
                   (SELECT s.family_id FROM sessions s WHERE NOT EXISTS
                      (SELECT 1 FROM refresh_tokens r WHERE r.family_id = s.family_id)
                    LIMIT ?1)",
                params![batch],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        username: r.get(0)?,
        team_slug: r.get(1)?,
        disabled: r.get(2)?,
        created_at: r.get(3)?,
        password_hash: r.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_removes_expired_tokens_in_bounded_runs_and_keeps_live_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Sqlite::open(&dir.path().join("s.db")).expect("open");
        assert!(store.add_user("alice", "acme", "hash").expect("user"));
        let now = unix_now();
        for i in 0..5 {
            store
                .create_session(&format!("old{i}"), "alice", &format!("r{i}"), now - 10)
                .expect("session");
        }
        store
            .create_session("live", "alice", "live-token", now + 600)
            .expect("session");
        let owner = WsTokenOwner {
            username: "alice".into(),
            team_slug: "acme".into(),
            session: Some("live".into()),
        };
        store.add_ws_token("ws-old", &owner, now - 1).expect("ws");
        store.add_ws_token("ws-live", &owner, now + 60).expect("ws");
        // Two rows per table and run: the backlog goes over several runs.
        let first = store.prune_expired(now, 2).expect("prune");
        assert_eq!(
            first,
            1 + 2 + 2,
            "1 ws token, 2 refresh tokens, 2 emptied sessions"
        );
        while store.prune_expired(now, 2).expect("prune") > 0 {}
        assert!(store.consume_ws_token("ws-live").expect("ws").is_some());
        let (users, sessions) = store
            .revoked(
                &["alice".into(), "nobody".into()],
                &["live".into(), "old0".into()],
            )
            .expect("revoked");
        assert_eq!(users, ["nobody"], "unknown users count as revoked");
        assert_eq!(sessions, ["old0"], "a pruned session counts as revoked");
        let outcome = store
            .rotate_refresh("live-token", "next", now + 600)
            .expect("rotate");
        assert!(
            matches!(outcome, RefreshOutcome::Rotated { .. }),
            "{outcome:?}"
        );
    }
}
