//! Token custody under faults, in one process: the Slack deadline and the refresh intent, lost
//! answers settled and marked once, transient errors never marked, the store down at commit,
//! an uninstall during a refresh, instances with skewed clocks.
//!
//! Each `Rotation` is one instance (its own lease holder). The emulator runs with no refresh
//! grace unless a test says otherwise, so a spent refresh token sent again is refused.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slack_emulator::{refresh_token_key, Emulator, EmulatorConfig, Fault, RefreshTokenStatus};
use slack_oauth::clock::Clock;
use slack_oauth::installation::{Bot, Installation};
use slack_oauth::rotation::{Rotation, RotationError, TokenKind, TokenRotator};
use slack_oauth::store::{
    InstallationQuery, InstallationStore, LeaseAcquisition, LostGrant, MemoryStore, StoreError,
    TokenUpdate,
};
use time::OffsetDateTime;

use super::{long_ago, rotating_installation};
use crate::support;

/// The Slack deadline of these tests.
const DEADLINE: Duration = Duration::from_millis(600);

/// An emulator with rotation on and a refresh grace of `grace`.
async fn emulator_with_grace(grace: Duration) -> Emulator {
    support::emulator(EmulatorConfig {
        refresh_grace: grace,
        ..support::rotating_config()
    })
    .await
}

/// One instance: its own lease holder, a short lease and deadline, a hook counting events.
fn instance<S: InstallationStore + Clone + 'static>(
    emulator: &Emulator,
    store: S,
    events: &Arc<AtomicU32>,
) -> Rotation<S> {
    let rotator = TokenRotator::new(support::client(emulator), support::credentials());
    let events = Arc::clone(events);
    Rotation::new(rotator, store)
        .lease_ttl(Duration::from_secs(1))
        .slack_timeout(DEADLINE)
        .save_retry_for(Duration::from_secs(2))
        .on_reinstall_needed(move |event| {
            assert!(!event.to_string().contains("xoxe"), "no token in events");
            events.fetch_add(1, Ordering::SeqCst);
        })
}

/// A stored workspace whose bot token is due.
async fn due_bot(emulator: &Emulator, store: &MemoryStore) -> Bot {
    let installation = rotating_installation(emulator, "T1", "U1", long_ago());
    store.save(&installation).await.unwrap();
    installation.to_bot().unwrap()
}

/// The lease of T1's bot token.
const BOT_LEASE: &str = "rotation:111.222:-:T1:bot";

/// A refusal that redeemed nothing releases the lease and its intent at once: another instance
/// takes the lease right away, with nothing to settle.
#[tokio::test]
async fn a_clean_refusal_releases_the_lease_at_once() {
    let emulator = emulator_with_grace(Duration::ZERO).await;
    let store = MemoryStore::new();
    let bot = due_bot(&emulator, &store).await;
    let events = Arc::new(AtomicU32::new(0));
    emulator.inject(
        "oauth.v2.access",
        Fault::SlackError("invalid_client_id".to_owned()),
        1,
    );
    let error = instance(&emulator, store.clone(), &events)
        .rotate_bot(&bot)
        .await
        .unwrap_err();
    assert_eq!(error.slack_error(), Some("invalid_client_id"), "{error:?}");
    let probe = store
        .try_acquire_lease(BOT_LEASE, "probe", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        probe,
        LeaseAcquisition::Held {
            pending_intent: None
        }
    );
}

/// How many times Slack saw `refresh_token` presented, and the shortest gap between two.
fn presentations(emulator: &Emulator, refresh_token: &str) -> (usize, Option<Duration>) {
    let counters = emulator.counters();
    let times = counters
        .refresh_presented_at
        .get(&refresh_token_key(refresh_token))
        .cloned()
        .unwrap_or_default();
    let gap = times
        .windows(2)
        .map(|pair| pair[1].sent_at.saturating_sub(pair[0].sent_at))
        .min();
    (times.len(), gap)
}

fn stored_reason(bot: &Option<Bot>) -> Option<String> {
    bot.as_ref()?
        .needs_reinstall
        .as_ref()
        .map(|f| f.reason.clone())
}

