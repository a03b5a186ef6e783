//! Fresh SQLite stores for tests: one new database file under `target/test-dbs/` per call.
//!
//! Files are kept after the test (so a failing test's database can be inspected, as
//! `#[sqlx::test]` keeps its databases) and removed by a later run once they are a day old.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, SystemTime};

use slack_oauth::store::SqliteStore;

use crate::fixtures::CLIENT_ID;

/// slack_sdk 3.43.0's SQLite DDL (`SQLite3InstallationStore` and `SQLite3OAuthStateStore`),
/// verbatim: no `IF NOT EXISTS`.
pub const SLACK_SDK_DDL: &str = include_str!("../fixtures/sqlite/slack_sdk_3_43_ddl.sql");

/// Rows the way slack_sdk versions leave them (INTEGER, REAL and text expiries, whole-second and
/// offset `installed_at`, scopes damaged by slack_sdk's rotation, a user-only install, another
/// app's row, a state); the file's comments say what each row exercises.
pub const PYTHON_ROWS: &str = include_str!("../fixtures/sqlite/python_rows.sql");

/// Test databases older than this are deleted when a test run starts.
const KEEP_FOR: Duration = Duration::from_secs(24 * 60 * 60);

/// A new, empty SQLite store (WAL mode, migrated) in its own file under `target/test-dbs/`,
/// scoped to [`CLIENT_ID`].
///
/// # Panics
/// If the file cannot be created or migrated: this is test support.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = slack_oauth_test::sqlite::temporary().await;
/// # let _ = store;
/// # });
/// ```
pub async fn temporary() -> SqliteStore {
    let path = temporary_path("store");
    let url = format!("sqlite://{}", path.display());
    match SqliteStore::connect(&url, CLIENT_ID).await {
        Ok(store) => store,
        Err(error) => panic!(
            "cannot create the test database {}: {error}",
            path.display()
        ),
    }
}

/// A new database file created the way a Python Bolt app creates it: slack_sdk's DDL, no
/// `_sqlx_migrations` table, and [`PYTHON_ROWS`] when `with_rows` is set. Returns its
/// `sqlite://` URL.
///
/// # Panics
/// If the file cannot be written: this is test support.
pub async fn python_created_database(with_rows: bool) -> String {
    database_from("python", SLACK_SDK_DDL, with_rows)
}

/// A new database file as slack-oauth 0.1 left it: migrated by sqlx (its `_sqlx_migrations`
/// table records the first migration, `user_version` is 0), with [`PYTHON_ROWS`] when
/// `with_rows` is set. Returns its `sqlite://` URL.
///
/// # Panics
/// If the file cannot be written: this is test support.
pub async fn earlier_release_database(with_rows: bool) -> String {
    database_from("release-0-1", EARLIER_RELEASE_DUMP, with_rows)
}

/// `sqlite3 .dump` of a database that slack-oauth 0.1 (sqlx migrations) created.
pub const EARLIER_RELEASE_DUMP: &str =
    include_str!("../fixtures/sqlite/slack_oauth_0_1_sqlx_migrated.sql");

/// A new file under `target/test-dbs/` (name starting with `label`) holding `schema`, and
/// [`PYTHON_ROWS`] when `with_rows` is set; its `sqlite://` URL.
fn database_from(label: &str, schema: &str, with_rows: bool) -> String {
    let path = temporary_path(label);
    let mut sql = schema.to_owned();
    if with_rows {
        sql.push_str(PYTHON_ROWS);
    }
    if let Err(error) = create_database(&path, &sql) {
        panic!(
            "cannot create the {label} database {}: {error}",
            path.display()
        );
    }
    format!("sqlite://{}", path.display())
}

/// Creates the file at `path` and runs `sql` in it, in WAL mode as every writer leaves it.
fn create_database(path: &Path, sql: &str) -> rusqlite::Result<()> {
    let connection = rusqlite::Connection::open(path)?;
    connection.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    connection.execute_batch(sql)?;
    connection.close().map_err(|(_, error)| error)
}

/// A path for a new database file under `target/test-dbs/` (the file does not exist yet). The
/// name starts with `label`.
pub fn temporary_path(label: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static CLEAN: Once = Once::new();
    let dir = test_dbs_dir();
    if let Err(error) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {error}", dir.display());
    }
    CLEAN.call_once(|| remove_old_files(&dir));
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{label}-{}-{nanos}-{n}.sqlite", std::process::id()))
}

/// `<target>/test-dbs`: the cargo target directory is the nearest ancestor of the running test
/// binary that holds `CACHEDIR.TAG` (cargo writes one there), or `CARGO_TARGET_DIR`.
pub fn test_dbs_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(std::env::temp_dir);
    target.join("test-dbs")
}

fn remove_old_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > KEEP_FOR);
        if old {
            // Best effort: another run may be removing the same file.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
