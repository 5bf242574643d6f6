//! Logging in to the dashboard: a form with the API's accounts, a session cookie, CSRF
//! tokens, logout, and the API login's rate limiter.
//!
//! * The session cookie (`sk_session`) is HttpOnly, SameSite=Lax, Path=/, and Secure when the
//!   server speaks TLS. Only its SHA-256 is stored.
//! * CSRF: every state-changing form (login, logout) carries a token that must match — for
//!   login a short-lived double-submit cookie, for logout the session's own token — and a
//!   request whose `Origin` names another host is refused.
//! * The password check is the API's ([`authenticate`]): same limiter, same hashing slots.
//! * Scripts may use `Authorization: Bearer <access token>` instead of a cookie.

use std::sync::Arc;

use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::super::auth::AuthUser;
use super::super::error::ApiError;
use super::super::login::authenticate;
use super::super::store::unix_now;
use super::super::{AppState, ClientAddr};
use super::{DashError, base, blocking, layout};

const SESSION_COOKIE: &str = "sk_session";
const LOGIN_CSRF_COOKIE: &str = "sk_login_csrf";
/// How long a browser stays logged in.
const SESSION_SECONDS: i64 = 12 * 3600;

/// Who is looking: from the session cookie, or from a bearer access token.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub username: String,
    pub team_slug: String,
    /// The session's CSRF token (none for bearer callers, who have no forms).
    pub csrf: Option<String>,
}

impl FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = DashError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let user = AuthUser::from_request_parts(parts, state).await?;
            return Ok(Viewer {
                username: user.username,
                team_slug: user.team_slug,
                csrf: None,
            });
        }
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            let hash = hash(token);
            if let Some(s) = blocking(state, move |st| st.store.browser_session(&hash)).await? {
                return Ok(Viewer {
                    username: s.username,
                    team_slug: s.team_slug,
                    csrf: Some(s.csrf),
                });
            }
        }
        let wants_html = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        let json = !wants_html || parts.uri.query().is_some_and(|q| q.contains("format=json"));
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        Err(DashError::NotLoggedIn { next, json })
    }
}

/// `GET /`: the viewer's team overview, or the login form.
pub async fn root(viewer: Result<Viewer, DashError>) -> Response {
    match viewer {
        Ok(v) => Redirect::to(&base(&v.team_slug)).into_response(),
        Err(_) => Redirect::to("/login").into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`
pub async fn login_form(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    form_response(&state, StatusCode::OK, q.next.as_deref(), None, "")
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /login`
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(ClientAddr(addr)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, DashError> {
    let next = form.next.as_deref();
    if !same_origin(&headers)
        || cookie(&headers, LOGIN_CSRF_COOKIE).is_none_or(|c| c.is_empty() || c != form.csrf)
    {
        return Err(DashError::Forbidden);
    }
    let name: String = form.username.chars().take(160).collect();
    let user = match authenticate(&state, &form.username, form.password, addr.ip()).await {
        Ok(user) => user,
        Err(ApiError::TooManyRequests { retry_after }) => {
            let message = format!("Too many failed logins. Try again in {retry_after} s.");
            let status = StatusCode::TOO_MANY_REQUESTS;
            let mut r = form_response(&state, status, next, Some(&message), &name);
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(r);
        }
        Err(e) => return Err(e.into()),
    };
    let Some(user) = user else {
        tracing::info!("dashboard login refused");
        let message = "Invalid username or password.";
        return Ok(form_response(
            &state,
            StatusCode::UNAUTHORIZED,
            next,
            Some(message),
            &name,
        ));
    };
    let token = random_token();
    let (hash, csrf, who) = (hash(&token), random_token(), user.username.clone());
    let expires = unix_now() + SESSION_SECONDS;
    blocking(&state, move |st| {
        st.store.create_browser_session(&hash, &who, &csrf, expires)
    })
    .await?;
    tracing::info!(username = %user.username, "dashboard login");
    let target = next
        .filter(|n| safe_next(n, &user.team_slug))
        .map_or_else(|| base(&user.team_slug), str::to_owned);
    let mut r = Redirect::to(&target).into_response();
    let secure = if state.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    set_cookie(
        &mut r,
        &format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECONDS}{secure}"
        ),
    );
    set_cookie(
        &mut r,
        &format!("{LOGIN_CSRF_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    );
    Ok(r)
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// `POST /logout`: ends the session and goes back to the login form.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    viewer: Viewer,
    Form(form): Form<LogoutForm>,
) -> Result<Response, DashError> {
    if !same_origin(&headers) || viewer.csrf.as_deref() != Some(form.csrf.as_str()) {
        return Err(DashError::Forbidden);
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let hash = hash(token);
        blocking(&state, move |st| st.store.end_browser_session(&hash)).await?;
    }
    let mut r = Redirect::to("/login").into_response();
    let secure = if state.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    set_cookie(
        &mut r,
        &format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    );
    Ok(r)
}

/// The login page with a fresh CSRF cookie and field.
fn form_response(
    state: &AppState,
    status: StatusCode,
    next: Option<&str>,
    message: Option<&str>,
    username: &str,
) -> Response {
    let csrf = random_token();
    let page = login_page(&csrf, next, message, username);
    let mut r = (status, Html(page.into_string())).into_response();
    let secure = if state.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    set_cookie(
        &mut r,
        &format!(
            "{LOGIN_CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"
        ),
    );
    r
}

fn login_page(csrf: &str, next: Option<&str>, message: Option<&str>, username: &str) -> Markup {
    layout::bare(
        "Log in",
        html! {
            main id="main" class="login" {
                h1 { "spec-kitty dashboard" }
                form method="post" action="/login" class="login-form" {
                    @if let Some(m) = message {
                        p class="error" role="alert" { (m) }
                    }
                    input type="hidden" name="csrf" value=(csrf);
                    @if let Some(n) = next {
                        input type="hidden" name="next" value=(n);
                    }
                    label for="username" { "Username" }
                    input id="username" name="username" type="text" autocomplete="username"
                        required autofocus value=(username);
                    label for="password" { "Password" }
                    input id="password" name="password" type="password"
                        autocomplete="current-password" required;
                    button type="submit" { "Log in" }
                }
                p class="hint" { "The same account as " code { "spec-kitty auth login" } "." }
            }
        },
    )
}

/// The logout button shown in every page's header.
pub fn logout_form(viewer: &Viewer) -> Markup {
    html! {
        @if let Some(csrf) = &viewer.csrf {
            form method="post" action="/logout" class="logout" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Log out " (viewer.username) }
            }
        }
    }
}

/// Only paths inside the viewer's own dashboard are followed after login (no open redirect).
fn safe_next(next: &str, team: &str) -> bool {
    next.starts_with(&base(team)) && !next.contains("//") && !next.contains('\\')
}

/// False when the request's `Origin` (sent by browsers on POST) names another host than the
/// one the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

/// The value of cookie `name`, if sent.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(r: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
