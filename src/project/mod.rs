//! The workflow model: project identity, features, work packages, their dependencies and the
//! subtask checkboxes of `tasks.md`. Reads and validates files; never emits events.

pub mod agents;
mod error;
pub mod feature;
pub mod graph;
pub mod identity;
pub mod lock;
pub mod tasks_md;
pub mod work_package;

pub use error::ProjectError;
pub use feature::{Feature, Project, normalize_wp_id, parse_wp_branch};
pub use identity::{IdentityError, ProjectIdentity};
pub use work_package::WorkPackage;
