//! `PostgresStore` latency and throughput with 100,000 installations, against `pgbench` on the
//! same server.
//!
//! ```text
//! BENCH_DATABASE_URL=postgres://root@127.0.0.1:5432/postgres \
//!     cargo bench -p slack-oauth --bench stores_postgres
//! ```
//!
//! `BENCH_DATABASE_URL` (or `TEST_DATABASE_URL`) names any database on the server; the benchmark
//! works in a database of its own, `slack_oauth_bench`, created on first run and seeded in bulk
//! (one `INSERT … SELECT FROM UNNEST` per table) with 100,000 installations and their bots. Later
//! runs reuse the seed. Without a URL it prints `SKIPPED` and exits successfully.
//!
//! First, the floor: `pgbench -S -M prepared -c 1` (a prepared single-row `SELECT` by primary
//! key, one client) in the database `slack_oauth_pgbench` (created and initialized with
//! `pgbench -i -s 1` when missing), run before and after the store's lookups. Each lookup is then
//! timed call by call (5,000 calls, in a task on the runtime as a request handler would run it),
//! and its median is compared with pgbench's average latency; saves are counted per second with
//! 1 and 32 in flight, and with 32 in flight again with the schema's change triggers off, on,
//! and on with a listener (what the change notifications cost a save). Without `pgbench` on
//! the `PATH` the comparison prints a loud `SKIPPED` line and the store's figures alone. Then
//! criterion's benchmarks, as before.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::io::Write as _;
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use slack_oauth::installation::{Installation, Scopes};
use slack_oauth::secret::{BotToken, RefreshToken};
use slack_oauth::store::{InstallationQuery, InstallationStore, PostgresStore, StateStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use tokio::runtime::Runtime;

/// The app whose 100,000 installations the lookups read.
const CLIENT_ID: &str = "111.222";
/// The app that `save` benchmarks write to (emptied at every run, so the seed stays as it is).
const SAVE_CLIENT_ID: &str = "bench.save";
const DATABASE: &str = "slack_oauth_bench";
/// 50,000 workspaces with two installations each (two installers, so "latest" has history to
/// skip); every tenth workspace is in an org (E…), and 500 more installations are org-wide.
const WORKSPACES: i32 = 50_000;
const ORG_WIDE: i32 = 500;
const INSTALLATIONS: i64 = 2 * WORKSPACES as i64;
/// The database `pgbench -i -s 1` initializes (100,000 rows in `pgbench_accounts`).
const PGBENCH_DATABASE: &str = "slack_oauth_pgbench";
const PGBENCH_ACCOUNTS: i64 = 100_000;
/// Timed calls per lookup, after as many untimed ones as [`WARM_UP_CALLS`].
const TIMED_CALLS: usize = 5_000;
const WARM_UP_CALLS: usize = 500;
/// The targets of issue #10: lookups within 1.3x of pgbench, 5,000 saves/s with 32 in flight.
const TARGET_RATIO: f64 = 1.3;
const TARGET_SAVES_PER_SECOND: f64 = 5_000.0;
/// Rounds, and saves per round and condition, of [`notify_cost`].
const NOTIFY_ROUNDS: usize = 5;
const NOTIFY_SAVES: u64 = 10_000;

fn database_url() -> Option<String> {
    ["BENCH_DATABASE_URL", "TEST_DATABASE_URL"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
}

/// Creates `database` on the server of `url` if missing.
async fn ensure_database(url: &str, database: &str) -> PgConnectOptions {
    let options = PgConnectOptions::from_str(url).expect("BENCH_DATABASE_URL is not a valid URL");
    let mut admin = PgConnection::connect_with(&options)
        .await
        .expect("cannot connect to BENCH_DATABASE_URL");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut admin)
            .await
            .expect("cannot list databases");
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .expect("cannot create a benchmark database");
    }
    options.database(database)
}

