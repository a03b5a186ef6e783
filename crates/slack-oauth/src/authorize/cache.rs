//! `CachedStore`: an installation store wrapper that caches lookups for authorize.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quick_cache::Equivalent;
use time::OffsetDateTime;

use super::DEFAULT_REFRESH_WINDOW;
use crate::clock::{Clock, SystemClock};
use crate::ids::{EnterpriseId, TeamId};
use crate::installation::{Bot, Installation};
use crate::secret::StateValue;
use crate::store::{InstallationQuery, InstallationStore, StateStore, StoreError, TokenUpdate};

/// Default time a found installation or bot is cached.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Default time a "not found" is cached.
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(3);
/// Default number of cached lookups (an installation per user, or a bot) kept.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// One org or workspace, as the stores scope rows (no team for org-wide installs), borrowed
/// from a query, an installation or a bot: a lookup allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ScopeRef<'a> {
    enterprise: Option<&'a str>,
    team: Option<&'a str>,
}

/// What one lookup was for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum SlotRef<'a> {
    /// `find_installation` with this user (or none).
    Installation(Option<&'a str>),
    /// `find_bot`.
    Bot,
}

/// A cached lookup's key, borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct RowRef<'a> {
    scope: ScopeRef<'a>,
    slot: SlotRef<'a>,
}

/// A [`ScopeRef`] as the cache keeps it.
#[derive(PartialEq, Eq)]
struct ScopeKey {
    enterprise: Option<String>,
    team: Option<String>,
}

/// A [`RowRef`] as the cache keeps it.
#[derive(PartialEq, Eq)]
struct RowKey {
    scope: ScopeKey,
    /// `None`: the bot; `Some(user)`: the installation of that user (or of none).
    installation_of: Option<Option<String>>,
}

impl<'a> ScopeRef<'a> {
    fn of_query(query: &'a InstallationQuery) -> Self {
        Self::of_ids(query.enterprise_id.as_ref(), query.lookup_team_id())
    }

    fn of_installation(installation: &'a Installation) -> Self {
        let team = installation.team_id.as_ref();
        let team = team.filter(|_| !installation.is_enterprise_install);
        Self::of_ids(installation.enterprise_id.as_ref(), team)
    }

    fn of_bot(bot: &'a Bot) -> Self {
        let team = bot.team_id.as_ref().filter(|_| !bot.is_enterprise_install);
        Self::of_ids(bot.enterprise_id.as_ref(), team)
    }

    fn of_ids(enterprise: Option<&'a EnterpriseId>, team: Option<&'a TeamId>) -> Self {
        Self {
            enterprise: enterprise.map(|id| id.as_str()),
            team: team.map(|id| id.as_str()),
        }
    }

    fn to_key(self) -> ScopeKey {
        ScopeKey {
            enterprise: self.enterprise.map(str::to_owned),
            team: self.team.map(str::to_owned),
        }
    }
}

impl RowRef<'_> {
    fn to_key(self) -> RowKey {
        RowKey {
            scope: self.scope.to_key(),
            installation_of: match self.slot {
                SlotRef::Installation(user) => Some(user.map(str::to_owned)),
                SlotRef::Bot => None,
            },
        }
    }
}

impl ScopeKey {
    fn as_ref(&self) -> ScopeRef<'_> {
        ScopeRef {
            enterprise: self.enterprise.as_deref(),
            team: self.team.as_deref(),
        }
    }
}

impl RowKey {
    fn as_ref(&self) -> RowRef<'_> {
        RowRef {
            scope: self.scope.as_ref(),
            slot: match &self.installation_of {
                Some(user) => SlotRef::Installation(user.as_deref()),
                None => SlotRef::Bot,
            },
        }
    }
}

// The owned keys hash as their borrowed forms, so that a borrowed key finds them.
impl Hash for ScopeKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state);
    }
}

impl Hash for RowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state);
    }
}

impl Equivalent<ScopeKey> for ScopeRef<'_> {
    fn equivalent(&self, key: &ScopeKey) -> bool {
        *self == key.as_ref()
    }
}

impl Equivalent<RowKey> for RowRef<'_> {
    fn equivalent(&self, key: &RowKey) -> bool {
        *self == key.as_ref()
    }
}

