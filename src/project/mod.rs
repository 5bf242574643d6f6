//! The workflow model: project identity, and (in later modules) features, work packages,
//! lanes and dependencies.

pub mod identity;

pub use identity::{IdentityError, ProjectIdentity};
