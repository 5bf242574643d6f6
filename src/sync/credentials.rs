//! Credentials: the tokens of each server this user is logged in to, keyed by server URL.
//!
//! Where the tokens live: the OS keyring when one works here (the Secret Service on Linux,
//! the Keychain on macOS; see [`super::keyring`] for how that is decided), else the file
//! `~/.spec-kitty/credentials` (mode 0600, in a 0700 directory, written atomically).
//! `SPEC_KITTY_CREDENTIAL_STORE=file|keyring` forces one; unset, a login probes the keyring.
//!
//! The file is the index either way: one record per server with who is logged in, the team and
//! the lifetimes, and `"store": "keyring"` when the tokens are in the keyring (then the file
//! holds no token). So the emit path learns the team from one small file read
//! ([`CredentialStore::identity`]) and never waits on D-Bus, and a record always says where its
//! tokens are, whatever `SPEC_KITTY_CREDENTIAL_STORE` says later.
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
use super::keyring;

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
        "SPEC_KITTY_CREDENTIAL_STORE=keyring, but the OS keyring ({backend}) does not work here: {reason}"
    )]
    #[diagnostic(
        code(spec_kitty::auth::no_keyring),
        help(
            "start or unlock your keyring, or unset SPEC_KITTY_CREDENTIAL_STORE (or set it to \
             `file`): credentials then go to a 0600 file under ~/.spec-kitty"
        )
    )]
    KeyringUnavailable {
        backend: &'static str,
        reason: String,
    },

    #[error("the OS keyring ({backend}) no longer holds the tokens of {server_url}")]
    #[diagnostic(
        code(spec_kitty::auth::keyring_lost),
        help("log in again: `spec-kitty auth login --force` (nothing recorded is lost)")
    )]
    KeyringLost {
        backend: &'static str,
        server_url: String,
    },

    #[error("cannot read the tokens of {server_url} from the OS keyring ({backend}): {reason}")]
    #[diagnostic(
        code(spec_kitty::auth::keyring_failed),
        help(
            "unlock your keyring and retry, or keep the tokens in a file instead: \
             `SPEC_KITTY_CREDENTIAL_STORE=file spec-kitty auth login --force`"
        )
    )]
    KeyringFailed {
        backend: &'static str,
        server_url: String,
        reason: String,
    },

    #[error("SPEC_KITTY_CREDENTIAL_STORE must be `file` or `keyring`, not '{0}'")]
    #[diagnostic(
        code(spec_kitty::auth::bad_store),
        help("set SPEC_KITTY_CREDENTIAL_STORE=file, or unset it")
    )]
    UnknownStore(String),
}

impl CredentialError {
    /// `SPEC_KITTY_CREDENTIAL_STORE=keyring` asked for a keyring that does not work.
    fn keyring_unavailable(e: keyring::Unavailable) -> CredentialError {
        CredentialError::KeyringUnavailable {
            backend: keyring::backend_name(),
            reason: e.0,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileContents {
    #[serde(default)]
    servers: BTreeMap<String, Record>,
}

/// Where one login's tokens are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Held {
    /// In the credentials file itself.
    #[default]
    File,
    /// In the OS keyring; the file holds no token.
    Keyring,
}

/// One server's record in the credentials file (the shape older versions wrote, plus `store`).
#[derive(Clone, Serialize, Deserialize)]
struct Record {
    server_url: String,
    username: String,
    team_slug: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh: Option<String>,
    access_expires_at: i64,
    refresh_expires_at: i64,
    #[serde(default, skip_serializing_if = "is_file")]
    store: Held,
}

fn is_file(h: &Held) -> bool {
    *h == Held::File
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("server_url", &self.server_url)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Who is logged in to one server, without the tokens: what the emit path and `auth status`
/// read from the file alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub username: String,
    pub team_slug: String,
    pub access_expires_at: i64,
    pub refresh_expires_at: i64,
    pub store: Held,
}

/// Which store `SPEC_KITTY_CREDENTIAL_STORE` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The keyring when the probe says it works, else the file.
    Auto,
    File,
    Keyring,
}

/// Where credentials are kept.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
    mode: Mode,
}

