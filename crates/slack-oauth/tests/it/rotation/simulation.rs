//! A seeded simulation of several instances sharing one store, checked against a model of one
//! versioned register per workspace (reliability.md R9, in one process).
//!
//! Six instances (each a `Rotation` with its own lease holder, and an `Authorizer` using it)
//! run random batches of concurrent operations on four workspaces: authorize (with lazy
//! rotation), proactive rotation, uninstall, reinstall, an instance crash (replaced by a fresh
//! one; its leases and intents stay behind), and Slack faults (latency past the deadline, lost
//! answers, 5xx, 429). Every token is always due, so every operation that can refresh does.
//! After each batch, and at the end once Slack is healthy again and every workspace settled:
//!
//! - **at most one child per parent**: no refresh token is redeemed twice, and no refresh token
//!   is sent while an earlier send of it could still be in flight for its holder (not answered,
//!   deadline not passed);
//! - **versions strictly increase**: a workspace's stored token never goes back to an older
//!   generation of its family;
//! - **no stale token served**: every token authorize returns is at least the generation stored
//!   when its batch began;
//! - **nothing resurrected**: a workspace uninstalled in a batch (and not reinstalled) stays
//!   gone;
//! - **custody**: at the end every stored refresh token is live at Slack or marked as needing a
//!   reinstall, and each mark was announced exactly once.
//!
//! The seed is printed; `SLACK_OAUTH_SIM_SEED=N` replays one. Real time and real HTTP (the
//! emulator on loopback) make a replay follow the same operations and faults, not the same
//! interleaving. `SLACK_OAUTH_RELIABILITY=full` runs 50 seeds of 10,000 operations;
//! `SLACK_OAUTH_RELIABILITY=N`, N seeds of 2,000.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use slack_emulator::{Emulator, EmulatorConfig, Fault, RefreshTokenStatus, TokenGeneration};
use slack_oauth::authorize::{AuthorizeRequest, Authorizer};
use slack_oauth::rotation::{Rotation, RotationError, TokenRotator};
use slack_oauth::store::{InstallationQuery, InstallationStore, MemoryStore};

use super::{long_ago, rotating_installation};
use crate::support;

const INSTANCES: usize = 6;
const TEAMS: usize = 4;
const BATCH: usize = 8;
const DEADLINE: Duration = Duration::from_millis(300);

type Instance = (
    Rotation<MemoryStore>,
    Authorizer<MemoryStore, Rotation<MemoryStore>>,
);

fn instance(emulator: &Emulator, store: &MemoryStore, events: &Arc<AtomicU32>) -> Instance {
    let rotator = TokenRotator::new(support::client(emulator), support::credentials());
    let events = Arc::clone(events);
    let rotation = Rotation::new(rotator, store.clone())
        .minutes_before_expiration(24 * 60)
        .lease_ttl(Duration::from_millis(700))
        .slack_timeout(DEADLINE)
        .save_retry_for(Duration::from_secs(1))
        .on_reinstall_needed(move |_| {
            events.fetch_add(1, Ordering::SeqCst);
        });
    let authorizer = Authorizer::new(store.clone())
        .refresher(rotation.clone())
        .refresh_window(Duration::from_secs(24 * 3_600));
    (rotation, authorizer)
}

fn team(n: usize) -> String {
    format!("T{n}")
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Authorize { instance: usize, team: usize },
    Rotate { instance: usize, team: usize },
    Uninstall { team: usize },
    Reinstall { team: usize },
    Crash { instance: usize },
    Fault,
}

fn random_op(rng: &mut StdRng) -> Op {
    let instance = rng.gen_range(0..INSTANCES);
    let team = rng.gen_range(0..TEAMS);
    match rng.gen_range(0..100) {
        0..=44 => Op::Authorize { instance, team },
        45..=74 => Op::Rotate { instance, team },
        75..=79 => Op::Uninstall { team },
        80..=86 => Op::Reinstall { team },
        87..=90 => Op::Crash { instance },
        _ => Op::Fault,
    }
}

