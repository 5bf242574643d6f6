//! Credentials: the tokens of each server this user is logged in to, keyed by server URL.
//!
//! Stored in `~/.spec-kitty/credentials` (mode 0600, in a 0700 directory), written atomically.
//! This build has no OS keyring backend: on the headless machines this tool targets, the
//! Secret Service backend fails without D-Bus, the kernel keyutils backend refuses persistent
//! writes, and the `keyring` crate without a platform feature silently "stores" into an
//! in-memory mock (DESIGN.md, measured facts). `SPEC_KITTY_CREDENTIAL_STORE=file` (the default)
//! selects the file; `=keyring` is refused with an explanation rather than pretending.
//!
//! Refreshing rotates both tokens on the server, so two processes refreshing at once would
//! burn each other's refresh token: [`CredentialStore::locked`] serialises them across
//! processes (an advisory lock on `credentials.lock`, released when the process ends), and the
//! refresher re-reads the stored credentials under the lock before deciding to refresh.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use serde::{Deserialize, Serialize};

use super::config::{ensure_home, spec_kitty_home, write_atomically};

/// The tokens and facts of one login. `Debug` never prints the tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub server_url: String,
    pub username: String,
    pub team_slug: String,
    pub access: String,
    pub refresh: String,
    /// Unix seconds.
    pub access_expires_at: i64,
    pub refresh_expires_at: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server_url", &self.server_url)
            .field("username", &self.username)
            .field("team_slug", &self.team_slug)
            .field("access", &"<redacted>")
            .field("refresh", &"<redacted>")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

impl Credentials {
    /// Seconds until the access token expires (negative once expired).
    pub fn access_remaining(&self, now: i64) -> i64 {
        self.access_expires_at - now
    }

    pub fn refresh_remaining(&self, now: i64) -> i64 {
        self.refresh_expires_at - now
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum CredentialError {
    #[error("cannot read the credentials file {}: {message}", path.display())]
    #[diagnostic(
        code(spec_kitty::auth::unreadable),
        help("log in again with `spec-kitty auth login --force` (it rewrites the file)")
    )]
    Unreadable { path: PathBuf, message: String },

    #[error("cannot write the credentials file {}: {source}", path.display())]
    #[diagnostic(
        code(spec_kitty::auth::unwritable),
        help("check that you may write to {} (SPEC_KITTY_HOME relocates it)", path.display())
    )]
    Unwritable {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "SPEC_KITTY_CREDENTIAL_STORE=keyring, but this build has no working OS keyring backend"
    )]
    #[diagnostic(
        code(spec_kitty::auth::no_keyring),
        help(
            "unset SPEC_KITTY_CREDENTIAL_STORE (or set it to `file`): credentials then go to a \
             0600 file under ~/.spec-kitty"
        )
    )]
    KeyringUnavailable,

    #[error("SPEC_KITTY_CREDENTIAL_STORE must be `file` or `keyring`, not '{0}'")]
    #[diagnostic(
        code(spec_kitty::auth::bad_store),
        help("set SPEC_KITTY_CREDENTIAL_STORE=file, or unset it")
    )]
    UnknownStore(String),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileContents {
    #[serde(default)]
    servers: BTreeMap<String, Credentials>,
}

/// Where credentials are kept.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

/// Holds the cross-process credentials lock until dropped.
pub struct CredentialLock {
    _file: File,
}

impl CredentialStore {
    /// The store selected by `SPEC_KITTY_CREDENTIAL_STORE` (default: the file).
    pub fn from_env() -> Result<CredentialStore, CredentialError> {
        match std::env::var("SPEC_KITTY_CREDENTIAL_STORE").ok().as_deref() {
            None | Some("") | Some("file") => Ok(CredentialStore {
                path: spec_kitty_home().join("credentials"),
            }),
            Some("keyring") => Err(CredentialError::KeyringUnavailable),
            Some(other) => Err(CredentialError::UnknownStore(other.to_owned())),
        }
    }

    /// A file store at `path` (tests, tools).
    pub fn at(path: &Path) -> CredentialStore {
        CredentialStore {
            path: path.to_path_buf(),
        }
    }