/// Creates `slack_oauth_bench` if missing and connects a store to it.
async fn bench_store(url: &str, client_id: &str) -> PostgresStore {
    let options = ensure_database(url, DATABASE).await;
    PostgresStore::connect_with(options, client_id)
        .await
        .expect("cannot open the benchmark database")
}

/// Seeds 100,000 installations (and a bot per installation) unless a previous run did.
async fn seed(store: &PostgresStore) {
    let have: i64 =
        sqlx::query_scalar("SELECT count(*) FROM slack_installations WHERE client_id = $1")
            .bind(CLIENT_ID)
            .fetch_one(store.pool())
            .await
            .expect("cannot count installations");
    if have == INSTALLATIONS + i64::from(ORG_WIDE) {
        return;
    }
    eprintln!("seeding {DATABASE} with {INSTALLATIONS} installations...");
    let started = Instant::now();
    let mut enterprise = Vec::new();
    let mut team = Vec::new();
    let mut user = Vec::new();
    let mut bot_token = Vec::new();
    let mut org_wide = Vec::new();
    let mut installed_at = Vec::new();
    let base = OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("valid time");
    for w in 0..WORKSPACES {
        for version in 0..2 {
            enterprise.push((w % 10 == 0).then(|| format!("E{w}")));
            team.push(Some(format!("T{w}")));
            user.push(format!("U{version}"));
            bot_token.push(format!("xoxb-{w}-{version}"));
            org_wide.push(false);
            installed_at.push(naive(base + time::Duration::minutes(version)));
        }
    }
    for o in 0..ORG_WIDE {
        enterprise.push(Some(format!("EO{o}")));
        team.push(None);
        user.push("U0".to_owned());
        bot_token.push(format!("xoxb-org-{o}"));
        org_wide.push(true);
        installed_at.push(naive(base));
    }
    let mut tx = store.pool().begin().await.expect("cannot begin");
    for table in ["slack_installations", "slack_bots"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE client_id = $1"))
            .bind(CLIENT_ID)
            .execute(&mut *tx)
            .await
            .expect("cannot clear the seed");
    }
    sqlx::query(
        "INSERT INTO slack_installations (client_id, app_id, enterprise_id, team_id, team_name, \
           bot_token, bot_id, bot_user_id, bot_scopes, user_id, is_enterprise_install, \
           token_type, installed_at) \
         SELECT $1, 'A111', e, t, 'bench', b, 'B111', 'UB111', 'chat:write,commands', u, o, \
           'bot', at \
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], \
           $7::timestamp[]) AS s(e, t, u, b, o, at)",
    )
    .bind(CLIENT_ID)
    .bind(&enterprise)
    .bind(&team)
    .bind(&user)
    .bind(&bot_token)
    .bind(&org_wide)
    .bind(&installed_at)
    .execute(&mut *tx)
    .await
    .expect("cannot seed installations");
    sqlx::query(
        "INSERT INTO slack_bots (client_id, app_id, enterprise_id, team_id, team_name, \
           bot_token, bot_id, bot_user_id, bot_scopes, is_enterprise_install, installed_at) \
         SELECT client_id, app_id, enterprise_id, team_id, team_name, bot_token, bot_id, \
           bot_user_id, bot_scopes, is_enterprise_install, installed_at \
         FROM slack_installations WHERE client_id = $1",
    )
    .bind(CLIENT_ID)
    .execute(&mut *tx)
    .await
    .expect("cannot seed bots");
    tx.commit().await.expect("cannot commit the seed");
    sqlx::raw_sql("ANALYZE slack_installations; ANALYZE slack_bots")
        .execute(store.pool())
        .await
        .expect("cannot analyze");
    eprintln!("seeded in {:.1?}", started.elapsed());
}

fn naive(at: OffsetDateTime) -> time::PrimitiveDateTime {
    time::PrimitiveDateTime::new(at.date(), at.time())
}

