//! `TokenRefresher`: the pluggable token rotation the authorizer calls for expiring tokens.

use std::future::Future;

use crate::installation::{Bot, Installation};

/// Refreshes expiring tokens for the [`Authorizer`](super::Authorizer).
///
/// The authorizer calls it only when a token it is about to return expires within its refresh
/// window, and at most once per token per authorize. Implementations must:
///
/// - refresh every token of the given record that is expiring, and return the record with the
///   new tokens (or unchanged when another instance already refreshed: then with the newer
///   tokens read from the store);
/// - persist the new tokens themselves, **in place** (for example with
///   [`InstallationStore::update_rotated_token`](crate::store::InstallationStore::update_rotated_token)),
///   never by saving the given record: the authorizer may pass a copy with the user or the bot
///   part removed, so that only the tokens it needs are refreshed;
/// - report a refresh token Slack no longer accepts as [`RefreshError::ReinstallNeeded`].
///
/// ```
/// use slack_oauth::authorize::{RefreshError, TokenRefresher};
/// use slack_oauth::installation::{Bot, Installation};
///
/// /// Never refreshes: returns the tokens as they are.
/// struct AsIs;
///
/// impl TokenRefresher for AsIs {
///     async fn refresh_installation(&self, i: &Installation) -> Result<Installation, RefreshError> {
///         Ok(i.clone())
///     }
///     async fn refresh_bot(&self, bot: &Bot) -> Result<Bot, RefreshError> {
///         Ok(bot.clone())
///     }
/// }
/// ```
pub trait TokenRefresher: Send + Sync + 'static {
    /// Refreshes the expiring bot and/or user token of `installation`.
    fn refresh_installation(
        &self,
        installation: &Installation,
    ) -> impl Future<Output = Result<Installation, RefreshError>> + Send;

    /// Refreshes the expiring token of `bot`.
    fn refresh_bot(&self, bot: &Bot) -> impl Future<Output = Result<Bot, RefreshError>> + Send;
}

/// Why a refresh failed.
///
/// ```
/// use slack_oauth::authorize::RefreshError;
/// let error = RefreshError::ReinstallNeeded { reason: "invalid_refresh_token".into() };
/// assert!(error.to_string().contains("reinstall"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// Slack refused the refresh token for good (`invalid_refresh_token` with no newer token
    /// stored, `token_revoked`): the workspace must reinstall the app. Authorize answers "not
    /// authorized" for it.
    #[error("the token cannot be refreshed ({reason}); the app must be reinstalled")]
    ReinstallNeeded {
        /// Slack's error code or a short description (never a token).
        reason: String,
    },
    /// The refresh failed for a reason that may pass (network, rate limit, store); authorize
    /// returns an error so that the request is retried.
    #[error("token refresh failed: {0}")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// The refresher of an [`Authorizer`](super::Authorizer) that has none: it cannot be built, so
/// the authorizer returns tokens as stored.
#[derive(Debug, Clone, Copy)]
pub enum NoRefresher {}

impl TokenRefresher for NoRefresher {
    async fn refresh_installation(
        &self,
        _installation: &Installation,
    ) -> Result<Installation, RefreshError> {
        match *self {}
    }

    async fn refresh_bot(&self, _bot: &Bot) -> Result<Bot, RefreshError> {
        match *self {}
    }
}

/// The real refresher: [`Rotation`](crate::rotation::Rotation)'s exactly-once path (in-process
/// single-flight, a store lease across instances, a compare-and-swap save).
///
/// Slack's permanent refusals (`invalid_refresh_token` with no newer token stored,
/// `token_revoked`, ...) become [`RefreshError::ReinstallNeeded`]; everything that may pass
/// (network, rate limits, a busy store, a held lease) becomes [`RefreshError::Failed`].
///
/// ```
/// use slack_oauth::api::{Client, ClientCredentials};
/// use slack_oauth::authorize::Authorizer;
/// use slack_oauth::rotation::{Rotation, TokenRotator};
/// use slack_oauth::store::MemoryStore;
///
/// let store = MemoryStore::new();
/// let rotator = TokenRotator::new(Client::new()?, ClientCredentials::new("111.222", "secret"));
/// let authorizer = Authorizer::new(store.clone()).refresher(Rotation::new(rotator, store));
/// # let _ = authorizer;
/// # Ok::<(), slack_oauth::api::ApiError>(())
/// ```
impl<S> TokenRefresher for crate::rotation::Rotation<S>
where
    S: crate::store::InstallationStore + Clone + 'static,
{
    async fn refresh_installation(
        &self,
        installation: &Installation,
    ) -> Result<Installation, RefreshError> {
        self.rotate_installation(installation)
            .await
            .map_err(refresh_error)
    }

    async fn refresh_bot(&self, bot: &Bot) -> Result<Bot, RefreshError> {
        self.rotate_bot(bot).await.map_err(refresh_error)
    }
}

fn refresh_error(error: crate::rotation::RotationError) -> RefreshError {
    if let crate::rotation::RotationError::NeedsReinstall { reason, .. } = &error {
        return RefreshError::ReinstallNeeded {
            reason: reason.clone(),
        };
    }
    match error.slack_error() {
        Some(reason) if !error.is_transient() => RefreshError::ReinstallNeeded {
            reason: reason.to_owned(),
        },
        _ => RefreshError::Failed(Box::new(error)),
    }
}
