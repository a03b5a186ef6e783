//! `Rotation`: rotates stored installations' tokens exactly once across tasks and instances.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use rand::Rng as _;

use super::current::{jitter, Current};
use super::rotator::{apply_bot, Refreshed};
use super::{RotationError, TokenKind, TokenRotator};
use crate::installation::{Bot, Installation};
use crate::secret::{BotToken, RefreshToken, UserToken};
use crate::store::{InstallationQuery, InstallationStore, RotatedToken, TokenUpdate};

/// How long a save of new tokens is retried on transient store errors.
const SAVE_RETRY_FOR: Duration = Duration::from_secs(30);
/// Extra wait for a lease beyond its TTL before giving up.
const LEASE_WAIT_MARGIN: Duration = Duration::from_secs(5);

/// Rotates the tokens of stored installations, each token exactly once.
///
/// Per token (a workspace's or org's bot token; one user's token):
/// 1. a cheap check of the given installation (nothing due: returned as is);
/// 2. an in-process single-flight: concurrent callers for the same token wait for the first,
///    then re-read the store;
/// 3. a store lease (`try_acquire_lease`) named `rotation:<client id>:<org>:<team>:bot` or
///    `rotation:<client id>:<org>:<team>:user:<user id>` (`-` for a missing id; no team for
///    org-wide installs), with a random holder id per `Rotation` (clones share it), waited for
///    with backoff for up to the lease TTL plus 5 s ([`RotationError::LeaseTimeout`]), and
///    extended while a save is retried;
/// 4. under the lease, a re-read: only a token still due is refreshed, with the stored
///    refresh token;
/// 5. a compare-and-swap save on the old refresh token, retried on transient store errors for
///    about 30 s; if another instance saved first, the stored token is returned;
/// 6. the lease is released, in the same store transaction as a successful save.
///
/// Steps 2-6 run in a spawned task: if the caller's future is dropped, the refresh and the save
/// still complete. An `invalid_refresh_token` answer while the store already holds a newer
/// token (another instance won) is a success returning the stored token.
///
/// ```
/// use slack_oauth::api::{Client, ClientCredentials};
/// use slack_oauth::installation::Installation;
/// use slack_oauth::rotation::{Rotation, TokenRotator};
/// use slack_oauth::secret::{BotToken, RefreshToken};
/// use slack_oauth::store::{InstallationStore, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let slack = slack_emulator::Emulator::spawn(slack_emulator::EmulatorConfig {
/// #     rotation: true, ..Default::default() }).await?;
/// # let (access, refresh) = slack.seed_refresh_token(&Default::default(), false);
/// let client = Client::builder().base_url(slack.api_url()).build()?;
/// let rotator = TokenRotator::new(client, ClientCredentials::new("111.222", "secret"));
/// let store = MemoryStore::new();
/// let rotation = Rotation::new(rotator, store.clone()).minutes_before_expiration(120);
///
/// let now = time::OffsetDateTime::now_utc();
/// let mut installation = Installation::new("U1", now);
/// installation.team_id = Some("T1".into());
/// installation.bot_token = Some(BotToken::new(access));
/// installation.bot_refresh_token = Some(RefreshToken::new(refresh));
/// installation.bot_token_expires_at = Some(now + time::Duration::minutes(5));
/// store.save(&installation).await?;
///
/// let fresh = rotation.rotate_installation(&installation).await?;
/// assert_ne!(fresh.bot_token, installation.bot_token);
/// // The store holds the new token too.
/// let query = slack_oauth::store::InstallationQuery::team("T1");
/// assert_eq!(store.find_bot(&query).await?.unwrap().bot_token, fresh.bot_token.unwrap());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Rotation<S> {
    rotator: TokenRotator,
    store: S,
    minutes: u32,
    lease_ttl: Duration,
    save_retry_for: Duration,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for Rotation<S> {
    fn clone(&self) -> Self {
        Self {
            rotator: self.rotator.clone(),
            store: self.store.clone(),
            minutes: self.minutes,
            lease_ttl: self.lease_ttl,
            save_retry_for: self.save_retry_for,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// What clones of one `Rotation` share.
#[derive(Debug)]
struct Shared {
    /// This instance's lease holder id.
    holder: String,
    /// One mutex per token being rotated.
    flights: StdMutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Which token a rotation step is about.
#[derive(Clone, Debug)]
struct Target {
    kind: TokenKind,
    query: InstallationQuery,
}

impl<S> Rotation<S>
where
    S: InstallationStore + Clone + 'static,
{
    /// Rotation of `store`'s installations through `rotator`, with a 120-minute window and a
    /// 60-second lease.
    pub fn new(rotator: TokenRotator, store: S) -> Self {
        let holder = format!("{:032x}", rand::thread_rng().gen::<u128>());
        Self {
            rotator,
            store,
            minutes: 120,
            lease_ttl: Duration::from_secs(60),
            save_retry_for: SAVE_RETRY_FOR,
            shared: Arc::new(Shared {
                holder,
                flights: StdMutex::new(HashMap::new()),
            }),
        }
    }

    /// Refreshes tokens expiring within `minutes` (default 120).
    #[must_use]
    pub fn minutes_before_expiration(mut self, minutes: u32) -> Self {
        self.minutes = minutes;
        self
    }

    /// How long a lease is held at most (default 60 s). Keep it above the API client's request
    /// timeout, so that a lease never expires while its holder is still refreshing.
    #[must_use]
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// How long a save of new tokens is retried on transient store errors (default 30 s).
    #[must_use]
    pub fn save_retry_for(mut self, duration: Duration) -> Self {
        self.save_retry_for = duration;
        self
    }

    /// The window, in minutes.
    pub fn window_minutes(&self) -> u32 {
        self.minutes
    }

    /// The rotator.
    pub fn rotator(&self) -> &TokenRotator {
        &self.rotator
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Rotates `installation`'s bot and user tokens where due, each at most once across every
    /// task and instance, and returns the fresh installation (a copy of `installation` with the
    /// current tokens; unchanged when nothing was due).
    ///
    /// When one token is rotated and the other fails, the error is
    /// [`RotationError::Partial`] with the installation holding the rotated (and saved) token.
    pub async fn rotate_installation(
        &self,
        installation: &Installation,
    ) -> Result<Installation, RotationError> {
        let bot_due = installation.bot_token.is_some()
            && self
                .rotator
                .due(installation.bot_token_expires_at, self.minutes);
        let user_due = installation.user_token.is_some()
            && self
                .rotator
                .due(installation.user_token_expires_at, self.minutes);
        if !bot_due && !user_due {
            return Ok(installation.clone());
        }
        let this = self.clone();
        let bot_query = InstallationQuery::for_installation(installation).without_user();
        let user_query = InstallationQuery::for_installation(installation);
        let task = tokio::spawn(async move {
            let bot = async {
                if bot_due {
                    this.rotate_token(Target {
                        kind: TokenKind::Bot,
                        query: bot_query,
                    })
                    .await
                    .map(Some)
                } else {
                    Ok(None)
                }
            };
            let user = async {
                if user_due {
                    this.rotate_token(Target {
                        kind: TokenKind::User,
                        query: user_query,
                    })
                    .await
                    .map(Some)
                } else {
                    Ok(None)
                }
            };
            tokio::join!(bot, user)
        });
        let (bot, user) = task.await.map_err(|_| RotationError::Interrupted)?;
        let mut fresh = installation.clone();
        let apply = |fresh: &mut Installation, current: Current| match current {
            Current::Bot(bot) => apply_bot(fresh, &bot),
            Current::User {
                token,
                refresh_token,
                expires_at,
            } => {
                fresh.user_token = Some(token);
                fresh.user_refresh_token = Some(refresh_token);
                fresh.user_token_expires_at = expires_at;
            }
        };
        match (bot, user) {
            (Ok(bot), Ok(user)) => {
                for current in [bot, user].into_iter().flatten() {
                    apply(&mut fresh, current);
                }
                Ok(fresh)
            }
            (Ok(Some(current)), Err(error)) | (Err(error), Ok(Some(current))) => {
                apply(&mut fresh, current);
                Err(RotationError::Partial {
                    installation: Box::new(fresh),
                    error: Box::new(error),
                })
            }
            (Err(error), _) | (Ok(None), Err(error)) => Err(error),
        }
    }

    /// Rotates `bot`'s token if due, at most once across every task and instance, and returns
    /// the fresh bot (unchanged when nothing was due).
    pub async fn rotate_bot(&self, bot: &Bot) -> Result<Bot, RotationError> {
        if !self.rotator.due(bot.bot_token_expires_at, self.minutes) {
            return Ok(bot.clone());
        }
        let this = self.clone();
        let query = InstallationQuery {
            enterprise_id: bot.enterprise_id.clone(),
            team_id: bot.team_id.clone(),
            user_id: None,
            is_enterprise_install: bot.is_enterprise_install,
        };
        let target = Target {
            kind: TokenKind::Bot,
            query,
        };
        let task = tokio::spawn(async move { this.rotate_token(target).await });
        match task.await.map_err(|_| RotationError::Interrupted)?? {
            Current::Bot(fresh) => {
                let fresh = *fresh;
                let mut result = bot.clone();
                result.bot_token = fresh.bot_token;
                result.bot_refresh_token = fresh.bot_refresh_token;
                result.bot_token_expires_at = fresh.bot_token_expires_at;
                Ok(result)
            }
            Current::User { .. } => Err(RotationError::Interrupted),
        }
    }

    /// Steps 2-6 for one token: returns its current (fresh) value.
    async fn rotate_token(&self, target: Target) -> Result<Current, RotationError> {
        let key = self.lease_name(&target);
        let flight = {
            let mut flights = self
                .shared
                .flights
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(flights.entry(key.clone()).or_default())
        };
        let result = {
            // A follower (the mutex was taken) re-reads first: the leader may have rotated.
            let (_guard, followed) = match flight.try_lock() {
                Ok(guard) => (guard, false),
                Err(_) => (flight.lock().await, true),
            };
            self.rotate_token_alone(&target, &key, followed).await
        };
        let mut flights = self
            .shared
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Only the map and this task hold it: nobody else waits on this token.
        if Arc::strong_count(&flight) == 2 {
            flights.remove(&key);
        }
        result
    }

    /// Steps 3-6, under the single-flight mutex.
    async fn rotate_token_alone(
        &self,
        target: &Target,
        lease: &str,
        followed: bool,
    ) -> Result<Current, RotationError> {
        if followed {
            let stored = self.read(target).await?;
            if !self.rotator.due(stored.expires_at(), self.minutes) {
                return Ok(stored);
            }
        }
        if !self.acquire(target, lease).await? {
            // Refreshed by another holder while we waited.
            return self.read(target).await;
        }
        let mut released = false;
        let result = self.refresh_and_save(target, lease, &mut released).await;
        if !released {
            if let Err(error) = self.store.release_lease(lease, &self.shared.holder).await {
                tracing::warn!(%lease, %error, "could not release the rotation lease; it expires on its own");
            }
        }
        result
    }

    /// Waits for the lease. `Ok(false)` when the token got refreshed meanwhile.
    async fn acquire(&self, target: &Target, lease: &str) -> Result<bool, RotationError> {
        let bound = self.lease_ttl.saturating_add(LEASE_WAIT_MARGIN);
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(20);
        loop {
            if self.take_lease(lease).await? {
                return Ok(true);
            }
            let stored = self.read(target).await?;
            if !self.rotator.due(stored.expires_at(), self.minutes) {
                return Ok(false);
            }
            if started.elapsed() >= bound {
                return Err(RotationError::LeaseTimeout {
                    lease: lease.to_owned(),
                });
            }
            tokio::time::sleep(jitter(backoff)).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// Steps 4-5, holding the lease.
    /// Takes (or, already holding it, extends) the lease for the lease TTL from now.
    async fn take_lease(&self, lease: &str) -> Result<bool, RotationError> {
        let now = self.rotator.now();
        let until = time::Duration::try_from(self.lease_ttl)
            .ok()
            .and_then(|ttl| now.checked_add(ttl))
            .unwrap_or(time::OffsetDateTime::new_utc(
                time::Date::MAX,
                time::Time::MIDNIGHT,
            ));
        Ok(self
            .store
            .try_acquire_lease(lease, &self.shared.holder, now, until)
            .await?)
    }

    ///
    /// A successful save releases the lease in the same store transaction and sets `released`.
    async fn refresh_and_save(
        &self,
        target: &Target,
        lease: &str,
        released: &mut bool,
    ) -> Result<Current, RotationError> {
        let stored = self.read(target).await?;
        if !self.rotator.due(stored.expires_at(), self.minutes) {
            return Ok(stored);
        }
        let previous = stored
            .refresh_token()
            .cloned()
            .ok_or(RotationError::NoRefreshToken { token: target.kind })?;
        let refreshed = match self.rotator.refresh(target.kind, &previous).await {
            Ok(refreshed) => refreshed,
            Err(error) if error.slack_error() == Some("invalid_refresh_token") => {
                // Another instance (without our lease, e.g. an older version) may have won.
                let now_stored = self.read(target).await?;
                if now_stored.refresh_token() != Some(&previous)
                    && !self.rotator.due(now_stored.expires_at(), self.minutes)
                {
                    return Ok(now_stored);
                }
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        let update = self.update(target, previous, &refreshed)?;
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(50);
        let saved = loop {
            match self
                .store
                .update_rotated_token_and_release_lease(&update, lease, &self.shared.holder)
                .await
            {
                Ok(saved) => {
                    *released = true;
                    break saved;
                }
                Err(error) if error.is_transient() && started.elapsed() < self.save_retry_for => {
                    tracing::warn!(%error, token = %target.kind, "saving a rotated token failed; retrying");
                    tokio::time::sleep(jitter(backoff)).await;
                    // Keep the lease while retrying, so that no other instance redeems the
                    // spent refresh token meanwhile (best effort: the store may be down).
                    let _ = self.take_lease(lease).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(error) => {
                    tracing::error!(%error, token = %target.kind, "a rotated token could not be saved; its refresh token is spent and the installation may need reinstalling");
                    return Err(RotationError::Store(error));
                }
            }
        };
        if saved {
            Ok(Current::from_refresh(stored, refreshed))
        } else {
            // Another instance saved first: the store holds the live token.
            tracing::warn!(token = %target.kind, "a rotated token was saved by another instance first");
            self.read(target).await
        }
    }

    fn update(
        &self,
        target: &Target,
        previous: RefreshToken,
        refreshed: &Refreshed,
    ) -> Result<TokenUpdate, RotationError> {
        let token = match target.kind {
            TokenKind::Bot => RotatedToken::Bot {
                token: BotToken::new(refreshed.access_token.clone()),
            },
            TokenKind::User => RotatedToken::User {
                user_id: target
                    .query
                    .user_id
                    .clone()
                    .ok_or(RotationError::NotStored { token: target.kind })?,
                token: UserToken::new(refreshed.access_token.clone()),
            },
        };
        Ok(TokenUpdate {
            enterprise_id: target.query.enterprise_id.clone(),
            team_id: target.query.lookup_team_id().cloned(),
            previous_refresh_token: previous,
            token,
            refresh_token: refreshed.refresh_token.clone(),
            expires_at: refreshed.expires_at,
        })
    }

    /// The stored current value of the target token.
    async fn read(&self, target: &Target) -> Result<Current, RotationError> {
        let not_stored = RotationError::NotStored { token: target.kind };
        match target.kind {
            TokenKind::Bot => {
                let bot = self.store.find_bot(&target.query).await?;
                bot.map(|bot| Current::Bot(Box::new(bot))).ok_or(not_stored)
            }
            TokenKind::User => {
                let installation = self.store.find_installation(&target.query).await?;
                let installation = installation.ok_or(not_stored)?;
                match (installation.user_token, installation.user_refresh_token) {
                    (Some(token), Some(refresh_token)) => Ok(Current::User {
                        token,
                        refresh_token,
                        expires_at: installation.user_token_expires_at,
                    }),
                    _ => Err(RotationError::NotStored { token: target.kind }),
                }
            }
        }
    }

    /// `rotation:<client id>:<org>:<team>:bot` or `...:user:<user id>`.
    fn lease_name(&self, target: &Target) -> String {
        let query = &target.query;
        let id = |value: Option<&str>| value.unwrap_or("-").to_owned();
        let mut name = format!(
            "rotation:{}:{}:{}:{}",
            self.rotator.credentials().client_id.as_str(),
            id(query.enterprise_id.as_ref().map(|e| e.as_str())),
            id(query.lookup_team_id().map(|t| t.as_str())),
            target.kind,
        );
        if let (TokenKind::User, Some(user)) = (target.kind, &query.user_id) {
            name.push(':');
            name.push_str(user.as_str());
        }
        name
    }
}
