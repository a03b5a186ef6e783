//! The cost of encryption at rest: the same saves and uncached lookups on a store without keys
//! and with `SLACK_TOKEN_ENCRYPTION_KEYS`-style keys (five token columns per installation, two
//! per bot, sealed on save and opened on every read), on a SQLite file and, when
//! `BENCH_DATABASE_URL` (or `TEST_DATABASE_URL`) names a PostgreSQL server, on PostgreSQL (a
//! fresh schema per run, dropped afterwards).
//!
//! Run: `cargo bench -p slack-oauth --bench encryption` (figures in BENCHMARKS.md).
//! `ENCRYPTION_BENCH_N` sets the installations (default 20,000).

use std::time::{Duration, Instant};

use slack_oauth::encryption::EncryptionKeys;
use slack_oauth::installation::{Installation, Scopes};
use slack_oauth::secret::{BotToken, RefreshToken, UserToken};
use slack_oauth::store::{InstallationQuery, InstallationStore, SqliteStore};
use time::OffsetDateTime;

const CLIENT_ID: &str = "111.222";
const KEY: &str = "bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // fake

fn installation(i: u64) -> Installation {
    let now = OffsetDateTime::now_utc();
    let mut installation = Installation::new(format!("U{i:06}"), now);
    installation.team_id = Some(format!("T{i:06}").into());
    installation.bot_id = Some("B0BENCH".into());
    installation.bot_user_id = Some("U0BENCHBOT".into());
    installation.bot_scopes = Scopes::parse("chat:write,commands");
    installation.bot_token = Some(BotToken::new(format!(
        "xoxe.xoxb-1-bench-{i:06}-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    ))); // fake
    installation.bot_refresh_token = Some(RefreshToken::new(format!(
        "xoxe-1-bench-bot-{i:06}-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    ))); // fake
    installation.bot_token_expires_at = Some(now + time::Duration::hours(12));
    installation.user_scopes = Scopes::parse("search:read");
    installation.user_token = Some(UserToken::new(format!(
        "xoxe.xoxp-1-bench-{i:06}-cccccccccccccccccccccccccccccccccccccccccccc"
    ))); // fake
    installation.user_refresh_token = Some(RefreshToken::new(format!(
        "xoxe-1-bench-user-{i:06}-dddddddddddddddddddddddddddddddddddddddddddd"
    ))); // fake
    installation.user_token_expires_at = Some(now + time::Duration::hours(12));
    installation.incoming_webhook_url = Some(format!(
        "https://hooks.slack.com/services/T{i:06}/B1/eeeeeeeeeeeeeeeeeeeeeeee"
    ));
    installation
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

/// Saves `n` installations one at a time, then looks each up once, and prints the latencies.
async fn measure(
    label: &str,
    store: &impl InstallationStore,
    n: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut saves = Vec::with_capacity(n as usize);
    for i in 0..n {
        let installation = installation(i);
        let started = Instant::now();
        store.save(&installation).await?;
        saves.push(started.elapsed());
    }
    let mut lookups = Vec::with_capacity(n as usize);
    for i in 0..n {
        // Scattered over the table, as uncached authorize lookups are.
        let team = format!("T{:06}", (i * 7_919) % n);
        let started = Instant::now();
        let found = store
            .find_installation(&InstallationQuery::team(team))
            .await?;
        lookups.push(started.elapsed());
        assert!(found.is_some_and(|found| found.user_token.is_some()));
    }
    println!(
        "{label}: save (durable, one at a time) p50 {:.1?} p99 {:.1?}; find_installation \
         (uncached, all five tokens opened) p50 {:.1?} p99 {:.1?} ({n} each)",
        percentile(&mut saves, 50),
        percentile(&mut saves, 99),
        percentile(&mut lookups, 50),
        percentile(&mut lookups, 99),
    );
    Ok(())
}

/// [`measure`] on a fresh SQLite file.
async fn measure_sqlite(
    label: &str,
    keys: Option<EncryptionKeys>,
    n: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = SqliteStore::connect_encrypted(&url, CLIENT_ID, keys).await?;
    measure(&format!("sqlite {label}"), &store, n).await?;
    store.close().await?;
    Ok(())
}

/// [`measure`] in a fresh schema of the PostgreSQL server at `url`, dropped afterwards.
#[cfg(feature = "postgres")]
async fn measure_postgres(
    url: &str,
    label: &str,
    keys: Option<EncryptionKeys>,
    n: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    use slack_oauth::store::PostgresStore;
    let schema = format!("slack_oauth_bench_encryption_{}", std::process::id());
    // Created by the plain store, then opened by URL as an app would (with keys or without).
    let created = PostgresStore::connect_in_schema(url, CLIENT_ID, &schema).await?;
    created.close().await;
    let mut in_schema = url::Url::parse(url)?;
    in_schema
        .query_pairs_mut()
        .append_pair("options[search_path]", &schema);
    let store = PostgresStore::connect_encrypted(in_schema.as_str(), CLIENT_ID, keys).await?;
    let measured = measure(&format!("postgres {label}"), &store, n).await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(store.pool())
        .await?;
    store.close().await;
    measured
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = std::env::var("ENCRYPTION_BENCH_N")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Alternating, twice, so that drift of the machine shows.
        for _ in 0..2 {
            measure_sqlite("plaintext", None, n).await?;
            measure_sqlite("encrypted", Some(EncryptionKeys::parse(KEY)?), n).await?;
        }
        #[cfg(feature = "postgres")]
        if let Some(url) = ["BENCH_DATABASE_URL", "TEST_DATABASE_URL"]
            .into_iter()
            .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
        {
            for _ in 0..2 {
                measure_postgres(&url, "plaintext", None, n).await?;
                measure_postgres(&url, "encrypted", Some(EncryptionKeys::parse(KEY)?), n).await?;
            }
        }
        Ok(())
    })
}
