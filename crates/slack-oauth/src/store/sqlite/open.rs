//! Where the database is (`sqlite:` URLs), and opening connections to it with the settings of
//! their role.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

/// How long a statement waits for another connection's (or process's) lock before failing with
/// "database is locked": writes take milliseconds, and ten seconds ride out a checkpoint or a
/// Python app's long transaction without making a real deadlock wait forever.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of the database file readers map instead of `read()` calls: lookups in a large table
/// then cost no system call per page. Address space only; the OS page cache backs it either way.
const READER_MMAP_SIZE: i64 = 1 << 30;

/// Page cache per reader, in KiB when negative (SQLite's convention): 16 MiB keeps the upper
/// levels of every index and the hot workspaces' rows in memory.
const READER_CACHE_SIZE: i64 = -16 * 1024;

/// Page cache of the writer. It is the only writer, so its cache is never invalidated and would
/// fill any size given; 2 MiB keeps the upper b-tree levels it writes through.
const WRITER_CACHE_SIZE: i64 = -2 * 1024;

/// Prepared statements kept per connection: room for every statement the store runs.
const STATEMENT_CACHE: usize = 64;

/// The database a store opens.
#[derive(Clone, Debug)]
pub(super) enum Target {
    /// A file, in WAL mode.
    File(PathBuf),
    /// A private in-memory database, named in SQLite's `memdb` VFS so that the writer and the
    /// readers share it (it lives while the writer's connection does).
    Memory(String),
}

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Writer,
    Reader,
}

impl Target {
    /// Parses `sqlite://path`, `sqlite:path`, `sqlite:///absolute/path`, `sqlite::memory:` and
    /// the query `?mode=rwc` (the default), `?mode=memory`.
    pub(super) fn from_url(url: &str) -> Result<Self, StoreError> {
        let Some(rest) = url.strip_prefix("sqlite:") else {
            return Err(StoreError::Config(format!(
                "{url:?} is not a SQLite URL: use sqlite://path/to/file.db or sqlite::memory:"
            )));
        };
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut memory = path == ":memory:";
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair {
                "mode=rwc" => {}
                "mode=memory" => memory = true,
                other => {
                    return Err(StoreError::Config(format!(
                        "unsupported option {other:?} in SQLite URL {url:?}: the store accepts \
                         mode=rwc (the default) and mode=memory"
                    )))
                }
            }
        }
        if memory {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            return Ok(Self::Memory(format!(
                "/slack-oauth-{}-{n}",
                std::process::id()
            )));
        }
        if path.is_empty() {
            return Err(StoreError::Config(format!(
                "SQLite URL {url:?} names no file: use sqlite://path/to/file.db"
            )));
        }
        Ok(Self::File(PathBuf::from(path)))
    }

    /// The file, for a file database.
    pub(super) fn path(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Memory(_) => None,
        }
    }
}

/// Opens a connection for `role`. The writer opens first: it creates a missing file (mode 0600
/// on Unix; SQLite gives its `-wal` and `-shm` files the same mode) and switches it to WAL.
pub(super) fn open(target: &Target, role: Role) -> Result<Connection, StoreError> {
    let opening = |source| StoreError::Sqlite {
        operation: if role == Role::Writer {
            "opening the database"
        } else {
            "opening a reader connection"
        },
        source,
    };
    // The connection is used by one thread at a time: SQLite's own mutexes are not needed.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let connection = match target {
        Target::File(path) => {
            if role == Role::Writer {
                create_private_file(path)?;
            }
            Connection::open_with_flags(path, flags).map_err(opening)?
        }
        Target::Memory(name) => Connection::open_with_flags(
            format!("file:{name}?vfs=memdb"),
            flags | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(opening)?,
    };
    configure(&connection, target, role).map_err(opening)?;
    Ok(connection)
}

fn configure(connection: &Connection, target: &Target, role: Role) -> rusqlite::Result<()> {
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    connection.busy_timeout(BUSY_TIMEOUT)?;
    match role {
        Role::Writer => {
            if matches!(target, Target::File(_)) {
                // Persistent in the file; readers never block the writer, nor it them.
                let mode: String =
                    connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::warn!(journal_mode = %mode, "SQLite did not switch the database to WAL");
                }
            }
            // Durable: a commit that returned is on disk (the WAL is fsync'ed at each commit;
            // group commit shares that fsync between the writes of a group).
            connection.pragma_update(None, "synchronous", "FULL")?;
            connection.pragma_update(None, "cache_size", WRITER_CACHE_SIZE)?;
            // The writer thread checkpoints between groups (see `writer.rs`), never inside a
            // commit that callers wait for.
            connection.pragma_update(None, "wal_autocheckpoint", 0)?;
            // No memory map for the writer: it writes with pwrite anyway, and a map must be
            // redone whenever a checkpoint grows the file (measured: a third of the CPU time of
            // a rotation batch went to munmap and the TLB flushes it causes).
            connection.pragma_update(None, "mmap_size", 0)?;
        }
        Role::Reader => {
            connection.pragma_update(None, "query_only", true)?;
            connection.pragma_update(None, "cache_size", READER_CACHE_SIZE)?;
            connection.pragma_update(None, "mmap_size", READER_MMAP_SIZE)?;
        }
    }
    Ok(())
}

/// Creates `path` readable and writable by its owner only, if it does not exist yet: the file
/// holds every workspace's tokens.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::Config(format!(
            "cannot create the SQLite database {}: {error}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_url_forms() {
        let file = |url: &str| match Target::from_url(url).unwrap() {
            Target::File(path) => path.display().to_string(),
            Target::Memory(_) => panic!("{url} is a file"),
        };
        assert_eq!(file("sqlite://app.db"), "app.db");
        assert_eq!(file("sqlite:app.db"), "app.db");
        assert_eq!(file("sqlite:///var/lib/app.db"), "/var/lib/app.db");
        assert_eq!(file("sqlite://dir/app.db?mode=rwc"), "dir/app.db");
        for memory in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://x?mode=memory",
        ] {
            assert!(matches!(
                Target::from_url(memory).unwrap(),
                Target::Memory(_)
            ));
        }
        for bad in ["postgres://h/db", "sqlite://", "sqlite://a.db?cache=shared"] {
            assert_eq!(
                Target::from_url(bad).unwrap_err().kind(),
                crate::store::StoreErrorKind::Config,
                "{bad}"
            );
        }
    }

    #[test]
    fn in_memory_databases_are_distinct() {
        let (Target::Memory(a), Target::Memory(b)) = (
            Target::from_url("sqlite::memory:").unwrap(),
            Target::from_url("sqlite::memory:").unwrap(),
        ) else {
            panic!("memory targets");
        };
        assert_ne!(a, b);
    }
}