/// Slack redeems the token but answers after the deadline: the call is abandoned, the intent
/// stays, and the next holder re-sends the same token once; refused (no grace), the grant is
/// marked `answer_lost`, with one event, and the token is never sent again. The two sends are
/// at least a deadline apart: never two holders at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_past_the_deadline_is_settled_by_the_next_holder_and_marked_once() {
    let emulator = emulator_with_grace(Duration::ZERO).await;
    let store = MemoryStore::new();
    let bot = due_bot(&emulator, &store).await;
    let refresh = bot.bot_refresh_token.clone().unwrap();
    let events = Arc::new(AtomicU32::new(0));
    emulator.inject("oauth.v2.access", Fault::SlowResponse(DEADLINE * 3), 1);

    let started = Instant::now();
    let first = instance(&emulator, store.clone(), &events)
        .rotate_bot(&bot)
        .await;
    assert!(
        matches!(
            first,
            Err(RotationError::Deadline {
                token: TokenKind::Bot,
                ..
            })
        ),
        "{first:?}"
    );
    assert!(
        started.elapsed() < DEADLINE * 2,
        "abandoned at the deadline"
    );
    assert_eq!(
        emulator.refresh_token_status(refresh.secret()),
        RefreshTokenStatus::Spent,
        "Slack had redeemed it"
    );
    // The first holder gave the lease up at once, keeping its intent for the next holder.
    let probe = store
        .try_acquire_lease(BOT_LEASE, "probe", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        matches!(
            probe,
            LeaseAcquisition::Held {
                pending_intent: Some(_)
            }
        ),
        "{probe:?}"
    );
    store.abandon_lease(BOT_LEASE, "probe").await.unwrap();

    let second = instance(&emulator, store.clone(), &events)
        .rotate_bot(&bot)
        .await;
    match &second {
        Err(RotationError::NeedsReinstall { token, reason }) => {
            assert_eq!(*token, TokenKind::Bot);
            assert_eq!(reason, "answer_lost (invalid_refresh_token)");
        }
        other => panic!("expected NeedsReinstall, got {other:?}"),
    }
    let (sent, gap) = presentations(&emulator, refresh.secret());
    assert_eq!(sent, 2, "sent once, re-sent once to settle");
    assert!(
        gap.is_some_and(|gap| gap >= DEADLINE - Duration::from_millis(50)),
        "the re-send came {gap:?} after the first send: two holders overlapped"
    );
    let stored = store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap();
    assert_eq!(
        stored_reason(&stored).as_deref(),
        Some("answer_lost (invalid_refresh_token)")
    );

    // Marked: neither another instance nor the first sends it again.
    for _ in 0..3 {
        let again = instance(&emulator, store.clone(), &events)
            .rotate_bot(stored.as_ref().unwrap())
            .await;
        assert!(
            matches!(again, Err(RotationError::NeedsReinstall { .. })),
            "{again:?}"
        );
    }
    assert_eq!(
        presentations(&emulator, refresh.secret()).0,
        2,
        "never sent again"
    );
    assert_eq!(events.load(Ordering::SeqCst), 1, "exactly one event");
}

/// Within Slack's grace period the re-send returns new tokens: nothing is lost or marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_within_the_grace_period_is_recovered() {
    let emulator = emulator_with_grace(Duration::from_secs(30)).await;
    let store = MemoryStore::new();
    let bot = due_bot(&emulator, &store).await;
    let events = Arc::new(AtomicU32::new(0));
    emulator.inject("oauth.v2.access", Fault::AnswerLost, 1);
    let first = instance(&emulator, store.clone(), &events)
        .rotate_bot(&bot)
        .await;
    assert!(first.is_err(), "the answer was lost: {first:?}");
    let fresh = instance(&emulator, store.clone(), &events)
        .rotate_bot(&bot)
        .await
        .unwrap();
    assert_ne!(fresh.bot_token, bot.bot_token);
    assert_eq!(fresh.needs_reinstall, None);
    let stored = store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.bot_refresh_token, fresh.bot_refresh_token, "saved");
    assert_eq!(
        emulator.refresh_token_status(stored.bot_refresh_token.unwrap().secret()),
        RefreshTokenStatus::Live
    );
    assert_eq!(events.load(Ordering::SeqCst), 0, "nothing marked");
    assert_eq!(emulator.counters().refreshes_in_grace, 1);
}

