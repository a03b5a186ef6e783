//! The rotation scenarios of reliability.md §5 with trial counts: a few trials in CI, the
//! counts RELIABILITY.md reports with `SLACK_OAUTH_RELIABILITY=full`. Each prints one
//! `RELIABILITY ...` line (`N passed, N failed` and its counts); run with `--no-capture`.
//!
//! Each trial runs in its own task on a fresh emulator (no refresh grace, and a second
//! redemption of a spent token revokes its whole family: the strictest Slack) and a fresh store,
//! so a panic fails that trial only.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slack_emulator::{Emulator, EmulatorConfig, Fault, RefreshTokenStatus};
use slack_oauth::authorize::{AuthorizeRequest, Authorizer};
use slack_oauth::installation::Bot;
use slack_oauth::rotation::{Rotation, RotationError, TokenRotator};
use slack_oauth::store::{
    AnyStore, InstallationQuery, InstallationStore, MemoryStore, TokenUpdate,
};
use time::OffsetDateTime;

use super::{long_ago, rotating_installation};
use crate::support;

/// The strictest emulator: no grace, reuse revokes the family.
async fn strict_emulator() -> Emulator {
    support::emulator(EmulatorConfig {
        reuse_revokes_family: true,
        ..support::rotating_config()
    })
    .await
}

fn rotation<S: InstallationStore + Clone + 'static>(
    emulator: &Emulator,
    store: S,
    deadline: Duration,
    events: &Arc<AtomicU32>,
) -> Rotation<S> {
    let rotator = TokenRotator::new(support::client(emulator), support::credentials());
    let events = Arc::clone(events);
    Rotation::new(rotator, store)
        .lease_ttl(Duration::from_secs(2))
        .slack_timeout(deadline)
        .on_reinstall_needed(move |_| {
            events.fetch_add(1, Ordering::SeqCst);
        })
}

/// Runs `trials` trials, each in its own task; returns the outcomes of the passing ones and
/// the failures.
async fn run<T, F, Fut>(trials: usize, mut trial: F) -> (Vec<T>, Vec<String>)
where
    T: Send + 'static,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for n in 0..trials {
        match tokio::spawn(trial(n)).await {
            Ok(outcome) => passed.push(outcome),
            Err(error) => failed.push(format!("trial {n}: {error}")),
        }
    }
    (passed, failed)
}

/// Like [`run`], `concurrency` trials at a time: for trials that mostly wait (an outage, a run
/// of faults), each on its own emulator and store.
async fn run_concurrently<T, F, Fut>(
    trials: usize,
    concurrency: usize,
    mut trial: F,
) -> (Vec<T>, Vec<String>)
where
    T: Send + 'static,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    use futures::StreamExt as _;
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    let mut outcomes = futures::stream::iter((0..trials).map(|n| (n, trial(n))))
        .map(|(n, trial)| async move { (n, tokio::spawn(trial).await) })
        .buffer_unordered(concurrency);
    while let Some((n, outcome)) = outcomes.next().await {
        match outcome {
            Ok(outcome) => passed.push(outcome),
            Err(error) => failed.push(format!("trial {n}: {error}")),
        }
    }
    (passed, failed)
}

fn check(name: &str, failed: &[String]) {
    assert!(failed.is_empty(), "{name}: {failed:#?}");
}

/// A stored workspace with a due bot token.
async fn due_bot(emulator: &Emulator, store: &MemoryStore) -> Bot {
    let installation = rotating_installation(emulator, "T1", "U1", long_ago());
    store.save(&installation).await.unwrap();
    installation.to_bot().unwrap()
}

/// Sends of one refresh token that went out while an earlier send of it could still be in
/// flight for its holder (not answered, deadline not passed): two holders at once.
fn overlapping_sends(emulator: &Emulator, deadline: Duration) -> usize {
    emulator
        .counters()
        .refresh_presented_at
        .values()
        .flat_map(|sends| {
            sends
                .windows(2)
                .filter(|pair| pair[0].overlaps(&pair[1], deadline))
        })
        .count()
}