/// Holds the cross-process credentials lock until dropped.
pub struct CredentialLock {
    _file: File,
}

impl CredentialStore {
    /// The store selected by `SPEC_KITTY_CREDENTIAL_STORE` (unset: the keyring if it works).
    pub fn from_env() -> Result<CredentialStore, CredentialError> {
        let mode = match std::env::var("SPEC_KITTY_CREDENTIAL_STORE").ok().as_deref() {
            None | Some("") | Some("auto") => Mode::Auto,
            Some("file") => Mode::File,
            Some("keyring") => Mode::Keyring,
            Some(other) => return Err(CredentialError::UnknownStore(other.to_owned())),
        };
        Ok(CredentialStore {
            path: spec_kitty_home().join("credentials"),
            mode,
        })
    }

    /// A file store at `path` (tests, tools).
    pub fn at(path: &Path) -> CredentialStore {
        CredentialStore {
            path: path.to_path_buf(),
            mode: Mode::File,
        }
    }

    /// Where a login would put its tokens now (probes the keyring unless told which).
    fn target(&self) -> Result<Held, CredentialError> {
        match self.mode {
            Mode::File => Ok(Held::File),
            Mode::Keyring => keyring::probe()
                .map(|()| Held::Keyring)
                .map_err(CredentialError::keyring_unavailable),
            Mode::Auto => Ok(match keyring::probe() {
                Ok(()) => Held::Keyring,
                Err(_) => Held::File,
            }),
        }
    }

    /// What `auth status` says about a store: `OS keyring (Secret Service)` or
    /// `file ~/.spec-kitty/credentials (mode 0600)`.
    pub fn describe_held(&self, held: Held) -> String {
        match held {
            Held::Keyring => format!("OS keyring ({})", keyring::backend_name()),
            Held::File => format!("file {} (mode 0600)", self.path.display()),
        }
    }

