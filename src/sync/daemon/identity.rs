//! Who sends: the identity a daemon runs as, and the foreground's (this user's configuration and
//! session right now). The egress gate compares the two field by field.

use serde::{Deserialize, Serialize};

/// The fields that must agree before anything leaves the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub server_url: String,
    pub username: String,
    pub team: String,
    pub project_uuid: String,
    pub node_id: String,
    pub version: String,
    pub binary: String,
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub field: &'static str,
    pub foreground: String,
    pub daemon: String,
}

impl Identity {
    /// The identity of this process for a cleared preflight.
    pub fn of(node_id: &str, cleared: &crate::sync::preflight::Cleared) -> Identity {
        Identity {
            server_url: cleared.server_url.clone(),
            username: cleared.credentials.username.clone(),
            team: cleared.credentials.team_slug.clone(),
            project_uuid: cleared.project_uuid.clone(),
            node_id: node_id.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            binary: current_binary(),
        }
    }

    /// The fields where `daemon` differs from `self` (the foreground). The binary path is
    /// compared only when both files exist (a rebuilt binary at the same path is the same one).
    pub fn mismatches(&self, daemon: &Identity) -> Vec<Mismatch> {
        let mut out = Vec::new();
        let fields: [(&'static str, &String, &String); 7] = [
            ("server_url", &self.server_url, &daemon.server_url),
            ("username", &self.username, &daemon.username),
            ("team", &self.team, &daemon.team),
            ("project_uuid", &self.project_uuid, &daemon.project_uuid),
            ("node_id", &self.node_id, &daemon.node_id),
            ("version", &self.version, &daemon.version),
            ("binary", &self.binary, &daemon.binary),
        ];
        for (field, fg, d) in fields {
            if fg != d {
                out.push(Mismatch {
                    field,
                    foreground: fg.clone(),
                    daemon: d.clone(),
                });
            }
        }
        out
    }
}

/// This executable's path, canonical when possible.
pub fn current_binary() -> String {
    std::env::current_exe()
        .ok()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}