fn random_fault(rng: &mut StdRng) -> Fault {
    match rng.gen_range(0..5) {
        0 => Fault::SlowResponse(DEADLINE * 2),
        1 => Fault::AnswerLost,
        2 => Fault::ServerError { status: 502 },
        3 => Fault::RateLimited {
            retry_after_secs: 0,
        },
        _ => Fault::Slow(DEADLINE * 2),
    }
}

/// The stored bot token's place in its family, per workspace.
async fn versions(emulator: &Emulator, store: &MemoryStore) -> HashMap<usize, TokenGeneration> {
    let mut stored = HashMap::new();
    for n in 0..TEAMS {
        if let Some(bot) = store
            .find_bot(&InstallationQuery::team(team(n)))
            .await
            .unwrap()
        {
            let generation = emulator
                .token_generation(bot.bot_token.secret())
                .expect("a stored token Slack issued");
            stored.insert(n, generation);
        }
    }
    stored
}

/// One simulation: `ops` operations in batches. Panics on the first broken invariant.
async fn simulate(seed: u64, ops: usize) -> (usize, usize, u32) {
    let mut rng = StdRng::seed_from_u64(seed);
    let emulator = support::emulator(EmulatorConfig {
        reuse_revokes_family: true,
        ..support::rotating_config()
    })
    .await;
    let store = MemoryStore::new();
    let events = Arc::new(AtomicU32::new(0));
    for n in 0..TEAMS {
        store
            .save(&rotating_installation(
                &emulator,
                &team(n),
                "U1",
                long_ago(),
            ))
            .await
            .unwrap();
    }
    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|_| instance(&emulator, &store, &events))
        .collect();
    let mut served = 0;
    let mut done = 0;
    while done < ops {
        let before = versions(&emulator, &store).await;
        let batch: Vec<Op> = (0..BATCH).map(|_| random_op(&mut rng)).collect();
        done += batch.len();
        // At most one of uninstall / reinstall per workspace per batch.
        let mut touched = HashSet::new();
        let mut uninstalled = HashSet::new();
        let mut tasks = Vec::new();
        for op in batch {
            match op {
                Op::Authorize { instance, team: n } => {
                    let authorizer = instances[instance].1.clone();
                    tasks.push(tokio::spawn(async move {
                        let result = authorizer
                            .authorize(&AuthorizeRequest::team(team(n).as_str()))
                            .await;
                        match result {
                            Ok(Some(result)) => {
                                Some((n, result.bot_token.unwrap().secret().to_owned()))
                            }
                            Ok(None) | Err(_) => None,
                        }
                    }));
                }
                Op::Rotate { instance, team: n } => {
                    let rotation = instances[instance].0.clone();
                    let store = store.clone();
                    tasks.push(tokio::spawn(async move {
                        let bot = store
                            .find_bot(&InstallationQuery::team(team(n)))
                            .await
                            .unwrap()?;
                        let _ = rotation.rotate_bot(&bot).await;
                        None
                    }));
                }
                Op::Uninstall { team: n } if touched.insert(n) => {
                    uninstalled.insert(n);
                    let store = store.clone();
                    tasks.push(tokio::spawn(async move {
                        store
                            .delete_all(&InstallationQuery::team(team(n)))
                            .await
                            .unwrap();
                        None
                    }));
                }
                Op::Reinstall { team: n } if touched.insert(n) => {
                    store
                        .save(&rotating_installation(
                            &emulator,
                            &team(n),
                            "U1",
                            long_ago(),
                        ))
                        .await
                        .unwrap();
                }
                Op::Uninstall { .. } | Op::Reinstall { .. } => {}
                Op::Crash { instance: i } => {
                    // A new process in its place: a new holder; the old one's leases and intents
                    // stay in the store (its running tasks finish, like a slow dying process).
                    instances[i] = instance(&emulator, &store, &events);
                }
                Op::Fault => {
                    emulator.inject("oauth.v2.access", random_fault(&mut rng), 1);
                }
            }
        }
        let mut batch_served = Vec::new();
        for task in tasks {
            if let Some(token) = task.await.unwrap() {
                batch_served.push(token);
            }
        }
        let after = versions(&emulator, &store).await;

        // At most one child per parent; never two senders at once.
        let counters = emulator.counters();
        assert!(
            counters.refresh_redemptions.values().all(|n| *n <= 1),
            "seed {seed}: a refresh token was redeemed twice"
        );
        for sends in counters.refresh_presented_at.values() {
            for pair in sends.windows(2) {
                assert!(
                    !pair[0].overlaps(&pair[1], DEADLINE - Duration::from_millis(20)),
                    "seed {seed}: one refresh token sent by two holders at once: {pair:?}"
                );
            }
        }
        // Versions only move forward within a family.
        for (n, now) in &after {
            if let Some(was) = before.get(n) {
                if was.family == now.family {
                    assert!(
                        now.generation >= was.generation,
                        "seed {seed}: T{n} went back from {was:?} to {now:?}"
                    );
                }
            }
        }
        // No stale token served.
        for (n, token) in batch_served {
            served += 1;
            let got = emulator.token_generation(&token).expect("an issued token");
            if let Some(was) = before.get(&n) {
                if was.family == got.family {
                    assert!(
                        got.generation >= was.generation,
                        "seed {seed}: T{n} served {got:?}, older than the stored {was:?}"
                    );
                }
            }
        }
        // Nothing resurrected.
        for n in &uninstalled {
            assert!(
                !after.contains_key(n),
                "seed {seed}: T{n} was uninstalled in this batch and came back"
            );
        }
    }

    // Slack healthy again (drain injected faults with calls that cannot hurt: unknown refresh
    // tokens); every workspace settled by a fresh instance.
    for _ in 0..BATCH * 2 {
        let _ = support::client(&emulator)
            .oauth_v2_access(
                &support::credentials(),
                &slack_oauth::api::AccessGrant::RefreshToken(
                    slack_oauth::secret::RefreshToken::new("xoxe-1-drain"),
                ),
            )
            .await;
    }
    let (settler, _) = instance(&emulator, &store, &events);
    let mut marked = 0;
    for n in 0..TEAMS {
        let query = InstallationQuery::team(team(n));
        for _ in 0..40 {
            let Some(bot) = store.find_bot(&query).await.unwrap() else {
                break;
            };
            match settler.rotate_bot(&bot).await {
                Ok(_) | Err(RotationError::NeedsReinstall { .. }) => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        if let Some(bot) = store.find_bot(&query).await.unwrap() {
            let live = emulator
                .refresh_token_status(bot.bot_refresh_token.as_ref().unwrap().secret())
                == RefreshTokenStatus::Live;
            assert!(
                live || bot.needs_reinstall.is_some(),
                "seed {seed}: T{n}'s refresh token is neither live nor marked"
            );
            marked += usize::from(bot.needs_reinstall.is_some());
        }
    }
    let announced = events.load(Ordering::SeqCst);
    assert!(
        announced as usize >= marked,
        "seed {seed}: {marked} marked, {announced} announced"
    );
    emulator.shutdown().await;
    (served, marked, announced)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_instances_keep_every_invariant() {
    // Short: 2 seeds of 160 operations; full: 50 of 10,000; `SLACK_OAUTH_RELIABILITY=N`: N of
    // 2,000.
    let seeds = support::trials(2, 50);
    let ops = match std::env::var("SLACK_OAUTH_RELIABILITY").as_deref() {
        Ok("full") => 10_000,
        Ok(_) => 2_000,
        Err(_) => 160,
    };
    let first: u64 = match std::env::var("SLACK_OAUTH_SIM_SEED") {
        Ok(seed) => seed.parse().expect("SLACK_OAUTH_SIM_SEED is a number"),
        Err(_) => rand::random(),
    };
    let (mut served, mut marked, mut announced) = (0, 0, 0);
    for n in 0..seeds {
        let seed = first.wrapping_add(n as u64);
        eprintln!("simulation seed {seed} ({ops} operations)");
        let (s, m, a) = simulate(seed, ops).await;
        served += s;
        marked += m;
        announced += a;
    }
    support::report(&format!(
        "R9 [memory, {INSTANCES} instances, {TEAMS} workspaces] {seeds} seeds x {ops} operations \
         (from seed {first}): {seeds} passed, 0 failed; {served} tokens served, 0 stale, 0 \
         double redemptions, 0 resurrected; {marked} grants lost to injected faults, all \
         marked ({announced} events)"
    ));
}
