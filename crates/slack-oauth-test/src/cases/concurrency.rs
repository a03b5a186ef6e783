//! Cases under concurrency: one winner per state, rotation and lease; no errors under load.
//!
//! These need a `Clone + 'static` store whose clones share data, and run on a multi-threaded
//! runtime when driven by [`store_conformance!`](crate::store_conformance).

use slack_oauth::store::{InstallationQuery, InstallationStore, StateStore};
use time::Duration;

use super::{ok, save};
use crate::assert::user_token;
use crate::fixtures::{self, at, now};

/// How many tasks race in each case (reliability scenario S1 asks for 100 or more).
const RACERS: usize = 200;

async fn join_all<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("a racing task panicked"));
    }
    results
}

/// 200 concurrent consumes of one state: exactly one is accepted, none fails.
pub async fn concurrent_consumes_have_one_winner<S>(store: &S)
where
    S: StateStore + Clone + 'static,
{
    let t = now();
    let state = ok(store.issue(t + Duration::minutes(10)).await, "issue");
    let tasks = (0..RACERS)
        .map(|_| {
            let (store, state) = (store.clone(), state.clone());
            tokio::spawn(async move { store.consume(&state, t).await })
        })
        .collect();
    let results = join_all(tasks).await;
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errors.is_empty(), "concurrent consumes failed: {errors:?}");
    let accepted = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(
        accepted, 1,
        "exactly one of {RACERS} concurrent consumes must be accepted"
    );
}

/// 200 concurrent saves, each followed by finds of what it saved: no error, everything found.
pub async fn concurrent_saves_and_finds_all_succeed<S>(store: &S)
where
    S: InstallationStore + Clone + 'static,
{
    let tasks = (0..RACERS)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let team = format!("T{}", n % 10);
                let user = format!("U{n}");
                let installation = fixtures::workspace(&team, &user)
                    .installed_at(at(i64::try_from(n).unwrap_or(0)))
                    .build();
                store.save(&installation).await?;
                let query = InstallationQuery::team(team.as_str()).user(user.as_str());
                let found = store.find_installation(&query).await?;
                let bot = store.find_bot(&query).await?;
                Ok::<_, slack_oauth::store::StoreError>((n, found, bot.is_some()))
            })
        })
        .collect();
    let results = join_all(tasks).await;
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "{} of {RACERS} save+find failed: {errors:?}",
        errors.len()
    );
    for (n, found, has_bot) in results.into_iter().flatten() {
        let found = found.unwrap_or_else(|| panic!("installation {n} not found after its save"));
        let expected = format!("xoxp-T{}-U{n}-0", n % 10);
        assert_eq!(
            user_token(&found),
            Some(expected.as_str()),
            "installation {n}"
        );
        assert!(has_bot, "bot of installation {n} not found after its save");
    }
    let listed = ok(store.list_installations().await, "list_installations");
    assert_eq!(listed.len(), RACERS, "every saved installation is listed");
}

/// Concurrent rotations with the same previous refresh token: exactly one wins.
pub async fn concurrent_rotations_have_one_winner<S>(store: &S)
where
    S: InstallationStore + Clone + 'static,
{
    let installation = fixtures::workspace("T1", "U1")
        .with_rotation(at(100))
        .build();
    save(store, &installation).await;
    let tasks = (0..50u32)
        .map(|n| {
            let store = store.clone();
            let update =
                super::rotation::bot_update(&installation, "xoxe-1-bot-T1-U1-0", n, at(50_000));
            tokio::spawn(async move { store.update_rotated_token(&update).await })
        })
        .collect();
    let results = join_all(tasks).await;
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errors.is_empty(), "concurrent rotations failed: {errors:?}");
    let winners = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(
        winners, 1,
        "exactly one of 50 concurrent rotations must win"
    );
}

/// Concurrent attempts to take one free lease: exactly one holder gets it.
pub async fn concurrent_leases_have_one_holder<S>(store: &S)
where
    S: InstallationStore + Clone + 'static,
{
    let tasks = (0..50)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let holder = format!("instance-{n}");
                store
                    .try_acquire_lease("rotate:T1", &holder, std::time::Duration::from_secs(30))
                    .await
            })
        })
        .collect();
    let results = join_all(tasks).await;
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "concurrent lease attempts failed: {errors:?}"
    );
    let holders = results
        .iter()
        .filter(|r| matches!(r, Ok(lease) if lease.is_held()))
        .count();
    assert_eq!(holders, 1, "exactly one of 50 holders must get the lease");
}
