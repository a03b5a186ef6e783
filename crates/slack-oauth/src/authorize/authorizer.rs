//! `Authorizer`: resolves a request's ids to tokens, refreshing expiring ones once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::coalesce::Coalesced;
use super::RefreshError;
use super::{AuthorizeError, AuthorizeRequest, AuthorizeResult, NoRefresher, TokenRefresher};
use crate::clock::{Clock, SystemClock};
use crate::installation::{Bot, Installation};
use crate::store::{InstallationQuery, InstallationStore};

/// Tokens expiring within this long are refreshed before they are returned (Bolt's
/// `token_rotation_expiration_minutes` default: 120 minutes).
pub const DEFAULT_REFRESH_WINDOW: Duration = Duration::from_secs(120 * 60);

/// Whose user token a request gets (Bolt's `user_token_resolution`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserTokenResolution {
    /// The token of the request's user (`user_id`), looked up in the request's workspace.
    #[default]
    AuthedUser,
    /// The token of the acting user (`actor_user_id`), looked up in the actor's own org and
    /// workspace: for Slack Connect channels, where the actor may belong to another org.
    Actor,
}

/// Authorizes incoming Slack requests from an installation store.
///
/// Cheap to clone (the store handle is cloned, the refresher shared). See the
/// [module docs](super) for how it differs from Bolt.
///
/// Resolution, for a request from workspace (or org) W and user U:
/// 1. the latest installation of W gives the bot token, bot id, bot user id and bot scopes (with
///    [`bot_only`](Self::bot_only), or when W has no installation, only W's latest bot is read);
/// 2. the user token is U's own: the latest installation's when U installed it last, otherwise
///    U's own installation in W, otherwise none. A request without a user gets **no user token**
///    (W40, see [`user_token_for_userless_requests`](Self::user_token_for_userless_requests));
/// 3. a token about to be returned that expires within the [refresh
///    window](Self::refresh_window) is refreshed through the [`TokenRefresher`], once per
///    authorize; a refresh token Slack no longer accepts gives `Ok(None)` (reinstall needed);
/// 4. no bot token and no user token gives `Ok(None)`.
///
/// ```
/// use slack_oauth::authorize::{AuthorizeRequest, Authorizer};
/// use slack_oauth::installation::Installation;
/// use slack_oauth::secret::BotToken;
/// use slack_oauth::store::{InstallationStore, MemoryStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let mut installation = Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
/// installation.team_id = Some("T1".into());
/// installation.bot_token = Some(BotToken::new("xoxb-1"));
/// store.save(&installation).await?;
///
/// let authorizer = Authorizer::new(store);
/// let result = authorizer.authorize(&AuthorizeRequest::team("T1").user("U2")).await?;
/// assert_eq!(result.unwrap().token().unwrap().secret(), "xoxb-1");
/// assert!(authorizer.authorize(&AuthorizeRequest::team("T9")).await?.is_none());
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Authorizer<S, R = NoRefresher> {
    store: S,
    refresher: Option<Arc<R>>,
    bot_only: bool,
    resolution: UserTokenResolution,
    userless_gets_installer_token: bool,
    refresh_window: Duration,
    clock: Arc<dyn Clock>,
    lookups: Arc<Lookups>,
}

/// The store reads in flight, shared by concurrent identical lookups (see `coalesce.rs`).
#[derive(Default)]
struct Lookups {
    installations: Arc<Coalesced<Installation>>,
    bots: Arc<Coalesced<Bot>>,
}

impl<S: Clone, R> Clone for Authorizer<S, R> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            refresher: self.refresher.clone(),
            bot_only: self.bot_only,
            resolution: self.resolution,
            userless_gets_installer_token: self.userless_gets_installer_token,
            refresh_window: self.refresh_window,
            clock: Arc::clone(&self.clock),
            lookups: Arc::clone(&self.lookups),
        }
    }
}

impl<S, R> fmt::Debug for Authorizer<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("refresher", &self.refresher.is_some())
            .field("bot_only", &self.bot_only)
            .field("resolution", &self.resolution)
            .field(
                "userless_gets_installer_token",
                &self.userless_gets_installer_token,
            )
            .field("refresh_window", &self.refresh_window)
            .finish_non_exhaustive()
    }
}

