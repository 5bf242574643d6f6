//! Finding and reading the Python tool's offline queues, strictly read-only.
//!
//! The Python spec-kitty kept `~/.spec-kitty/queue.db` (not logged in) and
//! `~/.spec-kitty/queues/queue-<scope hash>.db` (one per server/user/team), each with a `queue`
//! table (`id`, `event_id`, `event_type`, `data` = the envelope as JSON, `timestamp`,
//! `retry_count`) and a `body_upload_queue` table (dossier artifact bodies).

use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};

use super::MigrateError;

/// One row of a `queue` table, as stored (nothing interpreted yet).
#[derive(Debug, Clone)]
pub struct QueueRow {
    pub row_id: i64,
    /// The `event_id` column.
    pub event_id: Option<String>,
    /// The `event_type` column.
    pub event_type: Option<String>,
    /// The `data` column: the envelope as JSON text, when it is text.
    pub data: Option<String>,
    pub retry_count: i64,
}

/// What one queue file holds.
#[derive(Debug, Clone)]
pub struct QueueFile {
    pub path: PathBuf,
    pub rows: Vec<QueueRow>,
    /// `body_upload_queue` rows per `project_uuid`.
    pub body_uploads: Vec<(String, u64)>,
}

/// The queue files under a Python-era home (`queue.db`, then `queues/queue-*.db` sorted by
/// name). `from` may also name one database file.
pub fn discover(from: &Path) -> Result<Vec<PathBuf>, MigrateError> {
    if from.is_file() {
        return Ok(vec![from.to_path_buf()]);
    }
    if !from.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let legacy = from.join("queue.db");
    if legacy.is_file() {
        out.push(legacy);
    }
    let scoped_dir = from.join("queues");
    let entries = match std::fs::read_dir(&scoped_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(MigrateError::Io {
                path: scoped_dir,
                source,
            });
        }
    };
    let mut scoped: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("queue-") && n.ends_with(".db"))
        })
        .collect();
    scoped.sort();
    out.extend(scoped);
    Ok(out)
}

/// Opens `path` read-only: SQLite never writes to it (no journal, no schema change).
fn open(path: &Path) -> Result<Connection, MigrateError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlite(path, e))?;
    // Fails here, not later, when the file is not a database at all.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .map_err(|e| sqlite(path, e))?;
    Ok(conn)
}

fn sqlite(path: &Path, e: rusqlite::Error) -> MigrateError {
    MigrateError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn has_table(conn: &Connection, path: &Path, table: &str) -> Result<bool, MigrateError> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| sqlite(path, e))
}

/// Reads every row of the `queue` table and the `body_upload_queue` counts of `path`.
pub fn read(path: &Path) -> Result<QueueFile, MigrateError> {
    let conn = open(path)?;
    let mut rows = Vec::new();
    if has_table(&conn, path, "queue")? {
        let mut stmt = conn
            .prepare("SELECT id, event_id, event_type, data, retry_count FROM queue ORDER BY id")
            .map_err(|e| sqlite(path, e))?;
        let iter = stmt
            .query_map([], |r| {
                Ok(QueueRow {
                    row_id: r.get(0)?,
                    event_id: text(r.get(1)?),
                    event_type: text(r.get(2)?),
                    data: text(r.get(3)?),
                    retry_count: match r.get(4)? {
                        SqlValue::Integer(n) => n,
                        _ => 0,
                    },
                })
            })
            .map_err(|e| sqlite(path, e))?;
        for row in iter {
            rows.push(row.map_err(|e| sqlite(path, e))?);
        }
    }
    let mut body_uploads = Vec::new();
    if has_table(&conn, path, "body_upload_queue")? {
        let mut stmt = conn
            .prepare(
                "SELECT coalesce(project_uuid, ''), count(*) FROM body_upload_queue \
                 GROUP BY project_uuid ORDER BY project_uuid",
            )
            .map_err(|e| sqlite(path, e))?;
        let iter = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| sqlite(path, e))?;
        for item in iter {
            let (project, n) = item.map_err(|e| sqlite(path, e))?;
            body_uploads.push((project, u64::try_from(n).unwrap_or(0)));
        }
    }
    Ok(QueueFile {
        path: path.to_path_buf(),
        rows,
        body_uploads,
    })
}

fn text(v: SqlValue) -> Option<String> {
    match v {
        SqlValue::Text(s) => Some(s),
        SqlValue::Blob(b) => String::from_utf8(b).ok(),
        _ => None,
    }
}