/// A different workspace for every call, spread over the whole seed.
fn next_workspace(counter: &AtomicU64) -> i32 {
    let n = counter.fetch_add(7_919, Ordering::Relaxed); // a prime stride
    i32::try_from(n % WORKSPACES.unsigned_abs() as u64).unwrap_or(0)
}

fn workspace_query(w: i32) -> InstallationQuery {
    let query = InstallationQuery::team(format!("T{w}"));
    if w % 10 == 0 {
        query.enterprise(format!("E{w}"))
    } else {
        query
    }
}

fn bench_lookups(c: &mut Criterion, runtime: &Runtime, store: &PostgresStore) {
    let mut group = c.benchmark_group("postgres_100k");
    group.throughput(Throughput::Elements(1));
    let counter = AtomicU64::new(0);
    group.bench_function("find_bot", |b| {
        b.to_async(runtime).iter(|| async {
            let query = workspace_query(next_workspace(&counter));
            let bot = store.find_bot(&query).await.expect("find_bot failed");
            assert!(bot.is_some());
        });
    });
    group.bench_function("find_installation", |b| {
        b.to_async(runtime).iter(|| async {
            let query = workspace_query(next_workspace(&counter));
            let found = store.find_installation(&query).await.expect("find failed");
            assert_eq!(found.expect("seeded").user_id.as_str(), "U1");
        });
    });
    group.bench_function("find_installation_user", |b| {
        b.to_async(runtime).iter(|| async {
            let query = workspace_query(next_workspace(&counter)).user("U0");
            let found = store.find_installation(&query).await.expect("find failed");
            assert!(found.is_some());
        });
    });
    group.bench_function("find_installation_org_wide", |b| {
        b.to_async(runtime).iter(|| async {
            let o = next_workspace(&counter) % ORG_WIDE;
            let query = InstallationQuery::org(format!("EO{o}"));
            let found = store.find_installation(&query).await.expect("find failed");
            assert!(found.is_some());
        });
    });
    group.finish();
}

fn installation(n: u64) -> Installation {
    let at = OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("valid time")
        + Duration::from_micros(n);
    let mut installation = Installation::new("U1", at);
    installation.app_id = Some("A111".into());
    installation.team_id = Some(format!("TS{}", n % 10_000).into());
    installation.bot_token = Some(BotToken::new(format!("xoxe.xoxb-save-{n}")));
    installation.bot_refresh_token = Some(RefreshToken::new(format!("xoxe-1-save-{n}")));
    installation.bot_id = Some("B111".into());
    installation.bot_user_id = Some("UB111".into());
    installation.bot_scopes = Scopes::parse("chat:write,commands");
    installation
}

fn bench_writes(c: &mut Criterion, runtime: &Runtime, save_store: &PostgresStore) {
    let mut group = c.benchmark_group("postgres_writes");
    let counter = AtomicU64::new(0);
    group.throughput(Throughput::Elements(1));
    group.bench_function("save", |b| {
        b.to_async(runtime).iter(|| async {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            save_store
                .save(&installation(n))
                .await
                .expect("save failed");
        });
    });
    // Throughput with several saves in flight, as from many instances or requests.
    for concurrency in [8_u64, 32] {
        group.throughput(Throughput::Elements(concurrency));
        group.bench_with_input(
            BenchmarkId::new("save_concurrent", concurrency),
            &concurrency,
            |b, &concurrency| {
                b.to_async(runtime).iter(|| async {
                    let saves = (0..concurrency).map(|_| {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let store = save_store.clone();
                        tokio::spawn(async move { store.save(&installation(n)).await })
                    });
                    for save in futures::future::join_all(saves).await {
                        save.expect("task panicked").expect("save failed");
                    }
                });
            },
        );
    }
    group.throughput(Throughput::Elements(1));
    let now = OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("valid time");
    group.bench_function("state_issue_consume", |b| {
        b.to_async(runtime).iter(|| async {
            let state = save_store
                .issue(now + Duration::from_secs(600))
                .await
                .expect("issue failed");
            assert!(save_store
                .consume(&state, now)
                .await
                .expect("consume failed"));
        });
    });
    group.finish();
}