/// An [`InstallationStore`] that caches `find_installation` and `find_bot`. Clones share the
/// cache.
///
/// Authorize reads the same few rows for every request of a workspace; [`CachedStore`] keeps them
/// in memory for a short time:
///
/// - found installations and bots are kept for the TTL (default 60 s), **capped at the token's
///   `expires_at - refresh window`**, so an expiring token is never served from the cache (it is
///   read again and refreshed);
/// - "not found" is kept only briefly (default 3 s), so a fresh install is seen almost at once
///   even when it was saved by another process;
/// - every `save`, `save_bot`, delete and `update_rotated_token` made **through this wrapper**
///   drops every cached entry of that workspace or org (with and without user: no stale no-user
///   key, unlike Bolt's W16). Pass the same `CachedStore` to the OAuth flow, the token rotation
///   and the authorizer so that they all invalidate it;
/// - the cache is bounded ([`capacity`](CachedStore::capacity) lookups, users' installations
///   and bots alike, in a [`quick_cache`] that evicts the least useful on insert).
///
/// Writes from other processes are seen after at most the TTL. A token another instance
/// refreshed stays valid until its own expiry, which the cap keeps ahead of the cache.
///
/// ```
/// use std::time::Duration;
/// use slack_oauth::authorize::{Authorizer, CachedStore};
/// use slack_oauth::store::MemoryStore;
///
/// let store = CachedStore::new(MemoryStore::new()).ttl(Duration::from_secs(30));
/// let authorizer = Authorizer::new(store.clone()); // give `store` to the OAuth flow too
/// # let _ = authorizer;
/// ```
pub struct CachedStore<S> {
    inner: S,
    cache: Arc<Cache>,
}

struct Cache {
    /// The cached lookups, each tagged with its workspace's generation.
    rows: quick_cache::sync::Cache<RowKey, Arc<Row>>,
    /// The current generation of each workspace (or org) with cached rows. Invalidating a
    /// workspace removes its generation, which orphans all its rows at once (whatever users
    /// they are for); an evicted generation orphans them too, so eviction never serves a stale
    /// row.
    generations: quick_cache::sync::Cache<ScopeKey, Arc<Generation>>,
    /// Bumped by every invalidation: a lookup that raced with one is not cached.
    epoch: AtomicU64,
    ttl: Duration,
    negative_ttl: Duration,
    refresh_window: Duration,
    capacity: usize,
    clock: Arc<dyn Clock>,
}

/// One cached lookup: what was found (or not), until when, and the workspace generation it
/// belongs to.
struct Row {
    found: Found,
    until: OffsetDateTime,
    generation: Arc<Generation>,
}

// Rows are kept behind an `Arc`: the variants' sizes never move around.
#[allow(clippy::large_enum_variant)]
enum Found {
    Installation(Option<Installation>),
    Bot(Option<Bot>),
}

/// A workspace's generation: compared by identity (`Arc::ptr_eq`), and kept alive by its rows,
/// so that a new one never shares an old one's address.
#[derive(Default)]
struct Generation;

impl<S: Clone> Clone for CachedStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            cache: Arc::clone(&self.cache),
        }
    }
}

impl<S> fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStore")
            .field("cached_lookups", &self.cache.rows.len())
            .field("ttl", &self.cache.ttl)
            .field("negative_ttl", &self.cache.negative_ttl)
            .field("capacity", &self.cache.capacity)
            .finish_non_exhaustive()
    }
}

