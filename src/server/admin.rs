//! What the administration subcommands (`user add|list|disable`, `team list`) do.
//!
//! They work on the database file directly, so they run while the server runs (SQLite
//! serialises the writes) or while it is stopped.

use std::path::{Path, PathBuf};

use super::auth::{AuthError, hash_password};
use super::store::{Store, StoreError, TeamRow, UserRow};

/// Environment variable that overrides the default database path.
pub const DB_ENV: &str = "SPEC_KITTY_SERVER_DB";

/// What can go wrong administering the server.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(
        "invalid team slug '{0}': use lowercase letters, digits and dashes, starting with a \
         letter or digit (at most 64 characters)"
    )]
    InvalidTeam(String),
    #[error("invalid username '{0}': use 1 to 150 characters without spaces or control characters")]
    InvalidUsername(String),
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters long")]
    WeakPassword,
    #[error("user '{0}' already exists")]
    UserExists(String),
    #[error("no user named '{0}'")]
    NoSuchUser(String),
    #[error("no data directory is known on this platform; pass --db PATH")]
    NoDataDir,
}

/// The shortest password `user add` accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The default database: `<data dir>/spec-kitty/server.db`.
pub fn default_db_path() -> Result<PathBuf, AdminError> {
    dirs::data_dir()
        .map(|d| d.join("spec-kitty").join("server.db"))
        .ok_or(AdminError::NoDataDir)
}

/// Team slugs appear in URLs (`/a/<team>/dashboards/`) and in events, so they are kept plain.
pub fn is_team_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_username(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= 150
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Creates a user in `team_slug` (created when new).
pub fn add_user(
    db: &Path,
    username: &str,
    team_slug: &str,
    password: &str,
) -> Result<(), AdminError> {
    if !is_username(username) {
        return Err(AdminError::InvalidUsername(username.to_owned()));
    }
    // "local" means "not logged in" in events (PROTOCOL.md): it cannot be a real team.
    if !is_team_slug(team_slug) || team_slug == crate::event::LOCAL_TEAM {
        return Err(AdminError::InvalidTeam(team_slug.to_owned()));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AdminError::WeakPassword);
    }
    let store = Store::open(db)?;
    let hash = hash_password(password)?;
    if !store.add_user(username, team_slug, &hash)? {
        return Err(AdminError::UserExists(username.to_owned()));
    }
    Ok(())
}

/// Every user.
pub fn list_users(db: &Path) -> Result<Vec<UserRow>, AdminError> {
    Ok(Store::open(db)?.list_users()?)
}

/// Disables a user and revokes its sessions.
pub fn disable_user(db: &Path, username: &str) -> Result<(), AdminError> {
    if Store::open(db)?.disable_user(username)? {
        Ok(())
    } else {
        Err(AdminError::NoSuchUser(username.to_owned()))
    }
}

/// Every team.
pub fn list_teams(db: &Path) -> Result<Vec<TeamRow>, AdminError> {
    Ok(Store::open(db)?.list_teams()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_slugs_are_lowercase_letters_digits_and_dashes() {
        for ok in ["acme", "team-1", "9lives"] {
            assert!(is_team_slug(ok), "{ok}");
        }
        for bad in ["", "Acme", "a b", "-x", "a_b", "é"] {
            assert!(!is_team_slug(bad), "{bad}");
        }
    }
}
