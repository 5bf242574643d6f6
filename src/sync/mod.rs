//! Client side of the sync protocol. So far: the client configuration file.

pub mod config;
pub mod migrate;

pub use config::{ClientConfig, ConfigError, spec_kitty_home};
