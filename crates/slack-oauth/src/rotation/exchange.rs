//! `Rotation::exchange_installation`: long-lived tokens made rotating (`oauth.v2.exchange`).

use tokio::time::Instant;

use super::coordinator::Target;
use super::current::{wait_for_budget_room, Backoff};
use super::rotator::{apply_bot_refresh, apply_user};
use super::{Rotation, RotationError, TokenKind};
use crate::installation::Installation;
use crate::secret::AccessToken;
use crate::store::{InstallationQuery, InstallationStore};

/// What [`Rotation::exchange_installation`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Exchanged {
    /// The installation as stored now (holds tokens: redact before printing).
    pub installation: Installation,
    /// Whether this call exchanged the workspace's (or org's) bot token.
    pub bot: bool,
    /// Whether this call exchanged the user token.
    pub user: bool,
}

/// Whether the installation's bot token is long-lived (present, with neither an expiry nor a
/// refresh token): [`Rotation::exchange_installation`] would exchange it.
///
/// ```
/// use slack_oauth::rotation::long_lived_bot;
/// use slack_oauth::secret::BotToken;
/// let mut installation = slack_oauth::Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
/// installation.bot_token = Some(BotToken::new("xoxb-1")); // fake
/// assert!(long_lived_bot(&installation));
/// installation.bot_token_expires_at = Some(time::OffsetDateTime::UNIX_EPOCH);
/// assert!(!long_lived_bot(&installation));
/// ```
pub fn long_lived_bot(installation: &Installation) -> bool {
    installation.bot_token.is_some()
        && installation.bot_refresh_token.is_none()
        && installation.bot_token_expires_at.is_none()
}

/// Whether the installation's user token is long-lived (present, with neither an expiry nor a
/// refresh token).
///
/// ```
/// use slack_oauth::rotation::long_lived_user;
/// let installation = slack_oauth::Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
/// assert!(!long_lived_user(&installation), "no user token at all");
/// ```
pub fn long_lived_user(installation: &Installation) -> bool {
    installation.user_token.is_some()
        && installation.user_refresh_token.is_none()
        && installation.user_token_expires_at.is_none()
}

/// The token of `kind` when it is long-lived, as the credential `oauth.v2.exchange` takes.
fn long_lived_token(installation: &Installation, kind: TokenKind) -> Option<AccessToken> {
    let token = match kind {
        TokenKind::Bot if long_lived_bot(installation) => installation.bot_token.as_ref()?.secret(),
        TokenKind::User if long_lived_user(installation) => {
            installation.user_token.as_ref()?.secret()
        }
        TokenKind::Bot | TokenKind::User => return None,
    };
    Some(AccessToken::new(token))
}

