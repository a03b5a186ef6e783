//! Installation and state stores: the traits, the lookup key, errors, and the backends.
//!
//! | backend | type | feature | use it for |
//! |---|---|---|---|
//! | memory | [`MemoryStore`] | always | tests, one short-lived process |
//! | SQLite | `SqliteStore` | `sqlite` (default) | one instance; the embedded default |
//! | PostgreSQL | `PostgresStore` | `postgres` (default) | many instances |
//!
//! The SQL backends use the tables of slack_sdk's `SQLite3InstallationStore` /
//! `SQLAlchemyInstallationStore`, so a Python Bolt app's database works unchanged.
//!
//! Semantics every backend follows (checked by the conformance suite in `slack-oauth-test`):
//! - **History is kept**: `save` adds a version; the latest (newest `installed_at`, ties broken by
//!   the newest row) is current.
//! - **Org-wide installs** are found by enterprise id whatever team id a lookup gives
//!   ([`InstallationQuery::is_enterprise_install`]), and stored with no team.
//! - **User lookups** return that user's latest installation, carrying the bot token of the
//!   workspace's latest bot (the "bot merge"), so a user-only install still yields the bot token.
//! - **Deletes** are scoped by enterprise, team and (optionally) user; org-wide deletes work
//!   (unlike slack_sdk's SQLite store, W8).

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

use crate::ids::{EnterpriseId, TeamId, UserId};
use crate::installation::{Bot, Installation, ReinstallFlag};
use crate::secret::{BotToken, RefreshToken, StateValue, UserToken};

mod any;
pub(crate) mod budget;
mod error;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
pub(crate) mod reencrypt;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use any::AnyStore;
pub use budget::{BudgetSpend, BUDGET_WINDOW};
pub use error::{StoreError, StoreErrorKind};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use reencrypt::{ReencryptCursor, ReencryptProgress};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, WriterStats};

/// Which installation a lookup or delete is about: an org, a workspace, optionally a user.
///
/// With `is_enterprise_install` set (or no team id), the team id is ignored and the org-wide
/// installation of `enterprise_id` is meant.
///
/// ```
/// use slack_oauth::store::InstallationQuery;
/// let workspace = InstallationQuery::team("T1");
/// let org = InstallationQuery::org("E1");
/// let user_in_grid_workspace = InstallationQuery::team("T2").enterprise("E1").user("U1");
/// assert_eq!(org.lookup_team_id(), None);
/// assert_eq!(user_in_grid_workspace.lookup_team_id().unwrap().as_str(), "T2");
/// # let _ = workspace;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct InstallationQuery {
    /// The org, for Enterprise Grid.
    pub enterprise_id: Option<EnterpriseId>,
    /// The workspace; ignored for org-wide installs.
    pub team_id: Option<TeamId>,
    /// The installing user: restricts the lookup or delete to that user's installations.
    pub user_id: Option<UserId>,
    /// Whether the request came through an org-wide install.
    pub is_enterprise_install: bool,
}

impl InstallationQuery {
    /// A workspace (no org).
    pub fn team(team_id: impl Into<TeamId>) -> Self {
        Self {
            team_id: Some(team_id.into()),
            ..Self::default()
        }
    }

    /// An org-wide install.
    pub fn org(enterprise_id: impl Into<EnterpriseId>) -> Self {
        Self {
            enterprise_id: Some(enterprise_id.into()),
            is_enterprise_install: true,
            ..Self::default()
        }
    }

    /// Sets the org.
    #[must_use]
    pub fn enterprise(mut self, enterprise_id: impl Into<EnterpriseId>) -> Self {
        self.enterprise_id = Some(enterprise_id.into());
        self
    }

    /// Restricts to one installing user.
    #[must_use]
    pub fn user(mut self, user_id: impl Into<UserId>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// The same query without the user.
    #[must_use]
    pub fn without_user(&self) -> Self {
        Self {
            user_id: None,
            ..self.clone()
        }
    }

    /// The query that finds `installation` itself (its org or workspace, and its installer).
    pub fn for_installation(installation: &Installation) -> Self {
        Self {
            enterprise_id: installation.enterprise_id.clone(),
            team_id: installation.team_id.clone(),
            user_id: Some(installation.user_id.clone()),
            is_enterprise_install: installation.is_enterprise_install,
        }
    }

    /// The team id to match rows against: `None` for org-wide installs.
    pub fn lookup_team_id(&self) -> Option<&TeamId> {
        if self.is_enterprise_install {
            None
        } else {
            self.team_id.as_ref()
        }
    }
}

/// Which token a rotation replaced.
///
/// ```
/// use slack_oauth::secret::UserToken;
/// use slack_oauth::store::RotatedToken;
/// let token = RotatedToken::User {
///     user_id: "U1".into(),
///     token: UserToken::new("xoxp-new"), // fake
/// };
/// assert!(!format!("{token:?}").contains("xoxp-new"), "Debug hides the token");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotatedToken {
    /// The workspace's (or org's) bot token.
    Bot {
        /// The new bot token.
        token: BotToken,
    },
    /// One installing user's token.
    User {
        /// Whose token.
        user_id: UserId,
        /// The new user token.
        token: UserToken,
    },
}