impl<S: InstallationStore + Clone> Authorizer<S, NoRefresher> {
    /// An authorizer reading `store`, with no token refresher: tokens are returned as stored.
    pub fn new(store: S) -> Self {
        Self {
            store,
            refresher: None,
            bot_only: false,
            resolution: UserTokenResolution::AuthedUser,
            userless_gets_installer_token: false,
            refresh_window: DEFAULT_REFRESH_WINDOW,
            clock: Arc::new(SystemClock),
            lookups: Arc::default(),
        }
    }
}

impl<S, R> Authorizer<S, R> {
    /// Refreshes expiring tokens with `refresher` (token rotation).
    pub fn refresher<R2: TokenRefresher>(self, refresher: R2) -> Authorizer<S, R2> {
        Authorizer {
            store: self.store,
            refresher: Some(Arc::new(refresher)),
            bot_only: self.bot_only,
            resolution: self.resolution,
            userless_gets_installer_token: self.userless_gets_installer_token,
            refresh_window: self.refresh_window,
            clock: self.clock,
            lookups: self.lookups,
        }
    }

    /// Reads only bots, never installations (Bolt's `installation_store_bot_only`): results carry
    /// no user token.
    #[must_use]
    pub fn bot_only(mut self, bot_only: bool) -> Self {
        self.bot_only = bot_only;
        self
    }

    /// Whose user token a request gets (default: the request's user).
    #[must_use]
    pub fn user_token_resolution(mut self, resolution: UserTokenResolution) -> Self {
        self.resolution = resolution;
        self
    }

    /// Whether a request **without a user** (most events) gets the latest installer's user token,
    /// as in Bolt (W40). Default `false`: such a request gets only the bot token, because a user
    /// token acting for nobody in particular would surprise whoever reads the audit log.
    #[must_use]
    pub fn user_token_for_userless_requests(mut self, enabled: bool) -> Self {
        self.userless_gets_installer_token = enabled;
        self
    }

    /// Tokens expiring within `window` are refreshed before being returned (default
    /// [`DEFAULT_REFRESH_WINDOW`]).
    #[must_use]
    pub fn refresh_window(mut self, window: Duration) -> Self {
        self.refresh_window = window;
        self
    }

    /// The clock deciding what "expiring" means (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The store this authorizer reads.
    pub fn store(&self) -> &S {
        &self.store
    }
}

/// Which record a part of the result comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Latest,
    Own,
    Nowhere,
}

