//! The OS keyring as a home for tokens: the Secret Service on Linux (GNOME Keyring, KWallet,
//! KeePassXC…, over D-Bus), the Keychain on macOS, the Credential Manager on Windows, all through
//! the `keyring` crate.
//!
//! Whether it works is decided by a probe, never assumed: on a headless machine the Secret
//! Service fails at once (no D-Bus), and a build of `keyring` without a platform store silently
//! keeps secrets in a per-entry in-memory mock (DESIGN.md, measured facts). The probe writes a
//! random value through one entry and reads it back through a *second* entry for the same
//! name, which the mock cannot do, then deletes it. Its answer is kept for the process.
//!
//! Only `auth` and `sync` reach this module: the emit path reads who is logged in from the
//! credentials file, which says where the tokens are but never holds them when they are here.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The keyring service name of every entry; the entry's user is the server URL.
const SERVICE: &str = "spec-kitty";

/// The entry the probe writes and deletes.
const PROBE_USER: &str = "spec-kitty-keyring-probe";

/// What the keyring holds for one server: the two tokens, nothing else.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// Why the keyring could not be used, in words for a person (never a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// The name of the platform's keyring, for messages.
pub fn backend_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "macOS Keychain"
    } else if cfg!(windows) {
        "Windows Credential Manager"
    } else {
        "Secret Service"
    }
}

fn entry(user: &str) -> Result<keyring::Entry, Unavailable> {
    keyring::Entry::new(SERVICE, user).map_err(|e| Unavailable(e.to_string()))
}

/// Whether the OS keyring works here (probed once per process).
pub fn probe() -> Result<(), Unavailable> {
    static ANSWER: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    ANSWER.get_or_init(probe_now).clone()
}

fn probe_now() -> Result<(), Unavailable> {
    let value = format!("probe-{}", uuid::Uuid::new_v4());
    entry(PROBE_USER)?
        .set_password(&value)
        .map_err(|e| Unavailable(e.to_string()))?;
    let read = entry(PROBE_USER)?.get_password();
    let _ = entry(PROBE_USER).map(|e| e.delete_credential());
    match read {
        Ok(v) if v == value => Ok(()),
        Ok(_) => Err(Unavailable(
            "it returned another value than was stored".into(),
        )),
        Err(keyring::Error::NoEntry) => Err(Unavailable(
            "it forgot a value between two reads (an in-memory mock, not a keyring)".into(),
        )),
        Err(e) => Err(Unavailable(e.to_string())),
    }
}

/// The tokens stored for `server_url`; `Ok(None)` when the keyring has no entry for it.
pub fn load(server_url: &str) -> Result<Option<Tokens>, Unavailable> {
    match entry(server_url)?.get_password() {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            // Never echo the text: it holds tokens.
            .map_err(|_| Unavailable("its entry is not what spec-kitty stored".into())),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(Unavailable(e.to_string())),
    }
}

/// Stores `tokens` for `server_url`, replacing what was there.
pub fn save(server_url: &str, tokens: &Tokens) -> Result<(), Unavailable> {
    let text = serde_json::to_string(tokens).unwrap_or_default();
    entry(server_url)?
        .set_password(&text)
        .map_err(|e| Unavailable(e.to_string()))
}

/// Deletes the entry of `server_url`; `Ok(false)` when there was none.
pub fn delete(server_url: &str) -> Result<bool, Unavailable> {
    match entry(server_url)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(Unavailable(e.to_string())),
    }
}