/// `url` with its database replaced by `database` (a URI that pgbench accepts as its dbname).
fn url_of_database(url: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).expect("BENCH_DATABASE_URL is not a valid URL");
    url.set_path(database);
    url.into()
}

/// Runs pgbench with `args` against `url`; its standard output, or why it could not run.
fn pgbench(args: &[&str], url: &str) -> Result<String, String> {
    let output = Command::new("pgbench")
        .args(args)
        .arg(url)
        .output()
        .map_err(|error| format!("cannot run pgbench: {error}"))?;
    if !output.status.success() {
        // pgbench's messages name the database, never a password.
        return Err(format!(
            "pgbench {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Makes `slack_oauth_pgbench` hold pgbench's scale-1 tables (idempotent: initializes only when
/// `pgbench_accounts` is missing or incomplete).
async fn prepare_pgbench(url: &str) -> Result<String, String> {
    let options = ensure_database(url, PGBENCH_DATABASE).await;
    let pgbench_url = url_of_database(url, PGBENCH_DATABASE);
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|error| format!("cannot connect to {PGBENCH_DATABASE}: {error}"))?;
    let accounts: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM pgbench_accounts")
        .fetch_one(&mut conn)
        .await;
    if accounts.ok() != Some(PGBENCH_ACCOUNTS) {
        eprintln!("initializing {PGBENCH_DATABASE} with pgbench -i -s 1...");
        pgbench(&["-i", "-s", "1", "-q"], &pgbench_url)?;
    }
    Ok(pgbench_url)
}

/// pgbench's average latency of a prepared single-row `SELECT`, one client, 5 s, in µs.
fn pgbench_select_latency(pgbench_url: &str) -> Result<f64, String> {
    let report = pgbench(
        &["-S", "-M", "prepared", "-c", "1", "-T", "5", "-n"],
        pgbench_url,
    )?;
    // "latency average = 0.065 ms"
    report
        .lines()
        .find_map(|line| line.strip_prefix("latency average = "))
        .and_then(|rest| rest.strip_suffix(" ms"))
        .and_then(|ms| ms.trim().parse::<f64>().ok())
        .map(|ms| ms * 1_000.0)
        .ok_or_else(|| format!("no \"latency average\" in pgbench's report:\n{report}"))
}

/// Per-call latencies of a timed loop: median and tail, in µs.
struct Latencies {
    p50: f64,
    p90: f64,
    p99: f64,
}

impl Latencies {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q) as usize).min(samples.len() - 1);
            samples[index].as_secs_f64() * 1e6
        };
        Self {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
        }
    }
}

/// Times `TIMED_CALLS` calls of `lookup`, one at a time, in a task on the runtime (where an
/// app's request handler runs), after `WARM_UP_CALLS` untimed ones.
fn time_lookups<F, Fut>(runtime: &Runtime, lookup: F) -> Latencies
where
    F: Fn(usize) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let samples = runtime.block_on(async move {
        tokio::spawn(async move {
            let mut samples = Vec::with_capacity(TIMED_CALLS);
            for i in 0..WARM_UP_CALLS + TIMED_CALLS {
                let started = Instant::now();
                lookup(i).await;
                if i >= WARM_UP_CALLS {
                    samples.push(started.elapsed());
                }
            }
            samples
        })
        .await
        .expect("the timed loop panicked")
    });
    Latencies::of(samples)
}

/// Saves per second with `in_flight` saves at a time (`total` in all), and the median save.
fn time_saves(
    runtime: &Runtime,
    store: &PostgresStore,
    in_flight: usize,
    total: u64,
) -> (f64, f64) {
    let next = Arc::new(AtomicU64::new(1 << 40));
    let started = Instant::now();
    let samples = runtime.block_on(async {
        let workers = (0..in_flight).map(|_| {
            let store = store.clone();
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n - (1 << 40) >= total {
                        return samples;
                    }
                    let call = Instant::now();
                    store.save(&installation(n)).await.expect("save failed");
                    samples.push(call.elapsed());
                }
            })
        });
        let mut all = Vec::new();
        for worker in futures::future::join_all(workers).await {
            all.extend(worker.expect("a save worker panicked"));
        }
        all
    });
    let elapsed = started.elapsed().as_secs_f64();
    (total as f64 / elapsed, Latencies::of(samples).p50)
}