impl<S, R> Authorizer<S, R>
where
    S: InstallationStore + Clone + 'static,
    R: TokenRefresher,
{
    /// The latest installation for `query`; concurrent identical lookups share one read.
    async fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> Result<Option<Installation>, AuthorizeError> {
        let (store, owned) = (self.store.clone(), query.clone());
        self.lookups
            .installations
            .read(query, move || async move {
                store.find_installation(&owned).await
            })
            .await
    }

    /// The latest bot for `query`; concurrent identical lookups share one read.
    async fn find_bot(&self, query: &InstallationQuery) -> Result<Option<Bot>, AuthorizeError> {
        let (store, owned) = (self.store.clone(), query.clone());
        self.lookups
            .bots
            .read(query, move || async move { store.find_bot(&owned).await })
            .await
    }

    /// Finds the tokens for `request`.
    ///
    /// Returns `Ok(None)` when the workspace (or org) has no usable installation, or when its
    /// refresh token was revoked (the reason is logged at warn level): answer the request as
    /// "not installed". Makes no Slack API call unless a token must be refreshed.
    ///
    /// # Errors
    /// [`AuthorizeError::Store`] when the store fails; [`AuthorizeError::Refresh`] when an
    /// expiring token could not be refreshed for a transient reason. Answer with a 5xx.
    pub async fn authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<Option<AuthorizeResult>, AuthorizeError> {
        let (result, lookups) = crate::telemetry::count_lookups(self.find_tokens(request)).await;
        let outcome = match &result {
            Ok(Some(_)) => "authorized",
            Ok(None) => "not_installed",
            Err(_) => "error",
        };
        crate::telemetry::authorize(outcome, lookups.all_cached());
        result
    }

    /// [`authorize`](Self::authorize), uncounted.
    async fn find_tokens(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<Option<AuthorizeResult>, AuthorizeError> {
        let workspace = request.workspace_query();
        if self.bot_only {
            return self.authorize_bot(&workspace).await;
        }
        let Some(mut latest) = self.find_installation(&workspace).await? else {
            return self.authorize_bot(&workspace).await;
        };
        let mut own = self.own_installation(request, &latest).await?;
        let user_source = match &own {
            Some(_) => Source::Own,
            None if self.user_is_installer(request, &latest) => Source::Latest,
            None => Source::Nowhere,
        };
        let bot_source = match &own {
            Some(own)
                if latest.bot_token.is_none()
                    && own.bot_token.is_some()
                    && same_scope(own, &latest) =>
            {
                Source::Own
            }
            _ => Source::Latest,
        };

        let now = self.clock.now();
        let refreshed = self
            .refresh_if_expiring(
                &mut latest,
                bot_source == Source::Latest,
                user_source == Source::Latest,
                now,
            )
            .await;
        if !self.keep_going(refreshed)? {
            return Ok(None);
        }
        if let Some(own) = own.as_mut() {
            let refreshed = self
                .refresh_if_expiring(
                    own,
                    bot_source == Source::Own,
                    user_source == Source::Own,
                    now,
                )
                .await;
            if !self.keep_going(refreshed)? {
                return Ok(None);
            }
        }

        let bot = match bot_source {
            Source::Own => own.as_ref().unwrap_or(&latest),
            _ => &latest,
        };
        let user = match user_source {
            Source::Latest => Some(&latest),
            Source::Own => own.as_ref(),
            Source::Nowhere => None,
        }
        .filter(|user| user.user_token.is_some());
        if bot.bot_token.is_none() && user.is_none() {
            // Bolt's bot path: the installation has no token at all, a bot may still be stored.
            return self.authorize_bot(&workspace).await;
        }
        Ok(Some(AuthorizeResult {
            enterprise_id: latest.enterprise_id.clone(),
            team_id: latest.team_id.clone(),
            is_enterprise_install: latest.is_enterprise_install,
            bot_token: bot.bot_token.clone(),
            bot_id: bot.bot_id.clone(),
            bot_user_id: bot.bot_user_id.clone(),
            bot_scopes: bot.bot_scopes.clone(),
            user_id: user.map(|user| user.user_id.clone()),
            user_token: user.and_then(|user| user.user_token.clone()),
            user_scopes: user
                .map(|user| user.user_scopes.clone())
                .unwrap_or_default(),
        }))
    }

    /// Bolt's bot path: the latest bot of the workspace or org, refreshed if expiring.
    async fn authorize_bot(
        &self,
        workspace: &InstallationQuery,
    ) -> Result<Option<AuthorizeResult>, AuthorizeError> {
        let Some(mut bot) = self.find_bot(workspace).await? else {
            return Ok(None);
        };
        if let Some(flag) = &bot.needs_reinstall {
            let marked = Err(RefreshError::ReinstallNeeded {
                reason: flag.reason.clone(),
            });
            if !self.keep_going(marked)? {
                return Ok(None);
            }
        }
        let now = self.clock.now();
        if self.is_expiring(
            bot.bot_refresh_token.is_some(),
            bot.bot_token_expires_at,
            now,
        ) {
            match &self.refresher {
                Some(refresher) => {
                    let refreshed = refresher.refresh_bot(&bot).await;
                    match refreshed {
                        Ok(fresh) => bot = fresh,
                        Err(error) => {
                            if !self.keep_going(Err(error))? {
                                return Ok(None);
                            }
                        }
                    }
                }
                None => warn_no_refresher(&format!("{bot}")),
            }
        }
        Ok(Some(bot_result(bot)))
    }

    /// The requesting user's own installation, when they are not the latest installer.
    async fn own_installation(
        &self,
        request: &AuthorizeRequest,
        latest: &Installation,
    ) -> Result<Option<Installation>, AuthorizeError> {
        let query = match self.resolution {
            UserTokenResolution::AuthedUser => match &request.user_id {
                Some(user_id) if *user_id != latest.user_id => {
                    request.workspace_query().user(user_id.clone())
                }
                _ => return Ok(None),
            },
            UserTokenResolution::Actor => {
                let Some(actor) = &request.actor_user_id else {
                    return Ok(None);
                };
                if request.actor_enterprise_id.is_none() && request.actor_team_id.is_none() {
                    return Ok(None);
                }
                if self.user_is_installer(request, latest) {
                    return Ok(None);
                }
                InstallationQuery {
                    enterprise_id: request.actor_enterprise_id.clone(),
                    team_id: request.actor_team_id.clone(),
                    user_id: Some(actor.clone()),
                    is_enterprise_install: false,
                }
            }
        };
        self.find_installation(&query).await
    }

    /// Whether the latest installation's user token is the one the request should get.
    fn user_is_installer(&self, request: &AuthorizeRequest, latest: &Installation) -> bool {
        match self.resolution {
            UserTokenResolution::AuthedUser => match &request.user_id {
                Some(user_id) => *user_id == latest.user_id,
                None => self.userless_gets_installer_token,
            },
            UserTokenResolution::Actor => {
                request.actor_user_id.as_ref() == Some(&latest.user_id)
                    && request.actor_team_id == latest.team_id
                    && (request.actor_enterprise_id == latest.enterprise_id
                        || request.actor_enterprise_id.is_none())
            }
        }
    }

    /// Refreshes, at most once, the parts of `record` the result will use (`bot`, `user`) that
    /// expire within the window. Parts the result will not use are removed from the copy handed
    /// to the refresher, so that no token is refreshed twice (W2) or needlessly.
    async fn refresh_if_expiring(
        &self,
        record: &mut Installation,
        bot: bool,
        user: bool,
        now: OffsetDateTime,
    ) -> Result<(), RefreshError> {
        // A token marked as needing a reinstall is never used nor refreshed again.
        let flagged = [
            (
                bot && record.bot_token.is_some(),
                &record.bot_needs_reinstall,
            ),
            (
                user && record.user_token.is_some(),
                &record.user_needs_reinstall,
            ),
        ];
        for (used, flag) in flagged {
            if let (true, Some(flag)) = (used, flag) {
                return Err(RefreshError::ReinstallNeeded {
                    reason: flag.reason.clone(),
                });
            }
        }
        let bot_expiring = bot
            && record.bot_token.is_some()
            && self.is_expiring(
                record.bot_refresh_token.is_some(),
                record.bot_token_expires_at,
                now,
            );
        let user_expiring = user
            && record.user_token.is_some()
            && self.is_expiring(
                record.user_refresh_token.is_some(),
                record.user_token_expires_at,
                now,
            );
        if !bot_expiring && !user_expiring {
            return Ok(());
        }
        let Some(refresher) = &self.refresher else {
            warn_no_refresher(&format!("{record}"));
            return Ok(());
        };
        let mut copy = record.clone();
        if !bot {
            copy.bot_token = None;
            copy.bot_refresh_token = None;
            copy.bot_token_expires_at = None;
        }
        if !user {
            copy.user_token = None;
            copy.user_refresh_token = None;
            copy.user_token_expires_at = None;
        }
        let fresh = refresher.refresh_installation(&copy).await?;
        if bot {
            record.bot_token = fresh.bot_token;
            record.bot_refresh_token = fresh.bot_refresh_token;
            record.bot_token_expires_at = fresh.bot_token_expires_at;
            record.bot_scopes = fresh.bot_scopes;
        }
        if user {
            record.user_token = fresh.user_token;
            record.user_refresh_token = fresh.user_refresh_token;
            record.user_token_expires_at = fresh.user_token_expires_at;
            record.user_scopes = fresh.user_scopes;
        }
        Ok(())
    }

    fn is_expiring(
        &self,
        has_refresh_token: bool,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> bool {
        has_refresh_token && expires_at.is_some_and(|at| at <= now + self.refresh_window)
    }

    /// `Ok(true)` to go on, `Ok(false)` when the install needs reinstalling, `Err` when transient.
    fn keep_going(&self, refreshed: Result<(), RefreshError>) -> Result<bool, AuthorizeError> {
        match refreshed {
            Ok(()) => Ok(true),
            Err(RefreshError::ReinstallNeeded { reason }) => {
                tracing::warn!(
                    target: "slack_oauth::authorize",
                    %reason,
                    "not authorized: the token was revoked or cannot be refreshed; the app must be reinstalled",
                );
                Ok(false)
            }
            Err(error) => Err(AuthorizeError::Refresh(error)),
        }
    }
}

fn same_scope(a: &Installation, b: &Installation) -> bool {
    a.enterprise_id == b.enterprise_id && a.team_id == b.team_id
}

fn bot_result(bot: Bot) -> AuthorizeResult {
    AuthorizeResult {
        enterprise_id: bot.enterprise_id,
        team_id: bot.team_id,
        is_enterprise_install: bot.is_enterprise_install,
        bot_token: Some(bot.bot_token),
        bot_id: bot.bot_id,
        bot_user_id: bot.bot_user_id,
        bot_scopes: bot.bot_scopes,
        user_id: None,
        user_token: None,
        user_scopes: Default::default(),
    }
}

fn warn_no_refresher(what: &str) {
    tracing::warn!(
        target: "slack_oauth::authorize",
        record = what,
        "a token is expiring but no token refresher is configured; returning it as stored",
    );
}