    /// What `auth status` says about where credentials live.
    pub fn describe(&self) -> String {
        format!("file {} (mode 0600)", self.path.display())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<FileContents, CredentialError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileContents::default());
            }
            Err(e) => {
                return Err(CredentialError::Unreadable {
                    path: self.path.clone(),
                    message: e.to_string(),
                });
            }
        };
        // The parser's message may quote the file: never echo it (it holds tokens).
        serde_json::from_str(&text).map_err(|e| CredentialError::Unreadable {
            path: self.path.clone(),
            message: format!("not valid JSON (line {}, column {})", e.line(), e.column()),
        })
    }

    fn write(&self, contents: &FileContents) -> Result<(), CredentialError> {
        let err = |source| CredentialError::Unwritable {
            path: self.path.clone(),
            source,
        };
        self.ensure_dir().map_err(err)?;
        let bytes = serde_json::to_vec_pretty(contents).unwrap_or_default();
        write_atomically(&self.path, &bytes, Some(0o600)).map_err(err)
    }

    fn ensure_dir(&self) -> std::io::Result<()> {
        match self.path.parent() {
            Some(dir) if dir == spec_kitty_home() => ensure_home().map(|_| ()),
            Some(dir) => std::fs::create_dir_all(dir),
            None => Ok(()),
        }
    }

    /// The credentials for `server_url`, if logged in there.
    pub fn load(&self, server_url: &str) -> Result<Option<Credentials>, CredentialError> {
        Ok(self.read()?.servers.remove(server_url))
    }

    /// Stores `creds` under its server URL, keeping every other server's.
    pub fn save(&self, creds: &Credentials) -> Result<(), CredentialError> {
        let mut contents = self.read().unwrap_or_default();
        contents
            .servers
            .insert(creds.server_url.clone(), creds.clone());
        self.write(&contents)
    }

    /// Forgets `server_url`'s credentials; returns whether there were any.
    pub fn delete(&self, server_url: &str) -> Result<bool, CredentialError> {
        let mut contents = self.read().unwrap_or_default();
        let had = contents.servers.remove(server_url).is_some();
        if had {
            self.write(&contents)?;
        }
        Ok(had)
    }

    /// Takes the cross-process lock that serialises refreshes (blocks until it is free). The
    /// operating system releases it when the process ends, so a killed refresher never leaves
    /// it held.
    pub fn locked(&self) -> Result<CredentialLock, CredentialError> {
        let lock_path = self.path.with_extension("lock");
        let err = |source| CredentialError::Unwritable {
            path: lock_path.clone(),
            source,
        };
        self.ensure_dir().map_err(err)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(err)?;
        file.lock().map_err(err)?;
        Ok(CredentialLock { _file: file })
    }
}

/// A lifetime for people: `valid (14m remaining)`, `valid (6d remaining)`, or `expired`.
pub fn describe_remaining(seconds: i64) -> String {
    if seconds <= 0 {
        return "expired".into();
    }
    let text = if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{}m", seconds / 60)
    } else if seconds < 86_400 {
        format!("{}h", seconds / 3600)
    } else {
        format!("{}d", seconds / 86_400)
    };
    format!("valid ({text} remaining)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(url: &str) -> Credentials {
        Credentials {
            server_url: url.into(),
            username: "alice".into(),
            team_slug: "acme".into(),
            access: "secret-access".into(),
            refresh: "secret-refresh".into(),
            access_expires_at: 100,
            refresh_expires_at: 200,
        }
    }

    #[test]
    fn credentials_are_keyed_by_server_and_the_file_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(&tmp.path().join("credentials"));
        store.save(&creds("https://a.example.com")).unwrap();
        store.save(&creds("https://b.example.com")).unwrap();
        assert!(store.delete("https://a.example.com").unwrap());
        assert!(store.load("https://a.example.com").unwrap().is_none());
        assert!(store.load("https://b.example.com").unwrap().is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let text = format!("{:?}", creds("https://a.example.com"));
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn lifetimes_read_like_the_seeds() {
        assert_eq!(describe_remaining(0), "expired");
        assert_eq!(describe_remaining(14 * 60 + 5), "valid (14m remaining)");
        assert_eq!(describe_remaining(23 * 3600 + 100), "valid (23h remaining)");
        assert_eq!(describe_remaining(6 * 86_400 + 100), "valid (6d remaining)");
    }
}
