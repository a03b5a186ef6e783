//! `TokenRotator`: refreshes expiring bot and user tokens with `oauth.v2.access` (no store).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::{needs_rotation, RotationError, TokenKind};
use crate::api::{AccessGrant, Client, ClientCredentials, OAuthV2AccessResponse};
use crate::clock::{Clock, SystemClock};
use crate::installation::{Bot, Installation};
use crate::secret::{BotToken, RefreshToken, UserToken};

/// The new tokens from one successful refresh.
#[derive(Clone, Debug)]
pub(crate) struct Refreshed {
    /// The new access token.
    pub(crate) access_token: String,
    /// The new refresh token.
    pub(crate) refresh_token: RefreshToken,
    /// `now + expires_in`, in whole seconds; `None` when Slack gave no usable `expires_in`
    /// (the tokens are kept, with no expiry, rather than dropped).
    pub(crate) expires_at: Option<OffsetDateTime>,
}

/// Refreshes expiring tokens, like slack_sdk's `TokenRotator`, without touching a store.
///
/// Every method returns `Ok(None)` when nothing needed refreshing. A token without an expiry
/// is never rotated. A token is refreshed when `expires_at <= now + minutes_before_expiration`;
/// its new expiry is `now + expires_in`, with `now` in whole seconds (taken before the call).
/// Unlike slack_sdk, a wrong `token_type` or an answer without `refresh_token` is an error
/// (never a silent `None` or a half-filled result; an answer without `expires_in` is kept with
/// no expiry, since the old refresh token is spent), and when the bot refresh of
/// [`perform_token_rotation`](Self::perform_token_rotation) succeeds while the user refresh
/// fails, the new bot token is returned inside [`RotationError::Partial`] instead of being lost.
///
/// To rotate the tokens of stored installations exactly once across instances, use
/// [`Rotation`](super::Rotation), which wraps this type.
///
/// ```
/// use slack_oauth::api::{Client, ClientCredentials};
/// use slack_oauth::installation::Bot;
/// use slack_oauth::rotation::TokenRotator;
/// use slack_oauth::secret::{BotToken, RefreshToken};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let slack = slack_emulator::Emulator::spawn(slack_emulator::EmulatorConfig {
/// #     rotation: true, ..Default::default() }).await?;
/// # let (access, refresh) = slack.seed_refresh_token(&Default::default(), false);
/// let client = Client::builder().base_url(slack.api_url()).build()?;
/// let rotator = TokenRotator::new(client, ClientCredentials::new("111.222", "secret"));
///
/// let now = time::OffsetDateTime::now_utc();
/// let mut bot = Bot::new(BotToken::new(access), now);
/// bot.bot_refresh_token = Some(RefreshToken::new(refresh));
/// bot.bot_token_expires_at = Some(now + time::Duration::minutes(30));
///
/// // Expires within the 120-minute window: refreshed.
/// let rotated = rotator.perform_bot_token_rotation(&bot, 120).await?.expect("rotated");
/// assert_ne!(rotated.bot_token, bot.bot_token);
/// // Does not expire within 10 minutes: nothing to do.
/// assert!(rotator.perform_bot_token_rotation(&rotated, 10).await?.is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TokenRotator {
    client: Client,
    credentials: ClientCredentials,
    clock: Arc<dyn Clock>,
}

