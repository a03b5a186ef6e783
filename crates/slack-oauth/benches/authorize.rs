//! Authorize benchmarks: `Authorizer::authorize` on SQLite with 100,000 installations, uncached
//! and through `CachedStore`, on PostgreSQL (the `stores_postgres` seed), and signature
//! verification.
//!
//! ```text
//! cargo bench -p slack-oauth --bench authorize
//! TEST_DATABASE_URL=postgres://root@127.0.0.1:5432/postgres cargo bench -p slack-oauth --bench authorize
//! ```
//!
//! Besides criterion's medians, each case prints p50 / p99 and calls per second over
//! `AUTHORIZE_BENCH_CALLS` (default 20,000) sequential calls timed one by one. The SQLite seed
//! is the store benchmark's (`target/bench-dbs/installations-100000.sqlite`, same generator); the
//! PostgreSQL case reads the `slack_oauth_bench` database seeded by `--bench stores_postgres`
//! and prints `SKIPPED` without a URL or without that seed.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use slack_oauth::authorize::{AuthorizeRequest, Authorizer, CachedStore};
use slack_oauth::secret::SigningSecret;
use slack_oauth::store::{InstallationStore, PostgresStore, SqliteStore};
use slack_oauth_test::bench::Picker;
use time::OffsetDateTime;
use tokio::runtime::Runtime;

const CLIENT_ID: &str = "111.222";
const ROWS: u64 = 100_000;
/// Workspaces the cached case cycles through (all stay in the cache).
const HOT_WORKSPACES: u64 = 1_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The store benchmark's database with `ROWS` rows (`slack_oauth_test::bench`).
async fn sqlite() -> SqliteStore {
    slack_oauth_test::bench::seeded_sqlite(ROWS).await
}

/// A request from workspace `w`'s latest installer (one lookup).
fn installer_request(w: u64) -> AuthorizeRequest {
    AuthorizeRequest::team(format!("T{w}")).user(format!("U{}", 2 * w + 1))
}

/// A request from workspace `w`'s earlier installer (two lookups: workspace, then own).
fn other_user_request(w: u64) -> AuthorizeRequest {
    AuthorizeRequest::team(format!("T{w}")).user(format!("U{}", 2 * w))
}

async fn authorize<S: InstallationStore + Clone + 'static>(
    authorizer: &Authorizer<S>,
    request: AuthorizeRequest,
) {
    let result = authorizer.authorize(&request).await.expect("authorize");
    black_box(result.expect("authorized"));
}