/// The figures issue #10 asks for: lookups against pgbench, saves per second.
fn compare_with_pgbench(
    runtime: &Runtime,
    url: &str,
    store: &PostgresStore,
    save_store: &PostgresStore,
) {
    let pgbench_url = runtime.block_on(prepare_pgbench(url));
    let before = pgbench_url
        .as_deref()
        .map_err(Clone::clone)
        .and_then(pgbench_select_latency);
    let lookups = [
        ("find_bot", {
            let store = store.clone();
            time_lookups(runtime, move |i| {
                let store = store.clone();
                async move {
                    let query = workspace_query(spread(i));
                    let bot = store.find_bot(&query).await.expect("find_bot failed");
                    assert!(bot.is_some());
                }
            })
        }),
        ("find_installation", {
            let store = store.clone();
            time_lookups(runtime, move |i| {
                let store = store.clone();
                async move {
                    let query = workspace_query(spread(i));
                    let found = store.find_installation(&query).await.expect("find failed");
                    assert_eq!(found.expect("seeded").user_id.as_str(), "U1");
                }
            })
        }),
    ];
    let after = pgbench_url
        .as_deref()
        .map_err(Clone::clone)
        .and_then(pgbench_select_latency);
    let pgbench_latency = match (&before, &after) {
        (Ok(before), Ok(after)) => {
            println!(
                "pgbench -S -M prepared -c 1: {:.1} µs (mean of {before:.1} µs before and \
                 {after:.1} µs after the lookups)",
                (before + after) / 2.0
            );
            Some((before + after) / 2.0)
        }
        (Err(error), _) | (_, Err(error)) => {
            println!("!!! SKIPPED: the pgbench comparison: {error}");
            None
        }
    };
    for (name, latency) in &lookups {
        let ratio = match pgbench_latency {
            Some(pgbench) => {
                let ratio = latency.p50 / pgbench;
                let verdict = if ratio <= TARGET_RATIO {
                    "met"
                } else {
                    "NOT MET"
                };
                format!("ratio {ratio:.2}, target <= {TARGET_RATIO}: {verdict}")
            }
            None => "ratio SKIPPED: no pgbench figure".to_owned(),
        };
        println!(
            "{name} p50 {:.1} µs ({ratio}); p90 {:.1} µs, p99 {:.1} µs",
            latency.p50, latency.p90, latency.p99
        );
    }
    for (in_flight, total) in [(1, 2_000), (32, 20_000)] {
        let (rate, p50) = time_saves(runtime, save_store, in_flight, total);
        let target = if in_flight == 32 {
            let verdict = if rate >= TARGET_SAVES_PER_SECOND {
                "met"
            } else {
                "NOT MET"
            };
            format!(", target >= {TARGET_SAVES_PER_SECOND}/s: {verdict}")
        } else {
            String::new()
        };
        println!("save, {in_flight} in flight: {rate:.0}/s{target} (p50 {p50:.0} µs per save)");
    }
}

/// Turns the schema's change triggers on or off (in the benchmark's own database).
fn set_change_triggers(runtime: &Runtime, store: &PostgresStore, enabled: bool) {
    let action = if enabled { "ENABLE" } else { "DISABLE" };
    runtime.block_on(async {
        for table in ["slack_installations", "slack_bots"] {
            sqlx::query(&format!("ALTER TABLE {table} {action} TRIGGER USER"))
                .execute(store.pool())
                .await
                .expect("cannot switch the change triggers");
        }
    });
}