/// The result of one refresh, to be written with a compare-and-swap on the old refresh token.
///
/// ```
/// use slack_oauth::secret::{BotToken, RefreshToken};
/// use slack_oauth::store::{InstallationStore, MemoryStore, RotatedToken, TokenUpdate};
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let update = TokenUpdate {
///     enterprise_id: None,
///     team_id: Some("T1".into()),
///     previous_refresh_token: RefreshToken::new("xoxe-1-old"), // fake
///     token: RotatedToken::Bot { token: BotToken::new("xoxe.xoxb-1-new") }, // fake
///     refresh_token: RefreshToken::new("xoxe-1-new"), // fake
///     expires_at: None,
/// };
/// // Nothing stored holds the old refresh token: nothing is updated.
/// assert!(!MemoryStore::new().update_rotated_token(&update).await?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUpdate {
    /// The org, for Enterprise Grid.
    pub enterprise_id: Option<EnterpriseId>,
    /// The workspace; `None` for org-wide installs.
    pub team_id: Option<TeamId>,
    /// The refresh token that was redeemed: only rows that still hold it are updated.
    pub previous_refresh_token: RefreshToken,
    /// The new access token.
    pub token: RotatedToken,
    /// The new refresh token.
    pub refresh_token: RefreshToken,
    /// When the new access token expires; `None` when Slack's answer gave no `expires_in` (the
    /// tokens are kept rather than dropped, W41).
    pub expires_at: Option<OffsetDateTime>,
}

/// A grant that is gone: its refresh token was spent without the new tokens being saved, or
/// Slack revoked it. [`InstallationStore::flag_reinstall`] marks the stored token.
///
/// ```
/// use slack_oauth::installation::{Installation, ReinstallFlag};
/// use slack_oauth::secret::RefreshToken;
/// use slack_oauth::store::{InstallationQuery, InstallationStore, LostGrant, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let mut installation = Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
/// installation.team_id = Some("T1".into());
/// installation.bot_token = Some(slack_oauth::secret::BotToken::new("xoxe.xoxb-fake"));
/// installation.bot_refresh_token = Some(RefreshToken::new("xoxe-1-fake"));
/// store.save(&installation).await?;
///
/// let grant = LostGrant {
///     enterprise_id: None,
///     team_id: Some("T1".into()),
///     user_id: None,
///     refresh_token: RefreshToken::new("xoxe-1-fake"),
///     flag: ReinstallFlag::new("invalid_refresh_token", time::OffsetDateTime::UNIX_EPOCH),
/// };
/// assert!(store.flag_reinstall(&grant).await?, "this call set the mark");
/// assert!(!store.flag_reinstall(&grant).await?, "only once");
/// let bot = store.find_bot(&InstallationQuery::team("T1")).await?.unwrap();
/// assert_eq!(bot.needs_reinstall.unwrap().reason, "invalid_refresh_token");
/// # Ok::<_, slack_oauth::store::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostGrant {
    /// The org, for Enterprise Grid.
    pub enterprise_id: Option<EnterpriseId>,
    /// The workspace; `None` for org-wide installs.
    pub team_id: Option<TeamId>,
    /// `None` for the bot token; the user's id for a user token.
    pub user_id: Option<UserId>,
    /// The refresh token that no longer works: only rows that still hold it are flagged, so a
    /// newer install (or a sibling's successful rotation) is never flagged by mistake.
    pub refresh_token: RefreshToken,
    /// Why, and when.
    pub flag: ReinstallFlag,
}

/// A change to stored installations, as an authorize cache needs to hear of it
/// ([`PostgresStore::changes`], [`CachedStore::follow_changes`](crate::CachedStore::follow_changes)).
///
/// ```
/// use slack_oauth::store::{InstallationQuery, StoreChange};
/// let change = StoreChange::Workspace(InstallationQuery::team("T1"));
/// assert_ne!(change, StoreChange::Missed);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreChange {
    /// Installations or bots of this workspace or org were saved, updated (a rotation, a
    /// reinstall mark) or deleted.
    Workspace(InstallationQuery),
    /// Changes may have been missed (the notification connection dropped): forget everything.
    Missed,
}

