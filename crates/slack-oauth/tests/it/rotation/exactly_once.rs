//! `Rotation`: exactly once across tasks and instances, saves retried, cancellation safety.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use slack_emulator::{Emulator, Fault};
use slack_oauth::installation::{Bot, Installation};
use slack_oauth::rotation::{Rotation, RotationError};
use slack_oauth::store::{
    InstallationQuery, InstallationStore, MemoryStore, StoreError, TokenUpdate,
};
use time::OffsetDateTime;

use super::{assert_refresh_tokens_live, long_ago, rotating_emulator, rotating_installation};

/// A rotation of `store` through `emulator`.
fn rotation<S: InstallationStore + Clone + 'static>(emulator: &Emulator, store: S) -> Rotation<S> {
    Rotation::new(super::rotator(emulator), store)
}

/// Eight tasks on two `Rotation` instances (two lease holders, four tasks each: the lease and
/// the single-flight paths) rotate one stored installation at once.
async fn eight_tasks_rotate_each_token_once<S: InstallationStore + Clone + 'static>(store: S) {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    store.save(&installation).await.unwrap();
    let instances = [
        rotation(&emulator, store.clone()),
        rotation(&emulator, store.clone()),
    ];
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let rotation = instances[i % 2].clone();
            let barrier = Arc::clone(&barrier);
            let installation = installation.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                rotation.rotate_installation(&installation).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(
            task.await
                .unwrap()
                .expect("every caller gets the fresh installation"),
        );
    }

    let counters = emulator.counters();
    assert_eq!(counters.refreshes_served, 2, "one refresh per token");
    assert_eq!(counters.spent_refresh_token_reuse, 0);
    assert!(counters.refresh_redemptions.values().all(|n| *n == 1));
    let first = &results[0];
    assert_ne!(first.bot_token, installation.bot_token);
    assert_ne!(first.user_token, installation.user_token);
    for result in &results {
        assert_eq!(result.bot_token, first.bot_token);
        assert_eq!(result.bot_refresh_token, first.bot_refresh_token);
        assert_eq!(result.user_token, first.user_token);
        assert_eq!(result.user_refresh_token, first.user_refresh_token);
    }
    let stored = store
        .find_installation(&InstallationQuery::for_installation(&installation))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.bot_token, first.bot_token);
    assert_eq!(stored.bot_refresh_token, first.bot_refresh_token);
    assert_eq!(stored.user_token, first.user_token);
    assert_eq!(stored.user_refresh_token, first.user_refresh_token);
    assert_eq!(stored.bot_token_expires_at, first.bot_token_expires_at);
    assert_refresh_tokens_live(&emulator, &stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tasks_rotate_once_memory() {
    eight_tasks_rotate_each_token_once(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tasks_rotate_once_sqlite() {
    eight_tasks_rotate_each_token_once(slack_oauth_test::sqlite::temporary().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tasks_rotate_once_postgres() {
    let Some(schema) = super::postgres::Schema::new().await else {
        return;
    };
    eight_tasks_rotate_each_token_once(schema.store.clone()).await;
    schema.drop().await;
}

#[tokio::test]
async fn nothing_due_returns_the_installation_without_a_call() {
    let emulator = rotating_emulator().await;
    let fresh = OffsetDateTime::now_utc() + time::Duration::hours(10);
    let installation = rotating_installation(&emulator, "T1", "U1", fresh);
    let store = MemoryStore::new();
    store.save(&installation).await.unwrap();
    let result = rotation(&emulator, store)
        .rotate_installation(&installation)
        .await
        .unwrap();
    assert_eq!(result, installation);
    assert_eq!(emulator.counters().calls.get("oauth.v2.access"), None);
}

#[tokio::test]
async fn rotate_bot_rotates_the_stored_bot() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let store = MemoryStore::new();
    store.save(&installation).await.unwrap();
    let bot: Bot = installation.to_bot().unwrap();
    let fresh = rotation(&emulator, store.clone())
        .rotate_bot(&bot)
        .await
        .unwrap();
    assert_ne!(fresh.bot_token, bot.bot_token);
    let stored = store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.bot_token, fresh.bot_token);
    let installation_row = store
        .find_installation(&InstallationQuery::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        installation_row.user_token, installation.user_token,
        "user untouched"
    );
    assert_eq!(emulator.counters().refreshes_served, 1);
}

/// A store whose `update_rotated_token` fails transiently a given number of times.
#[derive(Clone, Debug)]
struct FlakySaves {
    inner: MemoryStore,
    failures_left: Arc<AtomicU32>,
    attempts: Arc<AtomicU32>,
}

impl InstallationStore for FlakySaves {
    async fn save(&self, installation: &Installation) -> Result<(), StoreError> {
        self.inner.save(installation).await
    }
    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        self.inner.save_bot(bot).await
    }
    async fn find_bot(&self, query: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        self.inner.find_bot(query).await
    }
    async fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        self.inner.find_installation(query).await
    }
    async fn delete_bot(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        self.inner.delete_bot(query).await
    }
    async fn delete_installation(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        self.inner.delete_installation(query).await
    }
    async fn list_installations(&self) -> Result<Vec<Installation>, StoreError> {
        self.inner.list_installations().await
    }
    async fn list_expiring(
        &self,
        deadline: OffsetDateTime,
    ) -> Result<Vec<Installation>, StoreError> {
        self.inner.list_expiring(deadline).await
    }
    async fn update_rotated_token(&self, update: &TokenUpdate) -> Result<bool, StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::from(sqlx::Error::PoolTimedOut));
        }
        self.inner.update_rotated_token(update).await
    }
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<slack_oauth::store::LeaseAcquisition, StoreError> {
        self.inner.try_acquire_lease(name, holder, ttl).await
    }

    async fn record_refresh_intent(
        &self,
        name: &str,
        holder: &str,
        fingerprint: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.inner
            .record_refresh_intent(name, holder, fingerprint, ttl)
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_lease(name, holder).await
    }

    async fn abandon_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.abandon_lease(name, holder).await
    }

    async fn spend_refresh_budget(
        &self,
        limit: u32,
    ) -> Result<slack_oauth::store::BudgetSpend, StoreError> {
        self.inner.spend_refresh_budget(limit).await
    }

    async fn flag_reinstall(
        &self,
        grant: &slack_oauth::store::LostGrant,
    ) -> Result<bool, StoreError> {
        self.inner.flag_reinstall(grant).await
    }
}

