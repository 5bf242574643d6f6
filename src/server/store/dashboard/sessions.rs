//! Browser sessions of the dashboard: a hashed cookie token, its user, its CSRF token and its
//! expiry. A disabled user's sessions stop working at once (the lookup joins `users`).

use rusqlite::{OptionalExtension, params};

use super::super::{StoreError, sqlite::Sqlite, unix_now};

/// A logged-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSession {
    pub username: String,
    pub team_slug: String,
    /// The token every form of this session must carry back.
    pub csrf: String,
}

impl Sqlite {
    /// Records a new browser session (and forgets expired ones).
    pub fn create_browser_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.prepare_cached("DELETE FROM dashboard_sessions WHERE expires_at <= ?1")?
                .execute([unix_now()])?;
            conn.prepare_cached("INSERT INTO dashboard_sessions VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![token_hash, username, csrf, expires_at])?;
            Ok(())
        })
    }

    /// The live session with this token hash, if any.
    pub fn browser_session(&self, token_hash: &str) -> Result<Option<BrowserSession>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT s.username, u.team_slug, s.csrf FROM dashboard_sessions s
                     JOIN users u ON u.username = s.username
                     WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
                )?
                .query_row(params![token_hash, unix_now()], |r| {
                    Ok(BrowserSession {
                        username: r.get(0)?,
                        team_slug: r.get(1)?,
                        csrf: r.get(2)?,
                    })
                })
                .optional()?)
        })
    }

    /// Ends a browser session (logout). Unknown tokens are fine.
    pub fn end_browser_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.prepare_cached("DELETE FROM dashboard_sessions WHERE token_hash = ?1")?
                .execute([token_hash])?;
            Ok(())
        })
    }
}