/// The answer to [`InstallationStore::try_acquire_lease`].
///
/// ```
/// use slack_oauth::store::LeaseAcquisition;
/// let taken = LeaseAcquisition::Held { pending_intent: None };
/// assert!(taken.is_held());
/// assert!(!LeaseAcquisition::Busy.is_held());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAcquisition {
    /// The caller holds the lease now.
    Held {
        /// The fingerprint ([`refresh_token_fingerprint`]) of a refresh token that an earlier
        /// holder recorded it was about to redeem and never settled: it was killed, or Slack's
        /// answer was lost. The token may be spent.
        pending_intent: Option<String>,
    },
    /// Another holder's lease has not expired.
    Busy,
}

impl LeaseAcquisition {
    /// Whether the caller holds the lease.
    pub fn is_held(&self) -> bool {
        matches!(self, Self::Held { .. })
    }
}

/// The fingerprint of a refresh token recorded as a refresh intent: the first 128 bits of its
/// SHA-256, in hex. It identifies the token without storing a second copy of the secret.
///
/// ```
/// use slack_oauth::secret::RefreshToken;
/// use slack_oauth::store::refresh_token_fingerprint;
/// let print = refresh_token_fingerprint(&RefreshToken::new("xoxe-1-fake"));
/// assert_eq!(print.len(), 32);
/// assert!(!print.contains("xoxe"));
/// ```
pub fn refresh_token_fingerprint(token: &RefreshToken) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(token.secret().as_bytes());
    digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Where installations live. Implemented by every backend; the conformance suite in