/// Transient failures (5xx, 429, `internal_error`, an undecodable answer, a reset or a timeout
/// after Slack redeemed, within its grace period) are never marked; the token is refreshed once
/// Slack recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_never_marked() {
    let emulator = emulator_with_grace(Duration::from_secs(60)).await;
    let store = MemoryStore::new();
    let bot = due_bot(&emulator, &store).await;
    let events = Arc::new(AtomicU32::new(0));
    let faults = [
        Fault::ServerError { status: 503 },
        Fault::RateLimited {
            retry_after_secs: 5,
        },
        Fault::SlackError("internal_error".to_owned()),
        Fault::MalformedJson,
        Fault::AnswerLost,
        Fault::SlowResponse(DEADLINE * 2),
    ];
    let rotation = instance(&emulator, store.clone(), &events);
    for fault in faults {
        emulator.inject("oauth.v2.access", fault.clone(), 1);
        let error = rotation.rotate_bot(&bot).await.unwrap_err();
        assert!(error.is_transient(), "{fault:?}: {error:?} is transient");
        assert!(
            !matches!(error, RotationError::NeedsReinstall { .. }),
            "{fault:?} marked the grant"
        );
    }
    let fresh = rotation.rotate_bot(&bot).await.unwrap();
    assert_ne!(fresh.bot_token, bot.bot_token, "refreshed after recovery");
    assert_eq!(events.load(Ordering::SeqCst), 0);
    let stored = store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap();
    assert_eq!(stored_reason(&stored), None);
}

/// Slack's permanent refusals mark the grant on the first attempt, with exactly one event
/// across four instances; the app's own credentials being wrong is not a lost grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_refusals_are_marked_at_once_with_one_event() {
    for code in [
        "invalid_refresh_token",
        "invalid_grant",
        "token_revoked",
        "app_uninstalled",
    ] {
        let emulator = emulator_with_grace(Duration::ZERO).await;
        let store = MemoryStore::new();
        let bot = due_bot(&emulator, &store).await;
        let events = Arc::new(AtomicU32::new(0));
        emulator.inject("oauth.v2.access", Fault::SlackError(code.to_owned()), 1);
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let rotation = instance(&emulator, store.clone(), &events);
                let bot = bot.clone();
                tokio::spawn(async move { rotation.rotate_bot(&bot).await })
            })
            .collect();
        for task in tasks {
            let result = task.await.unwrap();
            assert!(
                matches!(&result, Err(RotationError::NeedsReinstall { reason, .. }) if reason == code),
                "{code}: {result:?}"
            );
        }
        assert_eq!(events.load(Ordering::SeqCst), 1, "{code}: one event");
        assert_eq!(
            emulator.counters().calls.get("oauth.v2.access").copied(),
            Some(1),
            "{code}: flagged on the first attempt, never sent again"
        );
    }

    let emulator = emulator_with_grace(Duration::ZERO).await;
    let store = MemoryStore::new();
    let bot = due_bot(&emulator, &store).await;
    let events = Arc::new(AtomicU32::new(0));
    emulator.inject(
        "oauth.v2.access",
        Fault::SlackError("invalid_client_id".to_owned()),
        1,
    );
    let error = instance(&emulator, store.clone(), &events)
        .rotate_bot(&bot)
        .await
        .unwrap_err();
    assert_eq!(error.slack_error(), Some("invalid_client_id"));
    assert_eq!(events.load(Ordering::SeqCst), 0, "not a lost grant");
    let stored = store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap();
    assert_eq!(stored_reason(&stored), None);
}

/// A store that refuses every write of rotated tokens until `until`.
#[derive(Clone)]
pub(super) struct DownAtCommit {
    inner: MemoryStore,
    until: Arc<std::sync::Mutex<Instant>>,
    refused: Arc<AtomicU32>,
    /// Plain `save`s still to refuse.
    saves_to_refuse: Arc<AtomicU32>,
    /// Calls of `try_acquire_lease`.
    lease_attempts: Arc<AtomicU32>,
}

impl DownAtCommit {
    /// Up, over `inner`.
    pub(super) fn new(inner: MemoryStore) -> Self {
        Self {
            inner,
            until: Arc::new(std::sync::Mutex::new(Instant::now())),
            refused: Arc::new(AtomicU32::new(0)),
            saves_to_refuse: Arc::new(AtomicU32::new(0)),
            lease_attempts: Arc::new(AtomicU32::new(0)),
        }
    }

    /// How many times a lease was asked for.
    pub(super) fn lease_attempts(&self) -> u32 {
        self.lease_attempts.load(Ordering::SeqCst)
    }

