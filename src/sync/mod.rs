//! Client side of the sync protocol (PROTOCOL.md): configuration, credentials, the session,
//! the preflight, draining pending events, pulling the team's, and the status report.
//!
//! Only the `auth` and `sync` commands use the network parts; event emission reads at most
//! [`config`] and [`session::current_team`] (two small files, no network, no runtime).

pub mod config;
pub mod credentials;
pub mod daemon;
pub mod error;
pub mod gate;
pub mod http;
pub mod keyring;
pub mod lock;
pub mod migrate;
pub mod now;
pub mod preflight;
pub mod pull;
pub mod push;
pub mod session;
pub mod status;

pub use config::{ClientConfig, ConfigError, spec_kitty_home};
pub use error::SyncError;