/// `slack-oauth-test` checks the semantics in the [module docs](self).
///
/// ```
/// use slack_oauth::installation::Installation;
/// use slack_oauth::store::{InstallationQuery, InstallationStore, MemoryStore};
/// # tokio_test_block(async {
/// let store = MemoryStore::new();
/// let mut installation = Installation::new("U1", time::OffsetDateTime::now_utc());
/// installation.team_id = Some("T1".into());
/// store.save(&installation).await?;
/// let found = store.find_installation(&InstallationQuery::team("T1")).await?;
/// assert_eq!(found.unwrap().user_id.as_str(), "U1");
/// # Ok::<_, slack_oauth::store::StoreError>(())
/// # });
/// # fn tokio_test_block<F: std::future::Future<Output = Result<(), slack_oauth::store::StoreError>>>(f: F) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap()
/// # }
/// ```
pub trait InstallationStore: Send + Sync {
    /// Saves a new version of `installation`, and of its bot when it has a bot token.
    fn save(
        &self,
        installation: &Installation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Saves a new version of a bot alone.
    fn save_bot(&self, bot: &Bot) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest bot of the org or workspace (`query.user_id` is ignored).
    fn find_bot(
        &self,
        query: &InstallationQuery,
    ) -> impl Future<Output = Result<Option<Bot>, StoreError>> + Send;

    /// The latest installation of the org or workspace, or of one user when `query.user_id` is
    /// set, with the latest bot merged in.
    fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> impl Future<Output = Result<Option<Installation>, StoreError>> + Send;

    /// Deletes every bot version of the org or workspace.
    fn delete_bot(
        &self,
        query: &InstallationQuery,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes every installation version of the org or workspace, or only one user's.
    fn delete_installation(
        &self,
        query: &InstallationQuery,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes everything stored for the org or workspace (`app_uninstalled`).
    fn delete_all(
        &self,
        query: &InstallationQuery,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let everyone = query.without_user();
            self.delete_bot(&everyone).await?;
            self.delete_installation(&everyone).await
        }
    }

    /// The latest installation of every (org, workspace, user), bot merged in, ordered by org,
    /// team and user id.
    fn list_installations(
        &self,
    ) -> impl Future<Output = Result<Vec<Installation>, StoreError>> + Send;

    /// Like [`list_installations`](Self::list_installations), restricted to installations whose
    /// bot or user token expires at or before `deadline`, soonest first.
    fn list_expiring(
        &self,
        deadline: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<Installation>, StoreError>> + Send;

    /// Writes a refreshed token in place in every stored version (installations and bots) that
    /// still holds `update.previous_refresh_token`, atomically. Returns `false`, writing nothing,
    /// when no row holds it any more (another instance rotated first).
    fn update_rotated_token(
        &self,
        update: &TokenUpdate,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// [`update_rotated_token`](Self::update_rotated_token), then releases the named lease if
    /// `holder` still holds it, in one transaction where the backend has them (SQLite,
    /// PostgreSQL): a rotation then costs one write for the save and the release together. The
    /// lease is released whether or not the compare-and-swap matched; on an error nothing is
    /// written and the lease is kept.
    ///
    /// The default runs the two methods one after the other, the release best effort (a lease
    /// that is not released expires on its own).
    fn update_rotated_token_and_release_lease(
        &self,
        update: &TokenUpdate,
        name: &str,
        holder: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let saved = self.update_rotated_token(update).await?;
            if let Err(error) = self.release_lease(name, holder).await {
                tracing::warn!(lease = %name, %error, "could not release a lease; it expires on its own");
            }
            Ok(saved)
        }
    }

    /// Takes the named lease for `holder` for `ttl` if it is free, expired, or already held by
    /// `holder` (then extended). Expiry is decided by the store's clock (PostgreSQL's
    /// `clock_timestamp()`; the store's [`Clock`](crate::clock::Clock) for SQLite and memory,
    /// the one machine owning the data), never by the caller's, so instances with skewed clocks
    /// agree. A lease left with an unsettled refresh intent reports it to the next holder.
    fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<LeaseAcquisition, StoreError>> + Send;

    /// Records, under the lease, that `holder` is about to redeem the refresh token with
    /// `fingerprint` ([`refresh_token_fingerprint`]), and renews the lease for `ttl` from the
    /// store's now, if `holder` still holds the lease and it has not expired. Returns whether
    /// it did: only then may the refresh token be sent, and the call must be abandoned before
    /// `ttl` has passed since this method was called (the caller keeps a margin for the save).
    fn record_refresh_intent(
        &self,
        name: &str,
        holder: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Releases the named lease if `holder` still holds it, and forgets its refresh intent (the
    /// outcome is settled: saved, flagged, or certainly not redeemed).
    fn release_lease(
        &self,
        name: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the named lease up at once if `holder` still holds it, but keeps its refresh
    /// intent: the outcome of the refresh is unknown (timeout, reset, 5xx, undecodable answer),
    /// and the next holder must find out whether the token was spent.
    fn abandon_lease(
        &self,
        name: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks the token of `grant` as needing a reinstall in every stored version that still
    /// holds `grant.refresh_token` and is not marked yet. Returns `true` when this call set the
    /// mark (exactly one caller across instances does: it raises the warning event).
    fn flag_reinstall(
        &self,
        grant: &LostGrant,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Spends one `oauth.v2.access` call of this store's app from the budget that every
    /// instance using the store shares: records the call if fewer than `limit` were recorded in
    /// the last 60 s ([`BUDGET_WINDOW`]) by the store's clock, atomically across instances, so
    /// that no 60-second window ever holds more than `limit`; otherwise records nothing and
    /// tells how long until one would fit. A limit of 0 admits nothing.
    fn spend_refresh_budget(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<BudgetSpend, StoreError>> + Send;
}

/// Where OAuth `state` values live between the install page and the callback.
///
/// States carry 128 bits or more from the OS CSPRNG and are single use. A state store of your
/// own is in `examples/custom_state_store.rs`, checked by the conformance suite.
///
/// ```
/// use slack_oauth::store::{MemoryStore, StateStore};
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = MemoryStore::new();
/// let now = time::OffsetDateTime::now_utc();
/// let state = store.issue(now + time::Duration::minutes(10)).await?;
/// assert!(store.consume(&state, now).await?, "the callback's first use passes");
/// assert!(!store.consume(&state, now).await?, "a replay fails");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait StateStore: Send + Sync {
    /// Issues a new state that stays valid until `expires_at`.
    fn issue(
        &self,
        expires_at: OffsetDateTime,
    ) -> impl Future<Output = Result<StateValue, StoreError>> + Send;

    /// Consumes `state`: `true` exactly once, if it was issued and has not expired at `now`.
    /// Two concurrent consumes of one state: exactly one gets `true`.
    fn consume(
        &self,
        state: &StateValue,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes states that expired before `now`; returns how many.
    fn purge_expired(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many issued states are still valid at `now` (neither consumed nor expired): what the
    /// install path's cap on live states
    /// ([`OAuthSettings::max_live_states`](crate::settings::OAuthSettings::max_live_states))
    /// counts. Called about once a second while installs start, never per request.
    fn count_live(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A new random state value: 128 bits from the OS CSPRNG, URL-safe base64 without padding
/// (22 characters; no `=` that browsers would quote in a cookie).
///
/// ```
/// let state = slack_oauth::store::new_state_value();
/// assert_eq!(state.secret().len(), 22);
/// ```
pub fn new_state_value() -> StateValue {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    StateValue::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