/// R1: 1,000 concurrent `authorize()` calls in one process on one expired installation.
async fn r1_stampede<S: InstallationStore + Clone + 'static>(store: S, label: &str) {
    const CALLERS: usize = 1_000;
    const SLACK_LATENCY: Duration = Duration::from_millis(50);
    let mut team = 0;
    let (outcomes, failed) = run(support::trials(3, 100), |_| {
        team += 1;
        let store = store.clone();
        async move {
            let emulator = strict_emulator().await;
            emulator.set_latency(SLACK_LATENCY);
            let team = format!("T{team}");
            let installation = rotating_installation(&emulator, &team, "U1", long_ago());
            store.save(&installation).await.unwrap();
            let events = Arc::new(AtomicU32::new(0));
            let refresher = rotation(&emulator, store.clone(), Duration::from_secs(10), &events);
            let authorizer = Authorizer::new(store.clone()).refresher(refresher);
            let calls = (0..CALLERS).map(|_| {
                let authorizer = authorizer.clone();
                let team = team.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = authorizer
                        .authorize(&AuthorizeRequest::team(team.as_str()))
                        .await
                        .unwrap()
                        .unwrap();
                    (
                        started.elapsed(),
                        result.bot_token.unwrap().secret().to_owned(),
                    )
                })
            });
            let results: Vec<_> = futures::future::join_all(calls)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            let tokens: HashSet<&String> = results.iter().map(|(_, token)| token).collect();
            assert_eq!(tokens.len(), 1, "every caller got the same new token");
            let counters = emulator.counters();
            assert_eq!(counters.refreshes_served, 1, "exactly one redemption");
            let latencies: Vec<Duration> = results.iter().map(|(latency, _)| *latency).collect();

            // The same burst of authorize calls with nothing to refresh: what the store's reads
            // cost on their own.
            let fresh = format!("{team}-fresh");
            let later = OffsetDateTime::now_utc() + time::Duration::days(1);
            store
                .save(&rotating_installation(&emulator, &fresh, "U1", later))
                .await
                .unwrap();
            let calls = (0..CALLERS).map(|_| {
                let authorizer = authorizer.clone();
                let fresh = fresh.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    authorizer
                        .authorize(&AuthorizeRequest::team(fresh.as_str()))
                        .await
                        .unwrap()
                        .unwrap();
                    started.elapsed()
                })
            });
            let baseline: Vec<Duration> = futures::future::join_all(calls)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            (
                support::percentile(&latencies, 99),
                support::percentile(&baseline, 99),
                latencies,
            )
        }
    })
    .await;
    let worst = outcomes
        .iter()
        .map(|(p99, _, _)| *p99)
        .max()
        .unwrap_or_default();
    let reads = outcomes
        .iter()
        .map(|(_, p99, _)| *p99)
        .max()
        .unwrap_or_default();
    // Every caller of every trial: the p99 reliability.md's R1 bounds.
    let all: Vec<Duration> = outcomes
        .iter()
        .flat_map(|(_, _, latencies)| latencies.iter().copied())
        .collect();
    let pooled = support::percentile(&all, 99);
    support::report(&format!(
        "R1 [{label}] {CALLERS} concurrent authorize on one expired installation: {} passed, {} \
         failed; 1 redemption per trial; p99 of all {} callers {pooled:?} with Slack latency \
         {SLACK_LATENCY:?} (added {:?}), of the worst trial {worst:?} (added {:?}); the same \
         burst with nothing to refresh: p99 {reads:?}",
        outcomes.len(),
        failed.len(),
        all.len(),
        pooled.saturating_sub(SLACK_LATENCY),
        worst.saturating_sub(SLACK_LATENCY),
    ));
    check("R1", &failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_in_process_stampede_memory() {
    r1_stampede(MemoryStore::new(), "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_in_process_stampede_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r1.db").display());
    let store = slack_oauth::store::SqliteStore::connect(&url, support::CLIENT_ID)
        .await
        .unwrap();
    r1_stampede(store.clone(), "sqlite").await;
    store.close().await.unwrap();
}