    /// Refuses the next `count` plain saves (`save`, not the rotated-token compare-and-swap).
    pub(super) fn refuse_saves(&self, count: u32) {
        self.saves_to_refuse.store(count, Ordering::SeqCst);
    }

    /// Refuses saves of rotated tokens for `outage` from now.
    pub(super) fn down_for(&self, outage: Duration) {
        *self.until.lock().unwrap() = Instant::now() + outage;
    }

    fn down(&self) -> bool {
        Instant::now() < *self.until.lock().unwrap()
    }
}

impl InstallationStore for DownAtCommit {
    async fn save(&self, i: &Installation) -> Result<(), StoreError> {
        let refuse = self
            .saves_to_refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if refuse {
            return Err(StoreError::Closed("emulated outage"));
        }
        self.inner.save(i).await
    }
    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        self.inner.save_bot(bot).await
    }
    async fn find_bot(&self, q: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        self.inner.find_bot(q).await
    }
    async fn find_installation(
        &self,
        q: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        self.inner.find_installation(q).await
    }
    async fn delete_bot(&self, q: &InstallationQuery) -> Result<(), StoreError> {
        self.inner.delete_bot(q).await
    }
    async fn delete_installation(&self, q: &InstallationQuery) -> Result<(), StoreError> {
        self.inner.delete_installation(q).await
    }
    async fn list_installations(&self) -> Result<Vec<Installation>, StoreError> {
        self.inner.list_installations().await
    }
    async fn list_expiring(&self, d: OffsetDateTime) -> Result<Vec<Installation>, StoreError> {
        self.inner.list_expiring(d).await
    }
    async fn update_rotated_token(&self, u: &TokenUpdate) -> Result<bool, StoreError> {
        self.inner.update_rotated_token(u).await
    }
    async fn update_rotated_token_and_release_lease(
        &self,
        update: &TokenUpdate,
        name: &str,
        holder: &str,
    ) -> Result<bool, StoreError> {
        if self.down() {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Closed("emulated outage"));
        }
        self.inner
            .update_rotated_token_and_release_lease(update, name, holder)
            .await
    }
    async fn try_acquire_lease(
        &self,
        n: &str,
        h: &str,
        ttl: Duration,
    ) -> Result<LeaseAcquisition, StoreError> {
        self.lease_attempts.fetch_add(1, Ordering::SeqCst);
        self.inner.try_acquire_lease(n, h, ttl).await
    }
    async fn record_refresh_intent(
        &self,
        n: &str,
        h: &str,
        f: &str,
        min: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.record_refresh_intent(n, h, f, min).await
    }
    async fn release_lease(&self, n: &str, h: &str) -> Result<(), StoreError> {
        self.inner.release_lease(n, h).await
    }
    async fn abandon_lease(&self, n: &str, h: &str) -> Result<(), StoreError> {
        self.inner.abandon_lease(n, h).await
    }
    async fn spend_refresh_budget(
        &self,
        limit: u32,
    ) -> Result<slack_oauth::store::BudgetSpend, StoreError> {
        self.inner.spend_refresh_budget(limit).await
    }

    async fn flag_reinstall(&self, g: &LostGrant) -> Result<bool, StoreError> {
        self.inner.flag_reinstall(g).await
    }
}

/// The store is down when Slack answers: the new tokens are kept in memory and saved when it
/// comes back, within the retry window; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_tokens_survive_the_store_down_at_commit() {
    let emulator = emulator_with_grace(Duration::ZERO).await;
    let inner = MemoryStore::new();
    let bot = due_bot(&emulator, &inner).await;
    let store = DownAtCommit::new(inner.clone());
    let events = Arc::new(AtomicU32::new(0));
    store.down_for(Duration::from_millis(1_200));
    let fresh = instance(&emulator, store.clone(), &events)
        .rotate_bot(&bot)
        .await
        .unwrap();
    assert!(
        store.refused.load(Ordering::SeqCst) > 1,
        "the save was retried"
    );
    let stored = inner
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.bot_refresh_token, fresh.bot_refresh_token);
    assert_eq!(
        emulator.refresh_token_status(stored.bot_refresh_token.unwrap().secret()),
        RefreshTokenStatus::Live,
        "the stored refresh token is the live one"
    );
}

