//! Seeded SQLite databases for the benchmarks (`benches/stores.rs`, `benches/authorize.rs`):
//! one generator, so that both measure the same data.
//!
//! ```no_run
//! # async fn example() {
//! let store = slack_oauth_test::bench::seeded_sqlite(1_000).await;
//! let picker = slack_oauth_test::bench::Picker::new(500);
//! let workspace = format!("T{}", picker.pick());
//! # let _ = (store, workspace);
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use slack_oauth::store::SqliteStore;

use crate::fixtures::CLIENT_ID;

/// `target/bench-dbs/`, created if missing.
///
/// # Panics
/// When the folder cannot be created (a benchmark cannot run without it).
pub fn bench_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-dbs");
    std::fs::create_dir_all(&dir).expect("cannot create target/bench-dbs");
    dir
}

/// Inserts `rows` installations and bots in one transaction, generated inside SQLite (a
/// recursive CTE), with values shaped like real ones: rotating tokens, scopes, expiries.
pub const SEED: &str = "
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?1)
INSERT INTO slack_installations (client_id, app_id, enterprise_id, enterprise_name, team_id,
    team_name, bot_token, bot_id, bot_user_id, bot_scopes, bot_refresh_token,
    bot_token_expires_at, user_id, user_token, user_scopes, user_refresh_token,
    user_token_expires_at, is_enterprise_install, token_type, installed_at)
SELECT '111.222', 'A0KRD7HC3', '', NULL, 'T' || (i / 2), 'Workspace ' || (i / 2),
    'xoxe.xoxb-1-' || printf('%040d', i), 'B' || (i / 2), 'UB' || (i / 2),
    'chat:write,commands,channels:history,users:read', 'xoxe-1-' || printf('%060d', i),
    1800000000 + i, 'U' || i, 'xoxe.xoxp-1-' || printf('%040d', i), 'search:read',
    'xoxe-1-' || printf('%060d', i + 1), 1800000000 + i, 0, 'bot',
    strftime('%Y-%m-%d %H:%M:%S', 1767225600 + i, 'unixepoch') || '.000000'
FROM seq;
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?1)
INSERT INTO slack_bots (client_id, app_id, enterprise_id, enterprise_name, team_id, team_name,
    bot_token, bot_id, bot_user_id, bot_scopes, bot_refresh_token, bot_token_expires_at,
    is_enterprise_install, installed_at)
SELECT '111.222', 'A0KRD7HC3', '', NULL, 'T' || (i / 2), 'Workspace ' || (i / 2),
    'xoxe.xoxb-1-' || printf('%040d', i), 'B' || (i / 2), 'UB' || (i / 2),
    'chat:write,commands,channels:history,users:read', 'xoxe-1-' || printf('%060d', i),
    1800000000 + i, 0, strftime('%Y-%m-%d %H:%M:%S', 1767225600 + i, 'unixepoch') || '.000000'
FROM seq;
";

/// A store over `target/bench-dbs/installations-<rows>.sqlite` (client id
/// [`CLIENT_ID`]): `rows` installations and as many bots, two versions per workspace (users
/// `U2k` and `U2k+1`, the second one latest; workspaces `T0` to `T<rows/2 - 1>`). Seeded unless a
/// previous run left the file with exactly `rows` rows; a file with another count is recreated.
///
/// The seeded databases get no `ANALYZE`: with statistics (`sqlite_stat4`, which the bundled
/// SQLite is built to use) SQLite re-plans a statement whenever its bound values change, which
/// doubles lookup time; Python never creates them either.
///
/// # Panics
/// When the database cannot be opened or seeded.
pub async fn seeded_sqlite(rows: u64) -> SqliteStore {
    let path = bench_dir().join(format!("installations-{rows}.sqlite"));
    let url = format!("sqlite://{}", path.display());
    if path.exists() {
        let store = SqliteStore::connect(&url, CLIENT_ID).await.expect("open");
        let count: i64 = rusqlite::Connection::open(&path)
            .and_then(|c| c.query_row("SELECT count(*) FROM slack_installations", [], |r| r.get(0)))
            .expect("count");
        if u64::try_from(count).ok() == Some(rows) {
            return store;
        }
        store.close().await.expect("close");
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    eprintln!("seeding {rows} installations into {}", path.display());
    // The store creates the schema; the seed runs on a connection of its own, in one
    // transaction, before the store's connections read anything.
    SqliteStore::connect(&url, CLIENT_ID)
        .await
        .expect("create")
        .close()
        .await
        .expect("close");
    let mut connection = rusqlite::Connection::open(&path).expect("open for seeding");
    let transaction = connection.transaction().expect("begin");
    for statement in SEED.split_terminator(';').filter(|s| !s.trim().is_empty()) {
        transaction
            .execute(statement, [i64::try_from(rows).expect("rows fit i64")])
            .expect("seed");
    }
    transaction.commit().expect("commit");
    drop(connection);
    SqliteStore::connect(&url, CLIENT_ID).await.expect("open")
}

/// Workspace numbers in a scattered order over `0..workspaces` (a multiplicative sequence), so
/// lookups touch the whole index rather than one hot page.
///
/// ```
/// let picker = slack_oauth_test::bench::Picker::new(10);
/// assert!((0..100).all(|_| picker.pick() < 10));
/// ```
#[derive(Debug)]
pub struct Picker {
    workspaces: u64,
    next: AtomicU64,
}

impl Picker {
    /// A picker over `0..workspaces` (at least one).
    pub fn new(workspaces: u64) -> Self {
        Self {
            workspaces: workspaces.max(1),
            next: AtomicU64::new(1),
        }
    }

    /// The next workspace number.
    pub fn pick(&self) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        n.wrapping_mul(2_654_435_761) % self.workspaces
    }
}
