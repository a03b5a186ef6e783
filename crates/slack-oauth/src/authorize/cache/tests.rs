//! `CachedStore` over a counting `MemoryStore`: hits, TTLs, expiry cap, invalidation, capacity.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::*;
use crate::authorize::{AuthorizeRequest, Authorizer};
use crate::clock::ManualClock;
use crate::installation::Scopes;
use crate::secret::{BotToken, RefreshToken, UserToken};
use crate::store::{MemoryStore, RotatedToken};

const START: i64 = 1_767_225_600;

/// A `MemoryStore` that counts lookups.
#[derive(Clone, Default)]
struct Counting {
    inner: MemoryStore,
    finds: Arc<AtomicUsize>,
}

impl Counting {
    fn finds(&self) -> usize {
        self.finds.load(Ordering::SeqCst)
    }
}

impl InstallationStore for Counting {
    async fn save(&self, i: &Installation) -> Result<(), StoreError> {
        self.inner.save(i).await
    }
    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        self.inner.save_bot(bot).await
    }
    async fn find_bot(&self, q: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find_bot(q).await
    }
    async fn find_installation(
        &self,
        q: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
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
    async fn try_acquire_lease(
        &self,
        n: &str,
        h: &str,
        ttl: std::time::Duration,
    ) -> Result<crate::store::LeaseAcquisition, StoreError> {
        self.inner.try_acquire_lease(n, h, ttl).await
    }
    async fn record_refresh_intent(
        &self,
        n: &str,
        h: &str,
        f: &str,
        min: std::time::Duration,
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
    ) -> Result<crate::store::BudgetSpend, StoreError> {
        self.inner.spend_refresh_budget(limit).await
    }

    async fn flag_reinstall(&self, g: &crate::store::LostGrant) -> Result<bool, StoreError> {
        self.inner.flag_reinstall(g).await
    }
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(START + seconds).unwrap()
}

fn installation(team: &str, user: &str, generation: u32) -> Installation {
    let mut i = Installation::new(user, at(i64::from(generation)));
    i.team_id = Some(team.into());
    i.bot_token = Some(BotToken::new(format!("xoxb-{team}-{generation}")));
    i.bot_scopes = Scopes::parse("chat:write");
    i.user_token = Some(UserToken::new(format!("xoxp-{team}-{user}-{generation}")));
    i
}

fn setup() -> (Counting, CachedStore<Counting>, ManualClock) {
    let clock = ManualClock::at_unix(START);
    let counting = Counting::default();
    let cached = CachedStore::new(counting.clone()).clock(clock.clone());
    (counting, cached, clock)
}

async fn bot_token(store: &CachedStore<Counting>, team: &str) -> Option<String> {
    store
        .find_installation(&InstallationQuery::team(team))
        .await
        .unwrap()
        .and_then(|i| i.bot_token)
        .map(|t| t.secret().to_owned())
}

#[tokio::test]
async fn second_authorize_is_served_from_the_cache() {
    let (counting, cached, _clock) = setup();
    cached.save(&installation("T1", "U1", 0)).await.unwrap();
    let authorizer = Authorizer::new(cached.clone());
    for user in ["U1", "U2", "U1", "U2"] {
        let request = AuthorizeRequest::team("T1").user(user);
        assert!(authorizer.authorize(&request).await.unwrap().is_some());
    }
    // U1: one workspace lookup; U2: plus one user lookup. Then all hits.
    assert_eq!(counting.finds(), 2);
}

#[tokio::test]
async fn positive_entries_expire_after_the_ttl() {
    let (counting, cached, clock) = setup();
    counting
        .inner
        .save(&installation("T1", "U1", 0))
        .await
        .unwrap();
    assert_eq!(bot_token(&cached, "T1").await.unwrap(), "xoxb-T1-0");
    counting
        .inner
        .save(&installation("T1", "U1", 1))
        .await
        .unwrap();
    clock.advance(DEFAULT_CACHE_TTL - Duration::from_secs(1));
    assert_eq!(
        bot_token(&cached, "T1").await.unwrap(),
        "xoxb-T1-0",
        "still cached"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(bot_token(&cached, "T1").await.unwrap(), "xoxb-T1-1");
    assert_eq!(counting.finds(), 2);
}

#[tokio::test]
async fn misses_are_cached_only_briefly() {
    let (counting, cached, clock) = setup();
    assert_eq!(bot_token(&cached, "T1").await, None);
    counting
        .inner
        .save(&installation("T1", "U1", 0))
        .await
        .unwrap();
    assert_eq!(bot_token(&cached, "T1").await, None, "negative entry");
    assert_eq!(counting.finds(), 1);
    clock.advance(DEFAULT_NEGATIVE_CACHE_TTL);
    assert_eq!(bot_token(&cached, "T1").await.unwrap(), "xoxb-T1-0");
    assert_eq!(counting.finds(), 2);
}

#[tokio::test]
async fn save_through_the_wrapper_invalidates_with_and_without_user() {
    let (_counting, cached, _clock) = setup();
    cached.save(&installation("T1", "U1", 0)).await.unwrap();
    let user_query = InstallationQuery::team("T1").user("U1");
    assert_eq!(bot_token(&cached, "T1").await.unwrap(), "xoxb-T1-0");
    cached
        .find_installation(&user_query)
        .await
        .unwrap()
        .unwrap();
    // A reinstall through the same handle (the OAuth flow) is seen at once, by both keys (W16).
    cached.save(&installation("T1", "U1", 1)).await.unwrap();
    assert_eq!(bot_token(&cached, "T1").await.unwrap(), "xoxb-T1-1");
    let user = cached
        .find_installation(&user_query)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.user_token.unwrap().secret(), "xoxp-T1-U1-1");
    // A save elsewhere before the first lookup is no problem either: not-found is replaced too.
    assert_eq!(bot_token(&cached, "T2").await, None);
    cached.save(&installation("T2", "U1", 0)).await.unwrap();
    assert_eq!(bot_token(&cached, "T2").await.unwrap(), "xoxb-T2-0");
}

