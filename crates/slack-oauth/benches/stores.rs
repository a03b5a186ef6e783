//! Store benchmarks: SQLite lookup latency as the tables grow (1k, 100k, 1M installations) and
//! save throughput.
//!
//! Run: `cargo bench -p slack-oauth --bench stores` (figures in BENCHMARKS.md). Seeded databases
//! are kept in `target/bench-dbs/` and reused by later runs while they hold the expected rows.
//! `STORES_BENCH_SIZES=1000,100000` limits the sizes.
//!
//! The seeded databases get no `ANALYZE`: with statistics (`sqlite_stat4`, which the bundled
//! SQLite is built to use) SQLite re-plans a statement whenever its bound values change, which
//! doubles lookup time; Python never creates them either.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use slack_oauth::store::{InstallationQuery, InstallationStore, SqliteStore, StateStore};
use time::OffsetDateTime;

const CLIENT_ID: &str = "111.222";

/// Table sizes, in `slack_installations` rows. Every workspace has two versions (an original
/// install and a reinstall), so a size of N is N/2 workspaces, N installation rows and N bots.
const SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];

fn sizes() -> Vec<u64> {
    std::env::var("STORES_BENCH_SIZES")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| SIZES.to_vec())
}

fn bench_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-dbs");
    std::fs::create_dir_all(&dir).expect("cannot create target/bench-dbs");
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Inserts `rows` installations and bots in one transaction, generated inside SQLite (a
/// recursive CTE), with values shaped like real ones: rotating tokens, scopes, expiries.
const SEED: &str = "
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

/// A store over `target/bench-dbs/installations-<rows>.sqlite`, seeded unless a previous run
/// left it with exactly `rows` rows.
async fn seeded(rows: u64) -> SqliteStore {
    let path = bench_dir().join(format!("installations-{rows}.sqlite"));
    let url = format!("sqlite://{}", path.display());
    if path.exists() {
        let store = SqliteStore::connect(&url, CLIENT_ID).await.expect("open");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM slack_installations")
            .fetch_one(store.pool())
            .await
            .expect("count");
        if u64::try_from(count).ok() == Some(rows) {
            return store;
        }
        store.pool().close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    eprintln!("seeding {rows} installations into {}", path.display());
    let store = SqliteStore::connect(&url, CLIENT_ID).await.expect("create");
    let mut transaction = store.pool().begin().await.expect("begin");
    for statement in SEED.split_terminator(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement)
            .bind(i64::try_from(rows).expect("rows fit i64"))
            .execute(&mut *transaction)
            .await
            .expect("seed");
    }
    transaction.commit().await.expect("commit");
    store
}

/// Workspace numbers in a scattered order (a multiplicative sequence modulo the count), so
/// lookups touch the whole index rather than one hot page.
struct Picker {
    workspaces: u64,
    next: AtomicU64,
}

impl Picker {
    fn new(rows: u64) -> Self {
        Self {
            workspaces: (rows / 2).max(1),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        n.wrapping_mul(2_654_435_761) % self.workspaces
    }
}

fn lookups(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("sqlite_lookup");
    group.sample_size(50);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for rows in sizes() {
        let store = runtime.block_on(seeded(rows));
        let picker = Picker::new(rows);
        // The driver's floor: one round trip through the pool and sqlx's connection thread.
        group.bench_with_input(BenchmarkId::new("select_1", rows), &rows, |b, _| {
            b.to_async(&runtime).iter(|| async {
                let one: i64 = sqlx::query_scalar("SELECT 1")
                    .fetch_one(store.pool())
                    .await
                    .expect("select 1");
                black_box(one)
            });
        });
        group.bench_with_input(BenchmarkId::new("find_bot", rows), &rows, |b, _| {
            b.to_async(&runtime).iter(|| async {
                let query = InstallationQuery::team(format!("T{}", picker.next()));
                black_box(
                    store
                        .find_bot(&query)
                        .await
                        .expect("find_bot")
                        .expect("found"),
                )
            });
        });
        group.bench_with_input(
            BenchmarkId::new("find_installation", rows),
            &rows,
            |b, _| {
                b.to_async(&runtime).iter(|| async {
                    let query = InstallationQuery::team(format!("T{}", picker.next()));
                    let found = store.find_installation(&query).await.expect("find");
                    black_box(found.expect("found"))
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("find_installation_user", rows),
            &rows,
            |b, _| {
                b.to_async(&runtime).iter(|| async {
                    let team = picker.next();
                    let query = InstallationQuery::team(format!("T{team}"))
                        .user(format!("U{}", team * 2 + 1));
                    let found = store.find_installation(&query).await.expect("find");
                    black_box(found.expect("found"))
                });
            },
        );
    }
    group.finish();
}

fn writes(c: &mut Criterion) {
    let runtime = runtime();
    let path = bench_dir().join("saves.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let url = format!("sqlite://{}", path.display());
    let store = runtime
        .block_on(SqliteStore::connect(&url, CLIENT_ID))
        .expect("create");
    let counter = AtomicU64::new(0);
    let installation = |n: u64| {
        slack_oauth_test::fixtures::workspace(&format!("T{n}"), &format!("U{n}"))
            .with_rotation(slack_oauth_test::fixtures::at(43_200))
            .build()
    };

    let mut group = c.benchmark_group("sqlite_write");
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    group.bench_function("save", |b| {
        b.to_async(&runtime).iter(|| async {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            store.save(&installation(n)).await.expect("save");
        });
    });
    const CONCURRENT: u64 = 16;
    group.throughput(Throughput::Elements(CONCURRENT));
    group.bench_function("save_16_concurrent", |b| {
        b.to_async(&runtime).iter(|| async {
            let tasks: Vec<_> = (0..CONCURRENT)
                .map(|_| {
                    let store = store.clone();
                    let installation = installation(counter.fetch_add(1, Ordering::Relaxed));
                    tokio::spawn(async move { store.save(&installation).await })
                })
                .collect();
            for task in tasks {
                task.await.expect("task").expect("save");
            }
        });
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("state_issue_consume", |b| {
        b.to_async(&runtime).iter(|| async {
            let now = OffsetDateTime::now_utc();
            let state = store
                .issue(now + time::Duration::minutes(10))
                .await
                .expect("issue");
            assert!(store.consume(&state, now).await.expect("consume"));
        });
    });
    group.finish();
}

criterion_group!(benches, lookups, writes);
criterion_main!(benches);
