//! Accounts and tokens: password login, JWT access tokens, rotating refresh tokens, single-use
//! WebSocket tokens. Password checks and their rate limiting live in [`super::login`].
//!
//! * Access tokens are HS256 JWTs carrying the username and team. Besides the signature and
//!   expiry, each use checks that the account is still enabled (one indexed read), so that
//!   disabling a user takes effect at once.
//! * Refresh tokens are opaque random strings, stored hashed. Each login is a session (a token
//!   family); every refresh rotates the token, and presenting an already-rotated token revokes
//!   the whole family, because only a thief or a replaying attacker would hold one.
//! * Tokens and passwords never reach a log line: nothing here logs a token, and the request
//!   log records paths without query strings.

use std::path::Path;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ApiError, JsonBody};
use super::store::{RefreshOutcome, WsTokenOwner, unix_now};
use super::{AppState, ClientAddr};

/// Environment variable that supplies the JWT signing secret instead of the secret file.
pub const JWT_SECRET_ENV: &str = "SPEC_KITTY_SERVER_JWT_SECRET";

use super::login::INVALID_LOGIN;

/// What can go wrong with the signing secret or a password hash.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AuthError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] super::store::StoreError),
    #[error("cannot read or create the JWT secret file {path}: {source}")]
    #[diagnostic(
        code(spec_kitty_server::auth::secret_file),
        help(
            "check the permissions of the <db>.jwt-secret file, or set SPEC_KITTY_SERVER_JWT_SECRET"
        )
    )]
    SecretFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the JWT secret must be at least 32 bytes long")]
    #[diagnostic(
        code(spec_kitty_server::auth::secret_too_short),
        help(
            "set SPEC_KITTY_SERVER_JWT_SECRET to 32 or more random bytes, e.g. `openssl rand -hex 32`"
        )
    )]
    SecretTooShort,
    #[error("cannot hash the password: {0}")]
    #[diagnostic(
        code(spec_kitty_server::auth::hash),
        help("try again; if it persists, report it with the message above")
    )]
    Hash(String),
}

/// The keys that sign and check access tokens.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    /// Loads the secret from [`JWT_SECRET_ENV`], or from `<db>.jwt-secret`, creating that file
    /// (mode 0600) with 32 random bytes on first start.
    pub fn load_or_create(db_path: &Path) -> Result<Keys, AuthError> {
        Keys::load_or_shared(|_| secret_file(&secret_path(db_path)))
    }

    /// Loads the secret from [`JWT_SECRET_ENV`], or else from `shared`, which is given a new
    /// random secret to keep when it has none yet and answers the one it keeps (the first
    /// replica's, on PostgreSQL).
    pub fn load_or_shared(
        shared: impl FnOnce(&str) -> Result<Vec<u8>, AuthError>,
    ) -> Result<Keys, AuthError> {
        let secret = match std::env::var(JWT_SECRET_ENV) {
            Ok(s) if !s.is_empty() => s.into_bytes(),
            _ => shared(&random_token())?,
        };
        if secret.len() < 32 {
            return Err(AuthError::SecretTooShort);
        }
        Ok(Keys {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
        })
    }
}

/// Where the signing secret of the database at `db_path` lives.
pub fn secret_path(db_path: &Path) -> std::path::PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".jwt-secret");
    name.into()
}

fn secret_file(path: &Path) -> Result<Vec<u8>, AuthError> {
    let err = |source| AuthError::SecretFile {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(s) => return Ok(s.trim().as_bytes().to_vec()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        Err(_) => {}
    }
    let secret = random_token();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut f) => std::io::Write::write_all(&mut f, secret.as_bytes()).map_err(err)?,
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return secret_file(path),
        Err(e) => return Err(err(e)),
    }
    Ok(secret.into_bytes())
}

/// 32 random bytes as 64 hex characters.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The form in which a token is stored: its SHA-256, hex.
fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// A hash of a password nobody has, verified for unknown users so that a login for a missing
/// account takes as long as one with a wrong password.
pub(super) fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that never matches").unwrap_or_default())
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    team: String,
    iat: i64,
    /// Not before: equal to `iat`; checked, so a token minted "in the future" is refused.
    #[serde(default)]
    nbf: i64,
    exp: i64,
    typ: String,
    /// The login session (refresh-token family), so that revoking it reaches the WebSockets
    /// opened with the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

/// The caller of an authenticated endpoint, from a valid access token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub username: String,
    pub team_slug: String,
    /// The login session the token belongs to, when known.
    pub session: Option<String>,
}

impl FromRequestParts<Arc<AppState>> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, &state.keys.decoding, &validation)
            .map_err(|_| ApiError::Unauthorized("invalid or expired access token".into()))?;
        if data.claims.typ != "access" {
            return Err(ApiError::Unauthorized("not an access token".into()));
        }
        // One indexed read per request makes `user disable` take effect at once instead of
        // when the access token expires.
        let (st, name) = (state.clone(), data.claims.sub.clone());
        match tokio::task::spawn_blocking(move || st.store.user_disabled(&name)).await?? {
            Some(false) => {}
            Some(true) => return Err(ApiError::Unauthorized("the account is disabled".into())),
            None => return Err(ApiError::Unauthorized("invalid access token".into())),
        }
        Ok(AuthUser {
            username: data.claims.sub,
            team_slug: data.claims.team,
            session: data.claims.sid,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Deserialize)]
