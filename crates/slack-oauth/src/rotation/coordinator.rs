//! `Rotation`: rotates stored installations' tokens exactly once across tasks and instances,
//! and keeps custody of them when Slack, the network, the store or the process fail.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::time::Instant;

use super::current::{wait_for_budget_room, Backoff, Current};
use super::flight::Flights;
use super::rotator::{apply_bot, Refreshed};
use super::{ReinstallNeeded, RotationError, TokenKind, TokenRotator};
use crate::installation::{Bot, Installation, ReinstallFlag};
use crate::secret::{BotToken, RefreshToken, UserToken};
use crate::store::{
    refresh_token_fingerprint, BudgetSpend, InstallationQuery, InstallationStore, LeaseAcquisition,
    LostGrant, RotatedToken, TokenUpdate,
};

/// How long new tokens that could not be saved are kept in memory and their save retried.
const SAVE_RETRY_FOR: Duration = Duration::from_secs(60);
/// Extra wait for a lease beyond its TTL before giving up.
const LEASE_WAIT_MARGIN: Duration = Duration::from_secs(5);
/// The default hard deadline of one refresh call (`--slack-timeout`).
const SLACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Lease time kept beyond the Slack deadline when a refresh is sent, for the save that follows
/// (at most; half the deadline when that is shorter). A save takes milliseconds; the margin
/// covers a slow store.
const SAVE_MARGIN: Duration = Duration::from_secs(2);
/// Lease time beyond the deadline and the save margin (the lease is renewed for its whole TTL
/// when the intent is recorded, so this is slack, not a wait).
const ACQUIRE_MARGIN: Duration = Duration::from_millis(250);
/// How long one token's refresh waits for the `oauth.v2.access` budget before giving up with
/// [`RotationError::BudgetExhausted`].
const BUDGET_WAIT: Duration = Duration::from_secs(60);
/// The default budget: under Slack's limit of 600 `oauth.v2.access` calls a minute per app.
const MAX_PER_MINUTE: u32 = 500;
/// The `tracing` target of the one warning event raised per lost grant: filter on it to route
/// those events to an alert (`RUST_LOG=slack_oauth::reinstall_needed=warn`).
///
/// ```
/// assert_eq!(slack_oauth::rotation::REINSTALL_EVENT_TARGET, "slack_oauth::reinstall_needed");
/// ```
pub const REINSTALL_EVENT_TARGET: &str = "slack_oauth::reinstall_needed";

/// Slack's answers that mean the grant is gone for good: the installation must be reinstalled.
/// (`invalid_client_id`, `bad_client_secret` and `invalid_client` are the app's configuration,
/// not one grant, and are not flagged: a new install would not fix them.)
const GRANT_GONE: &[&str] = &[
    "invalid_refresh_token",
    "invalid_grant",
    "token_revoked",
    "app_uninstalled",
];

