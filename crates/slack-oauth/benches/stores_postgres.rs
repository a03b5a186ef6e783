//! `PostgresStore` latency and throughput with 100,000 installations (criterion).
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

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::io::Write as _;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
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

fn database_url() -> Option<String> {
    ["BENCH_DATABASE_URL", "TEST_DATABASE_URL"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
}

/// Creates `slack_oauth_bench` if missing and connects a store to it.
async fn bench_store(url: &str, client_id: &str) -> PostgresStore {
    let options = PgConnectOptions::from_str(url).expect("BENCH_DATABASE_URL is not a valid URL");
    let mut admin = PgConnection::connect_with(&options)
        .await
        .expect("cannot connect to BENCH_DATABASE_URL");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut admin)
            .await
            .expect("cannot list databases");
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
            .execute(&mut admin)
            .await
            .expect("cannot create the benchmark database");
    }
    PostgresStore::connect_with(options.database(DATABASE), client_id)
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