/// R2: 4 and 8 processes on PostgreSQL and 4 on one SQLite file, 250 callers each, rotate one
/// expired installation: one redemption per token, no `invalid_refresh_token`, nothing marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_cross_process_stampede() {
    let trials = support::trials(1, 1_000);
    let mut failures = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let schema = super::postgres::Schema::new().await;
    let mut configurations: Vec<(String, usize)> = vec![("sqlite".to_owned(), 4)];
    if schema.is_some() {
        configurations.push(("postgres".to_owned(), 4));
        configurations.push(("postgres".to_owned(), 8));
    }
    for (backend, processes) in configurations {
        let mut passed = 0;
        let mut failed = Vec::new();
        for trial in 0..trials {
            let (store, url, name) = match (&backend[..], &schema) {
                ("postgres", Some(schema)) => {
                    // Each trial on an empty schema of its own.
                    let name = format!("{}_{trial}_{processes}", schema.name);
                    let store = slack_oauth::store::PostgresStore::connect_in_schema(
                        &schema.url,
                        support::CLIENT_ID,
                        &name,
                    )
                    .await
                    .unwrap();
                    (AnyStore::Postgres(store), schema.url.clone(), Some(name))
                }
                _ => {
                    let url = format!(
                        "sqlite://{}",
                        dir.path().join(format!("r2-{trial}.db")).display()
                    );
                    let store = AnyStore::connect(&url, support::CLIENT_ID).await.unwrap();
                    (store, url, None)
                }
            };
            let run = tokio::spawn({
                let store = store.clone();
                let name = name.clone();
                async move {
                    super::multi_process::processes_rotate_once(
                        store,
                        &url,
                        name.as_deref(),
                        processes,
                        250,
                    )
                    .await;
                }
            });
            match run.await {
                Ok(()) => passed += 1,
                Err(error) => failed.push(format!("trial {trial}: {error}")),
            }
            if let (AnyStore::Postgres(pg), Some(name)) = (&store, &name) {
                sqlx::query(&format!("DROP SCHEMA \"{name}\" CASCADE"))
                    .execute(pg.pool())
                    .await
                    .unwrap();
            }
            store.close().await.unwrap();
        }
        support::report(&format!(
            "R2 [{backend}, {processes} processes x 250 callers]: {passed} passed, {} failed; 0 \
             double redemptions, 0 invalid_refresh_token, 0 marked",
            failed.len()
        ));
        failures.extend(failed);
    }
    if let Some(schema) = schema {
        schema.drop().await;
    }
    check("R2", &failures);
}

/// R3: Slack slower than the deadline (latency drawn from 0 to 3 deadlines, on the request or
/// on the answer), four instances at once: no refresh token is sent by two holders within a
/// deadline of each other, and every token ends live or marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_slack_slower_than_the_lease() {
    const DEADLINE: Duration = Duration::from_millis(500);
    let (outcomes, failed) = run(support::trials(6, 500), |_| async {
        let emulator = strict_emulator().await;
        let store = MemoryStore::new();
        let bot = due_bot(&emulator, &store).await;
        let latency = Duration::from_millis(rand::random::<u64>() % 1_500);
        let fault = if rand::random::<bool>() {
            Fault::Slow(latency)
        } else {
            Fault::SlowResponse(latency)
        };
        emulator.inject("oauth.v2.access", fault, 1);
        let events = Arc::new(AtomicU32::new(0));
        let instances: Vec<_> = (0..4)
            .map(|_| rotation(&emulator, store.clone(), DEADLINE, &events))
            .collect();
        // Every instance keeps asking until the token is settled (rotated or marked).
        let tasks = instances.into_iter().map(|instance| {
            let bot = bot.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    match instance.rotate_bot(&bot).await {
                        Ok(_) | Err(RotationError::NeedsReinstall { .. }) => return,
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                panic!("never settled");
            })
        });
        for task in futures::future::join_all(tasks).await {
            task.unwrap();
        }
        // A 20 ms allowance for the emulator's own scheduling on a loaded 2-core machine.
        assert_eq!(
            overlapping_sends(&emulator, DEADLINE - Duration::from_millis(20)),
            0,
            "two holders sent one refresh token at once"
        );
        let stored = store
            .find_bot(&InstallationQuery::team("T1"))
            .await
            .unwrap()
            .unwrap();
        let live = emulator
            .refresh_token_status(stored.bot_refresh_token.as_ref().unwrap().secret())
            == RefreshTokenStatus::Live;
        assert!(
            live || stored.needs_reinstall.is_some(),
            "the token is neither live nor marked"
        );
        let resent = emulator
            .counters()
            .refresh_presented_at
            .values()
            .map(|times| times.len().saturating_sub(1))
            .sum::<usize>();
        assert_eq!(events.load(Ordering::SeqCst), u32::from(!live));
        (resent, !live, latency > DEADLINE)
    })
    .await;
    let resent: usize = outcomes.iter().map(|(r, _, _)| r).sum();
    let marked = outcomes.iter().filter(|(_, m, _)| *m).count();
    let slower = outcomes.iter().filter(|(_, _, s)| *s).count();
    support::report(&format!(
        "R3 [memory, 4 instances] Slack latency 0-1.5 s, deadline {DEADLINE:?}: {} passed, {} \
         failed; 0 sends of one token by two holders at once; {slower} trials slower than the \
         deadline, {resent} settling re-sends, {marked} answers lost and marked",
        outcomes.len(),
        failed.len(),
    ));
    check("R3", &failed);
}