#[tokio::test]
async fn delete_and_rotation_invalidate() {
    let (counting, cached, _clock) = setup();
    let mut rotating = installation("T1", "U1", 0);
    rotating.bot_refresh_token = Some(RefreshToken::new("xoxe-1-r0"));
    rotating.bot_token_expires_at = Some(at(100_000));
    cached.save(&rotating).await.unwrap();
    assert_eq!(bot_token(&cached, "T1").await.unwrap(), "xoxb-T1-0");
    let update = TokenUpdate {
        enterprise_id: None,
        team_id: Some("T1".into()),
        previous_refresh_token: RefreshToken::new("xoxe-1-r0"),
        token: RotatedToken::Bot {
            token: BotToken::new("xoxb-T1-rotated"),
        },
        refresh_token: RefreshToken::new("xoxe-1-r1"),
        expires_at: Some(at(200_000)),
    };
    assert!(cached.update_rotated_token(&update).await.unwrap());
    assert_eq!(bot_token(&cached, "T1").await.unwrap(), "xoxb-T1-rotated");
    cached
        .delete_all(&InstallationQuery::team("T1"))
        .await
        .unwrap();
    assert_eq!(bot_token(&cached, "T1").await, None);
    assert_eq!(counting.finds(), 3);
}

#[tokio::test]
async fn entries_never_outlive_the_refresh_window() {
    let (counting, cached, clock) = setup();
    let mut rotating = installation("T1", "U1", 0);
    rotating.bot_refresh_token = Some(RefreshToken::new("xoxe-1-r0"));
    // Expires 10 s after the window opens: cacheable for 10 s only.
    rotating.bot_token_expires_at = Some(at(0) + DEFAULT_REFRESH_WINDOW + Duration::from_secs(10));
    counting.inner.save(&rotating).await.unwrap();
    bot_token(&cached, "T1").await.unwrap();
    bot_token(&cached, "T1").await.unwrap();
    assert_eq!(counting.finds(), 1);
    clock.advance(Duration::from_secs(10));
    bot_token(&cached, "T1").await.unwrap();
    bot_token(&cached, "T1").await.unwrap();
    assert_eq!(counting.finds(), 3, "inside the window: never cached");
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let (counting, cached, _clock) = setup();
    let cached = cached.capacity(3);
    for n in 0..10 {
        let team = format!("T{n}");
        counting
            .inner
            .save(&installation(&team, "U1", 0))
            .await
            .unwrap();
        bot_token(&cached, &team).await.unwrap();
        assert!(cached.cache.rows.len() <= 3, "{}", cached.cache.rows.len());
    }
    cached.invalidate_all();
    assert!(cached.cache.rows.is_empty());
}

#[tokio::test]
async fn find_bot_is_cached_and_invalidated_by_save_bot() {
    let (counting, cached, _clock) = setup();
    let mut bot = Bot::new(BotToken::new("xoxb-a"), at(0));
    bot.team_id = Some("T1".into());
    cached.save_bot(&bot).await.unwrap();
    let query = InstallationQuery::team("T1");
    assert_eq!(
        cached
            .find_bot(&query)
            .await
            .unwrap()
            .unwrap()
            .bot_token
            .secret(),
        "xoxb-a"
    );
    cached.find_bot(&query).await.unwrap();
    assert_eq!(counting.finds(), 1);
    bot.bot_token = BotToken::new("xoxb-b");
    bot.installed_at = at(1);
    cached.save_bot(&bot).await.unwrap();
    assert_eq!(
        cached
            .find_bot(&query)
            .await
            .unwrap()
            .unwrap()
            .bot_token
            .secret(),
        "xoxb-b"
    );
}

/// One workspace's many users are bounded like everything else, and a save of the workspace
/// drops every user's lookup at once.
#[tokio::test]
async fn many_users_of_one_workspace_are_bounded_and_invalidated_together() {
    let (counting, cached, _clock) = setup();
    let cached = cached.capacity(4);
    for n in 0..20 {
        let user = format!("U{n}");
        counting
            .inner
            .save(&installation("T1", &user, 0))
            .await
            .unwrap();
        let query = InstallationQuery::team("T1").user(user.as_str());
        assert!(cached.find_installation(&query).await.unwrap().is_some());
        assert!(cached.cache.rows.len() <= 4, "{}", cached.cache.rows.len());
    }
    let query = InstallationQuery::team("T1").user("U19");
    let finds = counting.finds();
    cached.find_installation(&query).await.unwrap();
    assert_eq!(
        counting.finds(),
        finds,
        "the latest user's lookup is cached"
    );
    cached.save(&installation("T1", "U18", 1)).await.unwrap();
    let found = cached.find_installation(&query).await.unwrap().unwrap();
    assert_eq!(counting.finds(), finds + 1, "read again after the save");
    assert_eq!(
        found.bot_token.unwrap().secret(),
        "xoxb-T1-1", // fake
        "with the workspace's new bot"
    );
}