/// Rotates the tokens of stored installations, each token exactly once, and never loses one
/// silently.
///
/// Per token (a workspace's or org's bot token; one user's token):
/// 1. a cheap check of the given installation (nothing due: returned as is; marked as needing
///    a reinstall: [`RotationError::NeedsReinstall`], nothing is sent);
/// 2. an in-process single-flight: concurrent callers for the same token wait for the first,
///    then re-read the store;
/// 3. a store lease named `rotation:<client id>:<org>:<team>:bot` or
///    `rotation:<client id>:<org>:<team>:user:<user id>` (`-` for a missing id; no team for
///    org-wide installs), with a random holder id per `Rotation` (clones share it), waited for
///    with backoff for up to the lease TTL plus 5 s ([`RotationError::LeaseTimeout`]); a
///    proactive pass ([`rotate_all`](super::rotate_all)) does not wait but moves on, leaving
///    the token to the holder (or, if that holder fails, to the next pass). Its expiry is
///    decided by the store's clock, not this instance's;
/// 4. under the lease, a re-read: only a token still due (or one an earlier holder may have
///    redeemed, see 5) is refreshed, with the stored refresh token;
/// 5. a **durable intent**: the store records which refresh token is about to be redeemed, and
///    only if the lease has more time left than the Slack deadline ([`slack_timeout`], default
///    10 s, retries and `Retry-After` waits included) plus a margin for the save (half the
///    deadline, at most 2 s): recording the intent renews the lease for its whole TTL, by the
///    store's clock, if it has not expired. The call is abandoned at the deadline. So no lease
///    ever expires while its holder may still send;
/// 6. the answer decides:
///    - new tokens: a compare-and-swap save on the old refresh token that also releases the
///      lease and removes the intent, in one transaction; retried with backoff for 60 s
///      ([`save_retry_for`]) on any store error while the tokens stay in memory;
///    - `invalid_refresh_token`, `invalid_grant`, `token_revoked`, `app_uninstalled`: if the
///      store meanwhile holds a newer token, a sibling won and that token is returned;
///      otherwise the token is **marked as needing a reinstall** in the store (exactly one
///      instance sets the mark and raises one warning event, target
///      [`REINSTALL_EVENT_TARGET`], and the [`on_reinstall_needed`] hook), and never sent again;
///    - no clear answer (deadline, reset, 5xx, undecodable body, an answer without a refresh
///      token): the lease is given up but the intent kept, so the next holder re-sends the same
///      refresh token once: new tokens mean Slack had not rotated it (or its grace period
///      held); a grant error means the answer was lost, and the mark's reason says so;
///    - a clear refusal that redeemed nothing (rate limited, bad app credentials): the lease
///      and intent are released.
///
/// Steps 2-6 run in a spawned task: if the caller's future is dropped, the refresh and the save
/// still complete. A process killed at any point leaves at most an intent, which the next
/// holder settles as above: a loss is always detected and marked, never retried forever.
///
/// [`slack_timeout`]: Self::slack_timeout
/// [`save_retry_for`]: Self::save_retry_for
/// [`on_reinstall_needed`]: Self::on_reinstall_needed
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
/// let rotation = Rotation::new(rotator, store.clone())
///     .minutes_before_expiration(120)
///     .on_reinstall_needed(|event| eprintln!("reinstall needed: {event}"));
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
pub struct Rotation<S> {
    rotator: TokenRotator,
    store: S,
    minutes: u32,
    lease_ttl: Duration,
    slack_timeout: Duration,
    save_retry_for: Duration,
    max_per_minute: u32,
    /// Proactive refreshes ([`rotate_all`](super::rotate_all)) leave part of the budget to
    /// authorize-time ones.
    proactive: bool,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for Rotation<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotation")
            .field("rotator", &self.rotator)
            .field("store", &self.store)
            .field("minutes", &self.minutes)
            .field("lease_ttl", &self.lease_ttl)
            .field("slack_timeout", &self.slack_timeout)
            .field("save_retry_for", &self.save_retry_for)
            .field("max_per_minute", &self.max_per_minute)
            .field("proactive", &self.proactive)
            .finish_non_exhaustive()
    }
}