impl TokenRotator {
    /// A rotator calling `oauth.v2.access` through `client` with the app's `credentials`.
    pub fn new(client: Client, credentials: ClientCredentials) -> Self {
        Self {
            client,
            credentials,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for "now" (expiry decisions and new expiry times).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The app's credentials.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// The current time, from the rotator's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Refreshes `bot`'s token if it expires within `minutes_before_expiration`; `None` when
    /// nothing needed refreshing. The result is a copy of `bot` with the new token, refresh
    /// token and expiry.
    pub async fn perform_bot_token_rotation(
        &self,
        bot: &Bot,
        minutes_before_expiration: u32,
    ) -> Result<Option<Bot>, RotationError> {
        if !self.due(bot.bot_token_expires_at, minutes_before_expiration) {
            return Ok(None);
        }
        let refresh_token =
            bot.bot_refresh_token
                .as_ref()
                .ok_or(RotationError::NoRefreshToken {
                    token: TokenKind::Bot,
                })?;
        let refreshed = self.refresh(TokenKind::Bot, refresh_token).await?;
        let mut rotated = bot.clone();
        rotated.bot_token = BotToken::new(refreshed.access_token);
        rotated.bot_refresh_token = Some(refreshed.refresh_token);
        rotated.bot_token_expires_at = refreshed.expires_at;
        Ok(Some(rotated))
    }

    /// Refreshes `installation`'s user token if it expires within `minutes_before_expiration`;
    /// `None` when nothing needed refreshing. The bot token is left alone.
    pub async fn perform_user_token_rotation(
        &self,
        installation: &Installation,
        minutes_before_expiration: u32,
    ) -> Result<Option<Installation>, RotationError> {
        if installation.user_token.is_none()
            || !self.due(
                installation.user_token_expires_at,
                minutes_before_expiration,
            )
        {
            return Ok(None);
        }
        let refresh_token =
            installation
                .user_refresh_token
                .as_ref()
                .ok_or(RotationError::NoRefreshToken {
                    token: TokenKind::User,
                })?;
        let refreshed = self.refresh(TokenKind::User, refresh_token).await?;
        let mut rotated = installation.clone();
        apply_user(&mut rotated, refreshed);
        Ok(Some(rotated))
    }

    /// Refreshes whichever of `installation`'s bot and user tokens expire within
    /// `minutes_before_expiration`, both at once; `None` when neither needed refreshing.
    ///
    /// If one refresh succeeds and the other fails, the error is
    /// [`RotationError::Partial`] holding the installation with the successful new token: save
    /// it, since its old refresh token is spent. If both fail, the bot's error is returned.
    pub async fn perform_token_rotation(
        &self,
        installation: &Installation,
        minutes_before_expiration: u32,
    ) -> Result<Option<Installation>, RotationError> {
        let bot = installation.to_bot();
        let bot_rotation = async {
            match &bot {
                Some(bot) => {
                    self.perform_bot_token_rotation(bot, minutes_before_expiration)
                        .await
                }
                None => Ok(None),
            }
        };
        let user_rotation =
            self.perform_user_token_rotation(installation, minutes_before_expiration);
        let (bot, user) = tokio::join!(bot_rotation, user_rotation);
        match (bot, user) {
            (Ok(None), Ok(user)) => Ok(user),
            (Ok(Some(bot)), Ok(user)) => {
                let mut rotated = user.unwrap_or_else(|| installation.clone());
                apply_bot(&mut rotated, &bot);
                Ok(Some(rotated))
            }
            (Ok(Some(bot)), Err(error)) => {
                let mut rotated = installation.clone();
                apply_bot(&mut rotated, &bot);
                Err(RotationError::Partial {
                    installation: Box::new(rotated),
                    error: Box::new(error),
                })
            }
            (Err(error), Ok(Some(user))) => Err(RotationError::Partial {
                installation: Box::new(user),
                error: Box::new(error),
            }),
            (Err(error), _) | (Ok(None), Err(error)) => Err(error),
        }
    }

    /// Whether a token expiring at `expires_at` is due within `minutes`.
    pub(crate) fn due(&self, expires_at: Option<OffsetDateTime>, minutes: u32) -> bool {
        needs_rotation(expires_at, self.clock.now(), window(minutes))
    }

    /// One `oauth.v2.access` refresh, checked by [`checked_refresh`]: the `token_type` must be
    /// `kind` and the answer must carry an access token and a refresh token; without a usable
    /// `expires_in` the tokens are kept with no expiry (W41).
    pub(crate) async fn refresh(
        &self,
        kind: TokenKind,
        refresh_token: &RefreshToken,
    ) -> Result<Refreshed, RotationError> {
        // The time before the call, so that the new expiry errs on the early side, in whole
        // seconds like slack_sdk (`int(time()) + expires_in`) and the SQL stores.
        let now = self.clock.now();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let grant = AccessGrant::RefreshToken(refresh_token.clone());
        let response = self
            .client
            .oauth_v2_access(&self.credentials, &grant)
            .await
            .map_err(|error| RotationError::from_api(kind, error))?;
        checked_refresh(kind, response, now)
    }
}

impl TokenRotator {
    /// One `oauth.v2.exchange`: `token`, long-lived, for an expiring token and a refresh token,
    /// checked like a refresh ([`checked_refresh`]).
    pub(crate) async fn exchange(
        &self,
        kind: TokenKind,
        token: &crate::secret::AccessToken,
    ) -> Result<Refreshed, RotationError> {
        let now = self.clock.now();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let response = self
            .client
            .oauth_v2_exchange(&self.credentials, token)
            .await
            .map_err(|error| RotationError::from_api(kind, error))?;
        checked_refresh(kind, response, now)
    }
}

/// Checks one refresh answer: its `token_type` must be `kind`, and it must carry an access token
/// and a refresh token (an answer without them is never saved as a success); `now + expires_in`
/// is the new expiry (none when `expires_in` is missing or not positive, W41).
pub(crate) fn checked_refresh(
    kind: TokenKind,
    response: OAuthV2AccessResponse,
    now: OffsetDateTime,
) -> Result<Refreshed, RotationError> {
    if response.token_type.as_deref() != Some(kind.as_str()) {
        return Err(RotationError::TokenTypeMismatch {
            expected: kind,
            got: response.token_type,
        });
    }
    // An empty string is as unusable as a missing one: saving it would lose the grant.
    let access_token = response
        .access_token
        .filter(|token| !token.secret().is_empty())
        .ok_or(RotationError::MissingAccessToken { token: kind })?;
    let refresh_token = response
        .refresh_token
        .filter(|token| !token.secret().is_empty())
        .ok_or(RotationError::MissingRefreshToken { token: kind })?;
    // The refresh token is spent once Slack answers: an answer without a usable expiry is
    // kept with none (W41), never dropped.
    let expires_at = response
        .expires_in
        .and_then(|seconds| u64::try_from(seconds).ok())
        .filter(|seconds| *seconds > 0)
        .and_then(|seconds| now.checked_add(time::Duration::seconds(seconds.try_into().ok()?)));
    if expires_at.is_none() {
        tracing::warn!(token = %kind, "oauth.v2.access answered a refresh without a usable expires_in; the new tokens are kept with no expiry");
    }
    Ok(Refreshed {
        access_token: access_token.into_secret(),
        refresh_token,
        expires_at,
    })
}

/// `minutes` as a duration.
pub(crate) fn window(minutes: u32) -> Duration {
    Duration::from_secs(u64::from(minutes) * 60)
}

/// Copies `bot`'s token fields onto `installation`.
pub(crate) fn apply_bot(installation: &mut Installation, bot: &Bot) {
    installation.bot_token = Some(bot.bot_token.clone());
    installation.bot_refresh_token = bot.bot_refresh_token.clone();
    installation.bot_token_expires_at = bot.bot_token_expires_at;
    installation.bot_needs_reinstall = bot.needs_reinstall.clone();
}

/// Writes a refreshed (or exchanged) bot token onto `installation`.
pub(crate) fn apply_bot_refresh(installation: &mut Installation, refreshed: Refreshed) {
    installation.bot_token = Some(BotToken::new(refreshed.access_token));
    installation.bot_refresh_token = Some(refreshed.refresh_token);
    installation.bot_token_expires_at = refreshed.expires_at;
}

/// Writes a refreshed user token onto `installation`.
pub(crate) fn apply_user(installation: &mut Installation, refreshed: Refreshed) {
    installation.user_token = Some(UserToken::new(refreshed.access_token));
    installation.user_refresh_token = Some(refreshed.refresh_token);
    installation.user_token_expires_at = refreshed.expires_at;
}
