//! `CachedStore`: an installation store wrapper that caches lookups for authorize.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use super::DEFAULT_REFRESH_WINDOW;
use crate::clock::{Clock, SystemClock};
use crate::ids::{EnterpriseId, TeamId, UserId};
use crate::installation::{Bot, Installation};
use crate::secret::StateValue;
use crate::store::{InstallationQuery, InstallationStore, StateStore, StoreError, TokenUpdate};

/// Default time a found installation or bot is cached.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Default time a "not found" is cached.
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(3);
/// Default number of workspaces (or orgs) kept.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// One org or workspace, as the stores scope rows: `(enterprise_id, team_id)`, no team for
/// org-wide installs.
type Scope = (Option<EnterpriseId>, Option<TeamId>);

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
/// - the cache is bounded ([`capacity`](CachedStore::capacity) workspaces).
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
    scopes: Mutex<HashMap<Scope, Entries>>,
    /// Bumped by every invalidation: a lookup that raced with one is not cached.
    epoch: AtomicU64,
    ttl: Duration,
    negative_ttl: Duration,
    refresh_window: Duration,
    capacity: usize,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Entries {
    installations: HashMap<Option<UserId>, Entry<Installation>>,
    bot: Option<Entry<Bot>>,
}

struct Entry<T> {
    value: Option<T>,
    until: OffsetDateTime,
}

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
            .field("cached_scopes", &self.cache.scopes().len())
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
            cache: Arc::new(Cache {
                scopes: Mutex::default(),
                epoch: AtomicU64::new(0),
                ttl: DEFAULT_CACHE_TTL,
                negative_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
                refresh_window: DEFAULT_REFRESH_WINDOW,
                capacity: DEFAULT_CACHE_CAPACITY,
                clock: Arc::new(SystemClock),
            }),
        }
    }

    fn configure(mut self, edit: impl FnOnce(&mut Cache)) -> Self {
        // Settings are chained before the first clone; after that, a fresh cache is made.
        match Arc::get_mut(&mut self.cache) {
            Some(cache) => edit(cache),
            None => {
                let old = &self.cache;
                let mut cache = Cache {
                    scopes: Mutex::default(),
                    epoch: AtomicU64::new(0),
                    ttl: old.ttl,
                    negative_ttl: old.negative_ttl,
                    refresh_window: old.refresh_window,
                    capacity: old.capacity,
                    clock: Arc::clone(&old.clock),
                };
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

    /// How many workspaces or orgs are kept at most (default 10 000).
    #[must_use]
    pub fn capacity(self, capacity: usize) -> Self {
        self.configure(|cache| cache.capacity = capacity.max(1))
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
        self.cache.invalidate(&query_scope(query));
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
                        cache.invalidate(&query_scope(&query));
                    }
                    crate::store::StoreChange::Missed => cache.invalidate_all(),
                }
            }
        }
    }
}

fn query_scope(query: &InstallationQuery) -> Scope {
    (query.enterprise_id.clone(), query.lookup_team_id().cloned())
}

fn installation_scope(installation: &Installation) -> Scope {
    let team = if installation.is_enterprise_install {
        None
    } else {
        installation.team_id.clone()
    };
    (installation.enterprise_id.clone(), team)
}

/// The earliest expiry of a token that can be refreshed (what a refresh would replace).
fn refreshable_expiry(token: [(bool, Option<OffsetDateTime>); 2]) -> Option<OffsetDateTime> {
    token
        .into_iter()
        .filter_map(|(refreshable, at)| at.filter(|_| refreshable))
        .min()
}

impl Cache {
    fn scopes(&self) -> MutexGuard<'_, HashMap<Scope, Entries>> {
        // Each operation replaces whole entries, so a poisoned map is still consistent.
        self.scopes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn invalidate(&self, scope: &Scope) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.scopes().remove(scope);
    }

    fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.scopes().clear();
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

    fn get_installation(
        &self,
        scope: &Scope,
        user: &Option<UserId>,
    ) -> Option<Option<Installation>> {
        let now = self.clock.now();
        let scopes = self.scopes();
        let entry = scopes.get(scope)?.installations.get(user)?;
        (entry.until > now).then(|| entry.value.clone())
    }

    fn get_bot(&self, scope: &Scope) -> Option<Option<Bot>> {
        let now = self.clock.now();
        let scopes = self.scopes();
        let entry = scopes.get(scope)?.bot.as_ref()?;
        (entry.until > now).then(|| entry.value.clone())
    }

    /// Runs `edit` on the scope's entries unless an invalidation happened since `epoch`.
    fn insert(&self, epoch: u64, scope: Scope, edit: impl FnOnce(&mut Entries)) {
        let mut scopes = self.scopes();
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        if scopes.len() >= self.capacity && !scopes.contains_key(&scope) {
            let now = self.clock.now();
            scopes.retain(|_, entries| entries.is_live(now));
            if scopes.len() >= self.capacity {
                // Still full of live entries: drop one arbitrary workspace.
                if let Some(victim) = scopes.keys().next().cloned() {
                    scopes.remove(&victim);
                }
            }
        }
        edit(scopes.entry(scope).or_default());
    }
}

impl Entries {
    fn is_live(&self, now: OffsetDateTime) -> bool {
        self.installations.values().any(|entry| entry.until > now)
            || self.bot.as_ref().is_some_and(|entry| entry.until > now)
    }
}

impl<S: InstallationStore> InstallationStore for CachedStore<S> {
    async fn save(&self, installation: &Installation) -> Result<(), StoreError> {
        let result = self.inner.save(installation).await;
        self.cache.invalidate(&installation_scope(installation));
        result
    }

    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        let result = self.inner.save_bot(bot).await;
        let team = if bot.is_enterprise_install {
            None
        } else {
            bot.team_id.clone()
        };
        self.cache.invalidate(&(bot.enterprise_id.clone(), team));
        result
    }

    async fn find_bot(&self, query: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        let scope = query_scope(query);
        if let Some(hit) = self.cache.get_bot(&scope) {
            crate::telemetry::cache_hit();
            return Ok(hit);
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
            let value = found.clone();
            self.cache.insert(epoch, scope, |entries| {
                entries.bot = Some(Entry { value, until });
            });
        }
        Ok(found)
    }

    async fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        let scope = query_scope(query);
        if let Some(hit) = self.cache.get_installation(&scope, &query.user_id) {
            crate::telemetry::cache_hit();
            return Ok(hit);
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
            let value = found.clone();
            let user = query.user_id.clone();
            self.cache.insert(epoch, scope, |entries| {
                entries.installations.insert(user, Entry { value, until });
            });
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
        self.cache
            .invalidate(&(update.enterprise_id.clone(), update.team_id.clone()));
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
        self.cache
            .invalidate(&(update.enterprise_id.clone(), update.team_id.clone()));
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
        self.cache
            .invalidate(&(grant.enterprise_id.clone(), grant.team_id.clone()));
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