fn calls() -> usize {
    std::env::var("AUTHORIZE_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

/// Times `calls()` sequential calls one by one and prints p50, p99 and calls per second.
fn percentiles<F, Fut>(runtime: &Runtime, name: &str, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let n = calls();
    let mut times = Vec::with_capacity(n);
    let started = Instant::now();
    runtime.block_on(async {
        for _ in 0..n {
            let one = Instant::now();
            call().await;
            times.push(one.elapsed());
        }
    });
    let total = started.elapsed();
    times.sort_unstable();
    let at = |q: f64| times[((n as f64 * q) as usize).min(n - 1)];
    eprintln!(
        "{name}: p50 {:.2?}  p99 {:.2?}  {:.0} calls/s ({n} sequential calls)",
        at(0.50),
        at(0.99),
        n as f64 / total.as_secs_f64()
    );
}

fn sqlite_benches(c: &mut Criterion) {
    let runtime = runtime();
    let store = runtime.block_on(sqlite());
    let uncached = Authorizer::new(store.clone());
    let cached_store = CachedStore::new(store);
    let cached = Authorizer::new(cached_store.clone());
    let picker = Picker::new(ROWS / 2);
    let hot = Picker::new(HOT_WORKSPACES);
    runtime.block_on(async {
        for w in 0..HOT_WORKSPACES {
            cached.authorize(&installer_request(w)).await.expect("warm");
            cached
                .authorize(&other_user_request(w))
                .await
                .expect("warm");
        }
    });

    percentiles(&runtime, "sqlite uncached, installer", || {
        authorize(&uncached, installer_request(picker.pick()))
    });
    percentiles(&runtime, "sqlite uncached, other user", || {
        authorize(&uncached, other_user_request(picker.pick()))
    });
    percentiles(&runtime, "sqlite cached, installer", || {
        authorize(&cached, installer_request(hot.pick()))
    });
    percentiles(&runtime, "sqlite cached, other user", || {
        authorize(&cached, other_user_request(hot.pick()))
    });

    let mut group = c.benchmark_group("authorize_sqlite_100k");
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("uncached_installer", |b| {
        b.to_async(&runtime)
            .iter(|| authorize(&uncached, installer_request(picker.pick())));
    });
    group.bench_function("uncached_other_user", |b| {
        b.to_async(&runtime)
            .iter(|| authorize(&uncached, other_user_request(picker.pick())));
    });
    group.bench_function("cached_installer", |b| {
        b.to_async(&runtime)
            .iter(|| authorize(&cached, installer_request(hot.pick())));
    });
    group.bench_function("cached_other_user", |b| {
        b.to_async(&runtime)
            .iter(|| authorize(&cached, other_user_request(hot.pick())));
    });
    group.finish();
}

fn postgres_benches(c: &mut Criterion) {
    let Some(url) = ["BENCH_DATABASE_URL", "TEST_DATABASE_URL"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
    else {
        eprintln!("SKIPPED: postgres authorize: BENCH_DATABASE_URL / TEST_DATABASE_URL is not set");
        return;
    };
    let runtime = runtime();
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).expect("valid URL");
    let store = runtime.block_on(async {
        PostgresStore::connect_with(options.database("slack_oauth_bench"), CLIENT_ID).await
    });
    let Ok(store) = store else {
        eprintln!("SKIPPED: postgres authorize: no slack_oauth_bench database; run --bench stores_postgres first");
        return;
    };
    let seeded = runtime
        .block_on(store.find_installation(&slack_oauth::store::InstallationQuery::team("T1")))
        .ok()
        .flatten()
        .is_some();
    if !seeded {
        eprintln!("SKIPPED: postgres authorize: slack_oauth_bench is not seeded; run --bench stores_postgres first");
        return;
    }
    // The stores_postgres seed: 50,000 workspaces T{w} (every tenth in org E{w}), users U0, U1.
    let request = |w: u64| {
        let request = AuthorizeRequest::team(format!("T{w}")).user("U1");
        if w % 10 == 0 {
            request.enterprise(format!("E{w}"))
        } else {
            request
        }
    };
    let uncached = Authorizer::new(store);
    let picker = Picker::new(50_000);
    percentiles(&runtime, "postgres uncached, installer", || {
        authorize(&uncached, request(picker.pick()))
    });
    let mut group = c.benchmark_group("authorize_postgres_100k");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("uncached_installer", |b| {
        b.to_async(&runtime)
            .iter(|| authorize(&uncached, request(picker.pick())));
    });
    group.finish();
}

fn signature_benches(c: &mut Criterion) {
    let secret = SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5");
    let body = format!(
        r#"{{"type":"event_callback","team_id":"T1","event":{{"type":"message","text":"{}"}}}}"#,
        "x".repeat(900)
    );
    let timestamp = "1767225600";
    let signature = slack_oauth::signature::sign(&secret, timestamp, body.as_bytes());
    let now = OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("valid time");
    let mut group = c.benchmark_group("signature");
    group.throughput(criterion::Throughput::Elements(1));
    group.bench_function("verify_1kb", |b| {
        b.iter(|| {
            slack_oauth::signature::verify(
                &secret,
                Some(timestamp),
                black_box(body.as_bytes()),
                Some(&signature),
                now,
            )
            .expect("valid")
        });
    });
    group.finish();
}

criterion_group!(benches, sqlite_benches, postgres_benches, signature_benches);
criterion_main!(benches);