/// What the change notifications cost a save: saves per second with 32 in flight, the schema's
/// triggers off, on with nobody listening, and on with one `LISTEN` connection draining them (as
/// every instance with an authorize cache has). The store's own sessions skip the triggers and
/// notify after each commit, so "on" should cost nothing over "off"; before they did, a NOTIFY
/// in every save held PostgreSQL's notification lock through its commit flush. The three
/// alternate for [`NOTIFY_ROUNDS`] rounds so that the host's drift falls on all of them; each
/// figure is the median of its rounds.
fn notify_cost(runtime: &Runtime, save_store: &PostgresStore) {
    #[derive(Clone, Copy, PartialEq)]
    enum Triggers {
        Off,
        Unheard,
        Listened,
    }
    let conditions = [Triggers::Off, Triggers::Unheard, Triggers::Listened];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); conditions.len()];
    // Notifications the listener received: a listened round must have heard its saves.
    let heard = Arc::new(AtomicU64::new(0));
    for _ in 0..NOTIFY_ROUNDS {
        for (index, &condition) in conditions.iter().enumerate() {
            set_change_triggers(runtime, save_store, condition != Triggers::Off);
            let listener = (condition == Triggers::Listened).then(|| {
                let heard = Arc::clone(&heard);
                let changes = runtime
                    .block_on(save_store.changes())
                    .expect("cannot LISTEN");
                runtime.spawn(async move {
                    use futures::StreamExt as _;
                    let mut changes = std::pin::pin!(changes);
                    while changes.next().await.is_some() {
                        heard.fetch_add(1, Ordering::Relaxed);
                    }
                })
            });
            let (rate, _) = time_saves(runtime, save_store, 32, NOTIFY_SAVES);
            rates[index].push(rate);
            if let Some(listener) = listener {
                // Let the last commits' notifications arrive, then stop listening.
                runtime.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
                listener.abort();
            }
        }
    }
    set_change_triggers(runtime, save_store, true);
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    let off = median(&mut rates[0]);
    let unheard = median(&mut rates[1]);
    let listened = median(&mut rates[2]);
    let cost = |rate: f64| 100.0 * (1.0 - rate / off);
    println!(
        "change triggers, saves/s with 32 in flight (median of {NOTIFY_ROUNDS} alternating rounds \
         of {NOTIFY_SAVES}): off {off:.0}/s; on, nobody listening {unheard:.0}/s ({:.1}% slower); \
         on, with a listener {listened:.0}/s ({:.1}% slower; it heard {} changes)",
        cost(unheard),
        cost(listened),
        heard.load(Ordering::Relaxed),
    );
}

/// The `i`-th workspace of a timed loop, spread over the whole seed.
fn spread(i: usize) -> i32 {
    i32::try_from(i.wrapping_mul(7_919) % WORKSPACES.unsigned_abs() as usize).unwrap_or(0)
}

fn benches(c: &mut Criterion) {
    let Some(url) = database_url() else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: postgres benchmarks: BENCH_DATABASE_URL / TEST_DATABASE_URL is not set"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime");
    let (store, save_store) = runtime.block_on(async {
        let store = bench_store(&url, CLIENT_ID).await;
        seed(&store).await;
        let save_store = bench_store(&url, SAVE_CLIENT_ID).await;
        for table in ["slack_installations", "slack_bots"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE client_id = $1"))
                .bind(SAVE_CLIENT_ID)
                .execute(save_store.pool())
                .await
                .expect("cannot clear earlier saves");
        }
        (store, save_store)
    });
    // On, as the migrations made them, whatever an interrupted earlier run left.
    set_change_triggers(&runtime, &save_store, true);
    compare_with_pgbench(&runtime, &url, &store, &save_store);
    notify_cost(&runtime, &save_store);
    bench_lookups(c, &runtime, &store);
    bench_writes(c, &runtime, &save_store);
}

criterion_group! {
    name = postgres;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = benches
}

criterion_main!(postgres);