pub struct RefreshRequest {
    refresh: String,
}

#[derive(Serialize)]
pub struct TokenPair {
    access: String,
    refresh: String,
    access_lifetime: u64,
    refresh_lifetime: u64,
    team_slug: String,
}

/// `POST /api/v1/token/`: rate limited and hash-bounded by [`super::login::authenticate`].
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(ClientAddr(addr)): ConnectInfo<ClientAddr>,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let found = super::login::authenticate(&state, &req.username, req.password, addr.ip()).await?;
    let Some(user) = found else {
        tracing::info!("login refused");
        return Err(ApiError::Unauthorized(INVALID_LOGIN.into()));
    };
    let refresh = random_token();
    let family_id = ulid::Ulid::new().to_string();
    let expires = expiry(unix_now(), state.config.refresh_lifetime);
    let (st, hash, name) = (state.clone(), token_hash(&refresh), user.username.clone());
    let family = family_id.clone();
    tokio::task::spawn_blocking(move || st.store.create_session(&family, &name, &hash, expires))
        .await??;
    tracing::info!(username = %user.username, "login");
    Ok(Json(issue(
        &state,
        user.username,
        user.team_slug,
        family_id,
        refresh,
    )?))
}

/// `POST /api/v1/token/refresh/`
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let new_refresh = random_token();
    let (old, new) = (token_hash(&req.refresh), token_hash(&new_refresh));
    let expires = expiry(unix_now(), state.config.refresh_lifetime);
    let st = state.clone();
    let outcome =
        tokio::task::spawn_blocking(move || st.store.rotate_refresh(&old, &new, expires)).await??;
    match outcome {
        RefreshOutcome::Rotated {
            username,
            team_slug,
            family_id,
        } => Ok(Json(issue(
            &state,
            username,
            team_slug,
            family_id,
            new_refresh,
        )?)),
        RefreshOutcome::ReuseDetected => {
            tracing::warn!("reuse of a rotated refresh token; session revoked");
            Err(ApiError::Unauthorized(
                "refresh token reused; the session is revoked, log in again".into(),
            ))
        }
        RefreshOutcome::Invalid => Err(ApiError::Unauthorized(
            "refresh token expired, revoked or unknown".into(),
        )),
    }
}

/// When a token issued at `now` with `lifetime` seconds expires. A lifetime of 0 gives a
/// token that is already expired (tests of expiry need no sleeping); lifetimes beyond
/// `i64::MAX` saturate instead of wrapping negative.
pub fn expiry(now: i64, lifetime: u64) -> i64 {
    if lifetime == 0 {
        return now - 1;
    }
    now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX))
}

fn issue(
    state: &AppState,
    username: String,
    team_slug: String,
    session: String,
    refresh: String,
) -> Result<TokenPair, ApiError> {
    let now = unix_now();
    let claims = Claims {
        sub: username,
        team: team_slug.clone(),
        iat: now,
        nbf: now,
        exp: expiry(now, state.config.access_lifetime),
        typ: "access".into(),
        sid: Some(session),
    };
    let access = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &state.keys.encoding,
    )
    .map_err(|e| ApiError::Internal(format!("cannot sign a token: {e}")))?;
    Ok(TokenPair {
        access,
        refresh,
        access_lifetime: state.config.access_lifetime,
        refresh_lifetime: state.config.refresh_lifetime,
        team_slug,
    })
}

#[derive(Serialize)]
pub struct WsToken {
    ws_token: String,
}

/// `POST /api/v1/ws-token/`
pub async fn ws_token(
    State(state): State<Arc<AppState>>,
    user: AuthUser,
) -> Result<Json<WsToken>, ApiError> {
    let token = random_token();
    let hash = token_hash(&token);
    let expires = expiry(unix_now(), state.config.ws_token_lifetime);
    let st = state.clone();
    let owner = WsTokenOwner {
        username: user.username,
        team_slug: user.team_slug,
        session: user.session,
    };
    tokio::task::spawn_blocking(move || st.store.add_ws_token(&hash, &owner, expires)).await??;
    Ok(Json(WsToken { ws_token: token }))
}

/// Consumes a WebSocket token; `None` when it is unknown, used or expired.
pub async fn consume_ws_token(
    state: &Arc<AppState>,
    token: &str,
) -> Result<Option<AuthUser>, ApiError> {
    let hash = token_hash(token);
    let st = state.clone();
    let owner = tokio::task::spawn_blocking(move || st.store.consume_ws_token(&hash)).await??;
    Ok(owner.map(|o| AuthUser {
        username: o.username,
        team_slug: o.team_slug,
        session: o.session,
    }))
}

/// `POST /api/v1/logout/`
pub async fn logout(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let hash = token_hash(&req.refresh);
    let st = state.clone();
    if let Some(session) =
        tokio::task::spawn_blocking(move || st.store.revoke_session(&hash)).await??
    {
        state.fanout.revoke_session(&session);
    }
    Ok(Json(serde_json::json!({"status": "ok"})))
}