/// R6: the store refuses the save of new tokens for up to 30 s (3 s in CI's short form) just
/// as Slack answers; the save is retried for the default 60 s: nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r6_store_down_at_commit() {
    let longest = if support::measuring() {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(3)
    };
    let (outcomes, failed) = run_concurrently(support::trials(4, 1_000), 100, |_| async move {
        let emulator = strict_emulator().await;
        let inner = MemoryStore::new();
        let bot = due_bot(&emulator, &inner).await;
        let outage = longest.mul_f64(rand::random::<f64>());
        let store = super::custody::DownAtCommit::new(inner.clone());
        store.down_for(outage);
        let events = Arc::new(AtomicU32::new(0));
        let fresh = rotation(&emulator, store, Duration::from_secs(5), &events)
            .rotate_bot(&bot)
            .await
            .unwrap();
        let stored = inner
            .find_bot(&InstallationQuery::team("T1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.bot_refresh_token, fresh.bot_refresh_token);
        assert_eq!(stored.needs_reinstall, None);
        assert_eq!(events.load(Ordering::SeqCst), 0, "nothing marked");
        assert_eq!(
            emulator.refresh_token_status(stored.bot_refresh_token.unwrap().secret()),
            RefreshTokenStatus::Live
        );
        outage
    })
    .await;
    support::report(&format!(
        "R6 [memory] store down 0-{longest:?} at commit (save retried for the default 60 s): {} \
         passed, {} failed; 0 lost tokens; longest outage {:?}",
        outcomes.len(),
        failed.len(),
        outcomes.iter().max().copied().unwrap_or_default(),
    ));
    check("R6", &failed);
}

/// R7: a run of transient failures (5xx, 429 with Retry-After, `internal_error`, resets,
/// timeouts, undecodable answers) marks nothing, honours every Retry-After, and refreshes once
/// Slack recovers. Every token is always due here, so that each round sends one. CI's short form
/// injects 12 faults in a row; a measuring run keeps injecting them for 2 minutes per trial
/// (reliability.md's R7), 100 trials at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r7_transient_failures() {
    let fault_run = support::measuring().then_some(Duration::from_secs(120));
    let (outcomes, failed) = run_concurrently(support::trials(2, 100), 100, |_| async move {
        // Slack's own grace period covers a re-send after a lost answer; it outlasts the run of
        // faults (a lost answer whose re-send comes after the grace is R3's and R5's case).
        let emulator = support::emulator(EmulatorConfig {
            refresh_grace: Duration::from_secs(600),
            ..support::rotating_config()
        })
        .await;
        let store = MemoryStore::new();
        let bot = due_bot(&emulator, &store).await;
        let events = Arc::new(AtomicU32::new(0));
        let instance = rotation(
            &emulator,
            store.clone(),
            Duration::from_millis(2_500),
            &events,
        )
        .minutes_before_expiration(24 * 60);
        let (mut faults, mut rate_limits) = (0_usize, 0_usize);
        let started = Instant::now();
        loop {
            let more = match fault_run {
                Some(run) => started.elapsed() < run,
                None => faults < 12,
            };
            if !more {
                break;
            }
            let fault = match rand::random::<u8>() % 6 {
                0 => Fault::ServerError { status: 503 },
                1 => Fault::RateLimited {
                    retry_after_secs: 1,
                },
                2 => Fault::SlackError("internal_error".to_owned()),
                3 => Fault::AnswerLost,
                4 => Fault::SlowResponse(Duration::from_secs(3)),
                _ => Fault::MalformedJson,
            };
            let limited = matches!(fault, Fault::RateLimited { .. });
            emulator.inject("oauth.v2.access", fault, 1);
            let sent = Instant::now();
            match instance.rotate_bot(&bot).await {
                Ok(_) => {}
                Err(error) => assert!(error.is_transient(), "{error:?}"),
            }
            if limited {
                // The client waited out Retry-After before sending again.
                assert!(
                    sent.elapsed() >= Duration::from_secs(1),
                    "Retry-After ignored"
                );
                rate_limits += 1;
            }
            faults += 1;
        }
        let fresh = instance.rotate_bot(&bot).await.unwrap();
        assert_ne!(fresh.bot_token, bot.bot_token, "refreshed after recovery");
        assert_eq!(events.load(Ordering::SeqCst), 0, "nothing marked");
        let stored = store
            .find_bot(&InstallationQuery::team("T1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.needs_reinstall, None);
        assert_eq!(
            emulator.refresh_token_status(stored.bot_refresh_token.unwrap().secret()),
            RefreshTokenStatus::Live
        );
        (faults, rate_limits)
    })
    .await;
    support::report(&format!(
        "R7 [memory] {}: {} passed, {} failed; {} faults, 0 marked; {} rate limits, Retry-After \
         honoured each time; refreshed on the first attempt after recovery",
        match fault_run {
            Some(run) => format!("transient failures for {run:?} then recovery"),
            None => "12 transient failures then recovery".to_owned(),
        },
        outcomes.len(),
        failed.len(),
        outcomes.iter().map(|(faults, _)| faults).sum::<usize>(),
        outcomes.iter().map(|(_, limits)| limits).sum::<usize>(),
    ));
    check("R7", &failed);
}

/// R8: a sibling without our lease redeems the same refresh token first and saves: our
/// `invalid_refresh_token` is a success returning its token, never a false mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r8_sibling_race_recovery() {
    let (outcomes, failed) = run(support::trials(5, 1_000), |_| async {
        let emulator = support::emulator(support::rotating_config()).await;
        let store = MemoryStore::new();
        let bot = due_bot(&emulator, &store).await;
        emulator.inject(
            "oauth.v2.access",
            Fault::Slow(Duration::from_millis(200)),
            1,
        );
        let events = Arc::new(AtomicU32::new(0));
        let ours = tokio::spawn({
            let instance = rotation(&emulator, store.clone(), Duration::from_secs(5), &events);
            let bot = bot.clone();
            async move { instance.rotate_bot(&bot).await }
        });
        while !emulator.counters().calls.contains_key("oauth.v2.access") {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let theirs = super::rotator(&emulator)
            .perform_bot_token_rotation(&bot, 0)
            .await
            .unwrap()
            .unwrap();
        let update = TokenUpdate {
            enterprise_id: None,
            team_id: Some("T1".into()),
            previous_refresh_token: bot.bot_refresh_token.clone().unwrap(),
            token: slack_oauth::store::RotatedToken::Bot {
                token: theirs.bot_token.clone(),
            },
            refresh_token: theirs.bot_refresh_token.clone().unwrap(),
            expires_at: theirs.bot_token_expires_at,
        };
        assert!(store.update_rotated_token(&update).await.unwrap());
        let fresh = ours.await.unwrap().unwrap();
        assert_eq!(fresh.bot_token, theirs.bot_token);
        assert_eq!(events.load(Ordering::SeqCst), 0, "no false mark");
    })
    .await;
    support::report(&format!(
        "R8 [memory] forced sibling races: {} passed, {} failed; 0 false reinstall marks",
        outcomes.len(),
        failed.len(),
    ));
    check("R8", &failed);
}

/// R10: the workspace is deleted (`app_uninstalled`) while its refresh is in flight: nothing is
/// resurrected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r10_uninstall_during_refresh() {
    let (outcomes, failed) = run(support::trials(5, 1_000), |_| async {
        let emulator = strict_emulator().await;
        let store = MemoryStore::new();
        let bot = due_bot(&emulator, &store).await;
        let delay = Duration::from_millis(rand::random::<u64>() % 100);
        emulator.inject("oauth.v2.access", Fault::Slow(delay), 1);
        let events = Arc::new(AtomicU32::new(0));
        let refresh = tokio::spawn({
            let instance = rotation(&emulator, store.clone(), Duration::from_secs(5), &events);
            let bot = bot.clone();
            async move { instance.rotate_bot(&bot).await }
        });
        while !emulator.counters().calls.contains_key("oauth.v2.access") {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        store
            .delete_all(&InstallationQuery::team("T1"))
            .await
            .unwrap();
        let _ = refresh.await.unwrap();
        assert!(store.list_installations().await.unwrap().is_empty());
        assert!(store
            .find_bot(&InstallationQuery::team("T1"))
            .await
            .unwrap()
            .is_none());
    })
    .await;
    support::report(&format!(
        "R10 [memory] uninstall during a refresh: {} passed, {} failed; 0 resurrected",
        outcomes.len(),
        failed.len(),
    ));
    check("R10", &failed);
}

/// A clock `offset` away from the real one.
#[derive(Debug)]
struct Skewed(time::Duration);

impl slack_oauth::clock::Clock for Skewed {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.0
    }
}

/// R11: four instances with clocks -5, -2, +2 and +5 minutes off, 64 callers, on PostgreSQL:
/// one redemption per token, and no caller gets an expired token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_clock_skew_postgres() {
    let Some(schema) = super::postgres::Schema::new().await else {
        return;
    };
    let store = schema.store.clone();
    let mut team = 0;
    let (outcomes, failed) = run(support::trials(3, 100), |_| {
        team += 1;
        let store = store.clone();
        async move {
            let emulator = strict_emulator().await;
            let team = format!("T{team}");
            let expires = OffsetDateTime::now_utc() + time::Duration::minutes(1);
            let installation = rotating_installation(&emulator, &team, "U1", expires);
            store.save(&installation).await.unwrap();
            let mut tasks = Vec::new();
            for minutes in [-5, -2, 2, 5] {
                let rotator = TokenRotator::new(support::client(&emulator), support::credentials())
                    .with_clock(Skewed(time::Duration::minutes(minutes)));
                let instance = Rotation::new(rotator, store.clone());
                for _ in 0..16 {
                    let instance = instance.clone();
                    let installation = installation.clone();
                    tasks.push(tokio::spawn(async move {
                        instance.rotate_installation(&installation).await.unwrap()
                    }));
                }
            }
            let now = OffsetDateTime::now_utc();
            for task in futures::future::join_all(tasks).await {
                let fresh = task.unwrap();
                assert!(
                    fresh.bot_token_expires_at.unwrap() > now,
                    "an expired token"
                );
            }
            let counters = emulator.counters();
            assert_eq!(counters.refreshes_served, 2, "bot and user, once each");
            assert_eq!(counters.spent_refresh_token_reuse, 0);
        }
    })
    .await;
    support::report(&format!(
        "R11 [postgres, 4 instances at -5/-2/+2/+5 min] 64 callers: {} passed, {} failed; 0 \
         double redemptions, 0 expired tokens served",
        outcomes.len(),
        failed.len(),
    ));
    check("R11", &failed);
    schema.drop().await;
}
