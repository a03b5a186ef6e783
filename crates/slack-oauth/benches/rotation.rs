//! Token rotation benchmark: `rotate_all` over N installations (bot and user tokens each, all
//! due) stored in SQLite, against the emulator with 50 ms added latency per call, concurrency
//! 64, no per-minute budget.
//!
//! Run: `cargo bench -p slack-oauth --bench rotation` (figures in BENCHMARKS.md).
//! `ROTATION_BENCH_N=2000` changes N (default 10,000); `ROTATION_BENCH_LATENCY_MS` the latency.
//!
//! "Ideal" is N × latency / 64: each of the 64 slots rotates one installation at a time, and an
//! installation's bot and user refreshes run concurrently, so one installation costs one
//! latency. (Counting calls instead, 2N × latency / 64, would be twice as lenient.)

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use slack_emulator::{Emulator, EmulatorConfig, Grant};
use slack_oauth::api::{Client, ClientCredentials};
use slack_oauth::installation::{Installation, Scopes};
use slack_oauth::rotation::{rotate_all, BatchOptions, Rotation, RotationEvent, TokenRotator};
use slack_oauth::secret::{BotToken, RefreshToken, UserToken};
use slack_oauth::store::{InstallationStore, SqliteStore};
use time::OffsetDateTime;

const CLIENT_ID: &str = "111.222";
const CONCURRENCY: usize = 64;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn installation(emulator: &Emulator, i: u64, expires_at: OffsetDateTime) -> Installation {
    let team = format!("T{i:06}");
    let user = format!("U{i:06}");
    let mut grant = Grant::for_team(&team);
    grant.user_id.clone_from(&user);
    let (bot, bot_refresh) = emulator.seed_refresh_token(&grant, false);
    let (user_token, user_refresh) = emulator.seed_refresh_token(&grant, true);
    let mut installation = Installation::new(user, expires_at - time::Duration::hours(12));
    installation.app_id = Some("A0EMULATOR".into());
    installation.team_id = Some(team.into());
    installation.bot_id = Some("B0EMULATOR".into());
    installation.bot_user_id = Some("U0EMULBOT".into());
    installation.bot_scopes = Scopes::parse("chat:write,commands");
    installation.bot_token = Some(BotToken::new(bot));
    installation.bot_refresh_token = Some(RefreshToken::new(bot_refresh));
    installation.bot_token_expires_at = Some(expires_at);
    installation.user_scopes = Scopes::parse("search:read");
    installation.user_token = Some(UserToken::new(user_token));
    installation.user_refresh_token = Some(RefreshToken::new(user_refresh));
    installation.user_token_expires_at = Some(expires_at);
    installation
}

async fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let n = env_or("ROTATION_BENCH_N", 10_000);
    let latency = Duration::from_millis(env_or("ROTATION_BENCH_LATENCY_MS", 50));
    let emulator = Emulator::spawn(EmulatorConfig {
        rotation: true,
        ..EmulatorConfig::default()
    })
    .await?;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-dbs");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("rotation-{}.sqlite", std::process::id()));
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()), CLIENT_ID).await?;

    let seeding = Instant::now();
    #[allow(clippy::disallowed_methods)] // the benchmark's own clock
    let expired = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let installations: Vec<_> = (0..n)
        .map(|i| installation(&emulator, i, expired))
        .collect();
    futures::stream::iter(installations)
        .map(|installation| {
            let store = store.clone();
            async move { store.save(&installation).await }
        })
        .buffer_unordered(8)
        .for_each(|saved| async move { saved.expect("seed save") })
        .await;
    println!("seeded {n} installations in {:.1?}", seeding.elapsed());

    emulator.set_latency(latency);
    let client = Client::builder().base_url(emulator.api_url()).build()?;
    let rotator = TokenRotator::new(client, ClientCredentials::new(CLIENT_ID, "secret"));
    let rotation = Rotation::new(rotator, store.clone()).max_per_minute(0);
    let options = BatchOptions {
        concurrency: CONCURRENCY,
        ..BatchOptions::default()
    };
    let started = Instant::now();
    let mut events = std::pin::pin!(rotate_all(rotation, options));
    let mut summary = None;
    while let Some(event) = events.next().await {
        match event {
            RotationEvent::Failed { error, .. } => eprintln!("failed: {error}"),
            RotationEvent::Finished { summary: done } => summary = Some(done),
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    let summary = summary.ok_or("no Finished event")?;
    let counters = emulator.counters();
    #[allow(clippy::cast_precision_loss)] // small counts
    let ideal = latency.as_secs_f64() * n as f64 / CONCURRENCY as f64;
    println!(
        "rotated {} installations ({} bot + {} user tokens, {} failed) in {:.2} s",
        summary.rotated,
        summary.bot_tokens,
        summary.user_tokens,
        summary.failed,
        elapsed.as_secs_f64()
    );
    println!(
        "emulator: {} refreshes served, {} spent-token reuses",
        counters.refreshes_served, counters.spent_refresh_token_reuse
    );
    println!(
        "ideal N x {} ms / {CONCURRENCY} = {ideal:.2} s; ratio {:.2}x (target <= 1.2x)",
        latency.as_millis(),
        elapsed.as_secs_f64() / ideal
    );
    assert_eq!(counters.refreshes_served, 2 * n, "one refresh per token");
    assert_eq!(counters.spent_refresh_token_reuse, 0);
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this as a smoke test.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("rotation benchmark: run with `cargo bench -p slack-oauth --bench rotation`");
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench())
}
