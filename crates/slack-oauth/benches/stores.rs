//! Store benchmarks: SQLite lookup latency as the tables grow (1k, 100k, 1M installations) and
//! save throughput.
//!
//! Run: `cargo bench -p slack-oauth --bench stores` (figures in BENCHMARKS.md). Seeded databases
//! are kept in `target/bench-dbs/` and reused by later runs while they hold the expected rows.
//! `STORES_BENCH_SIZES=1000,100000` limits the sizes.
//!
//! The data set is `slack_oauth_test::bench`'s (no `ANALYZE`, see there).

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use slack_oauth::store::{InstallationQuery, InstallationStore, SqliteStore, StateStore};
use slack_oauth_test::bench::{self, Picker};
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The seeded store (`slack_oauth_test::bench`, shared with the authorize benchmark).
async fn seeded(rows: u64) -> SqliteStore {
    bench::seeded_sqlite(rows).await
}

fn lookups(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("sqlite_lookup");
    group.sample_size(50);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for rows in sizes() {
        let store = runtime.block_on(seeded(rows));
        let picker = Picker::new(rows / 2);
        group.bench_with_input(BenchmarkId::new("find_bot", rows), &rows, |b, _| {
            b.to_async(&runtime).iter(|| async {
                let query = InstallationQuery::team(format!("T{}", picker.pick()));
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
                    let query = InstallationQuery::team(format!("T{}", picker.pick()));
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
                    let team = picker.pick();
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
    let path = bench::bench_dir().join("saves.sqlite");
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
    // The floor a save is measured against: one small row committed by a bare rusqlite
    // connection in WAL mode, on the calling thread, with `synchronous=FULL` (the store's
    // setting: an fsync of the WAL per commit) and with `NORMAL` (no fsync), for the cost of
    // durability.
    for synchronous in ["FULL", "NORMAL"] {
        let bare = bare_connection(&bench::bench_dir().join("bare.sqlite"), synchronous);
        let mut n = 0_i64;
        let samples: Vec<Duration> = (0..SAMPLED)
            .map(|_| {
                n += 1;
                let started = std::time::Instant::now();
                bare.execute("INSERT INTO t (n, text) VALUES (?, 'a small row')", [n])
                    .expect("insert");
                started.elapsed()
            })
            .collect();
        eprintln!("bare_commit_{synchronous}: {}", percentiles(samples));
        group.bench_function(format!("bare_commit_{}", synchronous.to_lowercase()), |b| {
            b.iter(|| {
                n += 1;
                bare.execute("INSERT INTO t (n, text) VALUES (?, 'a small row')", [n])
                    .expect("insert");
            });
        });
    }
    // A save and a bare FULL commit alternately, timed one by one, so that both see the same
    // disk (fsync times on a shared virtual disk drift by 2x within minutes).
    // A third: the rows of a save (an installation and its bot, slack_sdk's schema) inserted by
    // a bare connection on the calling thread, FULL: what the save costs without the store.
    let bare = bare_connection(&bench::bench_dir().join("bare-paired.sqlite"), "FULL");
    let bare_rows = runtime.block_on(bare_schema_connection());
    let (saves, rest): (Vec<Duration>, Vec<(Duration, Duration)>) = runtime.block_on(async {
        let mut samples = Vec::new();
        for n in 0..SAMPLED {
            let installation = installation(counter.fetch_add(1, Ordering::Relaxed));
            let started = std::time::Instant::now();
            store.save(&installation).await.expect("save");
            let save = started.elapsed();
            let started = std::time::Instant::now();
            bare.execute(
                "INSERT INTO t (n, text) VALUES (?, 'a small row')",
                [n as i64],
            )
            .expect("insert");
            let commit = started.elapsed();
            let started = std::time::Instant::now();
            bare_save(&bare_rows, n);
            samples.push((save, (commit, started.elapsed())));
        }
        samples.into_iter().unzip()
    });
    let (commits, bare_saves): (Vec<Duration>, Vec<Duration>) = rest.into_iter().unzip();
    let ratio = |a: &[Duration], b: &[Duration]| median(a).as_secs_f64() / median(b).as_secs_f64();
    eprintln!(
        "save p50 / bare FULL commit p50: {:.2}x; save / bare save: {:.2}x; bare save / bare commit: {:.2}x",
        ratio(&saves, &commits),
        ratio(&saves, &bare_saves),
        ratio(&bare_saves, &commits)
    );
    eprintln!("save one at a time: {}", percentiles(saves));
    eprintln!("bare FULL commit, same loop: {}", percentiles(commits));
    eprintln!(
        "bare save (same rows, calling thread, FULL), same loop: {}",
        percentiles(bare_saves)
    );
    group.bench_function("save", |b| {
        b.to_async(&runtime).iter(|| async {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            store.save(&installation(n)).await.expect("save");
        });
    });
    const CONCURRENT: u64 = 16;
    let before = store.writer_stats();
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
    let after = store.writer_stats();
    #[allow(clippy::cast_precision_loss)] // counts of a benchmark run
    let group_size =
        (after.writes - before.writes) as f64 / (after.commits - before.commits) as f64;
    eprintln!("save_16_concurrent: {group_size:.1} writes per commit on average");
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

/// Calls timed one by one for the percentiles printed next to criterion's figures (criterion's
/// estimate is a mean, which the occasional checkpoint pulls up).
const SAMPLED: usize = 3000;

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// `p50 X µs, p90 Y µs, p99 Z µs, mean M µs` of `samples`.
fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: usize| samples[samples.len() * q / 100].as_secs_f64() * 1e6;
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / samples.len() as f64;
    format!(
        "p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, mean {mean:.0} µs ({} calls)",
        at(50),
        at(90),
        at(99),
        samples.len()
    )
}

/// A fresh file with the store's schema (created by the store), opened by a bare connection with
/// `synchronous=FULL`.
async fn bare_schema_connection() -> rusqlite::Connection {
    let path = bench::bench_dir().join("bare-save.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect(&url, CLIENT_ID).await.expect("schema");
    store.close().await.expect("close");
    let connection = rusqlite::Connection::open(&path).expect("bare save database");
    connection
        .execute_batch("PRAGMA synchronous = FULL")
        .expect("FULL");
    connection
}

/// An installation row and its bot row, as a save writes them, in one transaction.
fn bare_save(connection: &rusqlite::Connection, n: usize) {
    let team = format!("T{n}");
    let user = format!("U{n}");
    let token = format!("xoxe.xoxb-1-{n}-abcdefghijklmnopqrstuvwx");
    let refresh = format!("xoxe-1-{n}-abcdefghijklmnopqrstuvwxyz0123456789");
    connection.execute_batch("BEGIN IMMEDIATE").expect("begin");
    connection
        .prepare_cached(
            "INSERT INTO slack_installations (client_id, app_id, enterprise_id, team_id, \
             team_name, bot_token, bot_id, bot_user_id, bot_scopes, bot_refresh_token, \
             bot_token_expires_at, user_id, user_token, user_scopes, is_enterprise_install, \
             token_type, installed_at) VALUES ('111.222', 'A1', '', ?1, 'Team', ?2, 'B1', \
             'UB1', 'chat:write,commands', ?3, 1800000000, ?4, ?2, 'search:read', 0, 'bot', \
             '2026-12-03 10:00:00.000000')",
        )
        .and_then(|mut insert| insert.execute([&team, &token, &refresh, &user]))
        .expect("installation row");
    connection
        .prepare_cached(
            "INSERT INTO slack_bots (client_id, app_id, enterprise_id, team_id, team_name, \
             bot_token, bot_id, bot_user_id, bot_scopes, bot_refresh_token, \
             bot_token_expires_at, is_enterprise_install, installed_at) VALUES ('111.222', \
             'A1', '', ?1, 'Team', ?2, 'B1', 'UB1', 'chat:write,commands', ?3, 1800000000, 0, \
             '2026-12-03 10:00:00.000000')",
        )
        .and_then(|mut insert| insert.execute([&team, &token, &refresh]))
        .expect("bot row");
    connection.execute_batch("COMMIT").expect("commit");
}

/// A fresh database at `path` in WAL mode with one small table.
fn bare_connection(path: &std::path::Path, synchronous: &str) -> rusqlite::Connection {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let connection = rusqlite::Connection::open(path).expect("bare database");
    connection
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .expect("WAL");
    connection
        .execute_batch(&format!(
            "PRAGMA synchronous = {synchronous}; \
             CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, text TEXT)"
        ))
        .expect("bare schema");
    connection
}

criterion_group!(benches, lookups, writes);
criterion_main!(benches);
