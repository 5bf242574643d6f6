//! The embedded SQLite backend: one file in WAL mode.
//!
//! One writer connection behind a mutex serialises writes (SQLite allows one writer anyway, and
//! holding our own lock avoids busy-waiting inside SQLite); a small pool of reader connections
//! serves pulls and snapshots concurrently with writes, which WAL allows. Every method is
//! blocking: async callers run them under `tokio::task::spawn_blocking`.
//!
//! Durability: `synchronous=FULL` with WAL, so a batch whose response was sent survives a power
//! loss, not only a crash of the process. One fsync per batch (not per event) keeps this cheap.
//!
//! The queries live beside their concepts (accounts.rs, events.rs, dashboard/), as `impl Sqlite`
//! blocks; the `Store` facade in mod.rs dispatches to them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{StoreError, schema};

/// Readers kept open for reuse; more may be opened under load and are then closed after use.
const READER_POOL: usize = 4;

/// The server's SQLite database.
pub struct Sqlite {
    path: PathBuf,
    pub(super) writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        create_private(path)?;
        let mut writer = open_connection(path, false)?;
        schema::migrate(&mut writer)?;
        Ok(Sqlite {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with exclusive use of the writer connection.
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        f(&mut conn)
    }

    /// Runs `f` on a reader connection from the pool.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().map_err(|_| StoreError::Poisoned)?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&self.path, true)?,
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().map_err(|_| StoreError::Poisoned)?;
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        result
    }
}

/// Creates the database file with mode 0600 when it does not exist yet. SQLite gives its
/// `-wal` and `-shm` files the mode of the database file, so they are private too (the
/// accounts' password hashes and the team's events are nobody else's business).
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Permissions {
            path: path.to_owned(),
            source,
        }),
    }
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let open_err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    // Administration commands may write while the server runs: wait for the lock, don't fail.
    conn.busy_timeout(Duration::from_secs(10))?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // SQLite's default WAL checkpoint (every 1,000 pages, about one per batch here) stays.
        // At 10,000 pages commits averaged 8 ms instead of 11 ms on the sync bench's mix, but the
        // batch whose commit ran the checkpoint waited for it: a batch's p99 went from 62-76 ms
        // to 131-135 ms with no gain in throughput (docs/benchmarks.md, "Team server").
    }
    // SQLite's default page cache is 2 MiB. Every stored event updates a dozen indexes (the
    // activity filters, store/dashboard), so past ~100,000 events the writer re-read index
    // pages from the OS on every batch and ingest fell from 45 to 85 ms per 1,000 events
    // (docs/benchmarks.md). The cache grows only as pages are used.
    let cache_kib = if read_only { 16 * 1024 } else { 64 * 1024 };
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}