    /// Where the tokens of `server_url` are, or where a login would put them.
    pub fn describe(&self, server_url: &str) -> String {
        let held = match self.identity(server_url) {
            Ok(Some(id)) => Ok(id.store),
            _ => self.target(),
        };
        match held {
            Ok(h) => self.describe_held(h),
            Err(e) => format!("none usable ({e})"),
        }
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

    /// Who is logged in to `server_url`, from the file alone (never the keyring).
    pub fn identity(&self, server_url: &str) -> Result<Option<Identity>, CredentialError> {
        Ok(self.read()?.servers.remove(server_url).map(|r| Identity {
            username: r.username,
            team_slug: r.team_slug,
            access_expires_at: r.access_expires_at,
            refresh_expires_at: r.refresh_expires_at,
            store: r.store,
        }))
    }

    /// The credentials for `server_url`, if logged in there.
    pub fn load(&self, server_url: &str) -> Result<Option<Credentials>, CredentialError> {
        Ok(self.load_held(server_url)?.map(|(c, _)| c))
    }

    /// [`load`](Self::load), and where the tokens were found (one read of the file).
    pub fn load_held(
        &self,
        server_url: &str,
    ) -> Result<Option<(Credentials, Held)>, CredentialError> {
        let Some(r) = self.read()?.servers.remove(server_url) else {
            return Ok(None);
        };
        let (access, refresh) = match r.store {
            Held::File => match (r.access, r.refresh) {
                (Some(a), Some(f)) => (a, f),
                _ => {
                    return Err(CredentialError::Unreadable {
                        path: self.path.clone(),
                        message: format!("the record of {server_url} has no tokens"),
                    });
                }
            },
            Held::Keyring => match keyring::load(server_url) {
                Ok(Some(t)) => (t.access, t.refresh),
                Ok(None) => {
                    return Err(CredentialError::KeyringLost {
                        backend: keyring::backend_name(),
                        server_url: server_url.to_owned(),
                    });
                }
                Err(e) => {
                    return Err(CredentialError::KeyringFailed {
                        backend: keyring::backend_name(),
                        server_url: server_url.to_owned(),
                        reason: e.0,
                    });
                }
            },
        };
        let creds = Credentials {
            server_url: r.server_url,
            username: r.username,
            team_slug: r.team_slug,
            access,
            refresh,
            access_expires_at: r.access_expires_at,
            refresh_expires_at: r.refresh_expires_at,
        };
        Ok(Some((creds, r.store)))
    }

    /// Stores `creds` under its server URL, keeping every other server's; returns where the
    /// tokens went. In the keyring, the tokens are written there before the file's record
    /// says so, so a crash between the two leaves the previous login readable.
    pub fn save(&self, creds: &Credentials) -> Result<Held, CredentialError> {
        let mut contents = self.read().unwrap_or_default();
        let before = contents.servers.get(&creds.server_url).map(|r| r.store);
        let mut held = self.target()?;
        if held == Held::Keyring {
            let tokens = keyring::Tokens {
                access: creds.access.clone(),
                refresh: creds.refresh.clone(),
            };
            if let Err(e) = keyring::save(&creds.server_url, &tokens) {
                if self.mode == Mode::Keyring {
                    return Err(CredentialError::keyring_unavailable(e));
                }
                held = Held::File;
            }
        }
        let in_file = held == Held::File;
        let record = Record {
            server_url: creds.server_url.clone(),
            username: creds.username.clone(),
            team_slug: creds.team_slug.clone(),
            access: in_file.then(|| creds.access.clone()),
            refresh: in_file.then(|| creds.refresh.clone()),
            access_expires_at: creds.access_expires_at,
            refresh_expires_at: creds.refresh_expires_at,
            store: held,
        };
        contents.servers.insert(creds.server_url.clone(), record);
        self.write(&contents)?;
        if in_file && before == Some(Held::Keyring) {
            // Moved to the file: the keyring's copy would be a stale second truth.
            let _ = keyring::delete(&creds.server_url);
        }
        Ok(held)
    }

    /// Forgets `server_url`'s credentials (the file's record and the keyring's entry); returns
    /// whether there were any.
    pub fn delete(&self, server_url: &str) -> Result<bool, CredentialError> {
        let mut contents = self.read().unwrap_or_default();
        let Some(record) = contents.servers.remove(server_url) else {
            return Ok(false);
        };
        self.write(&contents)?;
        if record.store == Held::Keyring {
            // Best effort: the record is gone, so nothing reads the entry any more.
            let _ = keyring::delete(server_url);
        }
        Ok(true)
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
    fn records_written_before_the_keyring_still_load_and_stay_in_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("credentials");
        let url = "https://a.example.com";
        let old = serde_json::json!({"servers": {url: {
            "server_url": url, "username": "alice", "team_slug": "acme",
            "access": "secret-access", "refresh": "secret-refresh",
            "access_expires_at": 100, "refresh_expires_at": 200,
        }}});
        std::fs::write(&path, old.to_string()).unwrap();
        let store = CredentialStore::at(&path);
        assert_eq!(store.load(url).unwrap(), Some(creds(url)));
        let id = store.identity(url).unwrap().unwrap();
        assert_eq!((id.team_slug.as_str(), id.store), ("acme", Held::File));
        assert_eq!(store.save(&creds(url)).unwrap(), Held::File);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\"store\""), "{text}");
    }

    #[test]
    fn a_file_record_without_tokens_is_an_error_that_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("credentials");
        let url = "https://a.example.com";
        let broken = serde_json::json!({"servers": {url: {
            "server_url": url, "username": "alice", "team_slug": "acme",
            "access_expires_at": 100, "refresh_expires_at": 200,
        }}});
        std::fs::write(&path, broken.to_string()).unwrap();
        let err = CredentialStore::at(&path).load(url).unwrap_err();
        assert!(matches!(err, CredentialError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("has no tokens"), "{err}");
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
