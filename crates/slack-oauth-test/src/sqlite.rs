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