impl<S: Clone> Clone for Rotation<S> {
    fn clone(&self) -> Self {
        Self {
            rotator: self.rotator.clone(),
            store: self.store.clone(),
            minutes: self.minutes,
            lease_ttl: self.lease_ttl,
            slack_timeout: self.slack_timeout,
            save_retry_for: self.save_retry_for,
            max_per_minute: self.max_per_minute,
            proactive: self.proactive,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The hook called once per lost grant.
type ReinstallHook = Arc<dyn Fn(&ReinstallNeeded) + Send + Sync>;

/// What clones of one `Rotation` share.
struct Shared {
    /// This instance's lease holder id.
    holder: String,
    /// The single-flight per token: one of this instance's callers at a time; the callers
    /// queued behind a successful one get its token.
    flights: Flights<Current>,
    /// Called when this instance marks a token as needing a reinstall.
    on_reinstall_needed: Option<ReinstallHook>,
}

/// Which token a rotation step is about.
#[derive(Clone, Debug)]
pub(super) struct Target {
    pub(super) kind: TokenKind,
    pub(super) query: InstallationQuery,
}

impl<S> Rotation<S>
where
    S: InstallationStore + Clone + 'static,
{
    /// Rotation of `store`'s installations through `rotator`, with a 120-minute window, a
    /// 60-second lease and a 10-second Slack deadline.
    pub fn new(rotator: TokenRotator, store: S) -> Self {
        let holder = format!("{:032x}", rand::thread_rng().gen::<u128>());
        Self {
            rotator,
            store,
            minutes: 120,
            lease_ttl: Duration::from_secs(60),
            slack_timeout: SLACK_TIMEOUT,
            save_retry_for: SAVE_RETRY_FOR,
            max_per_minute: MAX_PER_MINUTE,
            proactive: false,
            shared: Arc::new(Shared {
                holder,
                flights: Flights::default(),
                on_reinstall_needed: None,
            }),
        }
    }

    /// Refreshes tokens expiring within `minutes` (default 120). Keep it well above the clock
    /// skew between instances: the decision to refresh uses this instance's clock.
    #[must_use]
    pub fn minutes_before_expiration(mut self, minutes: u32) -> Self {
        self.minutes = minutes;
        self
    }

    /// How long a lease is taken for (default 60 s). It is raised, if needed, to the Slack
    /// deadline plus the save margin (half the deadline, at most 2 s) plus 250 ms, so that a
    /// refresh can always be sent under it. A holder that dies keeps the lease this long.
    #[must_use]
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// The hard deadline of one `oauth.v2.access` refresh (default 10 s): connect, answer,
    /// 429 retries and `Retry-After` waits included. The call is abandoned when it passes (the
    /// refresh token may then be spent: see the type's docs for what follows).
    #[must_use]
    pub fn slack_timeout(mut self, timeout: Duration) -> Self {
        self.slack_timeout = timeout;
        self
    }

    /// How long new tokens are kept in memory while their save is retried (default 60 s).
    #[must_use]
    pub fn save_retry_for(mut self, duration: Duration) -> Self {
        self.save_retry_for = duration;
        self
    }

    /// At most `per_minute` `oauth.v2.access` refresh calls in any 60 seconds (default 500,
    /// under Slack's 600 per app; 0: no limit), counted in the store
    /// ([`InstallationStore::spend_refresh_budget`]): every instance on the same SQLite file or
    /// PostgreSQL database shares one budget, by the store's clock. A refresh spends its call
    /// under the lease, just before it is sent; when the budget is spent it releases the lease,
    /// waits for room and tries again (an authorize-time refresh for up to 60 s, then
    /// [`RotationError::BudgetExhausted`]; a proactive one as long as it takes). Authorize-time refreshes may use the whole
    /// budget; [`rotate_all`](super::rotate_all) stops at 95% of it, so that a token needed
    /// by a request now goes ahead of one expiring later.
    ///
    /// ```
    /// # use slack_oauth::api::{Client, ClientCredentials};
    /// # use slack_oauth::rotation::{Rotation, TokenRotator};
    /// # use slack_oauth::store::MemoryStore;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let rotator = TokenRotator::new(Client::new()?, ClientCredentials::new("1.2", "s"));
    /// let rotation = Rotation::new(rotator, MemoryStore::new()).max_per_minute(300);
    /// assert_eq!(rotation.budget_per_minute(), 300);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn max_per_minute(mut self, per_minute: u32) -> Self {
        self.max_per_minute = per_minute;
        self
    }

    /// The budget of `oauth.v2.access` calls per minute (0: no limit).
    pub fn budget_per_minute(&self) -> u32 {
        self.max_per_minute
    }

    /// This rotation for proactive refreshes: it leaves 5% of the budget to authorize-time
    /// ones, and skips a token whose lease another holder has.
    pub(crate) fn proactive(mut self) -> Self {
        self.proactive = true;
        self
    }

    /// The calls a refresh of this rotation may find spent and still go: the whole budget, or
    /// 95% of it for proactive refreshes. `None`: no limit.
    fn budget_limit(&self) -> Option<u32> {
        let budget = self.max_per_minute;
        (budget > 0).then(|| {
            if self.proactive {
                budget - budget / 20
            } else {
                budget
            }
        })
    }

    /// Spends one call of the budget, if there is one: `Ok(None)` to go ahead, `Ok(Some(wait))`
    /// when it is spent for now.
    pub(super) async fn spend_budget(&self) -> Result<Option<Duration>, RotationError> {
        let Some(limit) = self.budget_limit() else {
            return Ok(None);
        };
        let spend = self.store.spend_refresh_budget(limit).await?;
        crate::telemetry::budget_remaining(self.max_per_minute.saturating_sub(spend.used()));
        Ok(match spend {
            BudgetSpend::Spent { .. } => None,
            BudgetSpend::Exhausted { retry_after, .. } => Some(retry_after),
        })
    }

    /// Calls `hook` each time this instance marks a token as needing a reinstall: once per lost
    /// grant across every instance sharing the store. Call it before cloning the `Rotation`.
    ///
    /// ```
    /// # use slack_oauth::api::{Client, ClientCredentials};
    /// # use slack_oauth::rotation::{Rotation, TokenRotator};
    /// # use slack_oauth::store::MemoryStore;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let rotator = TokenRotator::new(Client::new()?, ClientCredentials::new("1.2", "s"));
    /// let rotation = Rotation::new(rotator, MemoryStore::new())
    ///     .on_reinstall_needed(|event| eprintln!("{event}: ask the workspace to reinstall"));
    /// # let _ = rotation;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn on_reinstall_needed(
        mut self,
        hook: impl Fn(&ReinstallNeeded) + Send + Sync + 'static,
    ) -> Self {
        let shared = Shared {
            holder: self.shared.holder.clone(),
            flights: Flights::default(),
            on_reinstall_needed: Some(Arc::new(hook)),
        };
        self.shared = Arc::new(shared);
        self
    }

    /// How long new tokens are kept in memory while their save is retried.
    pub(super) fn save_retry_window(&self) -> Duration {
        self.save_retry_for
    }

    /// The window, in minutes.
    pub fn window_minutes(&self) -> u32 {
        self.minutes
    }

    /// The Slack deadline of one refresh.
    pub fn slack_deadline(&self) -> Duration {
        self.slack_timeout
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
        let marked = [
            (bot_due, TokenKind::Bot, &installation.bot_needs_reinstall),
            (
                user_due,
                TokenKind::User,
                &installation.user_needs_reinstall,
            ),
        ];
        for (due, token, flag) in marked {
            if let (true, Some(flag)) = (due, flag) {
                return Err(RotationError::NeedsReinstall {
                    token,
                    reason: flag.reason.clone(),
                });
            }
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
                needs_reinstall,
            } => {
                fresh.user_needs_reinstall = needs_reinstall;
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
        if let Some(flag) = &bot.needs_reinstall {
            return Err(RotationError::NeedsReinstall {
                token: TokenKind::Bot,
                reason: flag.reason.clone(),
            });
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
                result.needs_reinstall = fresh.needs_reinstall;
                Ok(result)
            }
            Current::User { .. } => Err(RotationError::Interrupted),
        }
    }

    /// Steps 2-6 for one token: returns its current (fresh) value.
    async fn rotate_token(&self, target: Target) -> Result<Current, RotationError> {
        let key = self.lease_name(&target);
        self.shared
            .flights
            .run(&key, |followed| {
                self.rotate_token_alone(&target, &key, followed)
            })
            .await
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
        let started = Instant::now();
        loop {
            let Some(pending_intent) = self.acquire(target, lease).await? else {
                // Refreshed by another holder while we waited.
                return self.read(target).await;
            };
            match self.redeem(target, lease, pending_intent).await {
                Err(RotationError::BudgetExhausted { retry_after, .. })
                    if self.proactive || started.elapsed() + retry_after < BUDGET_WAIT =>
                {
                    // The lease is released: another instance may refresh meanwhile, and the
                    // next acquire re-reads.
                    wait_for_budget_room(retry_after).await;
                }
                result => return result,
            }
        }
    }

    /// Waits for the lease: `Some(pending intent)` once held, `None` when the token got
    /// refreshed meanwhile (or, for a proactive pass, when another holder has it).
    async fn acquire(
        &self,
        target: &Target,
        lease: &str,
    ) -> Result<Option<Option<String>>, RotationError> {
        let started = Instant::now();
        let mut backoff = Backoff::lease();
        loop {
            if let LeaseAcquisition::Held { pending_intent } = self.take_lease(lease).await? {
                return Ok(Some(pending_intent));
            }
            if self.proactive {
                // Another instance is refreshing it: a pass takes the next token rather than
                // queue behind this one, so instances passing at once share the list out.
                return Ok(None);
            }
            let stored = self.read(target).await?;
            if !self.rotator.due(stored.expires_at(), self.minutes) {
                return Ok(None);
            }
            if started.elapsed() >= self.lease_wait_bound() {
                return Err(RotationError::LeaseTimeout {
                    lease: lease.to_owned(),
                });
            }
            backoff.wait().await;
        }
    }

    /// How long a caller waits for a lease another holder keeps: its whole TTL and a margin.
    pub(super) fn lease_wait_bound(&self) -> Duration {
        self.effective_lease_ttl().saturating_add(LEASE_WAIT_MARGIN)
    }

    /// Lease time required beyond the Slack deadline when the intent is recorded.
    fn save_margin(&self) -> Duration {
        SAVE_MARGIN.min(self.slack_timeout / 2)
    }

    /// The lease TTL, at least what a refresh needs.
    pub(super) fn effective_lease_ttl(&self) -> Duration {
        let needed = self
            .slack_timeout
            .saturating_add(self.save_margin())
            .saturating_add(ACQUIRE_MARGIN);
        self.lease_ttl.max(needed)
    }

    /// Takes (or, already holding it, extends) the lease.
    pub(super) async fn take_lease(&self, lease: &str) -> Result<LeaseAcquisition, RotationError> {
        Ok(self
            .store
            .try_acquire_lease(lease, &self.shared.holder, self.effective_lease_ttl())
            .await?)
    }

    /// Steps 4-6, holding the lease. Every path releases or abandons it.
    async fn redeem(
        &self,
        target: &Target,
        lease: &str,
        pending_intent: Option<String>,
    ) -> Result<Current, RotationError> {
        let stored = match self.read(target).await {
            Ok(stored) => stored,
            Err(error) => {
                self.release(lease).await;
                return Err(error);
            }
        };
        if let Some(flag) = stored.reinstall_flag() {
            self.release(lease).await;
            return Err(RotationError::NeedsReinstall {
                token: target.kind,
                reason: flag.reason.clone(),
            });
        }
        let Some(previous) = stored.refresh_token().cloned() else {
            self.release(lease).await;
            return Err(RotationError::NoRefreshToken { token: target.kind });
        };
        let fingerprint = refresh_token_fingerprint(&previous);
        // An earlier holder may have redeemed this very token and lost the answer: settle it
        // now, due or not. An intent about another token is stale (released with the lease).
        let unsettled = pending_intent.as_deref() == Some(fingerprint.as_str());
        if !unsettled && !self.rotator.due(stored.expires_at(), self.minutes) {
            self.release(lease).await;
            return Ok(stored);
        }

        // The call is counted before it is sent, as late as possible: only a refresh that
        // will be sent spends the budget.
        match self.spend_budget().await {
            Ok(None) => {}
            Ok(Some(retry_after)) => {
                self.release(lease).await;
                return Err(RotationError::BudgetExhausted {
                    token: target.kind,
                    retry_after,
                });
            }
            Err(error) => {
                self.release(lease).await;
                return Err(error);
            }
        }
        // The deadline runs from before the intent is recorded: the store checked that the
        // lease outlives it by its own clock, at a moment after this one.
        let deadline = Instant::now() + self.slack_timeout;
        // Renewing the lease for its whole TTL leaves it at least the deadline plus the save
        // margin (see `effective_lease_ttl`), by the store's clock, from a moment after this one.
        let recorded = self
            .store
            .record_refresh_intent(
                lease,
                &self.shared.holder,
                &fingerprint,
                self.effective_lease_ttl(),
            )
            .await;
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                // The lease expired under us (a stall longer than the lease): someone else may
                // hold it now.
                return Err(RotationError::LeaseTimeout {
                    lease: lease.to_owned(),
                });
            }
            Err(error) => {
                self.release(lease).await;
                return Err(error.into());
            }
        }
        fail::fail_point!("rotation::before-send");
        let answer =
            tokio::time::timeout_at(deadline, self.rotator.refresh(target.kind, &previous))
                .await
                .unwrap_or(Err(RotationError::Deadline {
                    token: target.kind,
                    after: self.slack_timeout,
                }));
        let result = match answer {
            Ok(refreshed) => {
                fail::fail_point!("rotation::answer-received");
                self.save(target, lease, stored, previous, refreshed).await
            }
            Err(error) => {
                self.settle_failure(target, lease, &previous, unsettled, error)
                    .await
            }
        };
        let kind = match target.kind {
            TokenKind::Bot => "bot",
            TokenKind::User => "user",
        };
        let outcome = match &result {
            Ok(_) => "rotated",
            Err(RotationError::NeedsReinstall { .. }) => "needs_reinstall",
            Err(_) => "failed",
        };
        crate::telemetry::token_refresh(kind, outcome);
        result
    }

    /// A refresh that brought no new tokens: mark a lost grant, keep the intent when Slack may
    /// have redeemed the token, release otherwise.
    async fn settle_failure(
        &self,
        target: &Target,
        lease: &str,
        previous: &RefreshToken,
        unsettled: bool,
        error: RotationError,
    ) -> Result<Current, RotationError> {
        if let Some(code) = error.slack_error().filter(|code| GRANT_GONE.contains(code)) {
            // A sibling (without our lease: an older version, or Python) may have won.
            if let Ok(now_stored) = self.read(target).await {
                if now_stored.refresh_token() != Some(previous) {
                    self.release(lease).await;
                    return Ok(now_stored);
                }
            }
            let reason = if unsettled {
                format!("answer_lost ({code})")
            } else {
                code.to_owned()
            };
            let result = self.flag(target, previous, &reason).await;
            self.release(lease).await;
            result?;
            return Err(RotationError::NeedsReinstall {
                token: target.kind,
                reason,
            });
        }
        if unsettled || error.may_have_redeemed() {
            tracing::warn!(%error, token = %target.kind, "the refresh had no clear answer; the next attempt re-sends the same refresh token once to find out whether it was spent");
            self.abandon(lease).await;
        } else {
            self.release(lease).await;
        }
        Err(error)
    }

    /// Marks the token as needing a reinstall; the instance that sets the mark raises the event.
    async fn flag(
        &self,
        target: &Target,
        previous: &RefreshToken,
        reason: &str,
    ) -> Result<(), RotationError> {
        let flag = ReinstallFlag::new(reason, self.rotator.now());
        let grant = LostGrant {
            enterprise_id: target.query.enterprise_id.clone(),
            team_id: target.query.lookup_team_id().cloned(),
            user_id: match target.kind {
                TokenKind::Bot => None,
                TokenKind::User => target.query.user_id.clone(),
            },
            refresh_token: previous.clone(),
            flag: flag.clone(),
        };
        if self.store.flag_reinstall(&grant).await? {
            let event = ReinstallNeeded {
                client_id: self.rotator.credentials().client_id.clone(),
                enterprise_id: grant.enterprise_id,
                team_id: grant.team_id,
                user_id: grant.user_id,
                token: target.kind,
                flag,
            };
            tracing::warn!(
                target: REINSTALL_EVENT_TARGET,
                client_id = %event.client_id,
                enterprise_id = event.enterprise_id.as_ref().map(|id| id.as_str()),
                team_id = event.team_id.as_ref().map(|id| id.as_str()),
                user_id = event.user_id.as_ref().map(|id| id.as_str()),
                token = %event.token,
                reason = %event.flag.reason,
                "{event}"
            );
            if let Some(hook) = &self.shared.on_reinstall_needed {
                hook(&event);
            }
        }
        Ok(())
    }

    /// Saves new tokens with a compare-and-swap that also releases the lease and the intent,
    /// retrying any store error for `save_retry_for` while the tokens stay in memory.
    async fn save(
        &self,
        target: &Target,
        lease: &str,
        stored: Current,
        previous: RefreshToken,
        refreshed: Refreshed,
    ) -> Result<Current, RotationError> {
        let update = self.update(target, previous, &refreshed)?;
        let started = Instant::now();
        let mut backoff = Backoff::save();
        let saved = loop {
            match self
                .store
                .update_rotated_token_and_release_lease(&update, lease, &self.shared.holder)
                .await
            {
                Ok(saved) => break saved,
                Err(error) if started.elapsed() < self.save_retry_for => {
                    tracing::warn!(%error, token = %target.kind, "saving a rotated token failed; the new tokens are kept in memory and the save retried");
                    backoff.wait().await;
                    // Keep the lease while retrying, so that no other instance redeems the
                    // spent refresh token meanwhile (best effort: the store may be down).
                    let _ = self.take_lease(lease).await;
                }
                Err(error) => {
                    // The intent stays in the store: the next holder re-sends the spent token
                    // once, and marks the installation if Slack refuses it.
                    tracing::error!(%error, token = %target.kind, retried_for = ?self.save_retry_for, "a rotated token could not be saved; its refresh token is spent: the installation will be marked as needing a reinstall unless Slack still accepts the old refresh token");
                    return Err(RotationError::Store(error));
                }
            }
        };
        fail::fail_point!("rotation::after-commit");
        if saved {
            Ok(Current::from_refresh(stored, refreshed))
        } else {
            // Another instance saved first: the store holds the live token.
            tracing::warn!(token = %target.kind, "a rotated token was saved by another instance first");
            self.read(target).await
        }
    }

    /// Releases the lease and its intent (best effort: it expires on its own).
    pub(super) async fn release(&self, lease: &str) {
        if let Err(error) = self.store.release_lease(lease, &self.shared.holder).await {
            tracing::warn!(%lease, %error, "could not release the rotation lease; it expires on its own");
        }
    }

    /// Gives the lease up, keeping its intent for the next holder.
    async fn abandon(&self, lease: &str) {
        if let Err(error) = self.store.abandon_lease(lease, &self.shared.holder).await {
            tracing::warn!(%lease, %error, "could not give up the rotation lease; it expires on its own and keeps its intent");
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
                        needs_reinstall: installation.user_needs_reinstall,
                    }),
                    _ => Err(RotationError::NotStored { token: target.kind }),
                }
            }
        }
    }

    /// `rotation:<client id>:<org>:<team>:bot` or `...:user:<user id>`.
    pub(super) fn lease_name(&self, target: &Target) -> String {
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
