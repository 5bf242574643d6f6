//! What the administration subcommands (`user add|list|disable`, `team list`) do.
//!
//! They work on the database file directly, so they run while the server runs (SQLite
//! serialises the writes) or while it is stopped.

use std::path::PathBuf;

use unicode_normalization::UnicodeNormalization;

use super::auth::{AuthError, hash_password};
use super::store::{Database, Store, StoreError, TeamRow, UserRow};

/// Environment variable that overrides the default database path.
pub const DB_ENV: &str = "SPEC_KITTY_SERVER_DB";

/// What can go wrong administering the server.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AdminError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Auth(#[from] AuthError),
    #[error(
        "invalid team slug '{0}': use lowercase letters, digits and dashes, starting with a \
         letter or digit (at most 64 characters)"
    )]
    #[diagnostic(
        code(spec_kitty_server::admin::invalid_team),
        help("e.g. `--team acme-dev`")
    )]
    InvalidTeam(String),
    #[error("invalid username '{name}': {why}")]
    #[diagnostic(
        code(spec_kitty_server::admin::invalid_username),
        help("pick a name in one script without spaces, e.g. `alice` or `bob.smith`")
    )]
    InvalidUsername { name: String, why: &'static str },
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters long")]
    #[diagnostic(
        code(spec_kitty_server::admin::weak_password),
        help("choose a longer password")
    )]
    WeakPassword,
    #[error("user '{0}' already exists")]
    #[diagnostic(
        code(spec_kitty_server::admin::user_exists),
        help("pick another username, or see `spec-kitty-server user list`")
    )]
    UserExists(String),
    #[error("no user named '{0}'")]
    #[diagnostic(
        code(spec_kitty_server::admin::no_such_user),
        help("see `spec-kitty-server user list`")
    )]
    NoSuchUser(String),
    #[error("no data directory is known on this platform; pass --db PATH")]
    #[diagnostic(
        code(spec_kitty_server::admin::no_data_dir),
        help("pass --db PATH or set SPEC_KITTY_SERVER_DB")
    )]
    NoDataDir,
    #[error("there is no server database at {0}")]
    #[diagnostic(
        code(spec_kitty_server::admin::no_database),
        help(
            "check --db (or SPEC_KITTY_SERVER_DB) for a typo; a new database is made by \
             `spec-kitty-server user add` or `spec-kitty-server serve`"
        )
    )]
    NoDatabase(PathBuf),
}

/// Opens the database of a command that only reads or changes what is there: a mistyped
/// `--db` must not quietly create an empty database and answer from it.
fn open_existing(db: &Database) -> Result<Store, AdminError> {
    if let Database::Sqlite(path) = db
        && !path.exists()
    {
        return Err(AdminError::NoDatabase(path.clone()));
    }
    Ok(Store::open_database(db)?)
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

/// The form a username is stored and looked up in: NFC, lowercase, NFC again (lowercasing
/// can produce decomposed text). `Alice`, `alice` and an NFD `alice` are one account.
pub fn normalize_username(s: &str) -> String {
    let composed: String = s.nfc().collect();
    composed.to_lowercase().nfc().collect()
}

/// Why `name` (already normalised) cannot be a username, if it cannot.
fn username_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.chars().count() > 150 {
        return Some("use 1 to 150 characters");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("spaces and control characters are not allowed");
    }
    if name.chars().any(is_invisible_or_bidi) {
        return Some("invisible and bidirectional control characters are not allowed");
    }
    let mut scripts = name.chars().filter_map(confusable_script);
    if let Some(first) = scripts.next()
        && scripts.any(|s| s != first)
    {
        return Some("it mixes Latin, Greek, Cyrillic or other look-alike scripts; use one script");
    }
    None
}

/// Format characters (zero-width spaces and joiners, soft hyphen, word joiner, BOM, tags) and
/// the bidirectional controls (marks, embeddings, overrides, isolates).
fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// The script of a letter, among those whose letters are commonly confused with each other
/// (Latin, Greek, Cyrillic, Armenian, Cherokee); `None` for digits, punctuation and other
/// scripts, which do not count as mixing.
fn confusable_script(c: char) -> Option<u8> {
    match c {
        'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' => Some(0),
        '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' => Some(1),
        '\u{0400}'..='\u{052F}' | '\u{1C80}'..='\u{1C8F}' | '\u{2DE0}'..='\u{2DFF}' => Some(2),
        '\u{A640}'..='\u{A69F}' => Some(2),
        '\u{0530}'..='\u{058F}' => Some(3),
        '\u{13A0}'..='\u{13FF}' | '\u{AB70}'..='\u{ABBF}' => Some(4),
        _ => None,
    }
}

/// Creates a user in `team_slug` (created when new) and returns the username as stored
/// ([`normalize_username`]).
pub fn add_user(
    db: &Database,
    username: &str,
    team_slug: &str,
    password: &str,
) -> Result<String, AdminError> {
    let username = normalize_username(username);
    if let Some(why) = username_problem(&username) {
        return Err(AdminError::InvalidUsername {
            name: username.escape_default().to_string(),
            why,
        });
    }
    // "local" means "not logged in" in events (PROTOCOL.md): it cannot be a real team.
    if !is_team_slug(team_slug) || team_slug == crate::event::LOCAL_TEAM {
        return Err(AdminError::InvalidTeam(team_slug.to_owned()));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AdminError::WeakPassword);
    }
    let store = Store::open_database(db)?;
    let hash = hash_password(password)?;
    if !store.add_user(&username, team_slug, &hash)? {
        return Err(AdminError::UserExists(username));
    }
    Ok(username)
}

/// Every user.
pub fn list_users(db: &Database) -> Result<Vec<UserRow>, AdminError> {
    Ok(open_existing(db)?.list_users()?)
}

/// Disables a user and revokes its sessions (a running server closes its WebSockets within a
/// second). Accepts the name in any case or normalisation form.
pub fn disable_user(db: &Database, username: &str) -> Result<(), AdminError> {
    let store = open_existing(db)?;
    let normalized = normalize_username(username);
    // Accounts made before names were normalised are found by their exact name.
    if store.disable_user(&normalized)? || store.disable_user(username)? {
        Ok(())
    } else {
        Err(AdminError::NoSuchUser(username.to_owned()))
    }
}

/// Every team.
pub fn list_teams(db: &Database) -> Result<Vec<TeamRow>, AdminError> {
    Ok(open_existing(db)?.list_teams()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_look_alikes_refused() {
        assert_eq!(normalize_username("Alice"), "alice");
        assert_eq!(
            normalize_username("cafe\u{301}"),
            normalize_username("caf\u{e9}")
        );
        for ok in [
            "alice",
            "bob.smith",
            "dmitry-1",
            "дмитрий",
            "χρήστος",
            "李雷",
        ] {
            assert_eq!(username_problem(&normalize_username(ok)), None, "{ok}");
        }
        for bad in [
            "alice\u{200B}",
            "\u{202E}ecila",
            "\u{430}lice",
            "a b",
            "",
            "x\u{FEFF}",
        ] {
            assert!(
                username_problem(&normalize_username(bad)).is_some(),
                "{bad:?}"
            );
        }
    }

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