/// An outage longer than the retry window loses the tokens: the error says so, the intent
/// stays, and the next holder detects the loss and marks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_past_the_retry_window_is_detected_and_marked() {
    let emulator = emulator_with_grace(Duration::ZERO).await;
    let inner = MemoryStore::new();
    let bot = due_bot(&emulator, &inner).await;
    let store = DownAtCommit::new(inner.clone());
    let events = Arc::new(AtomicU32::new(0));
    // Longer than the 2 s retry window plus its last backoff (at most 3 s).
    store.down_for(Duration::from_secs(6));
    let error = instance(&emulator, store.clone(), &events)
        .rotate_bot(&bot)
        .await
        .unwrap_err();
    assert!(matches!(error, RotationError::Store(_)), "{error:?}");
    while store.down() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settled = instance(&emulator, store.clone(), &events)
        .rotate_bot(&bot)
        .await;
    assert!(
        matches!(&settled, Err(RotationError::NeedsReinstall { reason, .. }) if reason.starts_with("answer_lost")),
        "{settled:?}"
    );
    assert_eq!(events.load(Ordering::SeqCst), 1);
}

/// `app_uninstalled` arrives (the app deletes the workspace) while a refresh is in flight: the
/// refresh's save finds nothing to update and nothing is resurrected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninstall_during_a_refresh_is_not_undone() {
    let emulator = emulator_with_grace(Duration::ZERO).await;
    let store = MemoryStore::new();
    let bot = due_bot(&emulator, &store).await;
    let events = Arc::new(AtomicU32::new(0));
    emulator.inject(
        "oauth.v2.access",
        Fault::Slow(Duration::from_millis(300)),
        1,
    );
    let refresh = tokio::spawn({
        let rotation = instance(&emulator, store.clone(), &events);
        let bot = bot.clone();
        async move { rotation.rotate_bot(&bot).await }
    });
    while !emulator.counters().calls.contains_key("oauth.v2.access") {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    store
        .delete_all(&InstallationQuery::team("T1"))
        .await
        .unwrap();
    let result = refresh.await.unwrap();
    assert!(
        matches!(result, Err(RotationError::NotStored { .. })),
        "{result:?}"
    );
    assert!(store
        .find_bot(&InstallationQuery::team("T1"))
        .await
        .unwrap()
        .is_none());
    assert!(
        store.list_installations().await.unwrap().is_empty(),
        "nothing resurrected"
    );
}

/// A clock `offset` away from the real one.
#[derive(Debug)]
struct Skewed(time::Duration);

impl Clock for Skewed {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.0
    }
}

/// Instances with clocks up to 5 minutes apart rotate a token expiring in a minute exactly
/// once: leases expire by the store's clock, not theirs.
async fn skewed_instances_rotate_once<S: InstallationStore + Clone + 'static>(store: S) {
    let emulator = emulator_with_grace(Duration::ZERO).await;
    let installation: Installation = rotating_installation(
        &emulator,
        "T1",
        "U1",
        OffsetDateTime::now_utc() + time::Duration::minutes(1),
    );
    store.save(&installation).await.unwrap();
    let events = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for minutes in [-5, -2, 2, 5] {
        let rotator = TokenRotator::new(support::client(&emulator), support::credentials())
            .with_clock(Skewed(time::Duration::minutes(minutes)));
        let rotation = Rotation::new(rotator, store.clone()).slack_timeout(Duration::from_secs(5));
        for _ in 0..16 {
            let rotation = rotation.clone();
            let installation = installation.clone();
            tasks.push(tokio::spawn(async move {
                rotation.rotate_installation(&installation).await
            }));
        }
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap().unwrap().bot_token);
    }
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "one new token for all"
    );
    let counters = emulator.counters();
    assert_eq!(counters.refreshes_served, 2, "bot and user, once each");
    assert_eq!(counters.spent_refresh_token_reuse, 0);
    assert_eq!(events.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_instances_rotate_once_memory() {
    skewed_instances_rotate_once(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_instances_rotate_once_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("skew.db").display());
    let store = slack_oauth::store::SqliteStore::connect(&url, support::CLIENT_ID)
        .await
        .unwrap();
    skewed_instances_rotate_once(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_instances_rotate_once_postgres() {
    let Some(schema) = super::postgres::Schema::new().await else {
        return;
    };
    skewed_instances_rotate_once(schema.store.clone()).await;
    schema.drop().await;
}