#[tokio::test]
async fn a_failed_save_is_retried_and_nothing_is_lost() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let store = FlakySaves {
        inner: MemoryStore::new(),
        failures_left: Arc::new(AtomicU32::new(3)),
        attempts: Arc::new(AtomicU32::new(0)),
    };
    store.save(&installation).await.unwrap();
    let mut bot_only = installation.clone();
    bot_only.user_token_expires_at = None;
    let fresh = rotation(&emulator, store.clone())
        .rotate_installation(&bot_only)
        .await
        .unwrap();
    assert_eq!(
        store.attempts.load(Ordering::SeqCst),
        4,
        "3 failures, then saved"
    );
    assert_eq!(emulator.counters().refreshes_served, 1);
    let stored = store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Some(stored.bot_token), fresh.bot_token);
    assert_eq!(stored.bot_refresh_token, fresh.bot_refresh_token);
}

#[tokio::test]
async fn a_save_failing_past_the_retry_bound_is_an_error() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let store = FlakySaves {
        inner: MemoryStore::new(),
        failures_left: Arc::new(AtomicU32::new(u32::MAX)),
        attempts: Arc::new(AtomicU32::new(0)),
    };
    store.save(&installation).await.unwrap();
    let bot = installation.to_bot().unwrap();
    let error = rotation(&emulator, store.clone())
        .save_retry_for(Duration::from_millis(200))
        .rotate_bot(&bot)
        .await
        .unwrap_err();
    assert!(matches!(error, RotationError::Store(_)), "{error:?}");
    assert!(store.attempts.load(Ordering::SeqCst) >= 2, "retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_does_not_stop_the_refresh_and_save() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let store = MemoryStore::new();
    store.save(&installation).await.unwrap();
    let bot = installation.to_bot().unwrap();
    emulator.inject(
        "oauth.v2.access",
        Fault::Slow(Duration::from_millis(500)),
        1,
    );
    let rotation = rotation(&emulator, store.clone());
    // The caller gives up while the refresh is in flight.
    let gave_up = tokio::time::timeout(Duration::from_millis(50), rotation.rotate_bot(&bot)).await;
    assert!(
        gave_up.is_err(),
        "the refresh answered within 50 ms despite the 500 ms fault"
    );
    // The spawned critical section still saves the new token.
    let query = InstallationQuery::team("T1");
    let mut stored = None;
    for _ in 0..200 {
        let bot_now = store.find_bot(&query).await.unwrap().unwrap();
        if bot_now.bot_token != bot.bot_token {
            stored = Some(bot_now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = stored.expect("the refreshed token was saved after the caller left");
    assert_eq!(emulator.counters().refreshes_served, 1);
    // A later caller gets the saved token without another refresh.
    let again = rotation.rotate_bot(&bot).await.unwrap();
    assert_eq!(again.bot_token, stored.bot_token);
    assert_eq!(emulator.counters().refreshes_served, 1);
}

#[tokio::test]
async fn a_waiter_returns_the_token_another_holder_saved() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let store = MemoryStore::new();
    store.save(&installation).await.unwrap();
    let lease = "rotation:111.222:-:T1:bot";
    assert!(store
        .try_acquire_lease(lease, "other-instance", Duration::from_secs(3_600))
        .await
        .unwrap()
        .is_held());
    let bot = installation.to_bot().unwrap();
    let rotation = rotation(&emulator, store.clone()).lease_ttl(Duration::from_secs(30));
    let waiter = tokio::spawn({
        let rotation = rotation.clone();
        let bot = bot.clone();
        async move { rotation.rotate_bot(&bot).await }
    });
    // The other instance refreshes and saves, holding the lease (and never releases it).
    let rotated = super::rotator(&emulator)
        .perform_bot_token_rotation(&bot, 0)
        .await
        .unwrap()
        .unwrap();
    let update = TokenUpdate {
        enterprise_id: None,
        team_id: Some("T1".into()),
        previous_refresh_token: bot.bot_refresh_token.clone().unwrap(),
        token: slack_oauth::store::RotatedToken::Bot {
            token: rotated.bot_token.clone(),
        },
        refresh_token: rotated.bot_refresh_token.clone().unwrap(),
        expires_at: rotated.bot_token_expires_at,
    };
    assert!(store.update_rotated_token(&update).await.unwrap());
    let fresh = waiter.await.unwrap().unwrap();
    assert_eq!(fresh.bot_token, rotated.bot_token);
    assert_eq!(
        emulator.counters().refreshes_served,
        1,
        "the waiter did not refresh"
    );
}

#[tokio::test]
async fn a_lease_held_past_the_bound_is_a_lease_timeout() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let store = MemoryStore::new();
    store.save(&installation).await.unwrap();
    let lease = "rotation:111.222:-:T1:bot";
    assert!(store
        .try_acquire_lease(lease, "stuck-instance", Duration::from_secs(3_600))
        .await
        .unwrap()
        .is_held());
    // The wait is bounded by the lease TTL the deadline needs (the 1 s deadline, a save margin
    // of half of it, 250 ms) plus 5 s: 6.75 s, then at most one backoff step (375 ms) and
    // whatever a loaded machine adds; a save margin of twice the deadline would make it 8.25 s.
    let started = std::time::Instant::now();
    let error = rotation(&emulator, store)
        .lease_ttl(Duration::from_millis(300))
        .slack_timeout(Duration::from_secs(1))
        .rotate_bot(&installation.to_bot().unwrap())
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(6_750) && waited < Duration::from_millis(8_200),
        "gave up after {waited:?}"
    );
    assert!(
        matches!(&error, RotationError::LeaseTimeout { lease: name } if name == lease),
        "{error:?}"
    );
    assert_eq!(emulator.counters().refreshes_served, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_refresh_token_after_another_instance_won_is_a_success() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let store = MemoryStore::new();
    store.save(&installation).await.unwrap();
    let bot = installation.to_bot().unwrap();
    // Our refresh reaches Slack but is handled 2 s later...
    emulator.inject("oauth.v2.access", Fault::Slow(Duration::from_secs(2)), 1);
    let ours = tokio::spawn({
        let rotation = rotation(&emulator, store.clone());
        let bot = bot.clone();
        async move { rotation.rotate_bot(&bot).await }
    });
    for _ in 0..1_000 {
        if emulator.counters().calls.contains_key("oauth.v2.access") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...meanwhile an instance that takes no lease (an older deployment) redeems the same
    // refresh token and saves the result.
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
    // Slack refuses our spent token; the store holds a newer one: that is the answer.
    let fresh = ours.await.unwrap().unwrap();
    assert_eq!(fresh.bot_token, theirs.bot_token);
    assert_eq!(fresh.bot_refresh_token, theirs.bot_refresh_token);
    let counters = emulator.counters();
    assert_eq!(counters.refreshes_served, 1);
    assert_eq!(counters.spent_refresh_token_reuse, 1, "ours was refused");
}

#[tokio::test]
async fn an_org_wide_install_rotates_in_place_on_sqlite() {
    let emulator = rotating_emulator().await;
    let mut installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    installation.enterprise_id = Some("E1".into());
    installation.team_id = None;
    installation.is_enterprise_install = true;
    let store = slack_oauth_test::sqlite::temporary().await;
    store.save(&installation).await.unwrap();
    let fresh = rotation(&emulator, store.clone())
        .rotate_installation(&installation)
        .await
        .unwrap();
    assert_ne!(fresh.bot_token, installation.bot_token);
    assert_ne!(fresh.user_token, installation.user_token);
    let stored = store
        .find_installation(&InstallationQuery::org("E1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.bot_token, fresh.bot_token);
    assert_eq!(stored.user_token, fresh.user_token);
    assert_eq!(stored.user_refresh_token, fresh.user_refresh_token);
    assert_eq!(emulator.counters().refreshes_served, 2);
}

#[tokio::test]
async fn debug_output_shows_no_secret() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let rotation = rotation(&emulator, MemoryStore::new());
    let shown = format!("{rotation:?} {:?}", rotation.rotator());
    let bot_refresh = installation.bot_refresh_token.as_ref().unwrap().secret();
    for secret in [crate::support::CLIENT_SECRET, bot_refresh] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
}

/// Callers queued behind a refresh in this process take its result from the store: the lease
/// is asked for once, by the caller that refreshed, not once per caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_callers_take_the_refreshed_token_without_the_lease() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let store = super::custody::DownAtCommit::new(MemoryStore::new());
    store.save(&installation).await.unwrap();
    // The refresh is slow, so that every caller queues behind the first.
    emulator.inject("oauth.v2.access", Fault::Slow(Duration::from_secs(1)), 1);
    let rotation = rotation(&emulator, store.clone());
    let bot = installation.to_bot().unwrap();
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (rotation, bot) = (rotation.clone(), bot.clone());
            tokio::spawn(async move { rotation.rotate_bot(&bot).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap().bot_token);
    }
    assert!(tokens
        .iter()
        .all(|token| *token == tokens[0] && *token != bot.bot_token));
    assert_eq!(emulator.counters().refreshes_served, 1);
    assert_eq!(
        store.lease_attempts(),
        1,
        "the queued callers asked for the lease"
    );
}

/// When the caller ahead fails, the next queued caller refreshes the still-due token itself
/// rather than answer with the stale one, and the callers behind it take its result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_caller_refreshes_when_the_caller_ahead_failed() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let store = MemoryStore::new();
    store.save(&installation).await.unwrap();
    // Another instance holds the lease for 300 ms: the first caller waits for it and the
    // others queue behind the first; then Slack refuses the first refresh (redeeming nothing).
    let lease = format!("rotation:{}:-:T1:bot", crate::support::CLIENT_ID);
    let held = store
        .try_acquire_lease(&lease, "another-instance", Duration::from_millis(300))
        .await
        .unwrap();
    assert!(held.is_held());
    emulator.inject(
        "oauth.v2.access",
        Fault::SlackError("invalid_client_id".to_owned()),
        1,
    );
    let rotation = rotation(&emulator, store.clone());
    let bot = installation.to_bot().unwrap();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (rotation, bot) = (rotation.clone(), bot.clone());
            tokio::spawn(async move { rotation.rotate_bot(&bot).await })
        })
        .collect();
    let mut results = Vec::new();
    for caller in callers {
        results.push(caller.await.unwrap());
    }
    let refused = results.iter().filter(|result| result.is_err()).count();
    assert_eq!(
        refused, 1,
        "only the first caller saw the refusal: {results:?}"
    );
    for fresh in results.iter().flatten() {
        assert_ne!(
            fresh.bot_token, bot.bot_token,
            "a queued caller kept the stale token"
        );
    }
    assert_eq!(emulator.counters().refreshes_served, 1);
}

/// A caller waiting for another instance's lease asks for it with a doubling backoff (20 ms up
/// to 250 ms), not in a tight loop.
#[tokio::test]
async fn a_lease_is_waited_for_with_a_doubling_backoff() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let store = super::custody::DownAtCommit::new(MemoryStore::new());
    store.save(&installation).await.unwrap();
    let lease = format!("rotation:{}:-:T1:bot", crate::support::CLIENT_ID);
    let held = store
        .try_acquire_lease(&lease, "another-instance", Duration::from_millis(400))
        .await
        .unwrap();
    assert!(held.is_held());
    let fresh = rotation(&emulator, store.clone())
        .rotate_bot(&installation.to_bot().unwrap())
        .await
        .unwrap();
    assert_ne!(Some(fresh.bot_token), installation.bot_token);
    // 20, 40, 80, 160, 250 ms (each up to 50% longer): about six asks over the 400 ms.
    let asked = store.lease_attempts() - 1;
    assert!(
        (1..=10).contains(&asked),
        "asked for the lease {asked} times"
    );
}