impl<S> CachedStore<S> {
    /// Wraps `inner` with the default TTLs, refresh window and capacity.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            cache: Arc::new(Cache::new(
                DEFAULT_CACHE_TTL,
                DEFAULT_NEGATIVE_CACHE_TTL,
                DEFAULT_REFRESH_WINDOW,
                DEFAULT_CACHE_CAPACITY,
                Arc::new(SystemClock),
            )),
        }
    }

    fn configure(mut self, edit: impl FnOnce(&mut Cache)) -> Self {
        // Settings are chained before the first clone; after that, a fresh cache is made.
        match Arc::get_mut(&mut self.cache) {
            Some(cache) => edit(cache),
            None => {
                let old = &self.cache;
                let mut cache = Cache::new(
                    old.ttl,
                    old.negative_ttl,
                    old.refresh_window,
                    old.capacity,
                    Arc::clone(&old.clock),
                );
                edit(&mut cache);
                self.cache = Arc::new(cache);
            }
        }
        self
    }

    /// How long a found installation or bot is cached (default 60 s; zero disables caching).
    #[must_use]
    pub fn ttl(self, ttl: Duration) -> Self {
        self.configure(|cache| cache.ttl = ttl)
    }

    /// How long a "not found" is cached (default 3 s; zero disables it).
    #[must_use]
    pub fn negative_ttl(self, ttl: Duration) -> Self {
        self.configure(|cache| cache.negative_ttl = ttl)
    }

    /// Entries expire this long before their token does (default: the authorizer's default
    /// refresh window). Keep it equal to the authorizer's
    /// [`refresh_window`](super::Authorizer::refresh_window).
    #[must_use]
    pub fn refresh_window(self, window: Duration) -> Self {
        self.configure(|cache| cache.refresh_window = window)
    }

    /// How many lookups (an installation per user, or a bot) are kept at most (default
    /// 10 000).
    #[must_use]
    pub fn capacity(self, capacity: usize) -> Self {
        self.configure(|cache| {
            *cache = Cache::new(
                cache.ttl,
                cache.negative_ttl,
                cache.refresh_window,
                capacity.max(1),
                Arc::clone(&cache.clock),
            );
        })
    }

    /// The clock for expiries (default: the system clock).
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        self.configure(move |cache| cache.clock = clock)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Drops every cached entry of the workspace or org of `query` (for writes made around
    /// this wrapper).
    pub fn invalidate(&self, query: &InstallationQuery) {
        self.cache.invalidate(ScopeRef::of_query(query));
    }

    /// Drops every cached entry.
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    /// Applies `changes` (other writers' saves, deletes, rotations and reinstall marks, from
    /// [`AnyStore::changes`](crate::AnyStore::changes) or
    /// [`PostgresStore::changes`](crate::PostgresStore::changes)) to this cache until the
    /// stream ends or every clone of this store is dropped: a changed workspace's entries are
    /// dropped, [`StoreChange::Missed`](crate::store::StoreChange::Missed) drops everything. Spawn it; entries are then stale for
    /// the notification's delay (milliseconds) instead of up to the TTL, which stays the
    /// fallback while notifications are down.
    ///
    /// ```
    /// use slack_oauth::store::{InstallationQuery, StoreChange};
    /// use slack_oauth::{CachedStore, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = CachedStore::new(MemoryStore::new());
    /// let changes = futures::stream::iter([StoreChange::Workspace(InstallationQuery::team("T1"))]);
    /// store.follow_changes(changes).await;
    /// # });
    /// ```
    pub fn follow_changes(
        &self,
        changes: impl futures::Stream<Item = crate::store::StoreChange> + Send + 'static,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        use futures::StreamExt as _;
        // Weak: following does not keep the cache alive.
        let cache = Arc::downgrade(&self.cache);
        async move {
            let mut changes = std::pin::pin!(changes);
            while let Some(change) = changes.next().await {
                let Some(cache) = cache.upgrade() else {
                    return;
                };
                match change {
                    crate::store::StoreChange::Workspace(query) => {
                        cache.invalidate(ScopeRef::of_query(&query));
                    }
                    crate::store::StoreChange::Missed => cache.invalidate_all(),
                }
            }
        }
    }
}

/// The earliest expiry of a token that can be refreshed (what a refresh would replace).
fn refreshable_expiry(token: [(bool, Option<OffsetDateTime>); 2]) -> Option<OffsetDateTime> {
    token
        .into_iter()
        .filter_map(|(refreshable, at)| at.filter(|_| refreshable))
        .min()
}

impl Cache {
    fn new(
        ttl: Duration,
        negative_ttl: Duration,
        refresh_window: Duration,
        capacity: usize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            rows: quick_cache::sync::Cache::new(capacity),
            generations: quick_cache::sync::Cache::new(capacity),
            epoch: AtomicU64::new(0),
            ttl,
            negative_ttl,
            refresh_window,
            capacity,
            clock,
        }
    }

    fn invalidate(&self, scope: ScopeRef<'_>) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.generations.remove(&scope);
    }

    fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.generations.clear();
        self.rows.clear();
    }

    /// Until when a lookup result may be served, or `None` when it must not be cached.
    fn until(&self, found: bool, expires_at: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
        let now = self.clock.now();
        let mut until = now + if found { self.ttl } else { self.negative_ttl };
        if let Some(expires_at) = expires_at {
            until = until.min(expires_at - self.refresh_window);
        }
        (until > now).then_some(until)
    }

    /// The cached lookup, if it is live and of its workspace's current generation.
    fn get(&self, key: RowRef<'_>) -> Option<Arc<Row>> {
        let generation = self.generations.get(&key.scope)?;
        let row = self.rows.get(&key)?;
        if !Arc::ptr_eq(&row.generation, &generation) {
            // Left over from before an invalidation: its slot is free for a fresh lookup.
            self.rows.remove(&key);
            return None;
        }
        (row.until > self.clock.now()).then_some(row)
    }

    /// Caches a lookup unless an invalidation happened since `epoch` (the lookup may have read
    /// what that write replaced).
    fn insert(&self, epoch: u64, key: RowRef<'_>, found: Found, until: OffsetDateTime) {
        // The generation is in the map before the epoch is checked: an invalidation either
        // bumped the epoch already (nothing is cached) or removes this generation afterwards
        // (what is cached is orphaned).
        let generation = match self.generations.get(&key.scope) {
            Some(generation) => generation,
            None => {
                let generation = Arc::new(Generation);
                self.generations
                    .insert(key.scope.to_key(), Arc::clone(&generation));
                generation
            }
        };
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        let row = Row {
            found,
            until,
            generation,
        };
        self.rows.insert(key.to_key(), Arc::new(row));
    }
}