impl<S> Rotation<S>
where
    S: InstallationStore + Clone + 'static,
{
    /// Exchanges `installation`'s long-lived tokens (no expiry, no refresh token; an app
    /// installed before token rotation was turned on) for rotating ones with
    /// `oauth.v2.exchange`: the bot token of its workspace or org, then the user token.
    ///
    /// Each token goes under the same store lease its rotation would take, is re-read under it
    /// (a token another instance already exchanged is left alone), spends one call of the
    /// shared budget ([`max_per_minute`](Self::max_per_minute)), and is saved as a **new
    /// version** of the installation (and its bot) with [`save`](InstallationStore::save), so
    /// the long-lived token stays in the history. The save is retried for 60 s; should it still fail, nothing is lost: Slack
    /// expires the long-lived token only at the first refresh of the new pair, and the new pair
    /// was never stored, so the stored token keeps working (a later exchange of it answers
    /// `token_already_exchanged`).
    ///
    /// # Errors
    /// Slack's refusal ([`RotationError::Slack`]: `token_already_exchanged`, `invalid_token`,
    /// `token_rotation_not_enabled`, ...), a store error, or a lease another instance kept.
    /// When the bot token was exchanged and the user token failed, the error is
    /// [`RotationError::Partial`] with the installation as stored.
    ///
    /// ```
    /// use slack_oauth::api::{Client, ClientCredentials};
    /// use slack_oauth::rotation::{Rotation, TokenRotator};
    /// use slack_oauth::secret::BotToken;
    /// use slack_oauth::store::{InstallationQuery, InstallationStore, MemoryStore};
    /// use slack_oauth::Installation;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let slack = slack_emulator::Emulator::spawn(slack_emulator::EmulatorConfig {
    /// #     rotation: true, ..Default::default() }).await?;
    /// # let long_lived = slack.seed_token(&Default::default(), false);
    /// let client = Client::builder().base_url(slack.api_url()).build()?;
    /// let rotator = TokenRotator::new(client, ClientCredentials::new("111.222", "secret"));
    /// let store = MemoryStore::new();
    /// let mut installation = Installation::new("U1", time::OffsetDateTime::now_utc());
    /// installation.team_id = Some("T1".into());
    /// installation.bot_token = Some(BotToken::new(long_lived));
    /// store.save(&installation).await?;
    ///
    /// let exchanged = Rotation::new(rotator, store.clone())
    ///     .exchange_installation(&installation)
    ///     .await?;
    /// assert!(exchanged.bot);
    /// let bot = store.find_bot(&InstallationQuery::team("T1")).await?.unwrap();
    /// assert!(bot.bot_refresh_token.is_some() && bot.bot_token_expires_at.is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn exchange_installation(
        &self,
        installation: &Installation,
    ) -> Result<Exchanged, RotationError> {
        let workspace = InstallationQuery::for_installation(installation).without_user();
        let own = InstallationQuery::for_installation(installation);
        let bot = if long_lived_bot(installation) {
            let target = Target {
                kind: TokenKind::Bot,
                query: workspace,
            };
            self.exchange_token(&target).await?
        } else {
            false
        };
        let user = if long_lived_user(installation) {
            let target = Target {
                kind: TokenKind::User,
                query: own.clone(),
            };
            match self.exchange_token(&target).await {
                Ok(user) => user,
                Err(error) if bot => {
                    let stored = self.store().find_installation(&own).await?;
                    return Err(RotationError::Partial {
                        installation: Box::new(stored.unwrap_or_else(|| installation.clone())),
                        error: Box::new(error),
                    });
                }
                Err(error) => return Err(error),
            }
        } else {
            false
        };
        let stored = self.store().find_installation(&own).await?;
        Ok(Exchanged {
            installation: stored.unwrap_or_else(|| installation.clone()),
            bot,
            user,
        })
    }

    /// One token: `true` when this call exchanged it, `false` when it was no longer
    /// long-lived under the lease.
    async fn exchange_token(&self, target: &Target) -> Result<bool, RotationError> {
        self.wait_for_budget().await?;
        let lease = self.lease_name(target);
        let started = Instant::now();
        let mut backoff = Backoff::lease();
        while !self.take_lease(&lease).await?.is_held() {
            if started.elapsed() >= self.lease_wait_bound() {
                return Err(RotationError::LeaseTimeout { lease });
            }
            backoff.wait().await;
        }
        let result = self.exchange_held(target).await;
        self.release(&lease).await;
        result
    }

    /// Under the lease: re-read, exchange, save.
    async fn exchange_held(&self, target: &Target) -> Result<bool, RotationError> {
        // The latest installation (for the bot: of the workspace, its latest bot merged in):
        // the new token goes into a new version of it (and of the bot), so that every
        // listing, by installation or by bot, sees the expiry.
        let installation = self
            .store()
            .find_installation(&target.query)
            .await?
            .ok_or(RotationError::NotStored { token: target.kind })?;
        let Some(token) = long_lived_token(&installation, target.kind) else {
            return Ok(false);
        };
        let refreshed = self.rotator().exchange(target.kind, &token).await?;
        let mut fresh = installation.clone();
        match target.kind {
            TokenKind::Bot => apply_bot_refresh(&mut fresh, refreshed),
            TokenKind::User => apply_user(&mut fresh, refreshed),
        }
        fresh.installed_at = self.rotator().now().max(installation.installed_at);
        self.save_exchanged(target.kind, &fresh).await?;
        Ok(true)
    }

    /// Saves the new version, retrying for 60 s ([`save_retry_for`](Self::save_retry_for)).
    async fn save_exchanged(
        &self,
        kind: TokenKind,
        fresh: &Installation,
    ) -> Result<(), RotationError> {
        let started = Instant::now();
        let mut backoff = Backoff::save();
        loop {
            match self.store().save(fresh).await {
                Ok(()) => return Ok(()),
                Err(error) if started.elapsed() < self.save_retry_window() => {
                    tracing::warn!(%error, token = %kind, "saving an exchanged token failed; retrying (the long-lived token keeps working meanwhile)");
                    backoff.wait().await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Waits until the shared budget has room for one call (as long as it takes: an exchange
    /// is a batch job).
    async fn wait_for_budget(&self) -> Result<(), RotationError> {
        while let Some(retry_after) = self.spend_budget().await? {
            wait_for_budget_room(retry_after).await;
        }
        Ok(())
    }
}
