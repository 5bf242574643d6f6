//! The logged-in session of one server: login, logout, and an access token that is always
//! fresh, refreshed at most once across concurrent processes.

use std::time::Duration;

use super::config::{ClientConfig, validate_server_url};
use super::credentials::{CredentialStore, Credentials};
use super::error::SyncError;
use super::http::{Http, Reply, Tokens};

/// Refresh when the access token has less than this many seconds left.
const REFRESH_MARGIN_SECS: i64 = 30;

/// The per-request timeout of auth calls.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(30);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The configured server URL, validated.
pub fn server_url(config: &ClientConfig) -> Result<String, SyncError> {
    let url = config.server_url.as_deref().ok_or(SyncError::NoServer)?;
    Ok(validate_server_url(url)?)
}

fn credentials_from(url: &str, username: &str, tokens: Tokens) -> Credentials {
    let t = now();
    Credentials {
        server_url: url.to_owned(),
        username: username.to_owned(),
        team_slug: tokens.team_slug.unwrap_or_else(|| "local".into()),
        access: tokens.access,
        refresh: tokens.refresh,
        access_expires_at: t + tokens.access_lifetime,
        refresh_expires_at: t + tokens.refresh_lifetime,
    }
}

fn unreachable(http: &Http, reason: String) -> SyncError {
    SyncError::Unreachable {
        server: http.base.clone(),
        reason,
    }
}

/// Logs in with a password and stores the credentials under the server URL.
pub fn login(
    store: &CredentialStore,
    url: &str,
    username: &str,
    password: &str,
) -> Result<Credentials, SyncError> {
    let http = Http::new(url, AUTH_TIMEOUT)?;
    match http.login(username, password) {
        Reply::Ok(tokens) => {
            let creds = credentials_from(url, username, tokens);
            store.save(&creds)?;
            Ok(creds)
        }
        Reply::Unauthorized => Err(SyncError::InvalidLogin {
            server: url.to_owned(),
        }),
        Reply::Transient { reason, .. } => Err(unreachable(&http, reason)),
        Reply::TooLarge => Err(SyncError::Server {
            server: url.to_owned(),
            status: 413,
            message: "login request too large".into(),
        }),
        Reply::Failed { status, message } => Err(SyncError::Server {
            server: url.to_owned(),
            status,
            message,
        }),
    }
}

/// What `auth logout` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LoggedOut {
    /// Whether there were local credentials (now deleted).
    pub had_credentials: bool,
    /// Whether the server confirmed revoking the refresh token.
    pub revoked_on_server: bool,
}

/// Revokes on the server (best effort, short timeout) and always deletes local credentials.
pub fn logout(store: &CredentialStore, url: &str) -> Result<LoggedOut, SyncError> {
    let creds = store.load(url).ok().flatten();
    let revoked_on_server = match &creds {
        Some(c) => Http::new(url, Duration::from_secs(5))
            .map(|h| matches!(h.logout(&c.refresh), Reply::Ok(())))
            .unwrap_or(false),
        None => false,
    };
    let had_credentials = store.delete(url)?;
    Ok(LoggedOut {
        had_credentials: had_credentials || creds.is_some(),
        revoked_on_server,
    })
}

/// An authenticated session for one server, used by a whole `sync now`.
pub struct Session {
    pub http: Http,
    store: CredentialStore,
    creds: Credentials,
    /// Set once the server refused the refresh token (the session is over; the credentials
    /// were deleted): a long-lived holder (the daemon) waits for `auth login` on seeing it.
    expired: bool,
}

impl Session {
    /// Opens the session of `url` from the store; `NotLoggedIn` when there is none.
    pub fn open(
        store: CredentialStore,
        url: &str,
        timeout: Duration,
    ) -> Result<Session, SyncError> {
        let creds = store.load(url)?.ok_or_else(|| SyncError::NotLoggedIn {
            server: url.to_owned(),
        })?;
        Ok(Session {
            http: Http::new(url, timeout)?,
            store,
            creds,
            expired: false,
        })
    }

    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// Whether the server refused this session's refresh token (see [`SyncError::SessionExpired`]).
    pub fn expired(&self) -> bool {
        self.expired
    }

    /// A current access token, refreshed first when it is about to expire.
    pub fn access(&mut self) -> Result<String, SyncError> {
        if self.creds.access_remaining(now()) < REFRESH_MARGIN_SECS {
            self.refresh(false)?;
        }
        Ok(self.creds.access.clone())
    }

    /// The server answered 401 to `rejected_access`: refresh (unless another process already
    /// did) and return the new token.
    pub fn after_unauthorized(&mut self) -> Result<String, SyncError> {
        self.refresh(true)?;
        Ok(self.creds.access.clone())
    }

    /// Refreshes under the cross-process lock. After taking the lock the stored credentials
    /// are read again: if another process already rotated the tokens, those are used and the
    /// (now spent) refresh token is never sent again.
    fn refresh(&mut self, forced: bool) -> Result<(), SyncError> {
        let url = self.http.base.clone();
        let _lock = self.store.locked()?;
        let stored = self
            .store
            .load(&url)?
            .ok_or_else(|| SyncError::NotLoggedIn {
                server: url.clone(),
            })?;
        let rotated_elsewhere = stored.refresh != self.creds.refresh;
        if rotated_elsewhere || (!forced && stored.access_remaining(now()) >= REFRESH_MARGIN_SECS) {
            self.creds = stored;
            return Ok(());
        }
        match self.http.refresh(&stored.refresh) {
            Reply::Ok(tokens) => {
                let username = stored.username.clone();
                let mut creds = credentials_from(&url, &username, tokens);
                if creds.team_slug == "local" {
                    creds.team_slug = stored.team_slug.clone();
                }
                self.store.save(&creds)?;
                self.creds = creds;
                Ok(())
            }
            Reply::Unauthorized => {
                // The refresh token is expired, revoked or reused: this session is over.
                let _ = self.store.delete(&url);
                self.expired = true;
                Err(SyncError::SessionExpired { server: url })
            }
            Reply::Transient { reason, .. } => Err(unreachable(&self.http, reason)),
            Reply::TooLarge => Err(SyncError::Server {
                server: url,
                status: 413,
                message: "refresh request too large".into(),
            }),
            Reply::Failed { status, message } => Err(SyncError::Server {
                server: url,
                status,
                message,
            }),
        }
    }
}

/// The team of the session logged in to the configured server, without any network: what new
/// events carry as `team_slug` (`None` when not logged in).
pub fn current_team(config: &ClientConfig) -> Option<String> {
    let url = config.server_url.as_deref()?;
    let store = CredentialStore::from_env().ok()?;
    // The file's record alone: the emit path never waits on the OS keyring.
    let id = store.identity(url).ok()??;
    (id.refresh_expires_at > now()).then_some(id.team_slug)
}