impl<S: InstallationStore> InstallationStore for CachedStore<S> {
    async fn save(&self, installation: &Installation) -> Result<(), StoreError> {
        let result = self.inner.save(installation).await;
        self.cache
            .invalidate(ScopeRef::of_installation(installation));
        result
    }

    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        let result = self.inner.save_bot(bot).await;
        self.cache.invalidate(ScopeRef::of_bot(bot));
        result
    }

    async fn find_bot(&self, query: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        let key = RowRef {
            scope: ScopeRef::of_query(query),
            slot: SlotRef::Bot,
        };
        if let Some(row) = self.cache.get(key) {
            if let Found::Bot(bot) = &row.found {
                crate::telemetry::cache_hit();
                return Ok(bot.clone());
            }
        }
        crate::telemetry::cache_miss();
        let epoch = self.cache.epoch.load(Ordering::SeqCst);
        let found = self.inner.find_bot(query).await?;
        let expiry = found.as_ref().and_then(|bot| {
            refreshable_expiry([
                (bot.bot_refresh_token.is_some(), bot.bot_token_expires_at),
                (false, None),
            ])
        });
        if let Some(until) = self.cache.until(found.is_some(), expiry) {
            let row = Found::Bot(found.clone());
            self.cache.insert(epoch, key, row, until);
        }
        Ok(found)
    }

    async fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        let key = RowRef {
            scope: ScopeRef::of_query(query),
            slot: SlotRef::Installation(query.user_id.as_ref().map(|id| id.as_str())),
        };
        if let Some(row) = self.cache.get(key) {
            if let Found::Installation(installation) = &row.found {
                crate::telemetry::cache_hit();
                return Ok(installation.clone());
            }
        }
        crate::telemetry::cache_miss();
        let epoch = self.cache.epoch.load(Ordering::SeqCst);
        let found = self.inner.find_installation(query).await?;
        let expiry = found.as_ref().and_then(|i| {
            refreshable_expiry([
                (i.bot_refresh_token.is_some(), i.bot_token_expires_at),
                (i.user_refresh_token.is_some(), i.user_token_expires_at),
            ])
        });
        if let Some(until) = self.cache.until(found.is_some(), expiry) {
            let row = Found::Installation(found.clone());
            self.cache.insert(epoch, key, row, until);
        }
        Ok(found)
    }

    async fn delete_bot(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        let result = self.inner.delete_bot(query).await;
        self.invalidate(query);
        result
    }

    async fn delete_installation(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        let result = self.inner.delete_installation(query).await;
        self.invalidate(query);
        result
    }

    async fn delete_all(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        let result = self.inner.delete_all(query).await;
        self.invalidate(query);
        result
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
        let result = self.inner.update_rotated_token(update).await;
        self.cache.invalidate(ScopeRef::of_ids(
            update.enterprise_id.as_ref(),
            update.team_id.as_ref(),
        ));
        result
    }

    async fn update_rotated_token_and_release_lease(
        &self,
        update: &TokenUpdate,
        name: &str,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .inner
            .update_rotated_token_and_release_lease(update, name, holder)
            .await;
        self.cache.invalidate(ScopeRef::of_ids(
            update.enterprise_id.as_ref(),
            update.team_id.as_ref(),
        ));
        result
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<crate::store::LeaseAcquisition, StoreError> {
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
    ) -> Result<crate::store::BudgetSpend, StoreError> {
        self.inner.spend_refresh_budget(limit).await
    }

    async fn flag_reinstall(&self, grant: &crate::store::LostGrant) -> Result<bool, StoreError> {
        let result = self.inner.flag_reinstall(grant).await;
        self.cache.invalidate(ScopeRef::of_ids(
            grant.enterprise_id.as_ref(),
            grant.team_id.as_ref(),
        ));
        result
    }
}

/// States are not cached: the wrapper passes them through, so one `CachedStore` can serve the
/// whole OAuth flow.
impl<S: StateStore> StateStore for CachedStore<S> {
    async fn issue(&self, expires_at: OffsetDateTime) -> Result<StateValue, StoreError> {
        self.inner.issue(expires_at).await
    }

    async fn consume(&self, state: &StateValue, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.inner.consume(state, now).await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.count_live(now).await
    }
}

#[cfg(test)]
mod tests;
